//! The reader against the in-memory API ([`crate::fake`]): every pagination kind, repeats,
//! inference, rejects, incremental passes and resuming from mid-pass checkpoints.

use serde_json::{Value, json};
use weir_sdk::http::Response;
use weir_sdk::{Batch, Error, RowsView};

use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::fake::FakeApi;
use crate::page::Position;
use crate::reader::{HttpReader, Notice};

const FIELDS: &str = r#"{"id": "integer", "name": "text", "salary": "decimal", "hired": "date",
    "updated_at": "timestamp", "manager": {"pointer": "/manager/id", "type": "integer"}}"#;

fn config(resource: Value) -> Config {
    config_of(vec![resource])
}

fn config_of(resources: Vec<Value>) -> Config {
    Config::parse(&json!({"connection": "hr", "resources": resources}).to_string()).unwrap()
}

fn employees(paginate: Value) -> Value {
    json!({"name": "employees", "path": "employees", "records": "/data",
           "fields": serde_json::from_str::<Value>(FIELDS).unwrap(),
           "primary_key": ["id"], "paginate": paginate})
}

fn incremental(mut resource: Value, lookback: u64) -> Value {
    resource["incremental"] =
        json!({"field": "updated_at", "param": "updated_since", "lookback_seconds": lookback});
    resource
}

/// Every batch until the end, or the first error.
fn drain(reader: &mut HttpReader<&mut FakeApi>, max_rows: u32) -> (Vec<Batch>, Option<Error>) {
    let mut batches = Vec::new();
    for _ in 0..1000 {
        match reader.next_batch(max_rows) {
            Ok(Some(b)) => batches.push(b),
            Ok(None) => return (batches, None),
            Err(e) => return (batches, Some(e)),
        }
    }
    panic!("the reader never ended");
}

fn ids(batches: &[Batch], reader: &HttpReader<&mut FakeApi>) -> Vec<i64> {
    ids_in(batches, reader.schema().column_index("id").unwrap())
}

fn ids_in(batches: &[Batch], col: usize) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let view = RowsView::new(&b.rows);
            (0..b.rows.row_count as usize)
                .map(move |r| view.integer(r, col).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn read_all(
    api: &mut FakeApi,
    config: &Config,
    checkpoint: Option<&str>,
    max_rows: u32,
) -> (Vec<i64>, Vec<Batch>) {
    let mut reader = HttpReader::open(config, "employees", checkpoint, api).unwrap();
    let (batches, err) = drain(&mut reader, max_rows);
    assert_eq!(err, None);
    (ids(&batches, &reader), batches)
}

fn last_checkpoint(batches: &[Batch]) -> String {
    batches.last().expect("a batch").checkpoint.clone()
}

#[test]
fn every_pagination_kind_reads_every_record_once() {
    let all: Vec<i64> = (1..=25).collect();
    for (path, paginate, requests) in [
        (
            "employees",
            json!({"type": "page_number", "size_param": "per_page", "size": 10}),
            4,
        ),
        ("employees", json!({"type": "page_number", "start": 1}), 4),
        ("employees", json!({"type": "offset", "limit": 10}), 4),
        (
            "cursor/employees",
            json!({"type": "cursor", "cursor": "/meta/next_cursor"}),
            3,
        ),
        (
            "next/employees",
            json!({"type": "next_url", "next": "/links/next"}),
            3,
        ),
        ("link/employees", json!({"type": "link_header"}), 3),
    ] {
        let mut api = FakeApi::new(25, 10);
        let mut resource = employees(paginate.clone());
        resource["path"] = json!(path);
        let (got, batches) = read_all(&mut api, &config(resource), None, 1000);
        assert_eq!(got, all, "{paginate}");
        assert_eq!(api.log.len(), requests, "{paginate}: {:?}", api.log);
        let cp: Checkpoint = serde_json::from_str(&last_checkpoint(&batches)).unwrap();
        assert_eq!(
            (cp.pass, cp.seen),
            (None, 25),
            "{paginate}: the pass is complete"
        );
    }
    let mut api = FakeApi::new(25, 10);
    let (got, _) = read_all(
        &mut api,
        &config(employees(json!({"type": "none"}))),
        None,
        1000,
    );
    assert_eq!(got.len(), 10, "no pagination: one request");
}

/// The host source sends a hinted URL ahead and uses it for the `get` of the same URL, so a
/// hint that is not the next request would cost the server a request: each hint must be
/// exactly the request that follows, and a repeat (never sent) is never hinted.
#[test]
fn the_request_after_each_page_is_hinted_and_nothing_else() {
    for (path, paginate) in [
        (
            "employees",
            json!({"type": "page_number", "size_param": "per_page", "size": 10}),
        ),
        ("employees", json!({"type": "offset", "limit": 10})),
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
        let mut api = FakeApi::new(25, 10);
        let mut resource = incremental(employees(paginate.clone()), 0);
        resource["path"] = json!(path);
        read_all(&mut api, &config(resource), None, 7);
        assert!(api.log.len() > 2, "{paginate}: {:?}", api.log);
        assert_eq!(api.hints, api.log[1..], "{paginate}");
    }
    let mut api = FakeApi::new(25, 10);
    api.stuck_cursor = true;
    let mut resource = employees(json!({"type": "cursor", "cursor": "/meta/next_cursor"}));
    resource["path"] = json!("cursor/employees");
    resource["on_repeat"] = json!("stop");
    read_all(&mut api, &config(resource), None, 1000);
    assert_eq!(api.log.len(), 2);
    assert_eq!(api.hints, api.log[1..], "the repeated cursor is not hinted");
}

#[test]
fn requests_carry_the_pagination_params() {
    let mut api = FakeApi::new(25, 10);
    let mut resource = employees(json!({"type": "offset", "limit": 10}));
    resource["params"] = json!({"status": "active now"});
    read_all(&mut api, &config(resource), None, 1000);
    assert_eq!(
        api.log,
        [
            "http://hr/employees?status=active%20now&offset=0&limit=10",
            "http://hr/employees?status=active%20now&offset=10&limit=10",
            "http://hr/employees?status=active%20now&offset=20&limit=10",
            "http://hr/employees?status=active%20now&offset=25&limit=10",
        ]
    );
    let mut api = FakeApi::new(25, 10);
    let mut resource = employees(json!({"type": "link_header"}));
    resource["path"] = json!("link/employees");
    read_all(&mut api, &config(resource), None, 1000);
    assert_eq!(
        api.log[1], "http://hr/link/employees?page=2",
        "the Link target as given"
    );
}

#[test]
fn a_cursor_that_repeats_fails_after_the_rows_before_it() {
    let mut api = FakeApi::new(25, 10);
    api.stuck_cursor = true;
    let mut resource = employees(json!({"type": "cursor", "cursor": "/meta/next_cursor"}));
    resource["path"] = json!("cursor/employees");
    let config = config(resource.clone());
    let mut reader = HttpReader::open(&config, "employees", None, &mut api).unwrap();
    let (batches, err) = drain(&mut reader, 1000);
    assert_eq!(
        ids(&batches, &reader),
        (1..=20).collect::<Vec<_>>(),
        "page 1 and the first c10 page"
    );
    let Some(Error::BadData(m)) = err else {
        panic!("bad-data, got {err:?}")
    };
    assert!(
        m.contains("http://hr/cursor/employees?cursor=c10 was already fetched in this pass"),
        "{m}"
    );
    assert!(m.contains("stopped instead of looping"), "{m}");
    let cp: Checkpoint = serde_json::from_str(&last_checkpoint(&batches)).unwrap();
    assert_eq!(
        cp.pass.unwrap().next,
        Position::Cursor {
            token: "c10".into()
        },
        "resumes there"
    );
    assert_eq!(api.log.len(), 2, "the repeat is caught before it is sent");

    // on_repeat = "stop": the pass ends with a warning.
    let mut api = FakeApi::new(25, 10);
    api.stuck_cursor = true;
    resource["on_repeat"] = json!("stop");
    let config = crate::tests::config(resource);
    let mut reader = HttpReader::open(&config, "employees", None, &mut api).unwrap();
    let (batches, err) = drain(&mut reader, 1000);
    assert_eq!(err, None);
    let warned = reader.take_notices();
    assert!(
        matches!(&warned[..], [Notice::Warn(m)] if m.contains("the pass ends here")),
        "{warned:?}"
    );
    let cp: Checkpoint = serde_json::from_str(&last_checkpoint(&batches)).unwrap();
    assert_eq!(cp.pass, None);
}

#[test]
fn a_server_ignoring_the_page_param_is_caught() {
    let mut api = FakeApi::new(25, 10);
    api.ignore_page = true;
    let config = config(employees(json!({"type": "page_number"})));
    let mut reader = HttpReader::open(&config, "employees", None, &mut api).unwrap();
    let (batches, err) = drain(&mut reader, 1000);
    assert_eq!(ids(&batches, &reader).len(), 10);
    let Some(Error::BadData(m)) = err else {
        panic!("{err:?}")
    };
    assert!(
        m.contains("page=2 returned the same page as the request before it"),
        "{m}"
    );
}

#[test]
fn an_empty_resource_completes_once_then_reads_nothing() {
    let mut api = FakeApi::new(0, 10);
    let config = config(employees(json!({"type": "page_number"})));
    let (got, batches) = read_all(&mut api, &config, None, 100);
    assert!(got.is_empty());
    assert_eq!(batches.len(), 1, "one empty batch saves the completed pass");
    let cp = last_checkpoint(&batches);
    let (_, again) = read_all(&mut api, &config, Some(&cp), 100);
    assert!(again.is_empty(), "nothing new: no batch at all");
}

#[test]
fn inferred_fields_are_logged_and_kept_in_the_checkpoint() {
    let mut api = FakeApi::new(5, 10);
    let config = config(
        json!({"name": "employees", "path": "employees", "records": "data",
                               "primary_key": ["id"], "paginate": {"type": "page_number"}}),
    );
    let mut reader = HttpReader::open(&config, "employees", None, &mut api).unwrap();
    let notices = reader.take_notices();
    let [Notice::Info(m)] = &notices[..] else {
        panic!("{notices:?}")
    };
    assert!(
        m.starts_with("http-extract: employees: inferred from the first page (5 records): "),
        "{m}"
    );
    assert!(
        m.contains("id integer (5 whole numbers)")
            && m.contains("manager json (5 objects or arrays)"),
        "{m}"
    );
    assert!(
        m.contains("updated_at timestamp") && m.contains("hired date"),
        "{m}"
    );
    let schema = reader.schema().clone();
    assert_eq!(schema.columns[0].name, "id");
    let (batches, _) = drain(&mut reader, 100);
    assert_eq!(ids(&batches, &reader), vec![1, 2, 3, 4, 5]);
    assert_eq!(api.log.len(), 2, "the inference page is not fetched twice");
    let cp = last_checkpoint(&batches);
    assert!(
        cp.contains(r#"{"name":"id","pointer":"/id","kind":"integer"}"#),
        "{cp}"
    );

    // Next run: the schema comes from the checkpoint, whatever the first page holds now.
    api.employees
        .iter_mut()
        .for_each(|e| e["salary"] = json!(null));
    let reader = HttpReader::open(&config, "employees", Some(&cp), &mut api).unwrap();
    assert_eq!(reader.schema(), &schema);
}

#[test]
fn values_that_do_not_fit_are_rejects_with_their_position() {
    let mut api = FakeApi::new(4, 10);
    api.employees[2]["salary"] = json!("12,50");
    api.employees.push(json!("not an object"));
    let config = config(employees(json!({"type": "page_number"})));
    let mut reader = HttpReader::open(&config, "employees", None, &mut api).unwrap();
    let (batches, err) = drain(&mut reader, 100);
    assert_eq!(err, None);
    assert_eq!(ids(&batches, &reader), vec![1, 2, 4]);
    let b = &batches[0];
    // The fake sorts the string (no updated_at) first.
    assert_eq!(b.positions, vec![2, 3, 5]);
    let reasons: Vec<(u64, &str)> = b
        .rejects
        .iter()
        .map(|r| (r.position, r.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (
                1,
                r#"record 1: the record is "not an object", not an object"#
            ),
            (4, r#"record 4: column `salary`: "12,50" is not a decimal"#),
        ]
    );
    assert!(b.rejects[1].raw.starts_with('{') && b.rejects[1].raw.contains("\"12,50\""));
}

#[test]
fn equal_timestamps_across_a_page_boundary_survive_a_crash_and_the_next_pass() {
    // Six employees share one timestamp and straddle the page boundary (pages of 4).
    let mut api = FakeApi::new(8, 4);
    for e in api.employees.iter_mut().take(6) {
        e["updated_at"] = json!("2026-02-01T00:00:00Z");
    }
    let config = config(incremental(employees(json!({"type": "page_number"})), 0));
    // A batch per page; "crash" after the first: only its checkpoint survives.
    let mut reader = HttpReader::open(&config, "employees", None, &mut api).unwrap();
    let first = reader.next_batch(4).unwrap().unwrap();
    drop(reader);
    assert_eq!(first.positions.len(), 4);
    let (rest, batches) = read_all(&mut api, &config, Some(&first.checkpoint), 4);
    // Declared fields: the key column comes first.
    let mut got = ids_in(std::slice::from_ref(&first), 0);
    got.extend(rest);
    got.sort_unstable();
    assert_eq!(got, (1..=8).collect::<Vec<_>>(), "no loss, no duplicate");

    let cp: Checkpoint = serde_json::from_str(&last_checkpoint(&batches)).unwrap();
    let mark = cp.watermark.unwrap();
    assert_eq!(
        (mark.at.as_str(), mark.key.as_deref()),
        ("2026-02-01T00:00:00Z", Some("6")),
        "the highest (timestamp, key); the fake sorts ids 7 and 8 earlier"
    );

    // The next pass asks from the watermark inclusively: a row committed later with the
    // same timestamp is not lost.
    api.upsert(9, "2026-02-01T00:00:00Z", |_| {});
    api.log.clear();
    let (next, _) = read_all(&mut api, &config, Some(&last_checkpoint(&batches)), 100);
    assert_eq!(
        api.log[0],
        "http://hr/employees?updated_since=2026-02-01T00%3A00%3A00Z&page=1"
    );
    assert_eq!(
        next,
        vec![1, 2, 3, 4, 5, 6, 9],
        "the boundary rows again (idempotent by upsert) and the late one"
    );
}

#[test]
fn the_lookback_catches_late_commits_within_it_and_only_those() {
    let mut api = FakeApi::new(10, 100);
    let config = config(incremental(employees(json!({"type": "page_number"})), 300));
    let (first, batches) = read_all(&mut api, &config, None, 100);
    assert_eq!(first.len(), 10);
    assert_eq!(
        api.log[0], "http://hr/employees?page=1",
        "the first pass sends no bound"
    );
    let cp = last_checkpoint(&batches);
    // Watermark: employee 10 at 00:10. Rows committed after the pass with older timestamps:
    api.upsert(11, "2026-01-01T00:06:00Z", |_| {}); // 4 min late: inside the lookback
    api.upsert(12, "2026-01-01T00:04:00Z", |_| {}); // 6 min late: outside it
    api.log.clear();
    let (second, _) = read_all(&mut api, &config, Some(&cp), 100);
    assert_eq!(
        api.log[0],
        "http://hr/employees?updated_since=2026-01-01T00%3A05%3A00Z&page=1"
    );
    assert_eq!(
        second,
        vec![5, 6, 11, 7, 8, 9, 10],
        "00:05 onwards; 12 is beyond the lookback"
    );
}

#[test]
fn tombstones_mark_rows_deleted() {
    let mut api = FakeApi::new(3, 10);
    api.upsert(2, "2026-03-01T00:00:00Z", |e| e["deleted"] = json!(true));
    let mut resource = employees(json!({"type": "page_number"}));
    resource["deleted"] = json!({"field": "deleted", "value": true});
    let config = config(resource);
    let mut reader = HttpReader::open(&config, "employees", None, &mut api).unwrap();
    let col = reader.schema().column_index("deleted_at").unwrap();
    let (batches, _) = drain(&mut reader, 100);
    let view = RowsView::new(&batches[0].rows);
    let deleted: Vec<Option<&str>> = (0..3).map(|r| view.text(r, col)).collect();
    assert_eq!(
        deleted,
        vec![None, None, Some("2026-06-01T00:00:00Z")],
        "ids 1, 3, then 2 (updated last)"
    );
}

#[test]
fn a_batch_ending_inside_a_page_resumes_after_the_rows_it_delivered() {
    let mut api = FakeApi::new(10, 10);
    let config = config(employees(json!({"type": "page_number"})));
    let mut reader = HttpReader::open(&config, "employees", None, &mut api).unwrap();
    let first = reader.next_batch(4).unwrap().unwrap();
    drop(reader);
    let cp: Checkpoint = serde_json::from_str(&first.checkpoint).unwrap();
    let pass = cp.pass.unwrap();
    assert_eq!(
        (pass.next, pass.skip, pass.skip_key.as_deref()),
        (Position::Start, 4, Some("4"))
    );
    let (rest, _) = read_all(&mut api, &config, Some(&first.checkpoint), 100);
    assert_eq!(rest, vec![5, 6, 7, 8, 9, 10]);

    // The page changed under the checkpoint (employee 2 left): read it whole again.
    api.employees.retain(|e| e["id"] != 2);
    let mut reader =
        HttpReader::open(&config, "employees", Some(&first.checkpoint), &mut api).unwrap();
    let (batches, _) = drain(&mut reader, 100);
    assert_eq!(ids(&batches, &reader), vec![1, 3, 4, 5, 6, 7, 8, 9, 10]);
    let notices = reader.take_notices();
    assert!(
        matches!(&notices[..], [Notice::Warn(m)] if m.contains("changed since the checkpoint")),
        "{notices:?}"
    );
}

#[test]
fn an_error_mid_pass_keeps_the_rows_before_it_and_resumes_at_the_failed_page() {
    let mut api = FakeApi::new(25, 10);
    let config2 = config(employees(json!({"type": "page_number"})));
    // Page 1 answers, page 2 is rate limited.
    let page1: Vec<Value> = (1..=10)
        .map(|i| crate::fake::employee(i, "2026-01-01T00:00:00Z", 10))
        .collect();
    api.queued
        .push_back(Ok(Response::new(200, json!({"data": page1}).to_string())));
    api.queued.push_back(Ok(
        Response::new(429, "slow down").with_header("Retry-After", "7")
    ));
    let mut reader = HttpReader::open(&config2, "employees", None, &mut api).unwrap();
    let first = reader.next_batch(100).unwrap().unwrap();
    assert_eq!(first.positions.len(), 10, "page 1 is handed out first");
    let err = reader.next_batch(100).unwrap_err();
    assert_eq!(
        err,
        Error::Unavailable("http-extract: employees: http://hr/employees?page=2: HTTP 429 Too Many Requests; retry after 7: slow down".into())
    );
    drop(reader);
    api.log.clear();
    let (rest, _) = read_all(&mut api, &config2, Some(&first.checkpoint), 100);
    assert_eq!(rest, (11..=25).collect::<Vec<_>>());
    assert_eq!(
        api.log[0], "http://hr/employees?page=2",
        "page 1 is not fetched again"
    );
}

#[test]
fn statuses_and_bodies_map_to_errors_naming_the_url() {
    let config_e = config(employees(json!({"type": "page_number"})));
    let open = |api: &mut FakeApi, config: &Config| {
        let mut reader = HttpReader::open(config, "employees", None, api).unwrap();
        reader.next_batch(10).unwrap_err()
    };
    let mut api = FakeApi::new(3, 10);
    api.queued.push_back(Ok(Response::new(401, "")));
    assert!(
        matches!(open(&mut api, &config_e), Error::AccessDenied(m) if m.contains("HTTP 401 Unauthorized"))
    );
    api.queued
        .push_back(Ok(Response::new(503, "").with_header("retry-after", "120")));
    assert!(
        matches!(open(&mut api, &config_e), Error::Unavailable(m) if m.ends_with("retry after 120"))
    );
    api.queued.push_back(Err(Error::Unavailable(
        "http://hr/employees?page=1: connection refused".into(),
    )));
    assert!(
        matches!(open(&mut api, &config_e), Error::Unavailable(m) if m.ends_with("connection refused"))
    );

    let mut broken = employees(json!({"type": "page_number"}));
    broken["path"] = json!("broken");
    let Error::BadData(m) = open(&mut api, &config(broken)) else {
        panic!()
    };
    assert!(
        m.starts_with(
            "http-extract: employees: http://hr/broken?page=1: HTTP 200: the body is not JSON"
        ),
        "{m}"
    );
    assert!(m.ends_with("<html>oops</html>"), "{m}");

    let mut wrong = employees(json!({"type": "page_number"}));
    wrong["records"] = json!("/items");
    let Error::BadData(m) = open(&mut api, &config(wrong)) else {
        panic!()
    };
    assert!(
        m.ends_with("HTTP 200: no records at \"/items\" (the body has keys data); check `records`"),
        "{m}"
    );
}

#[test]
fn redirects_are_followed_relative_to_the_page() {
    let mut api = FakeApi::new(3, 10);
    api.queued.push_back(Ok(
        Response::new(302, "").with_header("Location", "/cursor/employees")
    ));
    let mut resource = employees(json!({"type": "none"}));
    resource["path"] = json!("old/employees");
    let (got, _) = read_all(&mut api, &config(resource), None, 10);
    assert_eq!(got, vec![1, 2, 3]);
    assert_eq!(
        api.log,
        ["http://hr/old/employees", "http://hr/cursor/employees"]
    );
}

#[test]
fn keyset_pages_through_many_equal_timestamps_without_looping() {
    let mut api = FakeApi::new(9, 3);
    for e in api.employees.iter_mut().take(7) {
        e["updated_at"] = json!("2026-02-01T00:00:00Z");
    }
    let mut resource = incremental(employees(json!({"type": "keyset", "param": "after"})), 0);
    resource["incremental"]["start"] = json!("2026-01-01T00:00:00Z");
    let config = config(resource);
    let (got, batches) = read_all(&mut api, &config, None, 100);
    assert_eq!(got, vec![8, 9, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(
        api.log[0],
        "http://hr/employees?updated_since=2026-01-01T00%3A00%3A00Z"
    );
    assert_eq!(
        api.log[1],
        "http://hr/employees?updated_since=2026-02-01T00%3A00%3A00Z&after=1"
    );
    assert_eq!(
        api.log[2],
        "http://hr/employees?updated_since=2026-02-01T00%3A00%3A00Z&after=4"
    );
    assert_eq!(api.log.len(), 4, "three pages and the empty one");
    let cp: Checkpoint = serde_json::from_str(&last_checkpoint(&batches)).unwrap();
    assert_eq!(cp.watermark.unwrap().key.as_deref(), Some("7"));
}

#[test]
fn a_checkpoint_of_another_config_is_bad_data() {
    let mut api = FakeApi::new(25, 10);
    let config_p = config(employees(json!({"type": "page_number"})));
    let mut reader = HttpReader::open(&config_p, "employees", None, &mut api).unwrap();
    let first = reader.next_batch(10).unwrap().unwrap();
    drop(reader);
    let mut cursor = employees(json!({"type": "cursor", "cursor": "/meta/next_cursor"}));
    cursor["path"] = json!("cursor/employees");
    let Err(Error::BadData(m)) = HttpReader::open(
        &config(cursor),
        "employees",
        Some(&first.checkpoint),
        &mut api,
    ) else {
        panic!("bad-data expected")
    };
    assert!(
        m.contains("a pass paged by page_number is in progress")
            && m.contains("weir checkpoints reset <pipeline> employees"),
        "{m}"
    );
}

#[test]
fn parents_give_one_partition_per_value() {
    let mut api = FakeApi::new(9, 10);
    let org = json!({"name": "org-units", "path": "org-units", "records": "/data", "extract": false,
                     "paginate": {"type": "page_number"}});
    let mut emp = employees(json!({"type": "page_number"}));
    emp["parent"] = json!({"resource": "org-units", "key": "id", "param": "org_unit"});
    let config = config_of(vec![org, emp]);
    let mut notices = Vec::new();
    let ids_ = crate::partitions(&config, &mut api, &mut notices).unwrap();
    assert_eq!(
        ids_,
        [
            "employees@org_unit=10",
            "employees@org_unit=11",
            "employees@org_unit=12"
        ]
    );
    api.log.clear();
    let mut reader = HttpReader::open(&config, "employees@org_unit=11", None, &mut api).unwrap();
    let (batches, _) = drain(&mut reader, 100);
    assert_eq!(ids(&batches, &reader), vec![1, 4, 7]);
    assert_eq!(api.log[0], "http://hr/employees?org_unit=11&page=1");
    let err = HttpReader::open(&config, "employees", None, &mut api)
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::InvalidConfig(m) if m.contains("does not match resource `employees`'s parent"))
    );
}

#[test]
fn the_hr_directory_example_configs_parse() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/hr-directory/weir.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let pipelines = doc["pipeline"].as_array().unwrap();
    assert_eq!(pipelines.len(), 2);
    for p in pipelines {
        let config = serde_json::to_string(&p["extract"]["config"]).unwrap();
        let config = Config::parse(&config).unwrap_or_else(|e| panic!("{}: {e:?}", p["name"]));
        assert_eq!(config.connection, "hr");
    }
}

#[test]
fn the_hosts_refusals_are_told_from_transport_failures() {
    for refusal in [
        r#"weir: http grant "hr" refuses GET http://hr/../admin: the path leaves the grant's base path /api/ through "..""#,
        r#"weir: http grant "local" refuses GET http://local/people: localhost resolves to 127.0.0.1, a loopback address; the grant does not say allow_private = true"#,
        "weir: no http grant matches GET http://127.0.0.2:9/steal; granted: hr → http://127.0.0.1:8917/api/",
    ] {
        assert!(crate::is_host_refusal(refusal), "{refusal}");
    }
    for failure in [
        r#"weir: http grant "hr": GET http://hr/x: no credentials: the token endpoint answered 503"#,
        "connection refused",
        "timed out waiting for the response",
    ] {
        assert!(!crate::is_host_refusal(failure), "{failure}");
    }
}
