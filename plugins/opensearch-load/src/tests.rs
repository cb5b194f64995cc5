//! The sink against a scripted cluster: what it sends, and what it makes of each answer.

use std::collections::VecDeque;

use serde_json::{Value, json};
use weir_sdk::{Batch, Cell, Column, Kind, Progress, RowsBuilder};

use super::*;

/// A cluster that records every request and answers from a script (then `200 {}` or, for a
/// bulk request, every action done).
#[derive(Default)]
struct Scripted {
    sent: Vec<(Method, String, String)>,
    answers: VecDeque<Result<Response, Error>>,
}

impl Transport for Scripted {
    fn request(
        &mut self,
        method: Method,
        path: &str,
        body: &[u8],
        _content_type: &str,
    ) -> Result<Response, Error> {
        self.sent.push((
            method,
            path.to_owned(),
            String::from_utf8_lossy(body).into_owned(),
        ));
        self.answers.pop_front().unwrap_or_else(|| {
            Ok(if path.starts_with("_bulk") {
                Response::new(200, r#"{"errors":false,"items":[]}"#)
            } else {
                Response::new(200, "{}")
            })
        })
    }
}

fn schema() -> Schema {
    Schema {
        columns: vec![
            Column::new("id", Kind::Integer, false),
            Column::new("name", Kind::Text, true),
            Column::new("deleted_at", Kind::Timestamp, true),
        ],
        primary_key: vec!["id".into()],
    }
}

fn sink(config: &str, answers: Vec<Result<Response, Error>>) -> OpenSearchSink<Scripted> {
    let raw: RawConfig = weir_sdk::parse_config(NAME, config).unwrap();
    OpenSearchSink::new(
        raw,
        schema(),
        Scripted {
            sent: Vec::new(),
            answers: answers.into(),
        },
    )
    .unwrap()
}

fn batch(rows: &[(i64, &str, Option<&str>)]) -> Batch {
    let mut b = RowsBuilder::new(&schema());
    for (id, name, deleted) in rows {
        b.push_row([Cell::Integer(*id), Cell::Text(name), (*deleted).into()])
            .unwrap();
    }
    Batch {
        rows: b.finish(),
        positions: (0..rows.len() as u64).map(|i| 10 + i).collect(),
        rejects: vec![],
        checkpoint: "c".into(),
        progress: Progress {
            done: 0,
            total: None,
        },
    }
}

fn write(s: &mut OpenSearchSink<Scripted>, b: &Batch) -> Result<Vec<(u32, String)>, Error> {
    let mut rejects = SinkRejects::default();
    s.write(&BatchView::new(b), &mut rejects)?;
    Ok(rejects
        .as_slice()
        .iter()
        .map(|r| (r.index, r.reason.clone()))
        .collect())
}

const CONFIG: &str = r#"{"connection": "search", "index": "patients", "deleted_by": "deleted_at"}"#;

#[test]
fn a_missing_index_is_created_with_the_derived_mapping_then_rows_go_in_one_bulk() {
    let mut s = sink(
        CONFIG,
        vec![Ok(Response::new(404, "")), Ok(Response::new(200, "{}"))],
    );
    let rejects = write(
        &mut s,
        &batch(&[(1, "Ada", None), (2, "Bob", Some("2026-01-01T00:00:00Z"))]),
    )
    .unwrap();
    assert!(rejects.is_empty());
    let sent = &s.transport.sent;
    assert_eq!((sent[0].0, sent[0].1.as_str()), (Method::Head, "patients"));
    assert_eq!((sent[1].0, sent[1].1.as_str()), (Method::Put, "patients"));
    let created: Value = serde_json::from_str(&sent[1].2).unwrap();
    assert_eq!(created["mappings"]["dynamic"], "strict");
    assert_eq!(
        created["mappings"]["properties"]["id"],
        json!({"type": "long"})
    );
    assert_eq!((sent[2].0, sent[2].1.as_str()), (Method::Post, "_bulk"));
    let lines: Vec<&str> = sent[2].2.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{"index":{"_index":"patients","_id":"1","version":10,"version_type":"external"}}"#,
            r#"{"id":1,"name":"Ada","deleted_at":null}"#,
            r#"{"delete":{"_index":"patients","_id":"2","version":11,"version_type":"external"}}"#,
        ]
    );
    // The index is checked once per sink.
    write(&mut s, &batch(&[(3, "Cy", None)])).unwrap();
    assert_eq!(s.transport.sent.len(), 4);
    assert_eq!(
        (s.stats.indexed, s.stats.deleted, s.stats.requests),
        (2, 1, 2)
    );
}

#[test]
fn an_existing_index_gains_fields_for_new_columns() {
    let mapping = r#"{"patients":{"mappings":{"properties":{"id":{"type":"long"}}}}}"#;
    let mut s = sink(
        CONFIG,
        vec![Ok(Response::new(200, "")), Ok(Response::new(200, mapping))],
    );
    write(&mut s, &batch(&[(1, "Ada", None)])).unwrap();
    let sent = &s.transport.sent;
    assert_eq!(
        (sent[1].0, sent[1].1.as_str()),
        (Method::Get, "patients/_mapping")
    );
    assert_eq!(
        (sent[2].0, sent[2].1.as_str()),
        (Method::Put, "patients/_mapping")
    );
    let added: Value = serde_json::from_str(&sent[2].2).unwrap();
    let names: Vec<&String> = added["properties"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["deleted_at", "name"]);
}

#[test]
fn requests_are_cut_by_documents_and_by_bytes() {
    let config = r#"{"connection": "s", "index": "p", "create_index": false, "bulk_max_docs": 2, "bulk_max_bytes": 1024}"#;
    let mut s = sink(config, vec![]);
    let long = "x".repeat(900);
    let rows = [
        (1, "a", None),
        (2, "b", None),
        (3, "c", None),
        (4, long.as_str(), None),
        (5, "e", None),
    ];
    write(&mut s, &batch(&rows)).unwrap();
    let per_request: Vec<Vec<String>> = s
        .transport
        .sent
        .iter()
        .map(|(_, _, body)| {
            body.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter_map(|v| v["index"]["_id"].as_str().map(str::to_owned))
                .collect()
        })
        .collect();
    // Two documents per request, and the 900-byte one does not fit beside another.
    assert_eq!(
        per_request,
        [vec!["1", "2"], vec!["3"], vec!["4"], vec!["5"]]
    );
    assert!(
        s.transport.sent.iter().all(|(_, path, _)| path == "_bulk"),
        "no index checks"
    );
}

#[test]
fn refused_actions_are_rejects_and_version_conflicts_are_success() {
    let answer = r#"{"errors":true,"items":[
        {"index":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[1]: version conflict"}}},
        {"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [name]"}}},
        {"delete":{"status":404,"result":"not_found"}}
    ]}"#;
    let config =
        r#"{"connection": "s", "index": "p", "create_index": false, "deleted_by": "deleted_at"}"#;
    let mut s = sink(config, vec![Ok(Response::new(200, answer))]);
    let rejects = write(
        &mut s,
        &batch(&[
            (1, "a", None),
            (2, "b", None),
            (3, "c", Some("2026-01-01T00:00:00Z")),
        ]),
    )
    .unwrap();
    assert_eq!(
        rejects,
        [(
            1,
            "400 mapper_parsing_exception: failed to parse field [name]".to_owned()
        )]
    );
    assert_eq!(
        (s.stats.conflicts, s.stats.deleted, s.stats.rejected),
        (1, 1, 1)
    );
}

#[test]
fn busy_clusters_and_lost_connections_fail_the_batch_for_a_retry() {
    let config = r#"{"connection": "s", "index": "p", "create_index": false}"#;
    let limited = Response::new(429, "").with_header("retry-after", "3");
    let mut s = sink(config, vec![Ok(limited)]);
    let Err(Error::Unavailable(m)) = write(&mut s, &batch(&[(1, "a", None)])) else {
        panic!("a 429 is unavailable");
    };
    assert!(
        m.starts_with("opensearch-load: bulk request: HTTP 429 Too Many Requests; retry after 3"),
        "{m}"
    );

    let item_429 = r#"{"errors":true,"items":[{"index":{"status":201}},{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}]}"#;
    let mut s = sink(config, vec![Ok(Response::new(200, item_429))]);
    let Err(Error::Unavailable(m)) = write(&mut s, &batch(&[(1, "a", None), (2, "b", None)]))
    else {
        panic!("an action refused for now fails the batch");
    };
    assert!(
        m.contains(
            "refused 1 of 2 actions for now (429 es_rejected_execution_exception: queue full)"
        ),
        "{m}"
    );

    let refused = Error::Unavailable("http://s/_bulk: connection refused".into());
    let mut s = sink(config, vec![Err(refused)]);
    let Err(Error::Unavailable(m)) = write(&mut s, &batch(&[(1, "a", None)])) else {
        panic!("a transport failure is unavailable");
    };
    assert_eq!(m, "opensearch-load: http://s/_bulk: connection refused");

    let mut s = sink(config, vec![Ok(Response::new(401, ""))]);
    assert!(matches!(
        write(&mut s, &batch(&[(1, "a", None)])),
        Err(Error::AccessDenied(_))
    ));
}

#[test]
fn rows_that_cannot_become_documents_are_rejected_before_sending() {
    let config =
        r#"{"connection": "s", "index": "p", "create_index": false, "version": "deleted_at"}"#;
    let mut s = sink(config, vec![]);
    let rejects = write(
        &mut s,
        &batch(&[(1, "a", None), (2, "b", Some("2026-01-01T00:00:00Z"))]),
    )
    .unwrap();
    assert_eq!(
        rejects,
        [(0, "version column `deleted_at` is null".to_owned())]
    );
    let bulk = &s.transport.sent[0].2;
    assert!(
        bulk.contains(r#""_id":"2""#) && !bulk.contains(r#""_id":"1""#),
        "{bulk}"
    );
}

#[test]
fn open_checks_the_config_without_sending_anything() {
    let Err(Error::InvalidConfig(m)) =
        OpenSearchLoad::open(r#"{"connection": "s", "index": "P"}"#, schema())
    else {
        panic!("an upper-case index is refused");
    };
    assert_eq!(m, r#"opensearch-load: index: "P" must be lowercase"#);
    assert!(matches!(
        OpenSearchLoad::open(r#"{"connection": "s", "index": "p"}"#, schema()),
        Ok(LoadTarget::Sink(_))
    ));
}
