//! The extractor on generated files: dialects, encodings, rejects, schemas and progress.

mod common;

use common::{config, read, temp_dir, write_settled};
use csv_extract::CsvExtract;
use std::path::PathBuf;
use weir_sdk::{Error, Extractor, Kind, Partition};

fn file(test: &str, name: &str, bytes: &[u8]) -> PathBuf {
    let path = temp_dir(test).join(name);
    write_settled(&path, bytes);
    path
}

fn strings(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[test]
fn windows_1252_with_semicolons() {
    let f = file(
        "cp1252",
        "bank.csv",
        b"Empf\xE4nger;Betrag;Ort\r\nM\xFCller;12,50;K\xF6ln\r\n\xE4\xF6\xFC;-3;Z\xFCrich \x80\r\n",
    );
    let cfg = config(&f, r#""delimiter": ";", "encoding": "windows-1252""#);
    let out = read(&cfg, &f, None, 10).unwrap();
    assert_eq!(out.columns, ["Empfänger", "Betrag", "Ort"]);
    assert_eq!(
        out.values(),
        strings(&[&["Müller", "12,50", "Köln"], &["äöü", "-3", "Zürich €"]])
    );
    assert_eq!(out.lines(), [2, 3]);
    assert!(out.rejects.is_empty());
}

#[test]
fn utf8_bom_is_stripped() {
    let f = file(
        "bom",
        "bom.csv",
        "\u{FEFF}name,city\nÅsa,Zürich\n".as_bytes(),
    );
    let out = read(&config(&f, ""), &f, None, 10).unwrap();
    assert_eq!(out.columns, ["name", "city"]);
    assert_eq!(out.values(), strings(&[&["Åsa", "Zürich"]]));
}

#[test]
fn crlf_and_quoted_newlines_keep_physical_lines() {
    let f = file(
        "crlf",
        "memo.csv",
        b"id,memo\r\n1,\"two\r\nlines\"\r\n2,\"three\r\n\r\nlines\"\r\n\r\n3,plain\r\n",
    );
    for max_rows in [1, 2, 100] {
        let out = read(&config(&f, ""), &f, None, max_rows).unwrap();
        assert_eq!(out.lines(), [2, 4, 8], "max_rows {max_rows}");
        assert_eq!(out.rows[1].1[1], "three\r\n\r\nlines");
    }
}

#[test]
fn old_mac_line_breaks() {
    let f = file("cr", "mac.csv", b"a,b\r1,\"x\ry\"\r2,3");
    let out = read(&config(&f, ""), &f, None, 10).unwrap();
    assert_eq!(out.values(), strings(&[&["1", "x\ry"], &["2", "3"]]));
    assert_eq!(out.lines(), [2, 4]);
}

#[test]
fn rejects_keep_line_reason_and_raw_text() {
    let f = file(
        "rejects",
        "r.csv",
        b"a,b,c\n1,2,3\n4,5\n6,\"7\n7\",8,9\n10,\xFF,12\n13,14,15\n16,\"open,17\n18,19,20\n",
    );
    let out = read(&config(&f, ""), &f, None, 2).unwrap();
    assert_eq!(
        out.values(),
        strings(&[&["1", "2", "3"], &["13", "14", "15"]])
    );
    assert_eq!(out.lines(), [2, 7]);
    let rejects: Vec<_> = out
        .rejects
        .iter()
        .map(|r| (r.position, r.reason.as_str(), r.raw.as_str()))
        .collect();
    assert_eq!(
        rejects,
        [
            (3, "expected 3 fields, found 2", "4,5"),
            (4, "expected 3 fields, found 4", "6,\"7\n7\",8,9"),
            (6, "invalid UTF-8 at byte 31", "10,\u{FFFD},12"),
            (
                8,
                "unterminated quoted field starting at line 8",
                "16,\"open,17\n18,19,20\n"
            ),
        ]
    );
}

#[test]
fn oversized_records_are_rejected_and_skipped() {
    let long = "x".repeat(100);
    let f = file(
        "oversized",
        "o.csv",
        format!("a,b\n1,{long}\n2,\"{long}\n{long}\"\n3,ok\n").as_bytes(),
    );
    let out = read(&config(&f, r#""max_record_bytes": 50"#), &f, None, 10).unwrap();
    assert_eq!(out.values(), strings(&[&["3", "ok"]]));
    assert_eq!(out.lines(), [5]);
    let reasons: Vec<_> = out
        .rejects
        .iter()
        .map(|r| (r.position, r.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                2,
                "record of 102 bytes exceeds max_record_bytes (50)".to_string()
            ),
            (
                3,
                "record of 205 bytes exceeds max_record_bytes (50)".to_string()
            )
        ]
    );
    assert!(out.rejects[0].raw.starts_with("1,xxx"));
}

#[test]
fn raw_text_of_a_reject_is_capped() {
    let big = "y".repeat(10_000);
    let f = file("rawcap", "c.csv", format!("a,b\n{big}\n").as_bytes());
    let out = read(&config(&f, ""), &f, None, 10).unwrap();
    assert_eq!(out.rejects.len(), 1);
    assert_eq!(
        out.rejects[0].raw.chars().count(),
        4097,
        "4 KiB plus an ellipsis"
    );
}

#[test]
fn empty_header_names_are_numbered() {
    let f = file("names", "n.csv", b" id ,,name, \n1,2,3,4\n");
    let out = read(&config(&f, ""), &f, None, 10).unwrap();
    assert_eq!(out.columns, ["id", "column_2", "name", "column_4"]);
}

#[test]
fn schema_kinds_and_typed_columns() {
    let f = file("types", "t.csv", b"id,amount,memo\n1,2.5,a\n,,b\nx,1,c\n");
    let cfg = config(&f, r#""types": {"id": "integer", "amount": "real"}"#);
    let partition = Partition {
        id: f.to_str().unwrap().into(),
        size: None,
    };
    let reader = CsvExtract::open(&cfg, partition, None).unwrap();
    let schema = weir_sdk::Reader::schema(&reader);
    let kinds: Vec<_> = schema
        .columns
        .iter()
        .map(|c| (c.kind, c.nullable))
        .collect();
    assert_eq!(
        kinds,
        [
            (Kind::Integer, true),
            (Kind::Real, true),
            (Kind::Text, true)
        ]
    );
    assert!(schema.primary_key.is_empty());
    let out = read(&cfg, &f, None, 10).unwrap();
    assert_eq!(
        out.values(),
        strings(&[&["1", "2.5", "a"], &["<null>", "<null>", "b"]])
    );
    assert_eq!(
        out.rejects[0].reason,
        "column \"id\": \"x\" is not an integer"
    );

    let bad = config(&f, r#""types": {"nope": "integer"}"#);
    let err = read(&bad, &f, None, 10).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig(m) if m.contains("\"nope\"") && m.contains("id, amount, memo")),
        "{err:?}"
    );
}

#[test]
fn without_header() {
    let f = file("noheader", "h.csv", b"1,a\n2,b\n");
    let out = read(&config(&f, r#""has_header": false"#), &f, None, 1).unwrap();
    assert_eq!(out.columns, ["column_1", "column_2"]);
    assert_eq!(out.values(), strings(&[&["1", "a"], &["2", "b"]]));
    assert_eq!(out.lines(), [1, 2]);

    let named = config(&f, r#""has_header": false, "columns": ["n", "s"]"#);
    let out = read(&named, &f, None, 1).unwrap();
    assert_eq!(out.columns, ["n", "s"]);
    assert_eq!(out.lines(), [1, 2]);

    // With a header, `columns` renames; the counts must agree.
    let g = file("renamed", "r.csv", b"x,y\n1,2\n");
    let out = read(&config(&g, r#""columns": ["a", "b"]"#), &g, None, 1).unwrap();
    assert_eq!(
        (out.columns.clone(), out.lines()),
        (vec!["a".to_string(), "b".into()], vec![2])
    );
    let err = read(&config(&g, r#""columns": ["a"]"#), &g, None, 1).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(m) if m.contains("1 names")));
}

#[test]
fn tab_trim_and_escape() {
    let f = file("dialect", "d.tsv", b"a\t b \n \"x\\\"y\" \t z \n");
    let cfg = config(&f, r#""delimiter": "tab", "trim": true, "escape": "\\""#);
    let out = read(&cfg, &f, None, 10).unwrap();
    assert_eq!(out.columns, ["a", "b"]);
    assert_eq!(out.values(), strings(&[&["x\"y", "z"]]));
}

#[test]
fn empty_files() {
    let f = file("empty", "e.csv", b"");
    let err = read(&config(&f, ""), &f, None, 10).unwrap_err();
    assert!(
        matches!(&err, Error::BadData(m) if m.contains("is empty")),
        "{err:?}"
    );
    let out = read(&config(&f, r#""columns": ["a"]"#), &f, None, 10).unwrap();
    assert!(out.rows.is_empty() && out.checkpoints.is_empty());
    // A header only: no batch at all.
    let h = file("headeronly", "h.csv", b"a,b\r\n\r\n");
    let out = read(&config(&h, ""), &h, None, 10).unwrap();
    assert_eq!((out.columns.len(), out.batches.len()), (2, 0));
}

#[test]
fn progress_counts_bytes() {
    let f = file("progress", "p.csv", b"a\n1\n2\n3\n");
    let out = read(&config(&f, ""), &f, None, 2).unwrap();
    let progress: Vec<_> = out
        .batches
        .iter()
        .map(|b| (b.progress.done, b.progress.total))
        .collect();
    assert_eq!(progress, [(6, Some(8)), (8, Some(8))]);
}

#[test]
fn partitions_are_the_sorted_matching_files() {
    let dir = temp_dir("partitions");
    for name in ["2026-02.csv", "2026-01.csv", "notes.txt"] {
        write_settled(&dir.join(name), "a\n1\n");
    }
    let cfg = config(&dir.join("*.csv"), "");
    let listing = CsvExtract::list(&cfg).unwrap();
    let ids: Vec<_> = listing.files.iter().map(|f| f.path.clone()).collect();
    let base = dir.to_str().unwrap();
    assert_eq!(
        ids,
        [format!("{base}/2026-01.csv"), format!("{base}/2026-02.csv")]
    );
    assert_eq!(listing.files[0].size, 4);

    let outside = Partition {
        id: format!("{base}/notes.txt"),
        size: None,
    };
    let err = CsvExtract::open(&cfg, outside, None).err().unwrap();
    assert!(matches!(err, Error::InvalidConfig(m) if m.contains("not matched")));

    let missing = config(&dir.join("nope/*.csv"), "");
    let err = CsvExtract::list(&missing).unwrap_err();
    assert!(err.message().contains("grants.read_dirs"), "{err:?}");
}

#[test]
fn describe_names_the_plugin() {
    let info = CsvExtract::describe();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("csv-extract", "0.1.0")
    );
    let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
    assert_eq!(schema["required"][0], "path");
}
