//! `weir serve`'s HTTP API against a hostile browser or client: DNS rebinding (a foreign `Host`),
//! GETs that must write nothing, short tokens, token guessing, the cookie behind TLS.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve_support::*;
use crate::support::*;

/// Every route of `host/api/src/router.rs` and the dashboard's files, plus one that does not
/// exist (the fallback).
const EVERY_ROUTE: [(&str, &str); 21] = [
    ("GET", "/api/health"),
    ("GET", "/api/pipelines"),
    ("GET", "/api/pipelines/books"),
    ("POST", "/api/pipelines/books/runs"),
    ("GET", "/api/pipelines/books/checkpoints"),
    ("DELETE", "/api/pipelines/books/checkpoints"),
    ("GET", "/api/runs"),
    ("GET", "/api/runs/RUN"),
    ("POST", "/api/runs/RUN/cancel"),
    ("GET", "/api/runs/RUN/rejects"),
    ("GET", "/api/plugins"),
    ("GET", "/api/events"),
    ("POST", "/api/login"),
    ("POST", "/api/logout"),
    ("GET", "/api/session"),
    ("GET", "/metrics"),
    ("GET", "/"),
    ("GET", "/app.js"),
    ("GET", "/style.css"),
    ("GET", "/favicon.svg"),
    ("GET", "/no-such-route"),
];

/// A small CSV pipeline without a schedule (so nothing runs unless asked), one bad row.
fn books_fixture(engine_keys: &str) -> Fixture {
    let fx = Fixture::new();
    fx.write("inbox/a.csv", "id,amount\n1,10\n2,20\nthree\n4,40\n");
    fx.config(&csv_pipeline(
        "books",
        r#"path = "inbox/*.csv""#,
        r#"table = "entries", mode = "append""#,
    ));
    let config = std::fs::read_to_string(fx.path("weir.toml")).unwrap();
    let config = config.replacen("[engine]\n", &format!("[engine]\n{engine_keys}"), 1);
    std::fs::write(fx.path("weir.toml"), config).unwrap();
    fx
}

/// The answer to one raw request: status, lowercased head, body.
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One request with exactly the `Host` given (`None`: no Host header) and `headers`; reads the
/// head, and the body unless the answer is an event stream.
fn raw(addr: SocketAddr, method: &str, path: &str, host: Option<&str>, headers: &str) -> Raw {
    let body = if path == "/api/login" {
        format!(r#"{{"token":"{TOKEN}"}}"#)
    } else {
        String::new()
    };
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\n{host}{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    // Up to the end of the head, then (unless it is a stream, which never ends) to the close.
    loop {
        let n = stream.read(&mut buf).unwrap();
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            if !head.contains("content-type: text/event-stream") {
                stream.read_to_end(&mut received).unwrap();
            }
            break;
        }
        assert!(n > 0, "connection closed before a response head: {text}");
    }
    let text = String::from_utf8_lossy(&received).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response: {text}"));
    Raw {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

#[test]
fn a_foreign_host_gets_421_on_every_route_and_our_own_hosts_are_served() {
    let fx = books_fixture("");
    let server = Server::start(&fx);
    let run = server.trigger("books");
    let mut sse = server.events(&format!("run={run}&last_event_id=0"), None);
    sse.until(|e| ends_run(e, Some(&run)));
    let runs_before = server.get_json("/api/runs")["runs"].clone();
    let port = server.addr.port();
    let bearer = format!("Authorization: Bearer {TOKEN}\r\n");

    for (method, route) in EVERY_ROUTE {
        let path = route.replace("RUN", &run);
        for host in [
            "attacker.example".to_owned(),
            format!("attacker.example:{port}"),
            // A rebinding name that merely starts like ours.
            format!("127.0.0.1.attacker.example:{port}"),
        ] {
            // With the token and a valid body: the host alone decides.
            let answer = raw(server.addr, method, &path, Some(&host), &bearer);
            assert_eq!(
                answer.status, 421,
                "{method} {path} Host: {host}: {}",
                answer.body
            );
            let body = answer.json();
            assert_eq!(body["status"], 421);
            let message = body["error"].as_str().unwrap();
            assert!(
                message.starts_with(&format!("host \"{host}\" is not served here")),
                "{message}"
            );
            assert!(message.contains("engine.allowed_hosts"), "{message}");
            assert!(answer.head.contains("content-type: application/json"));
            assert!(!answer.head.contains("set-cookie"), "{}", answer.head);
        }
        // No Host header at all.
        let answer = raw(server.addr, method, &path, None, &bearer);
        assert_eq!(answer.status, 400, "{method} {path}: {}", answer.body);
        assert!(
            answer.json()["error"]
                .as_str()
                .unwrap()
                .contains("no Host header")
        );
    }
    // Nothing was triggered, cancelled or reset by the refused requests.
    assert_eq!(server.get_json("/api/runs")["runs"], runs_before);
    let checkpoints = server.get_json("/api/pipelines/books/checkpoints");
    assert_eq!(checkpoints["checkpoints"].as_array().unwrap().len(), 1);

    // The host the server listens on, and the loopback names, with any port, are served.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_owned(),
        "[::1]:1".to_owned(),
    ] {
        for (method, route) in EVERY_ROUTE {
            if method != "GET" {
                continue;
            }
            let path = route.replace("RUN", &run);
            let answer = raw(server.addr, method, &path, Some(&host), "");
            let expected = if route == "/no-such-route" { 404 } else { 200 };
            assert_eq!(
                answer.status, expected,
                "GET {path} Host: {host}: {}",
                answer.body
            );
        }
    }
    // Mutating routes get past the host check to their usual answer.
    let answer = raw(
        server.addr,
        "POST",
        "/api/pipelines/books/runs",
        Some(&format!("127.0.0.1:{port}")),
        "",
    );
    assert_eq!(answer.status, 401, "{}", answer.body);
}

#[test]
fn hosts_from_engine_allowed_hosts_are_served_and_others_are_not() {
    let fx = books_fixture("allowed_hosts = [\"weir.example.com\", \"10.9.8.7\"]\n");
    let server = Server::start(&fx);
    for (host, expected) in [
        ("weir.example.com", 200),
        ("Weir.Example.com:8443", 200),
        ("10.9.8.7:7878", 200),
        ("localhost", 200),
        ("attacker.example", 421),
        ("weir.example.com.attacker.example", 421),
        ("10.9.8.6", 421),
    ] {
        for path in ["/api/health", "/"] {
            let answer = raw(server.addr, "GET", path, Some(host), "");
            assert_eq!(
                answer.status, expected,
                "{path} Host: {host}: {}",
                answer.body
            );
        }
    }
}

/// `weir serve` with `env_token` in `WEIR_TOKEN`; it must exit (within 60 s) — returns its
/// status and output.
fn serve_expecting_exit(fx: &Fixture, env_token: Option<&str>) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
    command
        .arg("-c")
        .arg(fx.path("weir.toml"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(fx.dir.path())
        .env_remove("RUST_LOG")
        .env_remove("WEIR_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(token) = env_token {
        command.env("WEIR_TOKEN", token);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "weir serve started with a short token:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn a_short_token_stops_weir_serve_saying_where_it_came_from() {
    let fx = books_fixture("token = \"short-token\"\n");
    let (ok, output) = serve_expecting_exit(&fx, Some(TOKEN));
    assert!(!ok, "{output}");
    assert!(!output.contains("listening on"), "{output}");
    assert!(
        !fx.path("weir-state.db").exists(),
        "a refused start creates no state"
    );
    let config = fx.path("weir.toml");
    assert!(
        output.contains(&format!(
            "{}: the API token from engine.token is 11 characters long; it must be at least 16",
            config.display()
        )),
        "{output}"
    );

    let fx = books_fixture("");
    let (ok, output) = serve_expecting_exit(&fx, Some("fifteen-chars!!"));
    assert!(!ok, "{output}");
    assert!(
        output.contains(
            "the API token from the WEIR_TOKEN environment variable is 15 characters long; it must be at least 16"
        ),
        "{output}"
    );
}

#[test]
fn wrong_tokens_lock_the_address_out_and_the_cookie_is_secure_behind_tls() {
    let fx = books_fixture("behind_tls = true\n");
    let server = Server::start(&fx);
    let host = server.addr.to_string();
    let login = |token: &str| {
        let body = format!(r#"{{"token":"{token}"}}"#);
        let mut stream = TcpStream::connect(server.addr).unwrap();
        write!(
            stream,
            "POST /api/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    };
    let ok = login(TOKEN);
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let cookie = ok
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("{ok}"));
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.trim_end().ends_with("; Secure"), "{cookie}");

    for attempt in 1..=5 {
        let wrong = login("wrong-token-0123456789");
        assert!(
            wrong.starts_with("HTTP/1.1 401"),
            "attempt {attempt}: {wrong}"
        );
    }
    for token in ["wrong-token-0123456789", TOKEN] {
        let refused = login(token);
        assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
        let lower = refused.to_ascii_lowercase();
        assert!(
            lower.contains("\r\nretry-after: 300\r\n")
                || lower.contains("\r\nretry-after: 299\r\n"),
            "{refused}"
        );
        assert!(
            refused.contains("too many wrong tokens from this address"),
            "{refused}"
        );
    }
    // The bearer token is refused from that address too, for the same time.
    let trigger = server.request("POST", "/api/pipelines/books/runs", true);
    assert_eq!(trigger.status, 429, "{}", trigger.body);
    // Reads on loopback need no token, so they go on working.
    assert_eq!(server.get_json("/api/health")["status"], "ok");
    let output = server.output();
    let (status, output_after) = server.stop();
    assert!(status.success(), "{output}");
    assert!(
        output_after.contains("wrong API tokens within 60 s"),
        "the lockout is logged: {output_after}"
    );
}

/// Every file under `dir` except the state database (which `weir serve` writes on its own),
/// with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            if path.is_dir() {
                pending.push(path);
            } else if !name.starts_with("weir-state.db") {
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Every file that was there is byte-identical, and nothing new appeared (not even SQLite's
/// `-wal`/`-shm` companions, which a plain read-only reader of a WAL database would leave).
#[track_caller]
fn assert_unchanged(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>) {
    for (name, bytes) in before {
        let now = after
            .get(name)
            .unwrap_or_else(|| panic!("{name} went away"));
        assert!(now == bytes, "{name} changed");
    }
    let appeared: Vec<&String> = after.keys().filter(|n| !before.contains_key(*n)).collect();
    assert!(
        appeared.is_empty(),
        "{appeared:?} appeared; files before: {:?}",
        before.keys()
    );
}

#[test]
fn get_routes_leave_the_pipeline_databases_untouched() {
    let fx = books_fixture("");
    let server = Server::start(&fx);
    let run = server.trigger("books");
    let mut sse = server.events(&format!("run={run}&last_event_id=0"), None);
    sse.until(|e| ends_run(e, Some(&run)));
    drop(sse);
    // A restart, so that nothing from the run is still settling on disk.
    let (status, output) = server.stop();
    assert!(status.success(), "{output}");
    let server = Server::start(&fx);
    let before = snapshot(fx.dir.path());
    assert!(before.contains_key("ledger.db"), "{:?}", before.keys());

    for (method, route) in EVERY_ROUTE {
        // Checkpoints have a test of their own, below.
        if method != "GET" || route.ends_with("/checkpoints") {
            continue;
        }
        let path = route.replace("RUN", &run);
        let answer = raw(
            server.addr,
            method,
            &path,
            Some(&server.addr.to_string()),
            "",
        );
        assert!(answer.status < 500, "GET {path}: {}", answer.body);
    }
    let rejects = server.get_json(&format!("/api/runs/{run}/rejects"));
    assert_eq!(rejects["total"], 1, "{rejects}");
    assert_unchanged(&before, &snapshot(fx.dir.path()));
}

#[test]
fn listing_checkpoints_creates_no_database_and_changes_no_byte() {
    let fx = books_fixture("");
    fx.append(
        "weir.toml",
        csv_pipeline(
            "fresh",
            r#"path = "inbox/*.csv""#,
            r#"table = "entries", mode = "append""#,
        )
        .replace("ledger", "fresh"),
    );
    fx.weir(&["run", "books"]).success();
    let server = Server::start(&fx);
    let before = snapshot(fx.dir.path());
    assert!(before.contains_key("ledger.db"), "{:?}", before.keys());
    assert!(!fx.path("fresh.db").exists());

    // A pipeline whose database does not exist yet: no checkpoints, and no file.
    let fresh = server.get_json("/api/pipelines/fresh/checkpoints");
    assert_eq!(fresh["checkpoints"], serde_json::json!([]), "{fresh}");
    // An existing database: its checkpoints, and not a byte changed (no WAL switch, no DDL).
    let books = server.get_json("/api/pipelines/books/checkpoints");
    let entries = books["checkpoints"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{books}");
    assert_eq!(entries[0]["partition"], "inbox/a.csv");
    assert_unchanged(&before, &snapshot(fx.dir.path()));
}
