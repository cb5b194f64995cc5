//! `osmem-fixture`: what the search-index tests need, with real parts only.
//!
//! - [`Osmem`]: a real `osmem-server` (PyPI `osmem-server`, an in-memory OpenSearch-compatible
//!   server; `.ci/run` installs it) started on a free loopback port and killed when dropped;
//!   it also exits if the test process dies (`-parent-pid`).
//! - [`Client`]: a blocking HTTP/1.1 client for the server's API (bulk results, every document
//!   with its version, searches), over a plain `TcpStream`.
//! - [`Proxy`]: a loopback TCP proxy in front of it, which a test can switch to refuse
//!   connections (its listening socket closed: connects get `ECONNREFUSED`) or to answer the
//!   next requests with `429 Too Many Requests` and a `Retry-After`.
//!
//! ```no_run
//! let server = osmem_fixture::Osmem::start().unwrap();
//! let proxy = osmem_fixture::Proxy::start(server.addr()).unwrap();
//! // grant weir `proxy.url()`; then, mid-run:
//! proxy.refuse();
//! proxy.pass();
//! proxy.answer_429(3, 1);
//! let docs = server.client().documents("patients").unwrap();
//! ```

mod client;
mod proxy;
mod server;

pub use client::{Client, Document};
pub use proxy::Proxy;
pub use server::{Osmem, binary};
