//! The reader against the real fixture server (`tests/hr-fixture`), natively: a `Source` that
//! does what the host does for a grant (map `http://hr/…` to the granted URL, refuse other
//! hosts, add the bearer token) over a plain `TcpStream`. Ignored by default, since the fixture
//! lives in the host workspace; run it with a fixture started by hand:
//!
//! ```sh
//! cargo run -p hr-fixture -- --listen 127.0.0.1:8917 --token t0ken --employees 120 --org-units 4 &
//! cd plugins && HR_FIXTURE=127.0.0.1:8917 HR_TOKEN=t0ken \
//!   cargo test -p http-extract --target x86_64-unknown-linux-gnu -- --ignored live
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::{Value, json};
use weir_sdk::http::Response;
use weir_sdk::{Error, RowsView};

use crate::config::Config;
use crate::page::Source;
use crate::reader::HttpReader;
use crate::time::Instant;

struct Grant {
    origin: String,
    token: String,
}

fn request(
    origin: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut stream = TcpStream::connect(origin).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {origin}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut response = Response::new(status, Vec::new());
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            response = response.with_header(k.trim(), v.trim());
        }
    }
    if response.header("transfer-encoding") == Some("chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 4 + size..];
        }
        body = out;
    }
    response.body = body;
    response
}

impl Source for Grant {
    fn get(&mut self, url: &str) -> Result<Response, Error> {
        let parts = weir_sdk::http::split_url(url).map_err(Error::from)?;
        let path = if parts.authority == "hr" {
            format!("/api{}", parts.path_with_query)
        } else if parts.authority == self.origin && parts.path_with_query.starts_with("/api/") {
            parts.path_with_query.to_owned()
        } else {
            return Err(Error::AccessDenied(format!("{url}: outside the grant hr")));
        };
        Ok(request(&self.origin, "GET", &path, Some(&self.token), None))
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

fn fixture() -> Grant {
    Grant {
        origin: std::env::var("HR_FIXTURE").expect("HR_FIXTURE=host:port of a running hr-fixture"),
        token: std::env::var("HR_TOKEN").expect("HR_TOKEN"),
    }
}

fn admin(method: &str, path: &str, body: Value) -> Value {
    let origin = fixture().origin;
    let r = request(&origin, method, path, None, Some(&body));
    assert!(
        r.is_success(),
        "{method} {path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn read(
    config: &Config,
    partition: &str,
    checkpoint: Option<&str>,
) -> (Vec<Value>, Option<String>) {
    let mut reader = HttpReader::open(config, partition, checkpoint, fixture()).unwrap();
    let schema = reader.schema().clone();
    let mut rows = Vec::new();
    let mut last = None;
    while let Some(batch) = reader.next_batch(64).unwrap() {
        let view = RowsView::new(&batch.rows);
        for r in 0..batch.rows.row_count as usize {
            let mut row = serde_json::Map::new();
            for (c, col) in schema.columns.iter().enumerate() {
                row.insert(col.name.clone(), json!(format!("{:?}", view.cell(r, c))));
            }
            row.insert("id".into(), json!(view.integer(r, 0)));
            rows.push(Value::Object(row));
        }
        assert!(batch.rejects.is_empty(), "{:?}", batch.rejects);
        last = Some(batch.checkpoint);
    }
    (rows, last)
}

fn ids(rows: &[Value]) -> Vec<i64> {
    let mut ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    ids
}

#[test]
#[ignore = "needs a running hr-fixture: see the module docs"]
fn live_every_style_incremental_tombstones_and_faults() {
    admin(
        "POST",
        "/admin/generate",
        json!({"employees": 120, "org_units": 4}),
    );
    admin(
        "POST",
        "/admin/faults",
        json!({"rate_limit_next": 0, "rate_limit_every": null, "fail_next": 0, "redirect_to": null, "stuck_cursor": false, "slow_ms": 0}),
    );
    let fields = json!({"id": "integer", "name": "text", "salary": "decimal", "hired": "date",
        "updated_at": "timestamp", "manager": {"pointer": "/manager/id", "type": "integer"}, "tags": "json"});
    let all: Vec<i64> = (1..=120).collect();
    for (path, paginate) in [
        (
            "employees",
            json!({"type": "page_number", "size_param": "per_page", "size": 50}),
        ),
        ("employees", json!({"type": "offset", "limit": 50})),
        (
            "cursor/employees",
            json!({"type": "cursor", "cursor": "/meta/next_cursor"}),
        ),
        (
            "next/employees",
            json!({"type": "next_url", "next": "/links/next"}),
        ),
        ("link/employees", json!({"type": "link_header"})),
    ] {
        let config = Config::parse(&json!({"connection": "hr", "resources": [{"name": "employees",
            "path": path, "records": "/data", "fields": fields, "primary_key": ["id"], "paginate": paginate}]}).to_string()).unwrap();
        let (rows, _) = read(&config, "employees", None);
        assert_eq!(ids(&rows), all, "{paginate}");
    }

    // The example's employees pipeline: a full pass, changes, an incremental pass.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/hr-directory/weir.toml"
    ))
    .unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let mut config = Config::parse(
        &serde_json::to_string(&doc["pipeline"].as_array().unwrap()[0]["extract"]["config"])
            .unwrap(),
    )
    .unwrap();
    // Generated employees are one second apart (00:00:01 to 00:02:00): a 30 s window here.
    config.resources[0]
        .incremental
        .as_mut()
        .unwrap()
        .lookback_seconds = 30;
    let (rows, cp) = read(&config, "employees", None);
    assert_eq!(ids(&rows), all);
    admin("PATCH", "/admin/employees/7", json!({"title": "CTO"}));
    admin("DELETE", "/admin/employees/8", json!(null));
    let added = admin("POST", "/admin/employees", json!({"name": "New Hire"}));
    // Committed late, 15 s before the newest timestamp seen (inside the lookback), and 5
    // minutes before it (outside: not delivered until its next change).
    admin(
        "PATCH",
        "/admin/employees/9",
        json!({"title": "Late", "updated_at": "2026-01-01T00:01:45Z"}),
    );
    admin(
        "PATCH",
        "/admin/employees/10",
        json!({"title": "Too late", "updated_at": "2025-12-31T23:57:00Z"}),
    );
    admin("DELETE", "/admin/requests", json!(null));
    let (rows, _) = read(&config, "employees", cp.as_deref());
    let got = ids(&rows);
    assert!(
        got.contains(&7) && got.contains(&8) && got.contains(&added["id"].as_i64().unwrap()),
        "{got:?}"
    );
    let deleted = rows.iter().find(|r| r["id"] == 8).unwrap();
    assert!(
        deleted["deleted_at"]
            .as_str()
            .unwrap()
            .contains("2026-01-01T00:02:"),
        "{deleted}"
    );
    assert!(got.contains(&9) && !got.contains(&10), "{got:?}");
    let window: Vec<i64> = (90..=120).collect();
    assert!(
        got.iter()
            .all(|id| window.contains(id) || [7, 8, 9, 121].contains(id)),
        "nothing before the window: {got:?}"
    );
    let log = admin("GET", "/admin/requests", json!(null));
    let first = log[0]["uri"].as_str().unwrap();
    assert_eq!(
        first,
        "/api/employees?updated_since=2026-01-01T00%3A01%3A30Z&page=1&per_page=100"
    );

    // A 429 is unavailable with its Retry-After.
    admin(
        "POST",
        "/admin/faults",
        json!({"rate_limit_next": 1, "retry_after": 3}),
    );
    let mut reader = HttpReader::open(&config, "employees", None, fixture()).unwrap();
    let err = reader.next_batch(10).unwrap_err();
    assert!(
        matches!(&err, Error::Unavailable(m) if m.contains("HTTP 429 Too Many Requests; retry after 3")),
        "{err:?}"
    );

    // A redirect to another host is refused (here by the test's grant, as the host would).
    admin(
        "POST",
        "/admin/faults",
        json!({"redirect_to": "http://127.0.0.2:9/x"}),
    );
    let mut reader = HttpReader::open(&config, "employees", None, fixture()).unwrap();
    let err = reader.next_batch(10).unwrap_err();
    assert!(
        matches!(&err, Error::AccessDenied(m) if m.contains("outside the grant hr")),
        "{err:?}"
    );
    admin("POST", "/admin/faults", json!({"redirect_to": null}));

    // Partitions per org unit.
    let config = Config::parse(
        &json!({"connection": "hr", "resources": [
        {"name": "org-units", "path": "org-units", "records": "/data", "extract": false},
        {"name": "employees", "path": "employees", "records": "/data", "primary_key": ["id"],
         "fields": {"id": "integer"}, "paginate": {"type": "page_number"},
         "parent": {"resource": "org-units", "key": "id", "param": "org_unit"}}]})
        .to_string(),
    )
    .unwrap();
    let parts = crate::partitions(&config, &mut fixture(), &mut Vec::new()).unwrap();
    assert_eq!(
        parts,
        [
            "employees@org_unit=1",
            "employees@org_unit=2",
            "employees@org_unit=3",
            "employees@org_unit=4"
        ]
    );
    let total: usize = parts.iter().map(|p| read(&config, p, None).0.len()).sum();
    assert_eq!(total, 120);
}
