//! The HR directory end to end (issue 14): the real `weir` binary, the bundled http-extract →
//! sqlite-load, and the fixture HR API (`tests/hr-fixture`) served from this test process on
//! 127.0.0.1 (so every grant says `allow_private = true`). The fixture's data is changed, and
//! its faults switched, through its `/admin/` endpoints, as an operator would; its request log
//! shows what weir asked.
//!
//! - a full sync, then an incremental one after adds, changes and deletes: the identity
//!   database equals the fixture's state value by value (a deleted employee keeps its row with
//!   `deleted_at`), and the incremental pass asked nothing before the lookback window;
//! - SIGKILL during a paged sync, then a re-run: every employee once, none missing, and the
//!   re-run starts at the checkpoint's page;
//! - a 429 with `Retry-After`: the worker waits at least that long, resumes at the page it was
//!   refused, and no committed page is fetched again; a flaky 500 is retried;
//! - a cursor that repeats is stopped by `on_repeat` (`fail` or `stop`), never looped;
//! - a redirect to another host is refused by the host, naming the grant;
//! - `examples/hr-directory/weir.toml` itself validates and runs against the fixture.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hr_fixture::state::{EPOCH, parse_time, rfc3339};
use serde_json::{Value, json};

use crate::support::*;

const TOKEN: &str = "hr-e2e-token-kept-by-the-host";

/// The fixture on a free loopback port with `employees` generated employees in 5 org units.
fn hr(employees: i64) -> hr_fixture::Running {
    hr_fixture::spawn("127.0.0.1:0", hr_fixture::State::new(TOKEN, employees, 5)).unwrap()
}

/// A small HTTP/1.1 client for the fixture's `/admin/` endpoints: (status, JSON body).
fn admin(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {body}"))
    };
    (status, value)
}

/// `admin` that must answer 2xx.
#[track_caller]
fn admin_ok(hr: &hr_fixture::Running, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, value) = admin(hr.addr(), method, path, body);
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {value}"
    );
    value
}

/// One API request of the fixture's log, its query decoded.
#[derive(Debug, Clone)]
struct Logged {
    path: String,
    query: BTreeMap<String, String>,
    status: u16,
    records: u64,
}

impl Logged {
    fn page(&self) -> Option<u64> {
        self.query.get("page").and_then(|p| p.parse().ok())
    }
}

/// The fixture's request log (`GET /admin/requests`).
fn request_log(hr: &hr_fixture::Running) -> Vec<Logged> {
    let log = admin_ok(hr, "GET", "/admin/requests", None);
    log.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let uri = r["uri"].as_str().unwrap();
            let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
            Logged {
                path: path.to_owned(),
                query: query
                    .split('&')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        (decode(k), decode(v))
                    })
                    .collect(),
                status: r["status"].as_u64().unwrap() as u16,
                records: r["records"].as_u64().unwrap(),
            }
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The columns of `examples/hr-directory`'s employees resource (and of every pipeline here).
const EMPLOYEE_FIELDS: &str = r#"
[pipeline.extract.config.resources.fields]
id = "integer"
name = "text"
email = "text"
title = "text"
salary = "decimal"
hired = "date"
org_unit = "integer"
manager_id = { pointer = "/manager/id", type = "integer" }
tags = "json"
updated_at = "timestamp"
"#;

/// A pipeline syncing the fixture's employees (at `path`, paged by `paginate`) into table
/// `table` of identity.db. `pipeline_extra` goes in the pipeline table (batch_size, restart),
/// `resource_extra` in the resource (incremental, deleted, on_repeat, params), `load_mode`
/// is sqlite-load's mode and key.
fn employees_pipeline(
    name: &str,
    path: &str,
    paginate: &str,
    pipeline_extra: &str,
    resource_extra: &str,
    table: &str,
    load_mode: &str,
) -> String {
    format!(
        r#"
[[pipeline]]
name = "{name}"
{pipeline_extra}
grants.http.hr = {{ url = "${{HR_API_URL}}", auth = {{ bearer = "${{HR_TOKEN}}" }}, allow_private = true }}
grants.databases = {{ identity = "identity.db" }}

[pipeline.extract]
plugin = "http-extract"
[pipeline.extract.config]
connection = "hr"

[[pipeline.extract.config.resources]]
name = "employees"
path = "{path}"
records = "/data"
primary_key = ["id"]
paginate = {paginate}
{resource_extra}
{EMPLOYEE_FIELDS}
[[pipeline.load]]
plugin = "sqlite-load"
config = {{ database = "identity", table = "{table}", {load_mode} }}

[pipeline.history]
plugin = "sqlite-history"
config = {{ database = "identity" }}
"#
    )
}

const UPSERT: &str = r#"mode = "upsert", key = ["id"]"#;

/// `weir ARGS --events events.jsonl` (`run`) or `weir ARGS` (others) with the fixture's URL
/// and token in the environment, as an operator's shell would hold them.
fn weir(fx: &Fixture, hr: &hr_fixture::Running, args: &[&str]) -> (Run, Vec<Value>) {
    let events = fx.path("events.jsonl");
    let _ = std::fs::remove_file(&events);
    let with_events = (args.first() == Some(&"run")).then_some(events.as_path());
    let output = weir_command(fx, hr, args, with_events).output().unwrap();
    (Run(output), read_events(&events))
}

fn weir_command(
    fx: &Fixture,
    hr: &hr_fixture::Running,
    args: &[&str],
    events: Option<&std::path::Path>,
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("-c").arg(fx.path("weir.toml")).args(args);
    if let Some(events) = events {
        cmd.arg("--events").arg(events);
    }
    cmd.current_dir(fx.dir.path())
        .env_remove("RUST_LOG")
        .env("HR_API_URL", hr.api_url())
        .env("HR_TOKEN", TOKEN);
    cmd
}

fn read_events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Every row of `table` as a JSON object keyed by column, by id (SQLite values as JSON:
/// integers as numbers, text as strings; `tags`, a json column, parsed).
fn db_rows(fx: &Fixture, table: &str) -> BTreeMap<i64, Value> {
    use rusqlite::types::ValueRef;
    let db = fx.db("identity.db");
    let mut stmt = db.prepare(&format!("SELECT * FROM {table}")).unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let mut rows = stmt.query([]).unwrap();
    let mut out = BTreeMap::new();
    while let Some(row) = rows.next().unwrap() {
        let mut object = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            let v = match row.get_ref(i).unwrap() {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => json!(n),
                ValueRef::Real(f) => json!(f),
                ValueRef::Text(t) => {
                    let text = std::str::from_utf8(t).unwrap();
                    if name == "tags" {
                        serde_json::from_str(text).unwrap()
                    } else {
                        json!(text)
                    }
                }
                ValueRef::Blob(_) => panic!("{table}.{name}: a blob"),
            };
            object.insert(name.clone(), v);
        }
        let id = object["id"].as_i64().unwrap();
        assert!(
            out.insert(id, Value::Object(object)).is_none(),
            "id {id} twice"
        );
    }
    out
}

/// The fixture's employees (tombstones included) as the identity table should hold them.
fn expected_rows(hr: &hr_fixture::Running) -> BTreeMap<i64, Value> {
    let all = admin_ok(hr, "GET", "/admin/employees", None);
    all.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let row = json!({
                "id": e["id"],
                "name": e["name"],
                "email": e["email"],
                "title": e["title"],
                "salary": e["salary"],
                "hired": e["hired"],
                "org_unit": e["org_unit"],
                "manager_id": e["manager"]["id"],
                "tags": e["tags"],
                "updated_at": e["updated_at"],
                "deleted_at": e["deleted_at"],
            });
            (e["id"].as_i64().unwrap(), row)
        })
        .collect()
}

/// The identity table equals `expected`, value by value; the first differences are shown.
#[track_caller]
fn assert_same_rows(actual: &BTreeMap<i64, Value>, expected: &BTreeMap<i64, Value>) {
    let mut diffs = Vec::new();
    for (id, want) in expected {
        match actual.get(id) {
            None => diffs.push(format!("id {id}: missing; expected {want}")),
            Some(got) if got != want => {
                diffs.push(format!("id {id}:\n  got  {got}\n  want {want}"))
            }
            Some(_) => {}
        }
    }
    for id in actual.keys().filter(|id| !expected.contains_key(id)) {
        diffs.push(format!("id {id}: in the database, not at the source"));
    }
    assert!(
        diffs.is_empty(),
        "{} of {} rows differ:\n{}",
        diffs.len(),
        expected.len(),
        diffs[..diffs.len().min(8)].join("\n")
    );
}

/// Rows in `table` of identity.db; 0 when the database or the table does not exist.
fn rows_in(fx: &Fixture, table: &str) -> i64 {
    if !fx.path("identity.db").exists() {
        return 0;
    }
    let db = fx.db("identity.db");
    let exists = count(
        &db,
        &format!("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"),
    );
    if exists == 0 {
        0
    } else {
        count(&db, &format!("SELECT count(*) FROM {table}"))
    }
}

/// The sum of `key` over the events of `kind`.
fn sum(events: &[Value], kind: &str, key: &str) -> u64 {
    events_of(events, kind)
        .iter()
        .map(|e| e[key].as_u64().unwrap())
        .sum()
}

#[test]
fn a_full_then_an_incremental_sync_matches_the_source_value_by_value() {
    let hr = hr(200);
    let fx = Fixture::new();
    // A lookback of 10 s: the generated employees are one second apart, so the window is
    // exactly the last 11 of them (the example's 300 s would cover all 200).
    fx.config(&employees_pipeline(
        "employees",
        "employees",
        r#"{ type = "page_number", size_param = "per_page", size = 50 }"#,
        "",
        r#"incremental = { field = "updated_at", param = "updated_since", lookback_seconds = 10 }
deleted = { field = "deleted_at" }"#,
        "employees",
        UPSERT,
    ));

    // The full sync: every page once, no lower bound.
    let (run, events) = weir(&fx, &hr, &["run", "employees"]);
    run.success();
    assert_eq!(run.totals(), (200, 200, 0));
    assert_same_rows(&db_rows(&fx, "employees"), &expected_rows(&hr));
    let full = request_log(&hr);
    let pages: Vec<(Option<u64>, u64)> = full.iter().map(|r| (r.page(), r.records)).collect();
    assert_eq!(
        pages,
        [
            (Some(1), 50),
            (Some(2), 50),
            (Some(3), 50),
            (Some(4), 50),
            (Some(5), 0)
        ]
    );
    assert!(full.iter().all(|r| !r.query.contains_key("updated_since")));
    assert_eq!(events_of(&events, "run_completed").len(), 1);
    admin_ok(&hr, "DELETE", "/admin/requests", None);

    // Changes at the source, between runs, through the admin API.
    admin_ok(
        &hr,
        "PATCH",
        "/admin/employees/7",
        Some(json!({"title": "CTO"})),
    );
    admin_ok(
        &hr,
        "PATCH",
        "/admin/employees/42",
        Some(json!({"org_unit": 3, "salary": "99000.50", "manager": null})),
    );
    admin_ok(&hr, "DELETE", "/admin/employees/8", None);
    admin_ok(&hr, "DELETE", "/admin/employees/195", None);
    let hire = admin_ok(
        &hr,
        "POST",
        "/admin/employees",
        Some(json!({"name": "New Hire", "tags": ["new", "remote"]})),
    );
    assert_eq!(hire["id"], 201);
    // Committed late: its updated_at is older than the watermark, but inside the lookback.
    let late = admin_ok(
        &hr,
        "POST",
        "/admin/employees",
        Some(json!({"name": "Late Commit", "updated_at": rfc3339(EPOCH + 195)})),
    );
    assert_eq!(late["id"], 202);

    // The incremental sync.
    let (run, events) = weir(&fx, &hr, &["run", "employees"]);
    run.success();
    let expected = expected_rows(&hr);
    let rows = db_rows(&fx, "employees");
    assert_same_rows(&rows, &expected);
    assert_eq!(rows[&7]["title"], "CTO");
    assert_eq!(rows[&42]["manager_id"], Value::Null);
    for deleted in [8, 195] {
        let at = rows[&deleted]["deleted_at"].as_str().unwrap();
        assert_eq!(rows[&deleted]["updated_at"], at, "{deleted}");
    }
    assert_eq!(
        rows.values().filter(|r| !r["deleted_at"].is_null()).count(),
        2,
        "nothing else marked deleted, nothing hard-deleted"
    );
    assert_eq!(rows.len(), 202);

    // The request log: every request of the pass asked from the first pass's watermark (the
    // newest updated_at, employee 200's) minus the lookback, and the source answered with
    // exactly the records at or after that bound: nothing older was fetched again.
    let since = rfc3339(EPOCH + 200 - 10);
    let log = request_log(&hr);
    assert!(!log.is_empty());
    for r in &log {
        assert_eq!(r.path, "/api/employees");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.query.get("updated_since"), Some(&since), "{r:?}");
    }
    let in_window = expected
        .values()
        .filter(|e| parse_time(e["updated_at"].as_str().unwrap()).unwrap() >= EPOCH + 200 - 10)
        .count() as u64;
    // 190..=200 but 195 (changed), 7, 42, 8, 195, 201 and 202.
    assert_eq!(in_window, 16);
    assert_eq!(log.iter().map(|r| r.records).sum::<u64>(), in_window);
    assert_eq!(run.totals(), (in_window, in_window, 0));
    assert_eq!(sum(&events, "batch_committed", "rows_in"), in_window);
    // The run's events, for the record (`cargo test … -- --nocapture` shows them).
    for e in &events {
        println!("{e}");
    }
    for r in &log {
        println!("request: {r:?}");
    }
}

#[test]
fn sigkill_during_a_paged_sync_then_a_rerun_loses_and_duplicates_nothing() {
    let hr = hr(1000);
    let fx = Fixture::new();
    // Appended, not upserted: a row delivered twice would show as a second row. Batches of 70
    // rows in pages of 100, so checkpoints fall inside pages too.
    fx.config(&employees_pipeline(
        "employees",
        "employees",
        r#"{ type = "page_number", size_param = "per_page", size = 100 }"#,
        "batch_size = 70",
        r#"incremental = { field = "updated_at", param = "updated_since", lookback_seconds = 10 }"#,
        "employees",
        r#"mode = "append""#,
    ));
    // Every page takes 300 ms: the run lasts over 3 s, so the kill lands mid-pass.
    admin_ok(&hr, "POST", "/admin/faults", Some(json!({"slow_ms": 300})));

    let events_path = fx.path("killed-events.jsonl");
    let mut child = weir_command(&fx, &hr, &["run", "employees"], Some(&events_path))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let committed = events_of(&read_events(&events_path), "batch_committed").len();
        if committed >= 3 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "weir ended before its third batch"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no batch committed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL, to this child's pid
    child.wait().unwrap();
    let db = fx.db("identity.db");
    let before = count(&db, "SELECT count(*) FROM employees");
    assert!(
        (210..1000).contains(&before),
        "the kill landed mid-run: {before} rows committed"
    );
    let asked_before = request_log(&hr).len();

    admin_ok(&hr, "POST", "/admin/faults", Some(json!({"slow_ms": 0})));
    let (run, _) = weir(&fx, &hr, &["run", "employees"]);
    run.success();
    assert_eq!(count(&db, "SELECT count(*) FROM employees"), 1000);
    assert_eq!(count(&db, "SELECT count(DISTINCT id) FROM employees"), 1000);
    assert_eq!(
        run.totals().0,
        1000 - before as u64,
        "each record read once"
    );
    let mut expected = expected_rows(&hr);
    for row in expected.values_mut() {
        row.as_object_mut().unwrap().remove("deleted_at");
    }
    assert_same_rows(&db_rows(&fx, "employees"), &expected);

    // The re-run began at the page the checkpoint named, not at page 1.
    let rerun: Vec<Logged> = request_log(&hr).split_off(asked_before);
    let first_page = before as u64 / 100 + 1;
    assert_eq!(rerun[0].page(), Some(first_page), "{rerun:?}");
    assert!(rerun.iter().all(|r| r.page() >= Some(first_page)));
    assert!(rerun.iter().all(|r| !r.query.contains_key("updated_since")));
}

#[test]
fn a_429_with_retry_after_is_waited_out_and_committed_pages_are_not_fetched_again() {
    let hr = hr(600);
    let fx = Fixture::new();
    fx.config(&employees_pipeline(
        "employees",
        "employees",
        r#"{ type = "page_number", size_param = "per_page", size = 100 }"#,
        "batch_size = 100\nrestart = { backoff_min_ms = 50, backoff_max_ms = 100 }",
        "",
        "employees",
        UPSERT,
    ));
    // The 5th request (page 5, after four committed pages) answers 429 with Retry-After: 2.
    admin_ok(
        &hr,
        "POST",
        "/admin/faults",
        Some(json!({"rate_limit_every": 5, "retry_after": 2})),
    );
    let started = Instant::now();
    let (run, events) = weir(&fx, &hr, &["run", "employees"]);
    run.success();
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(run.totals(), (600, 600, 0));
    assert_same_rows(&db_rows(&fx, "employees"), &{
        let mut e = expected_rows(&hr);
        for row in e.values_mut() {
            row.as_object_mut().unwrap().remove("deleted_at");
        }
        e
    });

    let retries = events_of(&events, "worker_retrying");
    assert_eq!(retries.len(), 1, "{retries:#?}");
    assert!(
        retries[0]["delay_ms"].as_u64().unwrap() >= 2000,
        "waited at least the Retry-After, not the 50-100 ms backoff: {}",
        retries[0]
    );
    let error = retries[0]["error"].as_str().unwrap();
    assert!(error.contains("429"), "{error}");

    let log = request_log(&hr);
    let statuses: Vec<(Option<u64>, u16)> = log.iter().map(|r| (r.page(), r.status)).collect();
    assert_eq!(
        statuses,
        [
            (Some(1), 200),
            (Some(2), 200),
            (Some(3), 200),
            (Some(4), 200),
            (Some(5), 429),
            (Some(5), 200),
            (Some(6), 200),
            (Some(7), 200),
        ],
        "pages 1-4 were committed before the 429 and not asked again"
    );
}

#[test]
fn a_flaky_500_is_retried_and_a_repeated_cursor_is_stopped_by_on_repeat() {
    let hr = hr(300);
    let fx = Fixture::new();
    let cursor = r#"{ type = "cursor", cursor = "/meta/next_cursor" }"#;
    let retry = "restart = { backoff_min_ms = 50, backoff_max_ms = 100 }";
    let per_page = "params = { per_page = 100 }";
    fx.config(
        &[
            employees_pipeline(
                "flaky",
                "cursor/employees",
                cursor,
                retry,
                per_page,
                "flaky",
                UPSERT,
            ),
            employees_pipeline(
                "stuck-fail",
                "cursor/employees",
                cursor,
                retry,
                per_page,
                "stuck_fail",
                UPSERT,
            ),
            employees_pipeline(
                "stuck-stop",
                "cursor/employees",
                cursor,
                retry,
                &format!("{per_page}\non_repeat = \"stop\""),
                "stuck_stop",
                UPSERT,
            ),
        ]
        .concat(),
    );

    // One 500: the worker is restarted and the run completes.
    admin_ok(&hr, "POST", "/admin/faults", Some(json!({"fail_next": 1})));
    let (run, events) = weir(&fx, &hr, &["run", "flaky"]);
    run.success();
    assert_eq!(run.totals(), (300, 300, 0));
    let retries = events_of(&events, "worker_retrying");
    assert_eq!(retries.len(), 1, "{retries:#?}");
    assert!(
        retries[0]["error"].as_str().unwrap().contains("500"),
        "{}",
        retries[0]
    );
    let log = request_log(&hr);
    assert_eq!(
        log.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 200, 200, 200],
        "the 500, the same first page again, then pages 2 and 3 (the last says no next cursor)"
    );
    admin_ok(&hr, "DELETE", "/admin/requests", None);

    // A server handing out the second page's cursor forever: two pages, then the repeat is
    // caught. `fail` commits the rows before it and fails the partition as bad-data, naming
    // the URL; `stop` ends the pass there with a warning.
    admin_ok(
        &hr,
        "POST",
        "/admin/faults",
        Some(json!({"stuck_cursor": true})),
    );
    let (run, events) = weir(&fx, &hr, &["run", "stuck-fail", "stuck-stop"]);
    run.failure();
    let out = run.stdout();
    assert!(
        out.contains("pipeline stuck-fail: run") && out.contains("FAILED"),
        "{out}"
    );
    assert!(
        out.contains("bad-data") || out.contains("bad data"),
        "{out}\n{}",
        run.stderr()
    );
    assert!(
        out.contains("was already fetched in this pass (a cursor or next link that cycles); stopped instead of looping"),
        "{out}"
    );
    assert!(
        out.contains("pipeline stuck-stop: run") && out.contains("completed"),
        "{out}"
    );
    let db = fx.db("identity.db");
    assert_eq!(count(&db, "SELECT count(*) FROM stuck_fail"), 200);
    assert_eq!(count(&db, "SELECT count(*) FROM stuck_stop"), 200);
    let warned = events_of(&events, "plugin_log").into_iter().any(|e| {
        e["pipeline"] == "stuck-stop"
            && e["level"] == "warn"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("the pass ends here (on_repeat = \"stop\")")
    });
    assert!(warned, "{events:#?}");
    // Two pages each, then the third request would have repeated the second: never sent.
    let log = request_log(&hr);
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(
        events_of(&events, "worker_retrying").is_empty(),
        "bad-data is not retried"
    );
}

#[test]
fn a_redirect_to_another_host_is_refused_naming_the_grant() {
    let hr = hr(50);
    let fx = Fixture::new();
    fx.config(&employees_pipeline(
        "employees",
        "employees",
        r#"{ type = "page_number", size_param = "per_page", size = 100 }"#,
        "restart = { backoff_min_ms = 50, backoff_max_ms = 100 }",
        "",
        "employees",
        UPSERT,
    ));
    admin_ok(
        &hr,
        "POST",
        "/admin/faults",
        Some(json!({"redirect_to": "http://127.0.0.2:9/steal"})),
    );
    let (run, events) = weir(&fx, &hr, &["run", "employees"]);
    run.failure();
    let refusal = format!(
        "weir: no http grant matches GET http://127.0.0.2:9/steal; granted: hr → {}",
        hr.api_url()
    );
    let out = run.stdout();
    assert!(out.contains(&refusal), "{out}\n{}", run.stderr());
    assert!(
        out.contains("access-denied") || out.contains("access denied"),
        "{out}"
    );
    println!("refused redirect: {}", out.trim());
    let warned = events_of(&events, "plugin_log")
        .into_iter()
        .any(|e| e["level"] == "warn" && e["message"].as_str().unwrap().starts_with(&refusal));
    assert!(warned, "{events:#?}");
    // A refusal is not retried, and the other host was never asked.
    assert!(events_of(&events, "worker_retrying").is_empty());
    let log = request_log(&hr);
    assert_eq!(
        log.iter().map(|r| r.status).collect::<Vec<_>>(),
        [302],
        "only the redirecting request reached the fixture"
    );
    assert_eq!(rows_in(&fx, "employees"), 0);
}

#[test]
fn the_example_config_validates_and_runs_against_the_fixture() {
    let hr = hr(200);
    let fx = Fixture::new();
    // The example as shipped, its [engine] paths pointed at this checkout's plugins and the
    // tests' compile cache; the pipelines verbatim.
    let example =
        std::fs::read_to_string(repo_root().join("examples/hr-directory/weir.toml")).unwrap();
    let plugins_line = "plugins_dir = \"../../plugins/dist\"";
    let cache_line = "cache_dir = \"../../target/weir-cache\"";
    assert!(example.contains(plugins_line) && example.contains(cache_line));
    assert!(
        example.contains("${HR_API_URL}"),
        "the example's URL comes from the environment"
    );
    let config = example
        .replace(
            plugins_line,
            &format!("plugins_dir = \"{}\"", plugins_dist().display()),
        )
        .replace(
            cache_line,
            &format!("cache_dir = \"{}\"", shared_cache().display()),
        );
    fx.write("weir.toml", config);

    let (validate, _) = weir(&fx, &hr, &["validate"]);
    validate.success();
    let text = validate.stdout() + &validate.stderr();
    assert!(
        text.contains("employees") && text.contains("org-units"),
        "{text}"
    );

    let (run, events) = weir(&fx, &hr, &["run", "employees", "org-units"]);
    run.success();
    assert_eq!(events_of(&events, "run_completed").len(), 2, "{events:#?}");
    assert_same_rows(&db_rows(&fx, "employees"), &expected_rows(&hr));
    let db = fx.db("identity.db");
    assert_eq!(count(&db, "SELECT count(*) FROM org_units"), 5);
    assert_eq!(
        count(&db, "SELECT count(*) FROM org_units WHERE parent = 1"),
        4
    );
    // The token reached the fixture from the host (every request authorized) and never the
    // database, the output or the events.
    assert!(request_log(&hr).iter().all(|r| r.status == 200));
    for (what, text) in [
        ("stdout", run.stdout()),
        ("stderr", run.stderr()),
        ("events", serde_json::to_string(&events).unwrap()),
    ] {
        assert!(!text.contains(TOKEN), "the token leaked into {what}");
    }
}
