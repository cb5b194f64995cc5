//! csv-extract's policies through the real binary: stray quotes are rejects in `_weir_rejects`,
//! repeated header names fail the file in the extractor, a growing file's unfinished last line
//! is held back until it is complete or settled, and a skipped file says why.

use crate::support::*;

fn pipeline(extract: &str) -> String {
    csv_pipeline(
        "p",
        &format!(r#"path = "inbox/*.csv"{extract}"#),
        r#"table = "t""#,
    )
}

/// (file, line, stage, reason) of every reject, in line order.
fn rejects(fx: &Fixture) -> Vec<(String, i64, String, String)> {
    let db = fx.db("ledger.db");
    let mut stmt = db
        .prepare("SELECT file, line, stage, reason FROM _weir_rejects ORDER BY file, line")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn column(fx: &Fixture, sql: &str) -> Vec<String> {
    let db = fx.db("ledger.db");
    let mut stmt = db.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The messages of the run's `plugin_log` events at `level`.
fn logs(events: &[serde_json::Value], level: &str) -> Vec<String> {
    events_of(events, "plugin_log")
        .into_iter()
        .filter(|e| e["level"] == level && e["plugin"] == "csv-extract")
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect()
}

const STRAY: &str = "id,name,memo\n\
                     1,ACME,plain\n\
                     2,ACME \"Ltd\",plain\n\
                     3,ACME,\"memo, 3\"x\n\
                     4,ACME,\"quoted, fine\"\n";

#[test]
fn each_kind_of_stray_quote_is_one_reject_row_naming_the_column() {
    let fx = Fixture::new();
    fx.config(&pipeline(""));
    fx.write("inbox/q.csv", STRAY);
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (4, 2, 2));
    let got = rejects(&fx);
    for reject in &got {
        eprintln!("reject row: {reject:?}");
    }
    let stage = "csv-extract".to_string();
    assert_eq!(
        got,
        [
            (
                "inbox/q.csv".to_string(),
                3,
                stage.clone(),
                "column \"name\": quote inside an unquoted field: ACME \"Ltd\"".to_string()
            ),
            (
                "inbox/q.csv".to_string(),
                4,
                stage,
                "column \"memo\": text after closing quote: \"memo, 3\"x".to_string()
            ),
        ]
    );
    assert_eq!(
        column(&fx, "SELECT memo FROM t ORDER BY rowid"),
        ["plain", "quoted, fine"]
    );
}

#[test]
fn lenient_quotes_load_the_malformed_fields_as_written() {
    let fx = Fixture::new();
    fx.config(&pipeline(r#", quotes = "lenient""#));
    fx.write("inbox/q.csv", STRAY);
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (4, 4, 0));
    assert_eq!(
        column(&fx, "SELECT name || '|' || memo FROM t ORDER BY rowid"),
        [
            "ACME|plain",
            "ACME \"Ltd\"|plain",
            "ACME|\"memo, 3\"x",
            "ACME|quoted, fine"
        ]
    );
}

#[test]
fn repeated_header_names_fail_the_file_in_the_extractor_unless_renamed() {
    let fx = Fixture::new();
    fx.config(&pipeline(""));
    fx.write("inbox/a.csv", "id,Name,name\n1,x,y\n");
    let run = fx.weir(&["run", "p"]);
    run.failure();
    let out = run.stdout() + &run.stderr();
    assert!(
        out.contains(
            "inbox/a.csv: the header names two columns the same: column 2 \"Name\" and column 3 \
             \"name\" (names are compared ignoring case, as most databases do)"
        ),
        "{out}"
    );
    assert!(out.contains("csv-extract"), "the extractor decides: {out}");

    // Renamed on request, with a warning event saying which.
    fx.config(&pipeline(r#", duplicate_headers = "rename""#));
    let (run, events) = fx.weir_with_events(&["run", "p"]);
    assert_eq!(run.success().totals(), (1, 1, 0));
    assert_eq!(column(&fx, "SELECT name_2 FROM t"), ["y"]);
    assert_eq!(
        logs(&events, "warn"),
        [
            "inbox/a.csv: renamed repeated column names (duplicate_headers = \"rename\"): column 3 \
          \"name\" is read as \"name_2\" (same name as column 2 \"Name\")"
        ]
    );
}

#[test]
fn a_growing_files_unfinished_last_line_is_held_back_then_loaded_once() {
    let fx = Fixture::new();
    fx.config(&pipeline(""));
    // A writer has flushed `2,ACME,12` of `2,ACME,12.50` (no line break yet).
    fx.write("inbox/g.csv", "id,name,amount\n1,ACME,10.00\n2,ACME,12");
    let (run, events) = fx.weir_with_events(&["run", "p"]);
    assert_eq!(run.success().totals(), (1, 1, 0));
    assert_eq!(
        column(&fx, "SELECT amount FROM t ORDER BY rowid"),
        ["10.00"]
    );
    let held = logs(&events, "info");
    assert!(
        held.iter().any(|m| m
            .starts_with("inbox/g.csv: line 3: the last record has no complete line break yet")),
        "{held:?}"
    );

    // The writer finishes the value but writes no final line break: still young, still held.
    fx.append("inbox/g.csv", ".50");
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (0, 0, 0));

    // Past settle_seconds (by the file's clock, not by sleeping): loaded, whole, once.
    age(&fx.path("inbox/g.csv"), 60);
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (1, 1, 0));
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (0, 0, 0));
    assert_eq!(
        column(&fx, "SELECT amount FROM t ORDER BY rowid"),
        ["10.00", "12.50"]
    );
    assert!(rejects(&fx).is_empty(), "no `.50` reject");
}

#[test]
fn a_symlink_leading_outside_the_granted_directory_is_skipped_with_its_reason() {
    let fx = Fixture::new();
    fx.config(&pipeline(""));
    fx.write("secret.csv", "id\n1\n");
    std::os::unix::fs::symlink("../secret.csv", fx.path("inbox/evil.csv")).unwrap();
    let reason = "inbox/evil.csv: skipped: symlink points outside the granted directory inbox (to \
                  ../secret.csv)";

    // The only match: nothing to read, and the run's events say why.
    let (run, events) = fx.weir_with_events(&["run", "p"]);
    run.success();
    let warnings = logs(&events, "warn");
    assert_eq!(
        warnings,
        [
            reason.to_string(),
            "\"path\" \"inbox/*.csv\": no file to read: 1 matching entry was skipped (see the \
             warnings before this one)"
                .to_string()
        ]
    );
    let validate = fx.weir(&["validate"]);
    assert!(
        validate
            .stdout()
            .contains(&format!("pipeline p: ok, no partitions yet; checkpoints are saved in database ledger\n  warning: {reason}")),
        "{}",
        validate.stdout()
    );
    let all = run.stdout() + &run.stderr() + &validate.stdout() + &validate.stderr();
    assert!(!all.contains("os error"), "{all}");

    // Beside a readable file, that one loads and the link is still reported.
    fx.write("inbox/a.csv", "id\n2\n");
    age(&fx.path("inbox/a.csv"), 3600);
    let (run, events) = fx.weir_with_events(&["run", "p"]);
    assert_eq!(run.success().totals(), (1, 1, 0));
    assert_eq!(logs(&events, "warn"), [reason]);
}
