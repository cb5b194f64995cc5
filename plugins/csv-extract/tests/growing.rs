//! Files still being written: a last record without a complete line break is held back (no
//! row, no reject, no checkpoint past it) while the file was modified within settle_seconds,
//! and read once, in full, later. File ages are set through the modification time, not slept.

mod common;

use common::{config, read, set_age, temp_dir};
use csv_extract::config::Config;
use csv_extract::reader::{CsvReader, Level, Notice};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file written just now (as by a writer that is still at it).
fn fresh(test: &str, bytes: &[u8]) -> PathBuf {
    let path = temp_dir(test).join("growing.csv");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The writer goes on: append, which makes the file young again.
fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

fn offset_line(checkpoint: &str) -> (u64, u64) {
    let v: serde_json::Value = serde_json::from_str(checkpoint).unwrap();
    (v["offset"].as_u64().unwrap(), v["line"].as_u64().unwrap())
}

/// The notices a reader gives for `path` (the plugin logs them through the host).
fn notices(path: &Path, extra: &str, checkpoint: Option<&str>) -> Vec<Notice> {
    let cfg = Config::parse(&config(path, extra)).unwrap();
    let mut reader = CsvReader::open(&cfg, path.to_str().unwrap(), checkpoint).unwrap();
    while reader.next_batch(100).unwrap().is_some() {}
    reader.take_notices()
}

#[test]
fn a_partly_flushed_last_line_is_held_back_and_loads_whole_once_appended() {
    let head = "id,name,amount\n1,ACME,10.00\n";
    // The writer has flushed `2,ACME,12` of `2,ACME,12.50\n`.
    let path = fresh("partial", format!("{head}2,ACME,12").as_bytes());
    let cfg = config(&path, "");
    for max_rows in [1, 100] {
        let first = read(&cfg, &path, None, max_rows).unwrap();
        assert_eq!(first.values(), [["1", "ACME", "10.00"]]);
        assert!(first.rejects.is_empty(), "{:?}", first.rejects);
        assert_eq!(
            offset_line(&first.last_checkpoint().unwrap()),
            (head.len() as u64, 3),
            "the checkpoint stays before the held-back line"
        );
    }
    let first = read(&cfg, &path, None, 100).unwrap();

    append(&path, b".50\n");
    let second = read(&cfg, &path, first.last_checkpoint(), 100).unwrap();
    assert_eq!(second.values(), [["2", "ACME", "12.50"]]);
    assert_eq!(second.lines(), [3]);
    assert!(second.rejects.is_empty(), "no `.50` reject");
    let third = read(&cfg, &path, second.last_checkpoint(), 100).unwrap();
    assert!(third.batches.is_empty(), "loaded once");
}

#[test]
fn a_last_line_without_line_break_loads_once_the_file_has_settled() {
    let path = fresh("settle", b"id,amount\n1,10.00\n2,12.50");
    let cfg = config(&path, "");
    let young = read(&cfg, &path, None, 100).unwrap();
    assert_eq!(young.lines(), [2]);

    // Nothing more was written, and settle_seconds (5 s by default) have passed.
    set_age(&path, 6);
    let settled = read(&cfg, &path, young.last_checkpoint(), 100).unwrap();
    assert_eq!(
        (settled.lines(), settled.values()),
        (vec![3], vec![vec!["2".to_string(), "12.50".into()]])
    );
    assert!(
        read(&cfg, &path, settled.last_checkpoint(), 100)
            .unwrap()
            .batches
            .is_empty()
    );

    // Just inside the window it is still held; settle_seconds 0 reads it at once.
    set_age(&path, 3);
    assert_eq!(read(&cfg, &path, None, 100).unwrap().lines(), [2]);
    let now = config(&path, r#""settle_seconds": 0"#);
    assert_eq!(read(&now, &path, None, 100).unwrap().lines(), [2, 3]);
    let longer = config(&path, r#""settle_seconds": 600"#);
    set_age(&path, 300);
    assert_eq!(read(&longer, &path, None, 100).unwrap().lines(), [2]);
}

#[test]
fn a_modification_time_in_the_future_counts_as_just_written() {
    let path = fresh("future", b"id\n1\n2");
    set_age(&path, -3600);
    let out = read(&config(&path, ""), &path, None, 100).unwrap();
    assert_eq!(out.lines(), [2]);
}

#[test]
fn an_open_quote_at_the_end_is_held_back_then_rejected_once_settled() {
    let path = fresh("open-quote", b"id,memo\n1,ok\n2,\"still\nbeing written");
    let cfg = config(&path, "");
    let young = read(&cfg, &path, None, 100).unwrap();
    assert_eq!(young.lines(), [2]);
    assert!(young.rejects.is_empty(), "not rejected while young");
    assert_eq!(offset_line(&young.last_checkpoint().unwrap()), (13, 3));

    // The writer closes the quote (and adds a field too many): judged as the whole record.
    append(&path, b"\",x\n");
    let closed = read(&cfg, &path, young.last_checkpoint(), 100).unwrap();
    let rejects: Vec<_> = closed
        .rejects
        .iter()
        .map(|r| (r.position, r.reason.as_str(), r.raw.as_str()))
        .collect();
    assert_eq!(
        rejects,
        [(
            3,
            "expected 2 fields, found 3",
            "2,\"still\nbeing written\",x"
        )]
    );

    // Left open and settled: rejected for good, as before.
    let path = fresh("open-quote-settled", b"id,memo\n1,ok\n2,\"never closed");
    set_age(&path, 3600);
    let out = read(&config(&path, ""), &path, None, 100).unwrap();
    let rejects: Vec<_> = out
        .rejects
        .iter()
        .map(|r| (r.position, r.reason.as_str()))
        .collect();
    assert_eq!(
        rejects,
        [(3, "unterminated quoted field starting at line 3")]
    );
}

#[test]
fn a_carriage_return_at_the_end_waits_for_its_line_feed() {
    // A writer of `\r\n` lines has flushed the `\r` but not yet the `\n`.
    let body = b"a,b\r\n1,2\r";
    let rest = b"\n3,4\r\n";

    let path = fresh("cr", body);
    let cfg = config(&path, "");
    let young = read(&cfg, &path, None, 100).unwrap();
    assert!(young.batches.is_empty(), "the only record is held back");
    append(&path, rest);
    let later = read(&cfg, &path, young.last_checkpoint(), 100).unwrap();
    assert_eq!(later.lines(), [2, 3]);

    // What holding back prevents: read at once, the `\n` becomes a blank line of its own and
    // every later row is one line off.
    let path = fresh("cr-now", body);
    let now = config(&path, r#""settle_seconds": 0"#);
    let first = read(&now, &path, None, 100).unwrap();
    append(&path, rest);
    let later = read(&now, &path, first.last_checkpoint(), 100).unwrap();
    assert_eq!((first.lines(), later.lines()), (vec![2], vec![4]));
}

#[test]
fn holding_back_is_logged_and_says_until_when() {
    let path = fresh("notice", b"id,memo\n1,\"open");
    let got = notices(&path, "", None);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].level, Level::Info);
    let prefix = format!(
        "{}: line 2: the last record has a quoted field still open since line 2 and the file \
         was modified ",
        path.display()
    );
    assert!(got[0].message.starts_with(&prefix), "{}", got[0].message);
    assert!(
        got[0].message.ends_with(
            "s ago: held back until the file has been unchanged for 5 s (settle_seconds)"
        ),
        "{}",
        got[0].message
    );
    set_age(&path, 3600);
    assert!(notices(&path, "", None).is_empty());
}
