//! A deterministic bank-statement CSV: every row is a pure function of its index, so a file of
//! N rows plus rows N..N+k is byte-identical to a file of N+k rows (appends are just more rows).
//!
//! Columns: `id` (integer), `account`, `booking_date`, `value_date`, `amount` (decimal, about
//! half negative), `currency`, `counterparty` (some with commas and quotes), `memo` (some with
//! line breaks and non-ASCII text), `category`, `balance` (decimal). About 140 bytes a row.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;

/// Bumped whenever the output changes, so cached files are regenerated.
pub const VERSION: u32 = 1;

pub const HEADER: [&str; 10] = [
    "id",
    "account",
    "booking_date",
    "value_date",
    "amount",
    "currency",
    "counterparty",
    "memo",
    "category",
    "balance",
];

const ACCOUNTS: [&str; 6] = [
    "DE89370400440532013000",
    "CH9300762011623852957",
    "GB29NWBK60161331926819",
    "FR1420041010050500013M02606",
    "AT611904300234573201",
    "NL91ABNA0417164300",
];

const COUNTERPARTIES: [&str; 10] = [
    "ACME Corp.",
    "Müller & Söhne GmbH",
    "Smith, Jones and Partners LLP",
    "\"The Corner Shop\" Ltd",
    "Zürcher Kantonalbank",
    "北京贸易有限公司",
    "O'Brien, Patrick",
    "Stadtwerke München",
    "Café \"Zur Post\", Inh. J. Weiß",
    "Amazon EU S.à r.l.",
];

const CATEGORIES: [&str; 8] = [
    "groceries",
    "salary",
    "rent",
    "utilities",
    "transfer",
    "fees",
    "travel",
    "insurance",
];

const CURRENCIES: [&str; 10] = [
    "EUR", "EUR", "EUR", "EUR", "EUR", "EUR", "EUR", "CHF", "CHF", "USD",
];

/// SplitMix64: a well-mixed 64-bit value from a counter.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Days since 1970-01-01 → (year, month, day).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn date(days: i64) -> String {
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Cents as a decimal with two places: `-1234.05`, `-0.50`, `17.00`.
fn decimal(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The 10 fields of row `index` (0-based; its id is `index + 1`).
pub fn row(index: u64) -> [String; 10] {
    let h = mix(index);
    let h2 = mix(h ^ 0x5bd1_e995);
    let pick = |n: usize, shift: u32| (h >> shift) as usize % n;
    // 2020-01-01 is day 18262; about 400 bookings a day, in order.
    let booking = 18_262 + (index / 400) as i64;
    let value = booking + (h >> 8) as i64 % 4;
    let amount = (h2 % 2_000_000) as i64 - 1_000_000;
    let balance = (mix(h2) % 100_000_000) as i64 - 20_000_000;
    let memo = match h2 >> 40 & 15 {
        0 => format!("Rechnung {index}\nZahlung für März, Ref. {}", h % 10_000),
        1 => format!("支付订单 {index} — 北京"),
        2 => format!("Rent, \"Flat 3\"\r\nPeriod {}", (index / 400) % 12 + 1),
        3 => "Überweisung; Gebühr €2,50".to_owned(),
        4 => format!("Card payment {} Zürich", h % 100_000),
        _ => format!("Payment ref {:08x}", h as u32),
    };
    [
        (index + 1).to_string(),
        ACCOUNTS[pick(ACCOUNTS.len(), 12)].to_owned(),
        date(booking),
        date(value),
        decimal(amount),
        CURRENCIES[pick(CURRENCIES.len(), 20)].to_owned(),
        COUNTERPARTIES[pick(COUNTERPARTIES.len(), 28)].to_owned(),
        memo,
        CATEGORIES[pick(CATEGORIES.len(), 36)].to_owned(),
        decimal(balance),
    ]
}

/// Write rows `from..to` as CSV to `out` (with the header when `header`).
pub fn write_rows(out: impl Write, from: u64, to: u64, header: bool) -> anyhow::Result<()> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .buffer_capacity(1 << 20)
        .from_writer(out);
    if header {
        w.write_record(HEADER)?;
    }
    for i in from..to {
        w.write_record(row(i))?;
    }
    w.flush()?;
    Ok(())
}

/// Write a file of `rows` rows at `path` (atomically: a temp file, then rename). A path that is
/// not a regular file (`/dev/null`, a FIFO) is written in place: renaming over a device node
/// would replace it with a plain file for the whole machine.
pub fn write_file(path: &Path, rows: u64) -> anyhow::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        return write_rows(file, 0, rows, true);
    }
    let tmp = path.with_extension("tmp");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    write_rows(file, 0, rows, true)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Append rows `from..to` to an existing file.
pub fn append_file(path: &Path, from: u64, to: u64) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {} for appending", path.display()))?;
    write_rows(&mut file, from, to, false)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appending_equals_generating_more() {
        let mut whole = Vec::new();
        write_rows(&mut whole, 0, 300, true).unwrap();
        let mut parts = Vec::new();
        write_rows(&mut parts, 0, 200, true).unwrap();
        write_rows(&mut parts, 200, 300, false).unwrap();
        assert_eq!(whole, parts);
    }

    #[test]
    fn rows_have_the_awkward_parts() {
        let rows: Vec<_> = (0..2000).map(row).collect();
        assert!(rows.iter().any(|r| r[7].contains('\n')));
        assert!(rows.iter().any(|r| r[7].contains("北京")));
        assert!(
            rows.iter()
                .any(|r| r[6].contains(',') && r[6].contains('"'))
        );
        assert!(rows.iter().any(|r| r[4].starts_with('-')));
        assert!(rows.iter().all(|r| r[4].parse::<f64>().is_ok()));
        assert_eq!(decimal(-5), "-0.05");
        assert_eq!(decimal(123_400), "1234.00");
        assert_eq!(date(18_262), "2020-01-01");
        let mut text = Vec::new();
        write_rows(&mut text, 0, 1000, true).unwrap();
        let mut reader = csv::Reader::from_reader(&text[..]);
        assert_eq!(reader.records().count(), 1000);
    }
}
