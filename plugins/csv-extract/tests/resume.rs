//! Checkpoints: resuming mid-file, picking up appended rows, and refusing truncated or
//! replaced files.

mod common;

use common::{Output, append_settled, config, read, temp_dir, write_settled};
use std::path::{Path, PathBuf};
use weir_sdk::Error;

/// A file with a header, quoted newlines and CRLF, so line numbers and offsets are not trivial.
fn sample(rows: usize) -> String {
    let mut s = String::from("id,memo,amount\r\n");
    for i in 1..=rows {
        if i % 3 == 0 {
            s.push_str(&format!("{i},\"memo {i}\r\nsecond line\",{i}.50\r\n"));
        } else {
            s.push_str(&format!("{i},plain {i},{i}\r\n"));
        }
    }
    s
}

fn write(test: &str, body: &[u8]) -> PathBuf {
    let path = temp_dir(test).join("data.csv");
    write_settled(&path, body);
    path
}

fn append(path: &Path, body: &[u8]) {
    append_settled(path, body);
}

fn bad_data(result: Result<Output, Error>) -> String {
    match result {
        Err(Error::BadData(m)) => m,
        other => panic!("expected bad-data, got {other:?}"),
    }
}

#[test]
fn resuming_after_any_batch_gives_exactly_the_remaining_rows() {
    let path = write("resume", sample(20).as_bytes());
    let cfg = config(&path, "");
    let full = read(&cfg, &path, None, 3).unwrap();
    assert_eq!(full.rows.len(), 20);
    assert_eq!(full.checkpoints.len(), 7);
    let mut seen = 0;
    for (i, cp) in full.checkpoints.iter().enumerate() {
        seen += full.batches[i].rows.row_count as usize;
        let rest = read(&cfg, &path, Some(cp.clone()), 4).unwrap();
        assert_eq!(rest.rows, full.rows[seen..], "after batch {i}");
    }
    // The last checkpoint is at the end: nothing left, not even an empty batch.
    let end = read(&cfg, &path, full.last_checkpoint(), 4).unwrap();
    assert!(end.batches.is_empty());
}

#[test]
fn appended_rows_are_picked_up_with_their_lines() {
    let path = write("append", sample(5).as_bytes());
    let cfg = config(&path, "");
    let first = read(&cfg, &path, None, 100).unwrap();
    assert_eq!(first.lines(), [2, 3, 4, 6, 7]);

    append(&path, b"6,\"new\nrow\",6\n7,x,7\n");
    let second = read(&cfg, &path, first.last_checkpoint(), 100).unwrap();
    assert_eq!(second.lines(), [8, 10]);
    assert_eq!(second.rows[0].1, ["6", "new\nrow", "6"]);

    // Appending again continues from the newer checkpoint.
    append(&path, b"8,y,8\n");
    let third = read(&cfg, &path, second.last_checkpoint(), 100).unwrap();
    assert_eq!(third.lines(), [11]);
}

#[test]
fn a_last_line_without_line_break_is_a_record() {
    let path = write("nofinal", b"a,b\n1,2");
    let cfg = config(&path, "");
    let first = read(&cfg, &path, None, 10).unwrap();
    assert_eq!(first.lines(), [2]);
    // Rows appended after it (starting with a line break) keep their physical lines.
    append(&path, b"\n3,4\n");
    let next = read(&cfg, &path, first.last_checkpoint(), 10).unwrap();
    assert_eq!(
        (next.lines(), next.values()),
        (vec![3], vec![vec!["3".into(), "4".into()]])
    );
}

#[test]
fn truncated_file_is_bad_data() {
    let path = write("truncated", sample(10).as_bytes());
    let cfg = config(&path, "");
    let full = read(&cfg, &path, None, 100).unwrap();
    write_settled(&path, &sample(10).as_bytes()[..40]);
    let msg = bad_data(read(&cfg, &path, full.last_checkpoint(), 100));
    let name = path.to_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "{name}: file is shorter than the last checkpoint (40 bytes < offset "
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("weir checkpoints reset <pipeline> {name}")),
        "{msg}"
    );
}

#[test]
fn replaced_file_is_bad_data() {
    let cfg_for = |p: &PathBuf| config(p, "");
    // Same header, different rows, longer than before.
    let path = write("replaced", sample(10).as_bytes());
    let cp = read(&cfg_for(&path), &path, None, 100)
        .unwrap()
        .last_checkpoint();
    write_settled(&path, sample(10).replace("plain", "other") + "99,x,1\r\n");
    let msg = bad_data(read(&cfg_for(&path), &path, cp, 100));
    assert!(msg.contains("changed since the last checkpoint"), "{msg}");

    // Another header.
    let path = write("replaced-header", sample(3).as_bytes());
    let cp = read(&cfg_for(&path), &path, None, 100)
        .unwrap()
        .last_checkpoint();
    write_settled(&path, sample(3).replacen("memo", "note", 1));
    let msg = bad_data(read(&cfg_for(&path), &path, cp, 100));
    assert!(msg.contains("the header line changed"), "{msg}");

    // A long file edited only just before the checkpoint (past the first 4 KiB).
    let body = sample(500);
    let path = write("replaced-tail", body.as_bytes());
    let cp = read(&cfg_for(&path), &path, None, 1000)
        .unwrap()
        .last_checkpoint();
    write_settled(&path, body.replace("499,plain 499", "499,PLAIN 499"));
    let msg = bad_data(read(&cfg_for(&path), &path, cp.clone(), 100));
    assert!(
        msg.contains("the content before the checkpoint changed"),
        "{msg}"
    );

    // An unchanged long file resumes fine.
    write_settled(&path, body.as_bytes());
    assert!(
        read(&cfg_for(&path), &path, cp, 100)
            .unwrap()
            .rows
            .is_empty()
    );
}

#[test]
fn corrupt_checkpoint_is_bad_data() {
    let path = write("corrupt", b"a\n1\n");
    let msg = bad_data(read(
        &config(&path, ""),
        &path,
        Some("{\"offset\":1".into()),
        10,
    ));
    assert!(msg.contains("not one of csv-extract's"), "{msg}");
}

#[test]
fn checkpoint_format() {
    let path = write("format", b"a,b\n1,2\n");
    let out = read(&config(&path, ""), &path, None, 10).unwrap();
    let cp: serde_json::Value = serde_json::from_str(&out.checkpoints[0]).unwrap();
    assert_eq!(
        (cp["v"].as_u64(), cp["offset"].as_u64(), cp["line"].as_u64()),
        (Some(1), Some(8), Some(3))
    );
    for key in ["head", "tail", "header"] {
        assert_eq!(cp[key].as_str().unwrap().len(), 16, "{key}");
    }
}

#[test]
fn resume_without_header_and_in_windows_1252() {
    let path = write("cp1252-resume", b"1;M\xFCller\n2;K\xF6ln\n3;\xC4rger\n");
    let cfg = config(
        &path,
        r#""has_header": false, "delimiter": ";", "encoding": "latin-1""#,
    );
    let full = read(&cfg, &path, None, 1).unwrap();
    assert_eq!(full.lines(), [1, 2, 3]);
    let rest = read(&cfg, &path, Some(full.checkpoints[0].clone()), 10).unwrap();
    assert_eq!(rest.values(), [["2", "Köln"], ["3", "Ärger"]]);
    assert_eq!(rest.lines(), [2, 3]);
}

#[test]
fn verify_full_sees_a_same_length_edit_in_the_middle_that_the_windows_miss() {
    let body = sample(2000);
    let path = write("verify-full", body.as_bytes());
    let full = config(&path, r#""verify": "full""#);
    let window = config(&path, "");
    let cp_full = read(&full, &path, None, 300).unwrap().last_checkpoint();
    let cp_window = read(&window, &path, None, 300).unwrap().last_checkpoint();
    let stored: serde_json::Value = serde_json::from_str(cp_full.as_deref().unwrap()).unwrap();
    assert_eq!(stored["full"].as_str().unwrap().len(), 16);
    assert!(!cp_window.as_deref().unwrap().contains("full"));

    // Same length, far from both 4 KiB windows.
    let edited = body.replace("1000,plain 1000,", "1000,PLAIN 1000,");
    assert_eq!(edited.len(), body.len());
    write_settled(&path, &edited);
    let unnoticed = read(&window, &path, cp_window, 100).unwrap();
    assert!(
        unnoticed.rows.is_empty(),
        "the documented limit of the windows"
    );
    let msg = bad_data(read(&full, &path, cp_full.clone(), 100));
    assert!(
        msg.contains(
            "the content between the first 4 KiB and the 4 KiB before the checkpoint changed"
        ),
        "{msg}"
    );

    // Unchanged, it resumes, and appended rows carry the running hash on across runs.
    write_settled(&path, &body);
    assert!(
        read(&full, &path, cp_full.clone(), 100)
            .unwrap()
            .rows
            .is_empty()
    );
    append(&path, b"2001,x,1\r\n");
    let next = read(&full, &path, cp_full, 100).unwrap();
    assert_eq!(next.values(), [["2001", "x", "1"]]);
    append(&path, b"2002,y,2\r\n");
    let last = read(&full, &path, next.last_checkpoint(), 100).unwrap();
    assert_eq!(last.values(), [["2002", "y", "2"]]);
    let resumed_cp = last.last_checkpoint().unwrap();
    let fresh_cp = read(&full, &path, None, 100)
        .unwrap()
        .last_checkpoint()
        .unwrap();
    assert_eq!(
        resumed_cp, fresh_cp,
        "a resumed hash equals a from-scratch one"
    );
}
