//! Handler tests: the whole router through `oneshot` (no socket), on a service with a real
//! state database and event bus but no plugins (the pipeline is therefore `invalid`; runs are
//! simulated by publishing the events a run would). Runs of real plugins are covered by the
//! end-to-end tests in tests/e2e/serve*.rs. One test also serves on a real socket.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use weir_engine::service::Service;
use weir_engine::{Config, EventKind};
use weir_runtime::Runtime;
use weir_store::{Retention, Store};

use crate::{ApiOptions, AppState, Auth, Metrics, app};

const TOKEN: &str = "test-token-0123456789";

struct Fixture {
    dir: tempfile::TempDir,
    service: Arc<Service>,
    app: Router,
}

const CONFIG: &str = r#"
[engine]
plugins_dir = "plugins"
state_db = "state.db"

[[pipeline]]
name = "bank"
schedule = "0 6 1 * *"
timezone = "Europe/Zurich"
grants = { databases = { ledger = "ledger.db" } }
extract = { plugin = "csv-extract", config = { path = "inbox/*.csv" } }
load = [{ plugin = "sqlite-load", config = { database = "ledger", table = "t" } }]
history = { plugin = "sqlite-history", config = { database = "ledger" } }
"#;

async fn fixture_with(open_reads: bool, options: ApiOptions) -> Fixture {
    fixture_with_auth(Auth::new(TOKEN.into(), open_reads), options).await
}

async fn fixture_with_auth(auth: Auth, options: ApiOptions) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    let config = Config::parse(&dir.path().join("weir.toml"), CONFIG, &|_| None).unwrap();
    let runtime = Arc::new(Runtime::new(None).unwrap());
    let catalog = runtime.load_dir(&config.engine.plugins_dir).await.unwrap();
    let store = Arc::new(Store::open(&config.engine.state_db, Retention::default()).unwrap());
    let metrics = Metrics::for_config(&config);
    let service = Service::new(config, runtime, catalog, store, vec![metrics.tap()]);
    let app = app(AppState::new(service.clone(), auth, metrics, options));
    Fixture { dir, service, app }
}

async fn fixture() -> Fixture {
    fixture_with(true, ApiOptions::default()).await
}

/// A request with `headers`, and `Host: 127.0.0.1:7878` unless they name another.
fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: Body) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        builder = builder.header("host", "127.0.0.1:7878");
    }
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(body).unwrap()
}

fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {TOKEN}"))
}

impl Fixture {
    async fn call(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (parts.status, parts.headers, value)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.call(request("GET", uri, &[], Body::empty())).await;
        (status, body)
    }

    /// Publish the events of a finished two-partition run, as the engine would.
    async fn simulate_run(&self, run: &str) {
        let bus = self.service.events();
        let emit = |partition: Option<&str>, kind| bus.emit("bank", run, partition, kind);
        emit(
            None,
            EventKind::RunStarted {
                trigger: "manual".into(),
                partitions: 2,
                plugins: [("csv-extract".to_owned(), "0.1.0".to_owned())].into(),
            },
        );
        for (partition, rows) in [("a.csv", 10), ("b.csv", 4)] {
            emit(
                Some(partition),
                EventKind::WorkerStarted { checkpoint: None },
            );
            emit(
                Some(partition),
                EventKind::BatchCommitted {
                    rows_in: rows,
                    rows_out: rows - 1,
                    rejected: 1,
                    bytes: rows * 10,
                    checkpoint: format!("{partition}@{rows}"),
                    done: rows,
                    total: Some(rows),
                    filtered: 2,
                    counters: [("mask.redacted".to_owned(), 3)].into(),
                    destinations: [(
                        "sqlite-load → ledger.t".to_owned(),
                        weir_store::DestinationCount {
                            loaded: rows - 1,
                            rejected: 1,
                        },
                    )]
                    .into(),
                },
            );
            emit(
                Some(partition),
                EventKind::WorkerCompleted {
                    rows_read: rows,
                    rows_loaded: rows - 1,
                    rows_rejected: 1,
                },
            );
        }
        emit(
            None,
            EventKind::RunCompleted {
                rows_read: 14,
                rows_loaded: 12,
                rows_rejected: 2,
                seconds: 0.25,
            },
        );
        self.service.store().flush().await;
    }
}

#[tokio::test]
async fn mutating_routes_need_the_token_and_reads_are_open_on_loopback() {
    let fx = fixture().await;
    let mutating = [
        ("POST", "/api/pipelines/bank/runs"),
        ("POST", "/api/runs/some-run/cancel"),
        ("DELETE", "/api/pipelines/bank/checkpoints"),
    ];
    for (method, uri) in mutating {
        let (status, _, body) = fx.call(request(method, uri, &[], Body::empty())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {body}");
        assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
        let wrong = [("authorization", "Bearer nope")];
        let (status, _, _) = fx.call(request(method, uri, &wrong, Body::empty())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
    // With the token, the request gets past auth to the handler's own answer.
    let (k, v) = bearer();
    let (status, _, body) = fx
        .call(request(
            "POST",
            "/api/pipelines/bank/runs",
            &[(k, &v)],
            Body::empty(),
        ))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("cannot run"),
        "{body}"
    );
    let (status, _, _) = fx
        .call(request(
            "POST",
            "/api/runs/nope/cancel",
            &[(k, &v)],
            Body::empty(),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for uri in [
        "/api/health",
        "/api/pipelines",
        "/api/runs",
        "/api/plugins",
        "/metrics",
    ] {
        assert_eq!(fx.get(uri).await.0, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn reads_need_the_token_when_not_on_loopback() {
    let fx = fixture_with(false, ApiOptions::default()).await;
    let (status, _) = fx.get("/api/pipelines").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(fx.get("/api/events").await.0, StatusCode::UNAUTHORIZED);
    let (k, v) = bearer();
    let (status, _, _) = fx
        .call(request("GET", "/api/pipelines", &[(k, &v)], Body::empty()))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn login_sets_an_httponly_strict_cookie_that_mutating_routes_accept() {
    let fx = fixture().await;
    let json = [("content-type", "application/json")];
    let (status, _, _) = fx
        .call(request(
            "POST",
            "/api/login",
            &json,
            Body::from(r#"{"token":"bad"}"#),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body = Body::from(format!(r#"{{"token":"{TOKEN}"}}"#));
    let (status, headers, _) = fx.call(request("POST", "/api/login", &json, body)).await;
    assert_eq!(status, StatusCode::OK);
    let set_cookie = headers["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["weir_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "not behind TLS: {set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    let (_, _, session) = fx
        .call(request(
            "GET",
            "/api/session",
            &[("cookie", &cookie)],
            Body::empty(),
        ))
        .await;
    assert_eq!(session["authenticated"], true);
    // Past auth (404: no such run) with the cookie alone.
    let with_cookie = [("cookie", cookie.as_str()), ("host", "localhost:7878")];
    let (status, _, _) = fx
        .call(request(
            "POST",
            "/api/runs/x/cancel",
            &with_cookie,
            Body::empty(),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The same cookie from another site's page is refused.
    let cross = [
        ("cookie", cookie.as_str()),
        ("host", "localhost:7878"),
        ("origin", "https://evil.example"),
    ];
    let (status, _, body) = fx
        .call(request("POST", "/api/runs/x/cancel", &cross, Body::empty()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (_, headers, _) = fx
        .call(request(
            "POST",
            "/api/logout",
            &[("cookie", &cookie)],
            Body::empty(),
        ))
        .await;
    assert!(
        headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, _, _) = fx
        .call(request(
            "POST",
            "/api/runs/x/cancel",
            &with_cookie,
            Body::empty(),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn pipelines_show_schedule_next_fires_and_why_they_cannot_run() {
    let fx = fixture().await;
    let (status, body) = fx.get("/api/pipelines").await;
    assert_eq!(status, StatusCode::OK);
    let bank = &body["pipelines"][0];
    assert_eq!(bank["name"], "bank");
    assert_eq!(bank["status"], "invalid");
    assert!(
        bank["error"]
            .as_str()
            .unwrap()
            .contains("unknown extractor plugin \"csv-extract\""),
        "{bank}"
    );
    let schedule = &bank["schedule"];
    assert_eq!(schedule["expression"], "0 6 1 * *");
    assert_eq!(schedule["timezone"], "Europe/Zurich");
    assert!(
        schedule["description"].as_str().unwrap().contains("06:00"),
        "{schedule}"
    );
    let upcoming = schedule["upcoming"].as_array().unwrap();
    assert_eq!(upcoming.len(), 3);
    assert_eq!(bank["next_fire"], upcoming[0]);
    // 06:00 in Zurich is 04:00 or 05:00 UTC, on the 1st.
    let first = upcoming[0].as_str().unwrap();
    assert!(
        first.contains("-01T04:00:00Z") || first.contains("-01T05:00:00Z"),
        "{first}"
    );
    assert!(bank["last_run"].is_null());

    let (status, body) = fx.get("/api/pipelines/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no pipeline named \"nope\"");
}

#[tokio::test]
async fn runs_and_partition_totals_are_derived_from_the_events() {
    let fx = fixture().await;
    fx.simulate_run("r1").await;
    let (status, body) = fx.get("/api/runs?pipeline=bank").await;
    assert_eq!(status, StatusCode::OK);
    let runs = body["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["id"], "r1");
    assert_eq!(run["status"], "completed");
    assert_eq!(run["trigger"], "manual");
    assert_eq!(
        (run["rows_read"].as_u64(), run["rows_loaded"].as_u64()),
        (Some(14), Some(12))
    );
    assert_eq!(run["batches"], 2);
    assert!(run["started_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(run["plugins"], json!({ "csv-extract": "0.1.0" }));
    assert_eq!(run["bytes"], 140, "10 bytes a row, 14 rows");
    assert_eq!(run["rows_filtered"], 4, "2 a batch, 2 batches");
    assert_eq!(run["details"]["counters"], json!({ "mask.redacted": 6 }));
    assert_eq!(
        run["details"]["destinations"],
        json!({ "sqlite-load → ledger.t": { "loaded": 12, "rejected": 2 } })
    );

    let (_, detail) = fx.get("/api/runs/r1").await;
    let parts = detail["partition_totals"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["partition"], "a.csv");
    assert_eq!(parts[0]["rows_read"], 10);
    assert_eq!(parts[0]["checkpoint"], "a.csv@10");
    assert_eq!(parts[1]["status"], "completed");

    let (_, pipeline) = fx.get("/api/pipelines/bank").await;
    assert_eq!(pipeline["last_run"]["id"], "r1");
    assert_eq!(pipeline["recent_runs"].as_array().unwrap().len(), 1);

    let (k, v) = bearer();
    let (status, _, body) = fx
        .call(request(
            "POST",
            "/api/runs/r1/cancel",
            &[(k, &v)],
            Body::empty(),
        ))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "run r1 is not in progress (it is completed)");
    let (status, body) = fx.get("/api/runs/r404").await;
    assert_eq!(
        (status, body["status"].as_u64()),
        (StatusCode::NOT_FOUND, Some(404))
    );
}

#[tokio::test]
async fn rejects_are_paged_from_the_pipeline_database() {
    let fx = fixture().await;
    fx.simulate_run("r1").await;
    let db = rusqlite::Connection::open(fx.dir.path().join("ledger.db")).unwrap();
    weir_store::rejects::ensure_table(&db).unwrap();
    for line in [7, 3, 5] {
        db.execute(
            "INSERT INTO _weir_rejects (pipeline, partition, run_id, file, line, stage, reason, raw)
             VALUES ('bank', 'a.csv', 'r1', 'inbox/a.csv', ?1, 'csv-extract', 'bad amount', '1;x')",
            [line],
        )
        .unwrap();
    }
    let (status, page) = fx.get("/api/runs/r1/rejects?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 3);
    let lines: Vec<u64> = page["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 5]);
    assert_eq!(page["rejects"][0]["database"], "ledger");
    let (_, page) = fx.get("/api/runs/r1/rejects?limit=2&offset=2").await;
    assert_eq!(page["rejects"][0]["line"], 7);
    let (status, _) = fx.get("/api/runs/r1/rejects?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn metrics_count_what_the_events_say() {
    let fx = fixture().await;
    fx.simulate_run("r1").await;
    let (status, headers, body) = fx
        .call(request("GET", "/metrics", &[], Body::empty()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = body.as_str().unwrap();
    for line in [
        "weir_rows_read_total{pipeline=\"bank\"} 14",
        "weir_rows_loaded_total{pipeline=\"bank\"} 12",
        "weir_rows_rejected_total{pipeline=\"bank\"} 2",
        "weir_batches_committed_total{pipeline=\"bank\"} 2",
        "weir_runs_total{pipeline=\"bank\",status=\"completed\"} 1",
        "weir_run_duration_seconds_count{pipeline=\"bank\"} 1",
        "weir_plugin_errors_total{pipeline=\"bank\"} 0",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[tokio::test]
async fn errors_are_json_with_clear_messages_and_there_is_no_wildcard_cors() {
    let fx = fixture_with(
        true,
        ApiOptions {
            body_limit: 1024,
            ..ApiOptions::default()
        },
    )
    .await;
    let (status, body) = fx.get("/api/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no route for GET /api/nothing-here");

    let (status, _, body) = fx
        .call(request("DELETE", "/api/health", &[], Body::empty()))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["status"], 405);

    let json = [("content-type", "application/json")];
    let big = Body::from(format!(r#"{{"token":"{}"}}"#, "x".repeat(4096)));
    let (status, _, body) = fx.call(request("POST", "/api/login", &json, big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"], "request body too large");

    let (status, _, body) = fx
        .call(request("POST", "/api/login", &json, Body::from("{")))
        .await;
    assert!(status.is_client_error(), "{status}");
    assert!(body["error"].as_str().unwrap().contains("JSON"), "{body}");

    let (status, body) = fx.get("/api/runs?limit=100000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "limit must be between 1 and 500");

    let cross = [("origin", "https://evil.example")];
    let (_, headers, _) = fx
        .call(request("GET", "/api/health", &cross, Body::empty()))
        .await;
    assert!(!headers.contains_key("access-control-allow-origin"));
    let preflight = [
        ("origin", "https://evil.example"),
        ("access-control-request-method", "POST"),
    ];
    let (status, headers, _) = fx
        .call(request(
            "OPTIONS",
            "/api/pipelines/bank/runs",
            &preflight,
            Body::empty(),
        ))
        .await;
    assert!(status.is_client_error());
    assert!(!headers.contains_key("access-control-allow-origin"));
}

/// Reads SSE frames from a response body.
struct SseReader {
    body: axum::body::BodyDataStream,
    buffer: String,
}

impl SseReader {
    fn new(body: Body) -> Self {
        Self {
            body: body.into_data_stream(),
            buffer: String::new(),
        }
    }

    /// The next frame (`event:`/`id:`/`data:` lines or a comment), or `None` at the end.
    async fn frame(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame = self.buffer[..end].to_owned();
                self.buffer.drain(..end + 2);
                return Some(frame);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("no SSE frame within 10 s")?
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event frame's (type, id), skipping comments.
    async fn event(&mut self) -> Option<(String, Option<u64>)> {
        loop {
            let frame = self.frame().await?;
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            };
            if let Some(kind) = field("event:") {
                return Some((kind, field("id:").map(|id| id.parse().unwrap())));
            }
        }
    }
}

async fn open_events(fx: &Fixture, uri: &str, headers: &[(&str, &str)]) -> SseReader {
    let response = fx
        .app
        .clone()
        .oneshot(request("GET", uri, headers, Body::empty()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    SseReader::new(response.into_body())
}

#[tokio::test]
async fn events_replay_after_last_event_id_then_continue_live_without_gap_or_duplicate() {
    let fx = fixture().await;
    fx.simulate_run("r1").await;
    let persisted = fx.service.store().newest_event_id();
    // EngineStarted is 1; r1's 8 events follow.
    assert_eq!(persisted, 9);
    let mut sse = open_events(&fx, "/api/events", &[("last-event-id", "4")]).await;
    // Published after the client connected, before it read anything: must come exactly once.
    fx.simulate_run("r2").await;
    let mut ids = Vec::new();
    while ids.len() < 13 {
        let (_, id) = sse.event().await.unwrap();
        ids.push(id.unwrap());
    }
    assert_eq!(ids, (5..=17).collect::<Vec<_>>());
    // The same replay through the query parameter, filtered to one run.
    let mut sse = open_events(&fx, "/api/events?run=r2&last_event_id=0", &[]).await;
    let first = sse.event().await.unwrap();
    assert_eq!(first, ("run_started".to_owned(), Some(10)));
    let mut last = first;
    while last.0 != "run_completed" {
        last = sse.event().await.unwrap();
    }
    assert_eq!(last.1, Some(17));
    let (status, body) = fx.get("/api/events?last_event_id=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn live_events_are_filtered_and_keep_alives_flow() {
    let fx = fixture_with(
        true,
        ApiOptions {
            keep_alive: Duration::from_millis(50),
            ..ApiOptions::default()
        },
    )
    .await;
    let mut sse = open_events(&fx, "/api/events?pipeline=bank", &[]).await;
    let frame = sse.frame().await.unwrap();
    assert_eq!(frame, ": keep-alive");
    fx.service.events().publish(
        Some("other"),
        None,
        None,
        EventKind::RunSkipped { reason: "x".into() },
    );
    fx.service.events().publish(
        Some("bank"),
        None,
        None,
        EventKind::RunSkipped { reason: "y".into() },
    );
    let (kind, id) = sse.event().await.unwrap();
    assert_eq!((kind.as_str(), id), ("run_skipped", Some(3)));
}

#[tokio::test]
async fn a_client_that_falls_behind_gets_resync_and_is_disconnected() {
    let fx = fixture().await;
    let mut sse = open_events(&fx, "/api/events", &[]).await;
    // More than the bus keeps (4096) before the client reads anything.
    for _ in 0..5000 {
        fx.service.events().publish(
            Some("bank"),
            None,
            None,
            EventKind::RunSkipped { reason: "x".into() },
        );
    }
    let frame = loop {
        let frame = sse.frame().await.unwrap();
        if !frame.starts_with(':') {
            break frame;
        }
    };
    assert!(frame.starts_with("event: resync\n"), "{frame}");
    assert!(frame.contains("Last-Event-ID: 0"), "{frame}");
    assert_eq!(sse.frame().await, None, "the stream ends after resync");
}

#[tokio::test]
async fn serves_on_a_real_socket() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let fx = fixture().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = fx.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let raw = |request: String| async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    };
    let health = raw(format!(
        "GET /api/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    let denied = raw(format!(
        "POST /api/pipelines/bank/runs HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");

    // An event stream over the socket sees an event published after it connected.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        seen.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    fx.service.events().publish(
        Some("bank"),
        None,
        None,
        EventKind::RunSkipped {
            reason: "socket".into(),
        },
    );
    while !seen.contains("\"reason\":\"socket\"") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("event within 10 s")
            .unwrap();
        assert!(n > 0, "stream closed: {seen}");
        seen.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    assert!(seen.contains("event: run_skipped"), "{seen}");
}

/// Every route of `router.rs` and `dashboard.rs`, plus one that does not exist.
const EVERY_ROUTE: [(&str, &str); 20] = [
    ("GET", "/api/health"),
    ("GET", "/api/pipelines"),
    ("GET", "/api/pipelines/bank"),
    ("POST", "/api/pipelines/bank/runs"),
    ("GET", "/api/pipelines/bank/checkpoints"),
    ("DELETE", "/api/pipelines/bank/checkpoints"),
    ("GET", "/api/runs"),
    ("GET", "/api/runs/r1"),
    ("POST", "/api/runs/r1/cancel"),
    ("GET", "/api/runs/r1/rejects"),
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
];

#[tokio::test]
async fn a_foreign_host_gets_421_on_every_route_before_anything_else() {
    let fx = fixture().await;
    let (k, v) = bearer();
    let login = format!(r#"{{"token":"{TOKEN}"}}"#);
    let routes = EVERY_ROUTE.iter().chain(&[("GET", "/nothing-here")]);
    for (method, uri) in routes {
        for host in [
            "attacker.example",
            "attacker.example:7878",
            "127.0.0.1.nip.io",
        ] {
            // With the token and a valid body: the host alone decides.
            let headers = [
                ("host", host),
                (k, v.as_str()),
                ("content-type", "application/json"),
            ];
            let (status, response_headers, body) = fx
                .call(request(method, uri, &headers, Body::from(login.clone())))
                .await;
            assert_eq!(
                status,
                StatusCode::MISDIRECTED_REQUEST,
                "{method} {uri} {host}"
            );
            assert_eq!(body["status"], 421, "{body}");
            let message = body["error"].as_str().unwrap();
            assert!(
                message.starts_with(&format!("host \"{host}\" is not served here")),
                "{message}"
            );
            assert!(message.contains("engine.allowed_hosts"), "{message}");
            assert!(!response_headers.contains_key("set-cookie"));
        }
    }
    // Nothing ran and nobody logged in.
    assert_eq!(fx.service.active_count(), 0);
    assert_eq!(fx.get("/api/runs").await.1["runs"], json!([]));

    // The URI's authority (HTTP/2, absolute-form) is checked too.
    let (status, _, _) = fx
        .call(request(
            "GET",
            "http://attacker.example/api/health",
            &[],
            Body::empty(),
        ))
        .await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    // No Host at all.
    let bare = Request::get("/api/health").body(Body::empty()).unwrap();
    let (status, _, body) = fx.call(bare).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("no Host header"),
        "{body}"
    );
    // A Host that is not text, or has a user part.
    let mut odd = request("GET", "/api/health", &[], Body::empty());
    odd.headers_mut().insert(
        "host",
        axum::http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
    );
    assert_eq!(fx.call(odd).await.0, StatusCode::MISDIRECTED_REQUEST);
    let user = [("host", "attacker.example@localhost")];
    let (status, _, _) = fx
        .call(request("GET", "/api/health", &user, Body::empty()))
        .await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);

    // Loopback names, any port, are served.
    for host in [
        "127.0.0.1:7878",
        "localhost",
        "LocalHost:9",
        "[::1]:7878",
        "127.0.0.1",
    ] {
        let (status, _, body) = fx
            .call(request(
                "GET",
                "/api/health",
                &[("host", host)],
                Body::empty(),
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
}

#[tokio::test]
async fn hosts_named_in_the_config_and_the_listen_host_are_served() {
    let fx = fixture_with(
        true,
        ApiOptions {
            allowed_hosts: crate::AllowedHosts::new("10.0.0.5:7878", ["weir.example.com"]),
            ..ApiOptions::default()
        },
    )
    .await;
    for (host, expected) in [
        ("weir.example.com", StatusCode::OK),
        ("WEIR.example.com:8443", StatusCode::OK),
        ("10.0.0.5:7878", StatusCode::OK),
        ("localhost:7878", StatusCode::OK),
        ("evil.weir.example.com", StatusCode::MISDIRECTED_REQUEST),
        ("attacker.example", StatusCode::MISDIRECTED_REQUEST),
    ] {
        let (status, _, _) = fx
            .call(request("GET", "/", &[("host", host)], Body::empty()))
            .await;
        assert_eq!(status, expected, "{host}");
    }
}

/// A request from `ip` (as `weir serve` records the peer of each connection).
fn from(ip: [u8; 4], mut request: Request<Body>) -> Request<Body> {
    let addr = std::net::SocketAddr::from((ip, 40000));
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    request
}

fn login_body(token: &str) -> Body {
    Body::from(format!(r#"{{"token":"{token}"}}"#))
}

#[tokio::test]
async fn wrong_tokens_lock_the_address_out_with_429_and_retry_after() {
    let (clock, offset_ms) = crate::throttle::tests::manual_clock();
    let auth = Auth::new(TOKEN.into(), true).with_login_limit(crate::LoginLimit::default(), clock);
    let fx = fixture_with_auth(auth, ApiOptions::default()).await;
    let json = [("content-type", "application/json")];
    let (a, b) = ([192, 0, 2, 1], [192, 0, 2, 2]);
    let login = |ip, token: &str| from(ip, request("POST", "/api/login", &json, login_body(token)));

    for attempt in 1..=5 {
        let (status, _, body) = fx.call(login(a, "wrong-token-0123456789")).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}: {body}"
        );
    }
    let (status, headers, body) = fx.call(login(a, "wrong-token-0123456789")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers["retry-after"], "300");
    assert_eq!(body["status"], 429);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("too many wrong tokens from this address"),
        "{body}"
    );
    // During the lockout the right token is refused too (else the answer would tell), by login
    // and as a bearer.
    let (status, _, _) = fx.call(login(a, TOKEN)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (k, v) = bearer();
    let trigger = |ip, headers: &[(&str, &str)]| {
        from(
            ip,
            request("POST", "/api/pipelines/bank/runs", headers, Body::empty()),
        )
    };
    let (status, _, _) = fx.call(trigger(a, &[(k, &v)])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Open reads check no token, so they still work; another address is not affected.
    let (status, _, _) = fx
        .call(from(a, request("GET", "/api/health", &[], Body::empty())))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = fx.call(login(b, TOKEN)).await;
    assert_eq!(status, StatusCode::OK);

    // Time passes (no sleeping: the clock is the test's).
    offset_ms.fetch_add(299_000, std::sync::atomic::Ordering::SeqCst);
    let (_, headers, _) = fx.call(login(a, TOKEN)).await;
    assert_eq!(headers["retry-after"], "1");
    offset_ms.fetch_add(1_000, std::sync::atomic::Ordering::SeqCst);
    let (status, _, body) = fx.call(login(a, TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Wrong bearer tokens on mutating routes count the same way; no token at all does not.
    let c = [192, 0, 2, 3];
    for _ in 0..10 {
        let (status, _, _) = fx.call(trigger(c, &[])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..5 {
        let (status, _, _) = fx
            .call(trigger(
                c,
                &[("authorization", "Bearer wrong-token-0123456789")],
            ))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, _) = fx.call(trigger(c, &[(k, &v)])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "300");
    // `GET /api/session` answers no during the lockout, whatever the token.
    let (_, _, session) = fx
        .call(from(
            c,
            request("GET", "/api/session", &[(k, &v)], Body::empty()),
        ))
        .await;
    assert_eq!(session["authenticated"], false);
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_tls() {
    let fx = fixture_with(
        true,
        ApiOptions {
            behind_tls: true,
            ..ApiOptions::default()
        },
    )
    .await;
    let json = [("content-type", "application/json")];
    let (status, headers, _) = fx
        .call(request("POST", "/api/login", &json, login_body(TOKEN)))
        .await;
    assert_eq!(status, StatusCode::OK);
    let set_cookie = headers["set-cookie"].to_str().unwrap();
    assert!(set_cookie.starts_with("weir_session="), "{set_cookie}");
    assert!(set_cookie.ends_with("; Secure"), "{set_cookie}");
    let (_, headers, _) = fx
        .call(request("POST", "/api/logout", &[], Body::empty()))
        .await;
    assert!(
        headers["set-cookie"]
            .to_str()
            .unwrap()
            .ends_with("Max-Age=0; Secure")
    );
}
