//! A loopback TCP proxy that can make the server behind it unreachable or busy, on command or
//! after a number of connections (so a fault lands mid-run whatever the machine's speed).
//!
//! weir sends one request per connection, so a connection stands for a request here.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

/// What the proxy does with new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    /// Not listening: connects are refused by the kernel.
    Refuse,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    listening: bool,
    stopped: bool,
    /// Connections still to pass before the scheduled fault starts.
    fault_after: Option<u64>,
    fault: Option<Fault>,
    /// The next connections answered `429` instead of forwarded, and their `Retry-After`.
    pending_429: u64,
    retry_after_secs: u64,
    forwarded: u64,
    answered_429: u64,
    /// The request line (`POST /_bulk HTTP/1.1`) of each forwarded exchange whose answer
    /// reached the client in full, in the order they completed.
    completed: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Refuse,
    TooMany { count: u64, retry_after_secs: u64 },
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_until(&self, what: &str, done: impl Fn(&State) -> bool) {
        self.wait_until_for(what, Duration::from_secs(10), done);
    }

    fn wait_until_for(&self, what: &str, limit: Duration, done: impl Fn(&State) -> bool) {
        let deadline = Instant::now() + limit;
        let mut state = self.lock();
        while !done(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "proxy: timed out waiting until {what}");
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A proxy in front of `upstream`; dropping it stops it.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listen on a free loopback port, forwarding every connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("proxy: failed to listen")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                mode: Mode::Pass,
                listening: true,
                stopped: false,
                fault_after: None,
                fault: None,
                pending_429: 0,
                retry_after_secs: 1,
                forwarded: 0,
                answered_429: 0,
                completed: Vec::new(),
            }),
            changed: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(listener, addr, upstream, &shared))
        };
        Ok(Self {
            addr,
            shared,
            thread: Some(thread),
        })
    }

    /// `http://ADDR/`: the URL to grant instead of the server's.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stop listening now: new connections are refused. Returns once they are.
    pub fn refuse(&self) {
        self.shared.lock().mode = Mode::Refuse;
        self.wake();
        self.shared
            .wait_until("the proxy stopped listening", |s| !s.listening);
    }

    /// Forward connections again (listening on the same port). Returns once it listens.
    pub fn pass(&self) {
        {
            let mut state = self.shared.lock();
            state.mode = Mode::Pass;
            state.pending_429 = 0;
        }
        self.shared.changed.notify_all();
        self.shared
            .wait_until("the proxy listens again", |s| s.listening);
    }

    /// Answer the next `count` connections with `429 Too Many Requests` and `Retry-After:
    /// retry_after_secs`, without forwarding them.
    pub fn answer_429(&self, count: u64, retry_after_secs: u64) {
        let mut state = self.shared.lock();
        state.pending_429 = count;
        state.retry_after_secs = retry_after_secs;
    }

    /// Forward `n` more connections, then refuse connections until [`Proxy::pass`].
    pub fn refuse_after(&self, n: u64) {
        let mut state = self.shared.lock();
        state.fault_after = Some(n);
        state.fault = Some(Fault::Refuse);
    }

    /// Forward `n` more connections, then answer `count` with 429 (see [`Proxy::answer_429`]).
    pub fn answer_429_after(&self, n: u64, count: u64, retry_after_secs: u64) {
        let mut state = self.shared.lock();
        state.fault_after = Some(n);
        state.fault = Some(Fault::TooMany {
            count,
            retry_after_secs,
        });
    }

    /// Whether connections are refused now.
    pub fn refusing(&self) -> bool {
        !self.shared.lock().listening
    }

    /// Block until connections are refused (a scheduled [`Proxy::refuse_after`] took effect),
    /// at most 10 s.
    pub fn wait_until_refusing(&self) {
        self.shared
            .wait_until("the proxy refuses connections", |s| !s.listening);
    }

    /// Connections forwarded so far.
    pub fn forwarded(&self) -> u64 {
        self.shared.lock().forwarded
    }

    /// The request lines of the exchanges forwarded and answered in full so far.
    pub fn completed(&self) -> Vec<String> {
        self.shared.lock().completed.clone()
    }

    /// Block (at most 60 s) until `done` holds for the request lines answered in full so far.
    pub fn wait_for_completed(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        self.shared
            .wait_until_for(what, Duration::from_secs(60), |s| done(&s.completed));
    }

    /// Connections answered with 429 so far.
    pub fn answered_429(&self) -> u64 {
        self.shared.lock().answered_429
    }

    /// A connection of our own, so a blocked `accept` returns and sees the new mode.
    fn wake(&self) {
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.changed.notify_all();
        self.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(first: TcpListener, addr: SocketAddr, upstream: SocketAddr, shared: &Arc<Shared>) {
    let mut listener = Some(first);
    loop {
        let Some(current) = listener.take() else {
            // Refusing: wait for `pass` (or the end), then listen on the same port again.
            let mut state = shared.lock();
            while state.mode == Mode::Refuse && !state.stopped {
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
            }
            if state.stopped {
                return;
            }
            drop(state);
            listener = Some(rebind(addr));
            shared.lock().listening = true;
            shared.changed.notify_all();
            continue;
        };
        for conn in current.incoming() {
            let Ok(conn) = conn else { continue };
            let mut state = shared.lock();
            if state.stopped {
                return;
            }
            if state.mode == Mode::Refuse {
                // The wake-up connection, or a client that raced it: closed unanswered.
                break;
            }
            if let Some(left) = state.fault_after {
                if left == 0 {
                    state.fault_after = None;
                    match state.fault.take() {
                        Some(Fault::Refuse) => {
                            state.mode = Mode::Refuse;
                            break;
                        }
                        Some(Fault::TooMany {
                            count,
                            retry_after_secs,
                        }) => {
                            state.pending_429 = count;
                            state.retry_after_secs = retry_after_secs;
                        }
                        None => {}
                    }
                } else {
                    state.fault_after = Some(left - 1);
                }
            }
            if state.pending_429 > 0 {
                state.pending_429 -= 1;
                state.answered_429 += 1;
                let retry_after = state.retry_after_secs;
                drop(state);
                std::thread::spawn(move || answer_429(conn, retry_after));
            } else {
                state.forwarded += 1;
                drop(state);
                let shared = shared.clone();
                std::thread::spawn(move || {
                    if let Some(line) = forward(conn, upstream) {
                        shared.lock().completed.push(line);
                        shared.changed.notify_all();
                    }
                });
            }
        }
        // Closing the listening socket is what makes connects fail with ECONNREFUSED.
        drop(current);
        shared.lock().listening = false;
        shared.changed.notify_all();
    }
}

fn rebind(addr: SocketAddr) -> TcpListener {
    // The port was ours a moment ago; std sets SO_REUSEADDR, so only another process taking
    // it in between could stop this.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr) {
            Ok(l) => return l,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::yield_now();
            }
            Err(e) => panic!("proxy: failed to listen on {addr} again: {e}"),
        }
    }
}

/// Copy the exchange both ways until both sides are done. Returns the request line when the
/// server's whole answer reached the client (the client closed its side after reading it).
fn forward(client: TcpStream, upstream: SocketAddr) -> Option<String> {
    let server = TcpStream::connect(upstream).ok()?;
    let (mut client_read, mut server_read) = (client.try_clone().ok()?, server.try_clone().ok()?);
    let (mut client_write, mut server_write) = (client, server);
    let up = std::thread::spawn(move || {
        // The first chunk holds the request line (clients send the head in one write).
        let mut first = vec![0u8; 16 * 1024];
        let n = client_read.read(&mut first).unwrap_or(0);
        let line = String::from_utf8_lossy(&first[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let sent = server_write.write_all(&first[..n]).is_ok()
            && std::io::copy(&mut client_read, &mut server_write).is_ok();
        let _ = server_write.shutdown(Shutdown::Write);
        (line, sent && n > 0)
    });
    let answered = std::io::copy(&mut server_read, &mut client_write).is_ok_and(|n| n > 0);
    let _ = client_write.shutdown(Shutdown::Write);
    let (line, sent) = up.join().ok()?;
    (answered && sent).then_some(line)
}

/// Read the whole request (so the client is not cut off while it sends), then answer 429.
fn answer_429(mut conn: TcpStream, retry_after_secs: u64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let body_start = loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..body_start]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while raw.len() < body_start + length {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let body = r#"{"error":{"type":"too_many_requests","reason":"the test proxy says: slow down"},"status":429}"#;
    let _ = write!(
        conn,
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {retry_after_secs}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.shutdown(Shutdown::Write);
}
