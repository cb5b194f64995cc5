//! `hr-fixture`: a small, deterministic HR REST API for http-extract's end-to-end tests, the
//! `examples/hr-directory` pipeline and the HTTP benchmark.
//!
//! `GET /api/employees` and `GET /api/org-units` list records in (updated_at, id) order,
//! `{"data": [...], "meta": {...}, "links": {...}}`, with every pagination style http-extract
//! speaks (chosen by path prefix, see [`state::Style`]), an inclusive `updated_since` filter
//! that also returns tombstones, keyset `after`, and `org_unit`. A wrong or missing bearer
//! token is a 401. `/admin/…` adds, changes and deletes employees, generates N of them,
//! scripts faults ([`state::Faults`]) and shows the request log.
//!
//! From a test: [`spawn`] serves on its own thread and stops when dropped.
//!
//! ```no_run
//! let hr = hr_fixture::spawn("127.0.0.1:0", hr_fixture::State::new("t0ken", 200, 5)).unwrap();
//! let grant_url = hr.api_url(); // "http://127.0.0.1:PORT/api/"
//! hr.state().lock().unwrap().faults.rate_limit_next = 1;
//! ```

pub mod router;
pub mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Context;
pub use router::{Shared, app};
pub use state::State;

/// A fixture serving on its own thread; dropping it stops the server.
pub struct Running {
    addr: SocketAddr,
    state: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// `http://ADDR/api/`: the base URL a pipeline grants.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// The server's state, to script faults or read the request log directly.
    pub fn state(&self) -> &Shared {
        &self.state
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serve `state` on `listen` (`127.0.0.1:0` picks a free port) from a new thread.
pub fn spawn(listen: &str, state: State) -> anyhow::Result<Running> {
    let std_listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("failed to listen on {listen}"))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let shared: Shared = Arc::new(Mutex::new(state));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = app(shared.clone());
    let thread = std::thread::Builder::new()
        .name("hr-fixture".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(std_listener).expect("a tokio listener");
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        })?;
    Ok(Running {
        addr,
        state: shared,
        stop: Some(stop),
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests;
