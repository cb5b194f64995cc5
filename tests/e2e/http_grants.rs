//! Granted HTTP through the real binary (issue 14): `http-probe` makes the requests its config
//! lists through `wasi:http`, against a fixture server on 127.0.0.1. A granted request gets the
//! host's bearer token (the plugin never sees it); a host or path outside the grant, a
//! plugin-set `Authorization`, a redirect to another host followed by the plugin and a private
//! address without `allow_private` are refused, each naming the grant; a 429's `Retry-After`
//! holds the worker's restart back; a transformer importing `wasi:http` is refused at load.

use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::support::*;

const TOKEN: &str = "s3cret-token-for-the-host-only";

/// What the fixture server saw: path and query, and the `Authorization` header.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// An HR-like API on 127.0.0.1: `/api/people` wants the bearer token, `/api/redirect` points
/// at another host, `/api/throttled` answers 429 with `Retry-After: 2` once, `/admin` must
/// never be reached. Runs on its own thread for the rest of the test process.
fn fixture_server() -> (u16, Seen) {
    use axum::extract::Request;
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;

    let seen: Seen = Arc::default();
    let throttled_once = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let log = seen.clone();
    let app = axum::Router::new()
        .route(
            "/api/people",
            axum::routing::get(|headers: HeaderMap| async move {
                let auth = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                if auth == Some(&format!("Bearer {TOKEN}")) {
                    (
                        StatusCode::OK,
                        [("x-fixture", "hr")],
                        r#"{"people":[{"id":1,"name":"Ada"}]}"#,
                    )
                        .into_response()
                } else {
                    (StatusCode::UNAUTHORIZED, "who are you?").into_response()
                }
            }),
        )
        .route(
            "/api/redirect",
            axum::routing::get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://elsewhere.test/steal")],
                    "",
                )
            }),
        )
        .route(
            "/api/throttled",
            axum::routing::get(move || {
                let once = throttled_once.clone();
                async move {
                    if once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        (StatusCode::OK, "finally").into_response()
                    } else {
                        (
                            StatusCode::TOO_MANY_REQUESTS,
                            [(header::RETRY_AFTER, "2")],
                            "slow down",
                        )
                            .into_response()
                    }
                }
            }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such thing") })
        .layer(axum::middleware::from_fn(
            move |req: Request, next: axum::middleware::Next| {
                let log = log.clone();
                async move {
                    let auth = req
                        .headers()
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    log.lock().unwrap().push((req.uri().to_string(), auth));
                    next.run(req).await
                }
            },
        ));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (port, seen)
}

/// `weir ARGS --events events.jsonl` with `PROBE_TOKEN` set, as an operator's environment
/// would hold the secret.
fn weir_with_token(fx: &Fixture, args: &[&str]) -> (Run, Vec<serde_json::Value>) {
    let events = fx.path("events.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("-c")
        .arg(fx.path("weir.toml"))
        .args(args)
        .arg("--events")
        .arg(&events)
        .current_dir(fx.dir.path())
        .env_remove("RUST_LOG")
        .env("PROBE_TOKEN", TOKEN)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&events).unwrap_or_default();
    let parsed = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (Run(output), parsed)
}

/// One row of the probe table: status, error, hops, body.
struct Row {
    status: Option<i64>,
    error: Option<String>,
    hops: i64,
    body: Option<String>,
}

fn rows(fx: &Fixture) -> std::collections::BTreeMap<String, Row> {
    let db = fx.db("ledger.db");
    let mut stmt = db
        .prepare("SELECT id, status, error, hops, body FROM probe")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Row {
                status: r.get(1)?,
                error: r.get(2)?,
                hops: r.get(3)?,
                body: r.get(4)?,
            },
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn granted_http_is_enforced_by_the_host() {
    let (port, seen) = fixture_server();
    let fx = Fixture::new();
    let base = format!("http://127.0.0.1:{port}");
    let requests = [
        r#"{ id = "granted", url = "http://api/people" }"#.to_owned(),
        format!(r#"{{ id = "base-url", url = "{base}/api/people" }}"#),
        format!(r#"{{ id = "outside", url = "{base}/admin" }}"#),
        r#"{ id = "escape", url = "http://api/../admin" }"#.to_owned(),
        r#"{ id = "other-host", url = "http://evil.test/people" }"#.to_owned(),
        r#"{ id = "own-auth", url = "http://api/people", headers = { authorization = "Bearer plugin-token" } }"#.to_owned(),
        r#"{ id = "redirect", url = "http://api/redirect", follow_redirects = true }"#.to_owned(),
        r#"{ id = "private", url = "http://local/people" }"#.to_owned(),
        r#"{ id = "throttled", url = "http://api/throttled" }"#.to_owned(),
    ];
    fx.config_with_test_plugins(
        &["http-probe"],
        &format!(
            r#"
[[pipeline]]
name = "probe"
concurrency = 3
restart = {{ max_restarts = 2, backoff_min_ms = 50, backoff_max_ms = 100 }}
extract = {{ plugin = "http-probe", config = {{ requests = [{}], unavailable_on = [429] }} }}
load = [{{ plugin = "sqlite-load", config = {{ database = "ledger", table = "probe", mode = "upsert", key = ["id"] }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "ledger" }} }}

[pipeline.grants]
databases = {{ ledger = "ledger.db" }}

[pipeline.grants.http]
api = {{ url = "{base}/api/", auth = {{ bearer = "${{PROBE_TOKEN}}" }}, allow_private = true }}
local = {{ url = "http://localhost:{port}/api/" }}
"#,
            requests.join(", ")
        ),
    );
    let (run, events) = weir_with_token(&fx, &["run", "probe"]);
    run.success();
    let rows = rows(&fx);
    let granted = format!("api → {base}/api/");

    // Granted: the host's token reached the server, which answered; both ways of addressing.
    for id in ["granted", "base-url"] {
        let row = &rows[id];
        assert_eq!(row.status, Some(200), "{id}: {:?}", row.error);
        assert_eq!(
            row.body.as_deref(),
            Some(r#"{"people":[{"id":1,"name":"Ada"}]}"#)
        );
        assert_eq!(row.error, None);
    }

    // Refused, each naming the grant (the plugin sees the ErrorCode's Debug form).
    let refusals = [
        (
            "outside",
            format!(
                r#"ErrorCode::InternalError(Some("weir: http grant \"api\" refuses GET {base}/admin: path /admin is outside the grant's base path /api/ ({base}/api/)"))"#
            ),
        ),
        (
            "escape",
            r#"ErrorCode::InternalError(Some("weir: http grant \"api\" refuses GET http://api/../admin: the path leaves the grant's base path /api/ through \"..\""))"#.to_owned(),
        ),
        (
            "other-host",
            format!(
                r#"ErrorCode::InternalError(Some("weir: no http grant matches GET http://evil.test/people; granted: {granted}, local → http://localhost:{port}/api/"))"#
            ),
        ),
        (
            "own-auth",
            r#"ErrorCode::InternalError(Some("weir: http grant \"api\" refuses GET http://api/people: the plugin set its own Authorization header; the host adds the grant's credentials itself (auth: bearer)"))"#.to_owned(),
        ),
        (
            "redirect",
            format!(
                r#"ErrorCode::InternalError(Some("weir: no http grant matches GET http://elsewhere.test/steal; granted: {granted}, local → http://localhost:{port}/api/"))"#
            ),
        ),
    ];
    for (id, expected) in &refusals {
        let row = &rows[*id];
        // The redirect's first hop got its 302; the hop the plugin followed was refused.
        let status = (*id == "redirect").then_some(302);
        assert_eq!(row.status, status, "{id}");
        let error = row.error.as_deref().unwrap_or_default();
        assert!(
            error.ends_with(expected.as_str()),
            "{id}:\n{error}\nexpected to end with\n{expected}"
        );
    }
    assert_eq!(
        rows["redirect"].hops, 1,
        "the plugin followed the redirect once"
    );
    // localhost is a loopback address: refused without allow_private, before connecting.
    let private = rows["private"].error.as_deref().unwrap_or_default();
    assert!(
        private.starts_with(r#"GET http://local/people: ErrorCode::InternalError(Some("weir: http grant \"local\" refuses GET http://local/people: localhost resolves to "#),
        "{private}"
    );
    assert!(
        private
            .ends_with(r#", a loopback address; the grant does not say allow_private = true"))"#),
        "{private}"
    );

    // The user sees every refusal as a warning in the run's log, naming the grant.
    let warnings: Vec<&str> = events_of(&events, "plugin_log")
        .into_iter()
        .filter(|e| e["level"] == "warn")
        .filter_map(|e| e["message"].as_str())
        .collect();
    for needle in [
        "weir: http grant \"api\" refuses GET http://api/../admin",
        "weir: http grant \"api\" refuses GET http://api/people: the plugin set its own Authorization header",
        "weir: no http grant matches GET http://elsewhere.test/steal; granted: api → ",
        "weir: http grant \"local\" refuses GET http://local/people: localhost resolves to ",
    ] {
        assert!(
            warnings.iter().any(|w| w.starts_with(needle)),
            "{needle} in {warnings:#?}"
        );
    }

    // The server: the host's token on every request it got, never the plugin's, never /admin.
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    for (path, auth) in &seen {
        assert!(path.starts_with("/api/"), "{path} reached the server");
        assert_eq!(auth, &format!("Bearer {TOKEN}"), "{path}");
    }
    // The secret is nowhere the plugin or the user could read it.
    let db_text: String = rows
        .values()
        .flat_map(|r| [r.error.clone(), r.body.clone()])
        .flatten()
        .collect();
    for (what, text) in [
        ("rows", db_text),
        ("stdout", run.stdout()),
        ("stderr", run.stderr()),
        ("events", serde_json::to_string(&events).unwrap()),
    ] {
        assert!(!text.contains(TOKEN), "the token leaked into {what}");
    }

    // 429 with Retry-After: 2: the plugin reported it unavailable, the worker waited at least
    // 2 s (not the 50-100 ms backoff) and the second attempt loaded the row.
    let retries: Vec<&serde_json::Value> = events_of(&events, "worker_retrying")
        .into_iter()
        .filter(|e| e["partition"] == "throttled")
        .collect();
    assert_eq!(retries.len(), 1, "{retries:#?}");
    assert!(
        retries[0]["delay_ms"].as_u64().unwrap() >= 2000,
        "{:#?}",
        retries[0]
    );
    assert!(
        retries[0]["error"]
            .as_str()
            .unwrap()
            .contains("unavailable: throttled: status 429"),
        "{:#?}",
        retries[0]
    );
    assert_eq!(rows["throttled"].status, Some(200));
    assert_eq!(rows["throttled"].body.as_deref(), Some("finally"));
    assert_eq!(rows.len(), 9);

    // What each connection cost, from the workers' `http_usage` events (failed attempts too).
    let mut usage: std::collections::BTreeMap<String, [u64; 3]> = Default::default();
    for e in events_of(&events, "http_usage") {
        let sums = usage
            .entry(e["connection"].as_str().unwrap().to_owned())
            .or_default();
        for (sum, field) in sums.iter_mut().zip(["requests", "refused", "retried"]) {
            *sum += e[field].as_u64().unwrap();
        }
    }
    let [requests, refused, retried] = usage["api"];
    assert_eq!(refused, 3, "outside, escape, own-auth: {usage:?}");
    assert_eq!(retried, 1, "the 429: {usage:?}");
    assert!(
        requests >= 5,
        "granted, base-url, redirect, throttled twice: {usage:?}"
    );
    assert_eq!(usage["local"][1], 1, "private: {usage:?}");
    assert_eq!(
        usage["(no grant)"],
        [0, 2, 0],
        "other-host, redirect: {usage:?}"
    );
    assert!(
        run.stdout().contains("http api: ") && run.stdout().contains(" 3 refused, 1 retried"),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_transformer_importing_wasi_http_is_refused_at_load() {
    let fx = Fixture::new();
    fx.config_with_test_plugins(
        &["http-probe-transform"],
        r#"
[[pipeline]]
name = "sneaky"
grants = { databases = { ledger = "ledger.db" }, http = { api = { url = "https://hr.example.com/api/" } } }
extract = { plugin = "csv-extract", config = { path = "inbox/*.csv" } }
transform = [{ plugin = "http-probe-transform", config = { requests = [] } }]
load = [{ plugin = "sqlite-load", config = { database = "ledger", table = "t" } }]
history = { plugin = "sqlite-history", config = { database = "ledger" } }
"#,
    );
    let reason = "is a transformer and imports wasi:http/outgoing-handler@0.2.";
    let listed = fx.weir(&["plugins", "list"]);
    let out = listed.stdout() + &listed.stderr();
    assert!(out.contains("http-probe-transform.wasm"), "{out}");
    assert!(out.contains(reason), "{out}");
    assert!(
        out.contains("only extractors and loaders may use the network (grants.http)"),
        "{out}"
    );
    let run = fx.weir(&["run", "sneaky"]);
    run.failure();
    let err = run.stderr();
    assert!(
        err.contains("unknown transformer plugin \"http-probe-transform\""),
        "{err}"
    );
    assert!(err.contains(reason), "{err}");
}
