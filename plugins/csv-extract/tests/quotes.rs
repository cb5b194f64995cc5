//! RFC 4180 quoting: a misplaced quote is a reject naming the column (strict, the default),
//! or a field kept exactly as written (lenient); never a silently changed value.

mod common;

use common::{config, read, temp_dir, write_settled};
use std::fmt::Write as _;
use std::path::PathBuf;
use weir_sdk::Error;

fn file(test: &str, bytes: &[u8]) -> PathBuf {
    let path = temp_dir(test).join("q.csv");
    write_settled(&path, bytes);
    path
}

fn rejects(out: &common::Output) -> Vec<(u64, String, String)> {
    out.rejects
        .iter()
        .map(|r| (r.position, r.reason.clone(), r.raw.clone()))
        .collect()
}

fn owned(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[test]
fn the_issue_examples_are_rejects_or_verbatim() {
    let f = file(
        "issue",
        b"id,memo\n1,\"ab\"cd\n2,ab\"cd\n3,abcd\"\n4,\"ab\"\"cd\"\n",
    );
    let strict = read(&config(&f, ""), &f, None, 10).unwrap();
    assert_eq!(
        rejects(&strict),
        [
            (
                2,
                "column \"memo\": text after closing quote: \"ab\"cd".into(),
                "1,\"ab\"cd".into()
            ),
            (
                3,
                "column \"memo\": quote inside an unquoted field: ab\"cd".into(),
                "2,ab\"cd".into()
            ),
            (
                4,
                "column \"memo\": quote inside an unquoted field: abcd\"".into(),
                "3,abcd\"".into()
            ),
        ]
    );
    // The well-formed doubled quote is unquoted as always.
    assert_eq!(strict.values(), owned(&[&["4", "ab\"cd"]]));
    assert_eq!(strict.lines(), [5]);

    let lenient = read(&config(&f, r#""quotes": "lenient""#), &f, None, 10).unwrap();
    assert!(lenient.rejects.is_empty());
    assert_eq!(
        lenient.values(),
        owned(&[
            &["1", "\"ab\"cd"],
            &["2", "ab\"cd"],
            &["3", "abcd\""],
            &["4", "ab\"cd"]
        ])
    );
}

#[test]
fn columns_without_a_name_are_numbered() {
    // No header: columns are numbered.
    let f = file("numbered", b"1,2,x\"y\n4,5,6\n");
    let out = read(&config(&f, r#""has_header": false"#), &f, None, 10).unwrap();
    assert_eq!(
        rejects(&out)[0].1,
        "column 3: quote inside an unquoted field: x\"y"
    );
    assert_eq!(out.values(), owned(&[&["4", "5", "6"]]));

    // A field past the header's columns, and an empty header name: numbers too. The quote
    // is the reason even though the field count is also wrong: it is what broke the record.
    let f = file("extra", b"a,\n1,\"2\"x\n1,2,\"3\n\"z\n");
    let out = read(&config(&f, ""), &f, None, 10).unwrap();
    let reasons: Vec<_> = rejects(&out).into_iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        reasons,
        [
            (2, "column 2: text after closing quote: \"2\"x".into()),
            (3, "column 3: text after closing quote: \"3\\n\"z".into()),
        ]
    );
}

#[test]
fn a_stray_quote_in_the_header_stops_the_file() {
    let f = file("header", b"id,na\"me\n1,2\n");
    match read(&config(&f, ""), &f, None, 10) {
        Err(Error::BadData(m)) => assert_eq!(
            m,
            format!(
                "{}: line 1: the header, field 2: quote inside an unquoted field: na\"me",
                f.display()
            )
        ),
        other => panic!("{other:?}"),
    }
    // Leniently the name is kept as written.
    let out = read(&config(&f, r#""quotes": "lenient""#), &f, None, 10).unwrap();
    assert_eq!(out.columns, ["id", "na\"me"]);
}

/// A generated file and what reading it must give.
struct Generated {
    text: String,
    /// (line, reason) of each malformed record.
    bad: Vec<(u64, String)>,
    /// (line, id) of each good one.
    good: Vec<(u64, u64)>,
}

/// A statement of `rows` rows with multi-line memos, and malformed records at known lines.
fn statement_with_stray_quotes(rows: u64) -> Generated {
    let mut text = String::from("id,name,amount,memo\n");
    let mut line = 2;
    let (mut bad, mut good) = (Vec::new(), Vec::new());
    for id in 1..=rows {
        let start = line;
        if id % 10_007 == 0 {
            // A quote inside an unquoted field, in the middle of the record.
            writeln!(text, "{id},ACME \"Ltd\",{id}.50,plain").unwrap();
            bad.push((
                start,
                "column \"name\": quote inside an unquoted field: ACME \"Ltd\"".to_string(),
            ));
        } else if id % 9_973 == 0 {
            // Text after the closing quote of a quoted memo, at the end of the record.
            writeln!(text, "{id},ACME,{id}.50,\"memo, {id}\"x").unwrap();
            bad.push((
                start,
                format!("column \"memo\": text after closing quote: \"memo, {id}\"x"),
            ));
        } else if id % 97 == 0 {
            // Well-formed quoting with a line break and doubled quotes: counted lines move on.
            writeln!(text, "{id},\"B, \"\"C\"\"\",{id}.50,\"two\r\nlines\"").unwrap();
            line += 1;
            good.push((start, id));
        } else {
            writeln!(text, "{id},name {id},{id}.50,memo {id}").unwrap();
            good.push((start, id));
        }
        line += 1;
    }
    Generated { text, bad, good }
}

#[test]
fn stray_quotes_at_known_lines_of_a_100k_row_file_are_rejects_there_and_nothing_else() {
    let Generated { text, bad, good } = statement_with_stray_quotes(100_000);
    assert_eq!(bad.len(), 19, "9 of one kind, 10 of the other");
    let f = file("100k", text.as_bytes());
    let out = read(&config(&f, ""), &f, None, 1024).unwrap();

    let got_bad: Vec<(u64, String)> = out
        .rejects
        .iter()
        .map(|r| (r.position, r.reason.clone()))
        .collect();
    assert_eq!(got_bad, bad);
    let got_good: Vec<(u64, u64)> = out
        .rows
        .iter()
        .map(|(line, v)| (*line, v[0].parse().unwrap()))
        .collect();
    assert_eq!(got_good, good, "every other row loads, at its line");
    // Values of a well-formed row with quoting are unquoted as before.
    let (_, row) = out.rows.iter().find(|(_, v)| v[0] == "97").unwrap();
    assert_eq!(row, &["97", "B, \"C\"", "97.50", "two\r\nlines"]);

    // Leniently every record is a row, and the malformed fields are exactly as written.
    let lenient = read(&config(&f, r#""quotes": "lenient""#), &f, None, 1024).unwrap();
    assert!(lenient.rejects.is_empty());
    assert_eq!(lenient.rows.len(), 100_000);
    let field = |id: &str, col: usize| {
        lenient
            .rows
            .iter()
            .find(|(_, v)| v[0] == id)
            .map(|(_, v)| v[col].clone())
            .unwrap()
    };
    assert_eq!(field("10007", 1), "ACME \"Ltd\"");
    assert_eq!(field("9973", 3), "\"memo, 9973\"x");
}
