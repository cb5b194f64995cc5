//! The HTTP API of `weir serve`.
