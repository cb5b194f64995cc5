//! Plugins in other languages: the Python (componentize-py) and JavaScript (componentize-js)
//! example transforms of plugins/examples, in the bank-recon pipeline, with the real binary.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::bank_recon::bank_recon_fixture;
use crate::support::*;

const PYTHON: &str = "python-transform";
const JS: &str = "js-transform";

/// The example plugins, built by `just plugins-examples`.
fn examples_dist() -> PathBuf {
    let dist = repo_root().join("plugins/examples/dist");
    for name in [PYTHON, JS] {
        assert!(
            dist.join(format!("{name}.wasm")).is_file(),
            "{}/{name}.wasm is missing: run `just plugins-examples` (or `just test`, which builds it)",
            dist.display()
        );
    }
    dist
}

/// Compiling a 12–18 MB Python or JS component takes tens of seconds on a slow machine; do it
/// once, before any test here runs weir, so parallel tests do not all compile the same plugin.
fn warm_compile_cache() {
    static WARM: OnceLock<()> = OnceLock::new();
    WARM.get_or_init(|| {
        let fx = Fixture::new();
        std::fs::write(
            fx.path("weir.toml"),
            Fixture::engine_section(&examples_dist()),
        )
        .unwrap();
        fx.weir(&["plugins", "list"]).success();
    });
}

/// The bank-recon example with `transforms` (TOML `[[pipeline.transform]]` tables) after its
/// map-transform, and a plugins folder holding the bundled and the example plugins.
fn polyglot_fixture(transforms: &str) -> Fixture {
    warm_compile_cache();
    let fx = bank_recon_fixture();
    let dir = fx.path("plugins");
    std::fs::create_dir(&dir).unwrap();
    for source in [plugins_dist(), examples_dist()] {
        for entry in std::fs::read_dir(source).unwrap() {
            let entry = entry.unwrap();
            if entry.path().extension().is_some_and(|e| e == "wasm") {
                std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
            }
        }
    }
    let config = std::fs::read_to_string(fx.path("weir.toml")).unwrap();
    let config = config
        .replace(
            &format!("plugins_dir = \"{}\"", plugins_dist().display()),
            &format!("plugins_dir = \"{}\"", dir.display()),
        )
        .replacen(
            "[[pipeline.load]]",
            &format!("{transforms}\n[[pipeline.load]]"),
            1,
        );
    std::fs::write(fx.path("weir.toml"), config).unwrap();
    fx
}

/// A fourth statement file: a large debit, a counterparty with no name, an amount exactly at
/// the threshold. The header is copied from a shipped file (it is Windows-1252).
fn add_april_statement(fx: &Fixture) {
    let january = std::fs::read(fx.path("inbox/2026-01.csv")).unwrap();
    let header_end = january.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut file = january[..header_end].to_vec();
    file.extend_from_slice(
        b"100101;01.04.2026;02.04.2026;-3.100,00;EUR;Stadtwerke K\xf6ln;Miete April;1.000,00\r\n\
          100102;02.04.2026;03.04.2026;10,00;EUR;---;Rechnung Nr. 1;1.010,00\r\n\
          100103;03.04.2026;04.04.2026;2.500,00;EUR;ACME Ltd.;Kaffee;3.510,00\r\n",
    );
    fx.write("inbox/2026-04.csv", file);
}

fn strings(db: &rusqlite::Connection, sql: &str) -> Vec<Vec<String>> {
    let mut stmt = db.prepare(sql).unwrap();
    let width = stmt.column_count();
    stmt.query_map([], |r| {
        (0..width)
            .map(|i| {
                let v: rusqlite::types::Value = r.get(i)?;
                Ok(match v {
                    rusqlite::types::Value::Null => "NULL".to_owned(),
                    rusqlite::types::Value::Integer(n) => n.to_string(),
                    rusqlite::types::Value::Real(x) => x.to_string(),
                    rusqlite::types::Value::Text(s) => s,
                    rusqlite::types::Value::Blob(b) => format!("{b:?}"),
                })
            })
            .collect()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

const PAYEE_NORMALIZE: &str = r#"
[[pipeline.transform]]
plugin = "payee-normalize"
config = { threshold = 2500 }
"#;

const MEMO_CATEGORIZE: &str = r#"
[[pipeline.transform]]
plugin = "memo-categorize"
"#;

#[test]
fn python_transform_normalises_payees_flags_unusual_amounts_and_rejects_nameless_rows() {
    let fx = polyglot_fixture(PAYEE_NORMALIZE);
    add_april_statement(&fx);
    let run = fx.weir(&["run", "bank-recon"]);
    run.success();
    // The demo's 78 records and 4 rejects, plus April: 3 records, 1 rejected by Python.
    assert_eq!(run.totals(), (81, 76, 5), "{}", run.stdout());

    let db = fx.db("ledger.db");
    let pairs = strings(
        &db,
        "SELECT DISTINCT counterparty, payee FROM transactions ORDER BY counterparty",
    );
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|p| (p[0].as_str(), p[1].as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("ACME Ltd.", "ACME"),
            ("Bäckerei Höfli", "BAECKEREI HOEFLI"),
            ("Café \"Zum Löwen\"", "CAFE ZUM LOEWEN"),
            ("Grün, Blau & Partner AG", "GRUEN BLAU & PARTNER"),
            ("Jürg Weiß", "JUERG WEISS"),
            ("Müller & Söhne GmbH", "MUELLER & SOEHNE"),
            ("Stadtwerke Köln", "STADTWERKE KOELN"),
            ("Zürcher Kantonalbank", "ZUERCHER KANTONALBANK"),
            ("Ärztehaus Süd", "AERZTEHAUS SUED"),
        ]
    );
    // `unusual` is a real boolean column (0/1) and exactly |amount| > 2500; 2500.00 is not.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM transactions WHERE typeof(unusual) != 'integer' \
             OR unusual != (abs(CAST(amount AS REAL)) > 2500)"
        ),
        0
    );
    assert_eq!(
        count(&db, "SELECT sum(unusual) FROM transactions"),
        12,
        "11 in the demo data plus April's -3100.00"
    );
    assert_eq!(
        strings(
            &db,
            "SELECT unusual FROM transactions WHERE txn_id IN (100101, 100103) ORDER BY txn_id"
        ),
        vec![vec!["1"], vec!["0"]]
    );

    // The Python reject is kept with its file, physical line and stage, like any other.
    let rejects = strings(
        &db,
        "SELECT file, line, stage, reason FROM _weir_rejects WHERE stage = 'payee-normalize'",
    );
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(
        rejects[0][..3],
        ["inbox/2026-04.csv", "3", "payee-normalize"]
    );
    assert_eq!(
        rejects[0][3],
        "counterparty: '---' has no letters or digits"
    );

    // Incremental as ever: nothing new, nothing loaded.
    assert_eq!(fx.weir(&["run", "bank-recon"]).success().totals().1, 0);
}

#[test]
fn js_transform_categorises_memos_and_rejects_unmatched_rows_when_asked() {
    let fx = polyglot_fixture(MEMO_CATEGORIZE);
    // A second pipeline with two rules only, rejecting every other memo.
    let config = std::fs::read_to_string(fx.path("weir.toml")).unwrap();
    let pipeline = &config[config.find("[[pipeline]]").unwrap()..];
    let strict = pipeline
        .replace("name = \"bank-recon\"", "name = \"strict\"")
        .replace("table = \"transactions\"", "table = \"strict\"")
        .replace(
            "plugin = \"memo-categorize\"",
            "plugin = \"memo-categorize\"\nconfig = { reject_unmatched = true, rules = [\
             { category = \"rent\", keywords = [\"MIETE\"] }, \
             { category = \"salary\", keywords = [\"gehalt\", \"lohn\"] }] }",
        );
    std::fs::write(fx.path("weir.toml"), format!("{config}\n{strict}")).unwrap();

    let run = fx.weir(&["run", "bank-recon"]);
    assert_eq!(run.success().totals(), (78, 74, 4), "{}", run.stdout());
    let db = fx.db("ledger.db");
    let categories = strings(
        &db,
        "SELECT replace(memo, char(10), ' '), category, count(*) FROM transactions \
         GROUP BY 1, 2 ORDER BY 2",
    );
    let expected = [
        ("Bar-Einzahlung", "cash", 9),
        ("Gebühren Kontoführung", "fees", 5),
        ("Rechnung Nr. 4711", "invoice", 16),
        ("Rückerstattung Beleg 12; Storno", "refund", 10),
        ("Miete März", "rent", 6),
        ("Gehalt Zusatz: Prämie", "salary", 8),
        ("Überweisung \"dringend\"", "transfer", 5),
        ("Lastschrift Strom; Abschlag", "utilities", 15),
    ];
    let expected: Vec<Vec<String>> = expected
        .iter()
        .map(|(m, c, n)| vec![m.to_string(), c.to_string(), n.to_string()])
        .collect();
    assert_eq!(categories, expected);

    // Strict: 14 rent or salary rows load; the 60 others are rejects of the JS stage, each at
    // its own file and line.
    let run = fx.weir(&["run", "strict"]);
    assert_eq!(run.success().totals(), (78, 14, 64), "{}", run.stdout());
    assert_eq!(
        strings(
            &db,
            "SELECT category, count(*) FROM strict GROUP BY 1 ORDER BY 1"
        ),
        vec![vec!["rent", "6"], vec!["salary", "8"]]
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM _weir_rejects WHERE stage = 'memo-categorize'"
        ),
        60
    );
    // txn 100001 is line 2 of January: "Gebühren Kontoführung".
    assert_eq!(
        strings(
            &db,
            "SELECT reason FROM _weir_rejects WHERE stage = 'memo-categorize' \
             AND file = 'inbox/2026-01.csv' AND line = 2"
        ),
        vec![vec!["memo: no category matches \"Gebühren Kontoführung\""]]
    );
}

#[test]
fn python_and_js_transforms_chain_and_their_config_errors_are_not_retried() {
    let fx = polyglot_fixture(&format!("{PAYEE_NORMALIZE}{MEMO_CATEGORIZE}"));
    let run = fx.weir(&["run", "bank-recon"]);
    assert_eq!(run.success().totals(), (78, 74, 4), "{}", run.stdout());
    let row = strings(
        &fx.db("ledger.db"),
        "SELECT payee, unusual, category FROM transactions WHERE txn_id = 100003",
    );
    assert_eq!(row, vec![vec!["MUELLER & SOEHNE", "0", "utilities"]]);

    // `invalid-config` from either language fails the run at once, naming plugin and key.
    let config = std::fs::read_to_string(fx.path("weir.toml")).unwrap();
    for (broken, message) in [
        (
            config.replace("threshold = 2500", "treshold = 2500"),
            "plugin \"payee-normalize\" 0.1.0: open: invalid config: \
             unknown config key 'treshold'",
        ),
        (
            config.replace(
                "plugin = \"memo-categorize\"",
                "plugin = \"memo-categorize\"\nconfig = { memo = \"verwendungszweck\" }",
            ),
            "plugin \"memo-categorize\" 0.1.0: open: invalid config: memo: \
             no column \"verwendungszweck\"",
        ),
    ] {
        std::fs::write(fx.path("weir.toml"), broken).unwrap();
        let run = fx.weir(&["run", "bank-recon"]);
        run.failure();
        assert!(run.stdout().contains(message), "{}", run.stdout());
        assert!(
            run.stderr().contains("retryable=false attempts=1"),
            "{}",
            run.stderr()
        );
    }
}

#[test]
fn python_and_js_plugins_list_as_transformers_and_load_from_the_compile_cache() {
    let fx = polyglot_fixture("");
    let run = fx.weir(&["plugins", "list"]);
    let out = run.success().stdout();
    for (name, file) in [
        ("payee-normalize", "python-transform.wasm"),
        ("memo-categorize", "js-transform.wasm"),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{out}"));
        assert!(
            line.contains("transformer") && line.contains(file) && line.ends_with("(cached)"),
            "{line}"
        );
    }

    let inspect = fx.weir(&[
        "plugins",
        "inspect",
        examples_dist().join("js-transform.wasm").to_str().unwrap(),
    ]);
    let out = inspect.success().stdout();
    assert!(
        out.contains("world:    weir:plugin/transformer-plugin@0.1.0"),
        "{out}"
    );
    // Built with `-d http fetch-event`: no wasi:http import, which weir would refuse.
    assert!(!out.contains("wasi:http"), "{out}");
}

/// Load times and throughput of the Python and JS transforms against the Rust map-transform,
/// through the runtime weir itself uses: `just bench-polyglot` prints the table the docs quote.
#[test]
#[ignore]
fn polyglot_bench() {
    bench::run();
}

mod bench {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use weir_runtime::types::{Column, ColumnData, ColumnVector, Kind, Rows, Schema, VarWidth};
    use weir_runtime::{CallSite, Databases, Grants, InstanceOptions, Limits, Runtime};

    use super::{examples_dist, plugins_dist};

    const COUNTERPARTIES: [&str; 8] = [
        "Zürcher Kantonalbank",
        "Bäckerei Höfli",
        "Müller & Söhne GmbH",
        "Jürg Weiß",
        "Stadtwerke Köln",
        "Ärztehaus Süd",
        "Café \"Zum Löwen\"",
        "Grün, Blau & Partner AG",
    ];
    const MEMOS: [&str; 8] = [
        "Gebühren Kontoführung",
        "Rechnung Nr. 4711",
        "Lastschrift Strom; Abschlag",
        "Miete März",
        "Bar-Einzahlung",
        "Gehalt\nZusatz: Prämie",
        "Rückerstattung\nBeleg 12; Storno",
        "Überweisung \"dringend\"",
    ];

    fn text(values: impl Iterator<Item = String>) -> ColumnVector {
        let mut data = Vec::new();
        let mut ends = Vec::new();
        for v in values {
            data.extend_from_slice(v.as_bytes());
            ends.push(data.len() as u32);
        }
        ColumnVector {
            data: ColumnData::Text(VarWidth { data, ends }),
            nulls: None,
        }
    }

    fn column(name: &str, kind: Kind) -> Column {
        Column {
            name: name.into(),
            kind,
            nullable: true,
        }
    }

    /// `n` statement rows as the CSV extractor hands them over: all text, German headers.
    fn raw_rows(n: usize) -> (Schema, Rows) {
        let names = [
            "Transaktions-ID",
            "Buchungstag",
            "Valuta",
            "Betrag",
            "Währung",
            "Empfänger/Auftraggeber",
            "Verwendungszweck",
            "Saldo",
        ];
        let schema = Schema {
            columns: names.iter().map(|n| column(n, Kind::Text)).collect(),
            primary_key: vec![],
        };
        let day = |i: usize| format!("{:02}.{:02}.2026", i % 28 + 1, i % 12 + 1);
        let money = |i: usize| {
            format!(
                "{}{}.{:03},{:02}",
                ["", "-"][i % 2],
                i % 3 + 1,
                i % 997,
                i % 100
            )
        };
        let rows = Rows {
            row_count: n as u32,
            columns: vec![
                text((0..n).map(|i| (100_000 + i).to_string())),
                text((0..n).map(day)),
                text((0..n).map(|i| day(i + 1))),
                text((0..n).map(money)),
                text((0..n).map(|_| "EUR".to_owned())),
                text((0..n).map(|i| COUNTERPARTIES[i % 8].to_owned())),
                text((0..n).map(|i| MEMOS[(i / 8 + i) % 8].to_owned())),
                text((0..n).map(|i| money(i * 7))),
            ],
        };
        (schema, rows)
    }

    /// The same rows after map-transform: what the Python and JS transforms get in bank-recon.
    fn typed_rows(n: usize) -> (Schema, Rows) {
        let schema = Schema {
            columns: vec![
                Column {
                    name: "txn_id".into(),
                    kind: Kind::Integer,
                    nullable: false,
                },
                column("booking_date", Kind::Date),
                column("value_date", Kind::Date),
                column("amount", Kind::Decimal),
                column("currency", Kind::Text),
                column("counterparty", Kind::Text),
                column("memo", Kind::Text),
                column("balance", Kind::Decimal),
            ],
            primary_key: vec!["txn_id".into()],
        };
        let date = |i: usize| format!("2026-{:02}-{:02}", i % 12 + 1, i % 28 + 1);
        let money = |i: usize| {
            format!(
                "{}{}{:03}.{:02}",
                ["", "-"][i % 2],
                i % 3 + 1,
                i % 997,
                i % 100
            )
        };
        let rows = Rows {
            row_count: n as u32,
            columns: vec![
                ColumnVector {
                    data: ColumnData::Integer((0..n as i64).map(|i| 100_000 + i).collect()),
                    nulls: None,
                },
                text((0..n).map(date)),
                text((0..n).map(|i| date(i + 1))),
                text((0..n).map(money)),
                text((0..n).map(|_| "EUR".to_owned())),
                text((0..n).map(|i| COUNTERPARTIES[i % 8].to_owned())),
                text((0..n).map(|i| MEMOS[(i / 8 + i) % 8].to_owned())),
                text((0..n).map(|i| money(i * 7))),
            ],
        };
        (schema, rows)
    }

    const MAP_CONFIG: &str = r#"{
        "rename": { "Transaktions-ID": "txn_id", "Buchungstag": "booking_date", "Valuta": "value_date",
                    "Betrag": "amount", "Währung": "currency", "Empfänger/Auftraggeber": "counterparty",
                    "Verwendungszweck": "memo", "Saldo": "balance" },
        "types": { "txn_id": "integer", "booking_date": "date", "value_date": "date",
                   "amount": "decimal", "balance": "decimal" },
        "date_format": "%d.%m.%Y", "decimal_comma": true, "thousands_separator": ".",
        "required": ["txn_id", "booking_date", "amount"], "primary_key": ["txn_id"] }"#;

    fn median(mut v: Vec<Duration>) -> Duration {
        v.sort();
        v[v.len() / 2]
    }

    struct Figures {
        cold: Duration,
        cached: Duration,
        size: u64,
        instantiate: Duration,
        rows_per_s: Vec<(usize, f64)>,
    }

    fn measure(file: &Path, config: &str, input: fn(usize) -> (Schema, Rows)) -> Figures {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let cache = tempfile::tempdir().unwrap();
            let cold = Runtime::new(Some(cache.path().to_owned()))
                .unwrap()
                .load_file(file)
                .await
                .unwrap()
                .load_time;
            let mut cached = Vec::new();
            let mut runtime_plugin = None;
            for _ in 0..5 {
                let runtime = Runtime::new(Some(cache.path().to_owned())).unwrap();
                let plugin = runtime.load_file(file).await.unwrap();
                cached.push(plugin.load_time);
                runtime_plugin = Some((runtime, plugin));
            }
            let (runtime, plugin) = runtime_plugin.unwrap();
            let limits = Limits::default();
            let grants = Grants::default();
            let options = || InstanceOptions {
                site: CallSite::default(),
                limits: &limits,
                grants: &grants,
                databases: Databases::default(),
            };
            let mut instantiate = Vec::new();
            for _ in 0..5 {
                let started = Instant::now();
                let mut t = runtime.transformer(&plugin, options()).await.unwrap();
                instantiate.push(started.elapsed());
                t.close().await;
            }
            let mut rows_per_s = Vec::new();
            for n in [1024, 10_000] {
                let (schema, rows) = input(n);
                let mut t = runtime.transformer(&plugin, options()).await.unwrap();
                t.open(config, &schema).await.unwrap();
                let warm = t.apply(&rows).await.unwrap();
                assert_eq!(
                    warm.rows.row_count as usize,
                    n,
                    "{:?}",
                    warm.rejects.first()
                );
                let mut times = Vec::new();
                for _ in 0..7 {
                    let started = Instant::now();
                    t.apply(&rows).await.unwrap();
                    times.push(started.elapsed());
                }
                rows_per_s.push((n, n as f64 / median(times).as_secs_f64()));
            }
            Figures {
                cold,
                cached: median(cached),
                size: std::fs::metadata(file).unwrap().len(),
                instantiate: median(instantiate),
                rows_per_s,
            }
        })
    }

    pub fn run() {
        let plugins = [
            (
                "Rust map-transform",
                plugins_dist().join("map-transform.wasm"),
                MAP_CONFIG,
                raw_rows as fn(usize) -> (Schema, Rows),
            ),
            (
                "Python payee-normalize",
                examples_dist().join("python-transform.wasm"),
                r#"{"threshold": 2500}"#,
                typed_rows,
            ),
            (
                "JS memo-categorize",
                examples_dist().join("js-transform.wasm"),
                "{}",
                typed_rows,
            ),
        ];
        println!(
            "| transform | size | cold load | cached load | instantiate | rows/s (1024-row batch) | rows/s (10k-row batch) |"
        );
        println!("|---|---|---|---|---|---|---|");
        for (label, file, config, input) in plugins {
            let f = measure(&file, config, input);
            let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
            println!(
                "| {label} | {:.1} MB | {} | {} | {} | {:.0}k | {:.0}k |",
                f.size as f64 / 1e6,
                ms(f.cold),
                ms(f.cached),
                ms(f.instantiate),
                f.rows_per_s[0].1 / 1e3,
                f.rows_per_s[1].1 / 1e3,
            );
        }
    }
}
