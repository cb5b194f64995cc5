//! `weir serve` as a child process, and a small blocking HTTP/SSE client for it (std only, so
//! the tests control every byte and can also open connections that never read).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::Fixture;

pub const TOKEN: &str = "e2e-token-0123456789";

/// A running `weir serve`.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    output: Arc<Mutex<String>>,
}

impl Server {
    /// Start `weir serve` on a free loopback port with `WEIR_TOKEN` set, and wait for the line
    /// that says where it listens.
    pub fn start(fx: &Fixture) -> Self {
        Self::start_with_env(fx, &[])
    }

    /// [`Server::start`] with more environment variables (what `${VAR}` in the config reads:
    /// a database grant's password, for instance).
    pub fn start_with_env(fx: &Fixture, env: &[(&str, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("-c")
            .arg(fx.path("weir.toml"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(fx.dir.path())
            .env("WEIR_TOKEN", TOKEN)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let out = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("weir serve: listening on http://") {
                    let _ = addr_tx.send(addr.parse::<SocketAddr>().unwrap());
                }
                out.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let stderr = child.stderr.take().unwrap();
        let out = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                out.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        // Generous: the first start on a fresh machine compiles the plugins.
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(300))
            .unwrap_or_else(|_| {
                panic!(
                    "weir serve did not say where it listens:\n{}",
                    output.lock().unwrap()
                )
            });
        Self {
            child,
            addr,
            output,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Resident memory of the server process, in KiB (`VmRSS` in /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// One request; `auth` adds the bearer token.
    pub fn request(&self, method: &str, path: &str, auth: bool) -> Response {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let auth = if auth {
            format!("Authorization: Bearer {TOKEN}\r\n")
        } else {
            String::new()
        };
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        let body = if headers.contains("transfer-encoding: chunked") {
            let mut body = Vec::new();
            while let Some(chunk) = read_chunk(&mut reader) {
                body.extend(chunk);
            }
            body
        } else {
            let mut body = Vec::new();
            reader.read_to_end(&mut body).unwrap();
            body
        };
        Response {
            status,
            body: String::from_utf8(body).unwrap(),
        }
    }

    /// GET a JSON resource, expecting 200.
    #[track_caller]
    pub fn get_json(&self, path: &str) -> Value {
        let response = self.request("GET", path, false);
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        response.json()
    }

    /// Trigger a run; returns its id.
    #[track_caller]
    pub fn trigger(&self, pipeline: &str) -> String {
        let response = self.request("POST", &format!("/api/pipelines/{pipeline}/runs"), true);
        assert_eq!(response.status, 202, "{}", response.body);
        response.json()["run_id"].as_str().unwrap().to_owned()
    }

    /// Open `GET /api/events?QUERY`, optionally with `Last-Event-ID`.
    pub fn events(&self, query: &str, last_event_id: Option<u64>) -> SseClient {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let last = last_event_id
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET /api/events?{query} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n{last}\r\n",
            self.addr
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        assert_eq!(status, 200, "{headers}");
        assert!(
            headers.contains("content-type: text/event-stream"),
            "{headers}"
        );
        SseClient {
            reader,
            buffer: String::new(),
        }
    }

    /// SIGTERM, then wait (bounded) for the exit.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader threads finish once the pipes close.
                std::thread::sleep(Duration::from_millis(50));
                return (status, self.output());
            }
            assert!(
                Instant::now() < deadline,
                "weir serve did not stop within 60 s of SIGTERM:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Status code and the header block, lowercased.
fn read_head(reader: &mut BufReader<TcpStream>) -> (u16, String) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        headers.push_str(&line.to_ascii_lowercase());
    }
    (status, headers)
}

/// One chunk of a chunked body; `None` at the end.
fn read_chunk(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut size_line = String::new();
    if reader.read_line(&mut size_line).ok()? == 0 {
        return None;
    }
    let size = usize::from_str_radix(size_line.trim(), 16).ok()?;
    if size == 0 {
        return None;
    }
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk).ok()?;
    chunk.truncate(size);
    Some(chunk)
}

/// One SSE event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub kind: String,
    pub id: Option<u64>,
    pub data: Value,
}

impl SseEvent {
    pub fn run(&self) -> Option<&str> {
        self.data["run"].as_str()
    }
}

pub struct SseClient {
    reader: BufReader<TcpStream>,
    buffer: String,
}

impl SseClient {
    /// The next event (comments skipped); `None` when the stream ends.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    frame
                        .lines()
                        .find_map(|l| l.strip_prefix(name).map(|v| v.trim_start().to_owned()))
                };
                if let Some(kind) = field("event:") {
                    return Some(SseEvent {
                        kind,
                        id: field("id:").map(|id| id.parse().unwrap()),
                        data: serde_json::from_str(&field("data:").unwrap_or_default()).unwrap(),
                    });
                }
            }
            let chunk = read_chunk(&mut self.reader)?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Events up to and including the first for which `last` holds.
    #[track_caller]
    pub fn until(&mut self, mut last: impl FnMut(&SseEvent) -> bool) -> Vec<SseEvent> {
        let mut events = Vec::new();
        loop {
            let event = self
                .next_event()
                .unwrap_or_else(|| panic!("stream ended; got {events:#?}"));
            let done = last(&event);
            events.push(event);
            if done {
                return events;
            }
        }
    }
}

/// Whether an event ends a run (of `run`, if given).
pub fn ends_run(event: &SseEvent, run: Option<&str>) -> bool {
    matches!(
        event.kind.as_str(),
        "run_completed" | "run_failed" | "run_cancelled"
    ) && run.is_none_or(|r| event.run() == Some(r))
}
