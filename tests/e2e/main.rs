//! End-to-end tests: the real `weir` binary, the real bundled plugins, real files.

mod support;

mod bank_recon;
mod bad_config;
mod corpora;
mod incremental;
mod plugins;
mod upsert;
