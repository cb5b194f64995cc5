//! Throughput figure, not a pass/fail test (ignored by default). Run natively with
//! `cargo test --release -p csv-extract --target x86_64-unknown-linux-gnu --test throughput
//! -- --ignored --nocapture` (`CSVX_ROWS` sets the row count, default 200000; 1000000 for
//! `verify_cost`).

mod common;

use common::{config, temp_dir};
use csv_extract::CsvExtract;
use std::fmt::Write as _;
use std::time::Instant;
use weir_sdk::{Extractor, Partition};

/// A bank statement like the hot-path research's: 10 columns, some quoted memos with commas,
/// quotes and line breaks, some non-ASCII text.
fn bank_csv(rows: usize) -> String {
    let mut s = String::from(
        "txn_id,booking_date,value_date,amount,balance,currency,counterparty,iban,reference,memo\n",
    );
    for i in 0..rows {
        let memo = match i % 50 {
            0 => "\"rent, March\"".to_string(),
            1 => "\"line one\nline two\"".to_string(),
            2 => "\"said \"\"hi\"\"\"".to_string(),
            _ => format!("payment {i}"),
        };
        let who = if i % 7 == 0 {
            "Zürich AG"
        } else {
            "ACME Corp"
        };
        writeln!(
            s,
            "{i},2026-01-{:02},2026-01-{:02},{}.{:02},{}.00,CHF,{who},CH93007620116238529{:02},REF{i:08},{memo}",
            i % 28 + 1,
            i % 28 + 1,
            (i * 37) % 10_000,
            i % 100,
            1_000_000 + i,
            i % 100
        )
        .unwrap();
    }
    s
}

#[test]
#[ignore = "benchmark: prints a figure"]
fn throughput() {
    let rows: usize = std::env::var("CSVX_ROWS").map_or(200_000, |v| v.parse().unwrap());
    let path = temp_dir("throughput").join("bank.csv");
    std::fs::write(&path, bank_csv(rows)).unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len();
    let cfg = config(&path, "");
    let start = Instant::now();
    let partition = Partition {
        id: path.to_str().unwrap().into(),
        size: None,
    };
    let mut reader = CsvExtract::open(&cfg, partition, None).unwrap();
    let mut n = 0u64;
    while let Some(batch) = reader.next_batch(1024).unwrap() {
        assert!(batch.rejects.is_empty());
        n += u64::from(batch.rows.row_count);
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(n, rows as u64);
    println!(
        "csv-extract: {n} rows, {:.1} MB in {secs:.3} s: {:.0} rows/s, {:.0} MB/s",
        bytes as f64 / 1e6,
        n as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
}

/// The scanner alone, to see how the time splits between parsing and building columns.
#[test]
#[ignore = "benchmark: prints a figure"]
fn scanner_only() {
    use csv_extract::parser::{Dialect, Parser};
    let rows: usize = std::env::var("CSVX_ROWS").map_or(200_000, |v| v.parse().unwrap());
    let data = bank_csv(rows);
    let start = Instant::now();
    let mut p = Parser::new(data.as_bytes(), Dialect::default(), 0, 1);
    let (mut n, mut fields) = (0u64, 0usize);
    while p.next_record().unwrap().is_some() {
        n += 1;
        fields += p.field_count();
    }
    let secs = start.elapsed().as_secs_f64();
    println!("scanner: {n} records, {fields} fields in {secs:.3} s");
}

/// The cost of `verify = "full"`: reading a file with each mode, then resuming at its end
/// (window: two 4 KiB hashes; full: re-hashing every byte before the offset).
#[test]
#[ignore = "benchmark: prints a figure"]
fn verify_cost() {
    let rows: usize = std::env::var("CSVX_ROWS").map_or(1_000_000, |v| v.parse().unwrap());
    let path = temp_dir("verify-cost").join("bank.csv");
    std::fs::write(&path, bank_csv(rows)).unwrap();
    let mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
    let partition = || Partition {
        id: path.to_str().unwrap().into(),
        size: None,
    };
    for verify in ["window", "full"] {
        let cfg = config(&path, &format!(r#""verify": "{verify}""#));
        let start = Instant::now();
        let mut reader = CsvExtract::open(&cfg, partition(), None).unwrap();
        let mut checkpoint = String::new();
        while let Some(batch) = reader.next_batch(1024).unwrap() {
            checkpoint = batch.checkpoint;
        }
        let read = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let mut reader = CsvExtract::open(&cfg, partition(), Some(checkpoint)).unwrap();
        assert!(reader.next_batch(1024).unwrap().is_none());
        let resume = start.elapsed().as_secs_f64();
        println!(
            "verify {verify}: {mb:.0} MB read in {read:.3} s, resumed at the end in {:.1} ms",
            resume * 1e3
        );
    }
}
