//! The fan-out case (`just bench --fanout`): one read of the bank CSV, the compliance
//! transform (select-transform: an allow-list, a filter, a mask), written to SQLite with an
//! FTS5 index AND to a search index (opensearch-load into a real osmem-server this process
//! starts), against each destination alone and a native Rust `_bulk` loop, in alternating
//! rounds of the same run.
//!
//! First the bulk sizes (`--fanout-bulk`) are tried on the index-only pipeline; the fastest
//! is used for every timed variant (weir's batch size is set to it, since a bulk request never
//! spans two batches). Every run starts from an empty SQLite file and an index that does not
//! exist; after each run the index's count (and SQLite's rows and FTS rows) must be the
//! number of rows the filter keeps, and in the first round documents of weir's index must
//! equal the native loop's, field for field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::Value;

use crate::driver::{self, remove_db, spread, thousands};
use crate::measure::{self, Measured, median};
use crate::native_bulk::{self, ACCOUNT_KEEP_LAST, DROPPED_CATEGORY, KEPT_COLUMNS};

/// Options of the fan-out case (part of `weir-bench run`).
#[derive(Debug, Clone, clap::Args)]
pub struct FanoutOptions {
    /// Only the fan-out case (skips everything else `run` measures).
    #[arg(long)]
    pub fanout: bool,
    /// Rows of the bank CSV in the fan-out case. Small, because osmem-server indexes about
    /// a thousand documents a second on this machine, and more slowly as the index grows
    /// (docs/performance.md).
    #[arg(long = "fanout-rows", default_value_t = 20_000)]
    pub fanout_rows: u64,
    /// opensearch-load `bulk_max_docs` values to try; the fastest is used.
    #[arg(
        long = "fanout-bulk",
        value_delimiter = ',',
        default_value = "500,1000,2000"
    )]
    pub fanout_bulks: Vec<usize>,
    /// Runs of each bulk size in the trial.
    #[arg(long = "fanout-bulk-reps", default_value_t = 2)]
    pub fanout_bulk_reps: usize,
}

/// What is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    /// Both destinations.
    Fanout,
    SqliteOnly,
    IndexOnly,
    /// The native `_bulk` loop.
    Native,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::Fanout,
        Variant::SqliteOnly,
        Variant::IndexOnly,
        Variant::Native,
    ];

    fn label(self) -> &'static str {
        match self {
            Variant::Fanout => "weir fan-out: SQLite+FTS5 and index",
            Variant::SqliteOnly => "weir SQLite+FTS5 only",
            Variant::IndexOnly => "weir index only",
            Variant::Native => "native _bulk loop (hyper+serde)",
        }
    }

    /// The pipeline of a weir variant.
    fn pipeline(self) -> &'static str {
        match self {
            Variant::Fanout => "fanout",
            Variant::SqliteOnly => "sqlite_only",
            Variant::IndexOnly => "index_only",
            Variant::Native => unreachable!("the native loop is not a weir pipeline"),
        }
    }

    /// The index it writes, if any.
    fn index(self) -> Option<&'static str> {
        match self {
            Variant::Fanout => Some("fanout"),
            Variant::SqliteOnly => None,
            Variant::IndexOnly => Some("index_only"),
            Variant::Native => Some("native"),
        }
    }

    /// Whether it writes the SQLite table.
    fn sqlite(self) -> bool {
        matches!(self, Variant::Fanout | Variant::SqliteOnly)
    }
}

struct Sample {
    m: Measured,
    /// CPU osmem-server spent on the run.
    server_cpu: Duration,
    stages: BTreeMap<String, f64>,
}

pub struct FanoutBench<'a> {
    pub opts: &'a FanoutOptions,
    pub weir: PathBuf,
    pub plugins: PathBuf,
    pub work: PathBuf,
    pub me: PathBuf,
    pub reps: usize,
}

/// The server and what every run needs.
struct Ctx<'a> {
    bench: &'a FanoutBench<'a>,
    server: osmem_fixture::Osmem,
    dir: PathBuf,
    csv: PathBuf,
    /// Rows the filter keeps.
    expected: u64,
}

impl FanoutBench<'_> {
    pub fn run(&self) -> anyhow::Result<()> {
        for plugin in ["select-transform", "opensearch-load", "sqlite-load"] {
            ensure!(
                self.plugins.join(format!("{plugin}.wasm")).is_file(),
                "{} has no {plugin}.wasm: build the plugins with `just plugins`",
                self.plugins.display()
            );
        }
        let rows = self.opts.fanout_rows;
        let data = driver::data_file(&self.work, rows)?;
        let dir = self.work.join("fanout");
        let inbox = dir.join("inbox");
        if inbox.exists() {
            std::fs::remove_dir_all(&inbox)?;
        }
        std::fs::create_dir_all(&inbox)?;
        let csv = inbox.join("bank.csv");
        if std::fs::hard_link(&data, &csv).is_err() {
            std::fs::copy(&data, &csv)?;
        }
        let expected = kept_rows(&csv)?;
        let server = osmem_fixture::Osmem::start()?;
        let ctx = Ctx {
            bench: self,
            server,
            dir,
            csv,
            expected,
        };
        println!(
            "fan-out: {} rows ({:.1} MB bank CSV), {} kept by the filter; osmem-server {} (in-memory OpenSearch API, its own process) on {}; {} rounds, medians (min–max)",
            thousands(rows),
            std::fs::metadata(&data)?.len() as f64 / 1e6,
            thousands(expected),
            osmem_version(),
            ctx.server.addr(),
            self.reps
        );
        println!(
            "transform: select-transform, {} of 10 columns, filter category != '{DROPPED_CATEGORY}', mask account keep_last {ACCOUNT_KEEP_LAST}; SQLite: fts on counterparty, memo; index: _id and external version from id",
            KEPT_COLUMNS.len()
        );

        // The bulk size: the index-only pipeline with each, alternating.
        let mut trial: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        // One warm-up (page cache, compile cache; it also writes the mappings the native
        // loop uses): osmem-server is slow enough that each index run counts.
        let first = *self
            .opts
            .fanout_bulks
            .first()
            .context("no bulk size to try (--fanout-bulk)")?;
        eprintln!("fan-out warm-up: index only, bulk {first}");
        ctx.one(Variant::IndexOnly, first)?;
        for rep in 0..self.opts.fanout_bulk_reps {
            let mut order = self.opts.fanout_bulks.clone();
            let turn = rep % order.len().max(1);
            order.rotate_left(turn);
            for bulk in order {
                let s = ctx.one(Variant::IndexOnly, bulk)?;
                eprintln!(
                    "bulk trial {}/{}: bulk_max_docs {bulk:>6}: {:.2} s",
                    rep + 1,
                    self.opts.fanout_bulk_reps,
                    s.m.wall.as_secs_f64()
                );
                trial.entry(bulk).or_default().push(s.m.wall.as_secs_f64());
            }
        }
        let bulk = trial
            .iter()
            .min_by(|a, b| median(a.1).total_cmp(&median(b.1)))
            .map(|(b, _)| *b)
            .context("no bulk size to try (--fanout-bulk)")?;
        print!("bulk_max_docs trial (index only, weir batch = bulk, median wall s):");
        for (b, walls) in &trial {
            print!(" {b}: {:.2}", median(walls));
        }
        println!("; picked {bulk}");

        // The trial warmed up everything but sqlite-load.
        eprintln!("fan-out warm-up: {}", Variant::SqliteOnly.label());
        ctx.one(Variant::SqliteOnly, bulk)?;
        let mut rounds: Vec<BTreeMap<Variant, Sample>> = Vec::new();
        for round in 0..self.reps {
            let mut order = Variant::ALL.to_vec();
            order.rotate_left(round % Variant::ALL.len());
            let mut samples = BTreeMap::new();
            for v in order {
                let s = ctx.one(v, bulk)?;
                eprintln!(
                    "fan-out round {}/{}: {:<38} {:>6.2} s wall {:>6.2} s CPU {:>6.1} MiB, server {:.2} s CPU",
                    round + 1,
                    self.reps,
                    v.label(),
                    s.m.wall.as_secs_f64(),
                    s.m.cpu().as_secs_f64(),
                    s.m.rss_mib(),
                    s.server_cpu.as_secs_f64()
                );
                samples.insert(v, s);
                if round == 0 && v == Variant::Native {
                    ctx.same_documents()?;
                }
            }
            rounds.push(samples);
        }
        print(&rounds, rows, bulk);
        remove_db(&ctx.db())?;
        Ok(())
    }
}

impl Ctx<'_> {
    fn db(&self) -> PathBuf {
        self.dir.join("portal.db")
    }

    /// The weir.toml of `v`'s pipeline at `bulk` (written before each run).
    fn config(&self, v: Variant, bulk: usize) -> String {
        let b = self.bench;
        let transform = format!(
            r#"transform = [{{ plugin = "select-transform", config = {{ columns = [{columns}], filters = [{{ name = "no_fees", keep = "category != '{DROPPED_CATEGORY}'" }}], mask = {{ account = {{ keep_last = {ACCOUNT_KEEP_LAST} }} }} }} }}]"#,
            columns = KEPT_COLUMNS
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let sqlite = r#"{ plugin = "sqlite-load", config = { database = "bench", table = "transactions", fts = ["counterparty", "memo"] } }"#;
        let index = format!(
            r#"{{ plugin = "opensearch-load", config = {{ connection = "search", index = "{}", key = ["id"], version = "id", bulk_max_docs = {bulk} }} }}"#,
            v.index().unwrap_or_default()
        );
        let load = match v {
            Variant::Fanout => format!("[{sqlite}, {index}]"),
            Variant::SqliteOnly => format!("[{sqlite}]"),
            Variant::IndexOnly => format!("[{index}]"),
            Variant::Native => unreachable!("the native loop is not a weir pipeline"),
        };
        format!(
            r#"# Written by weir-bench (the fan-out case).
[engine]
plugins_dir = "{plugins}"
cache_dir = "{cache}"

[[pipeline]]
name = "{name}"
# A bulk request never spans two batches: a batch of the bulk size.
batch_size = {bulk}
grants = {{ read_dirs = ["inbox"], databases = {{ bench = "{db}" }}, http = {{ search = {{ url = "{url}", allow_private = true }} }} }}
extract = {{ plugin = "csv-extract", config = {{ path = "inbox/*.csv", types = {{ id = "integer", amount = "real", balance = "real" }} }} }}
{transform}
load = {load}
history = {{ plugin = "sqlite-history", config = {{ database = "bench" }} }}
"#,
            plugins = b.plugins.display(),
            cache = b.work.join("cache").display(),
            name = v.pipeline(),
            db = self.db().display(),
            url = self.server.url(),
        )
    }

    /// Drop `index` (it may not exist).
    fn drop_index(&self, index: &str) -> anyhow::Result<()> {
        let (status, answer) =
            self.server
                .client()
                .request("DELETE", &format!("/{index}"), None)?;
        ensure!(
            status == 200 || status == 404,
            "DELETE /{index}: HTTP {status}: {answer}"
        );
        Ok(())
    }

    /// The document count of `index`, after a refresh.
    fn count(&self, index: &str) -> anyhow::Result<u64> {
        let client = self.server.client();
        client.refresh(index)?;
        let answer = client.ok("GET", &format!("/{index}/_count"), None)?;
        answer["count"]
            .as_u64()
            .with_context(|| format!("GET /{index}/_count answered {answer}"))
    }

    /// One run of `v` from nothing: no SQLite file, no index. Afterwards every destination
    /// must hold the rows the filter keeps.
    fn one(&self, v: Variant, bulk: usize) -> anyhow::Result<Sample> {
        let db = self.db();
        remove_db(&db)?;
        if let Some(index) = v.index() {
            self.drop_index(index)?;
        }
        let server_before = process_cpu(self.server.pid());
        let (m, stages) = if v == Variant::Native {
            let mappings = self.dir.join("mappings.json");
            ensure!(
                mappings.is_file(),
                "no mappings.json yet: the index-only warm-up writes it"
            );
            let m = measure::run(
                Command::new(&self.bench.me)
                    .arg("native-bulk")
                    .arg("--csv")
                    .arg(&self.csv)
                    .arg("--url")
                    .arg(self.server.url())
                    .args(["--index", "native", "--mappings"])
                    .arg(&mappings)
                    .arg("--bulk")
                    .arg(bulk.to_string()),
                &self.dir.join("last"),
            )?;
            (m, BTreeMap::new())
        } else {
            std::fs::write(self.dir.join("weir.toml"), self.config(v, bulk))?;
            let r = driver::weir_run(&self.bench.weir, &self.dir, v.pipeline(), &[])?;
            ensure!(
                r.read == self.bench.opts.fanout_rows && r.rejected == 0,
                "{}: read {} rejected {}, expected {} read and none rejected\n{}",
                v.label(),
                r.read,
                r.rejected,
                self.bench.opts.fanout_rows,
                r.m.stdout
            );
            (r.m, r.stages)
        };
        let server_cpu = process_cpu(self.server.pid()).saturating_sub(server_before);
        if let Some(index) = v.index() {
            let n = self.count(index)?;
            ensure!(
                n == self.expected,
                "{}: the index `{index}` holds {n} documents, expected {}",
                v.label(),
                self.expected
            );
            if v == Variant::Fanout {
                // Only index_only and native stay (compared after the first round's native
                // run; dropped before their next run): the server holds all in memory.
                self.drop_index(index)?;
            }
            if v == Variant::IndexOnly {
                // The mappings opensearch-load derived, for the native loop's index.
                let answer = self
                    .server
                    .client()
                    .ok("GET", &format!("/{index}/_mapping"), None)?;
                let mappings = &answer[index]["mappings"];
                ensure!(
                    mappings.is_object(),
                    "GET /{index}/_mapping answered {answer}"
                );
                std::fs::write(
                    self.dir.join("mappings.json"),
                    serde_json::to_vec(mappings)?,
                )?;
            }
        }
        if v.sqlite() {
            let conn = rusqlite::Connection::open(&db)?;
            let count = |sql: &str| -> anyhow::Result<u64> {
                conn.query_row(sql, [], |r| r.get(0))
                    .with_context(|| format!("{}: {sql}", db.display()))
            };
            let rows = count("SELECT count(*) FROM transactions")?;
            let fts = count("SELECT count(*) FROM transactions_fts")?;
            let fees = count("SELECT count(*) FROM transactions WHERE category = 'fees'")?;
            ensure!(
                rows == self.expected && fts == self.expected && fees == 0,
                "{}: SQLite holds {rows} rows ({fts} in FTS, {fees} fees), expected {}",
                v.label(),
                self.expected
            );
        }
        Ok(Sample {
            m,
            server_cpu,
            stages,
        })
    }

    /// Documents of weir's index-only index and of the native loop's are equal, field for
    /// field, for a spread of ids (the first, the last and every 997th kept row).
    fn same_documents(&self) -> anyhow::Result<()> {
        let client = self.server.client();
        client.refresh("index_only")?;
        client.refresh("native")?;
        let query = |index: &str, ids: &[String]| -> anyhow::Result<BTreeMap<String, Value>> {
            let answer = client.ok(
                "POST",
                &format!("/{index}/_search"),
                Some(
                    &serde_json::json!({"size": ids.len(), "query": {"ids": {"values": ids}}})
                        .to_string(),
                ),
            )?;
            Ok(answer["hits"]["hits"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| {
                    (
                        h["_id"].as_str().unwrap_or_default().to_owned(),
                        h["_source"].clone(),
                    )
                })
                .collect())
        };
        let ids = sample_ids(&self.csv)?;
        let weir = query("index_only", &ids)?;
        let native = query("native", &ids)?;
        ensure!(
            weir.len() == ids.len(),
            "weir's index has {} of {} sampled documents",
            weir.len(),
            ids.len()
        );
        for (id, doc) in &weir {
            ensure!(
                native.get(id) == Some(doc),
                "document {id} differs:\nweir   {doc}\nnative {}",
                native.get(id).unwrap_or(&Value::Null)
            );
        }
        Ok(())
    }
}

/// Rows of `csv` the filter keeps.
fn kept_rows(csv: &Path) -> anyhow::Result<u64> {
    let mut reader = csv::Reader::from_path(csv)?;
    let category = reader
        .headers()?
        .iter()
        .position(|h| h == "category")
        .context("no category column")?;
    let mut n = 0;
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        if record.get(category) != Some(DROPPED_CATEGORY) {
            n += 1;
        }
    }
    Ok(n)
}

/// Ids of kept rows to compare: the first, every 997th and the last.
fn sample_ids(csv: &Path) -> anyhow::Result<Vec<String>> {
    let mut reader = csv::Reader::from_path(csv)?;
    let headers = reader.headers()?.clone();
    let at = |name: &str| headers.iter().position(|h| h == name);
    let (id, category) = (
        at("id").context("no id")?,
        at("category").context("no category")?,
    );
    let mut kept = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut n = 0u64;
    let mut last = None;
    while reader.read_record(&mut record)? {
        if record.get(category) == Some(DROPPED_CATEGORY) {
            continue;
        }
        let this = record.get(id).unwrap_or_default().to_owned();
        if n.is_multiple_of(997) && kept.len() < 500 {
            kept.push(this.clone());
        }
        last = Some(this);
        n += 1;
    }
    kept.extend(last.filter(|l| !kept.contains(l)));
    Ok(kept)
}

/// A process's CPU time so far (user + system, from /proc; USER_HZ is 100 on Linux).
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

fn osmem_version() -> String {
    Command::new("python3")
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('osmem-server'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "?".into(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        )
}

fn print(rounds: &[BTreeMap<Variant, Sample>], rows: u64, bulk: usize) {
    let series = |v: Variant, f: &dyn Fn(&Sample) -> f64| -> Vec<f64> {
        rounds.iter().filter_map(|r| r.get(&v)).map(f).collect()
    };
    let wall = |s: &Sample| s.m.wall.as_secs_f64();
    println!(
        "{:<38} {:>18} {:>7} {:>9} {:>9} {:>13}",
        format!("variant (bulk_max_docs {bulk})"),
        "wall s",
        "CPU s",
        "rows/s",
        "peak RSS",
        "server CPU s"
    );
    for v in Variant::ALL {
        let walls = series(v, &wall);
        println!(
            "{:<38} {:>18} {:>7.2} {:>9} {:>5.0} MiB {:>13.2}",
            v.label(),
            spread(&walls),
            median(&series(v, &|s| s.m.cpu().as_secs_f64())),
            thousands((rows as f64 / median(&walls)).round() as u64),
            series(v, &|s| s.m.rss_mib())
                .into_iter()
                .fold(0.0, f64::max),
            median(&series(v, &|s| s.server_cpu.as_secs_f64())),
        );
    }
    // Per round: the fan-out against the slower single destination of the same round.
    let ratios = |f: &dyn Fn(&BTreeMap<Variant, Sample>) -> Option<f64>| -> Vec<f64> {
        rounds.iter().filter_map(f).collect()
    };
    let fan = ratios(&|r| {
        let slower = wall(r.get(&Variant::SqliteOnly)?).max(wall(r.get(&Variant::IndexOnly)?));
        Some(wall(r.get(&Variant::Fanout)?) / slower)
    });
    let idx = ratios(&|r| Some(wall(r.get(&Variant::IndexOnly)?) / wall(r.get(&Variant::Native)?)));
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "rows/s: rows read (the CSV's) per second; peak RSS: largest of the rounds; server CPU: osmem-server's, serving that run; ratios: median over rounds of the same round's walls"
    );
    println!(
        "fan-out / slower single destination: {} (target ≤ 1.15×: {})",
        spread(&fan),
        verdict(median(&fan) <= 1.15)
    );
    println!(
        "index only / native _bulk loop:      {} (target ≤ 1.2×: {})",
        spread(&idx),
        verdict(median(&idx) <= 1.2)
    );
    let keys: Vec<String> = rounds
        .iter()
        .flat_map(|r| r.values())
        .flat_map(|s| s.stages.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    println!("inside weir, per stage (median ms, summed over partitions):");
    for v in [Variant::Fanout, Variant::SqliteOnly, Variant::IndexOnly] {
        print!("  {:<36}", v.label());
        for key in &keys {
            let values: Vec<f64> = rounds
                .iter()
                .filter_map(|r| r.get(&v)?.stages.get(key).copied())
                .collect();
            if !values.is_empty() {
                print!(" {key} {}", driver::ms(median(&values)));
            }
        }
        println!();
    }
    println!();
}

/// `weir-bench native-bulk`.
pub fn native(
    csv: &Path,
    url: &str,
    index: &str,
    mappings: &Path,
    bulk: usize,
) -> anyhow::Result<()> {
    let l = native_bulk::load(csv, url, index, mappings, bulk.max(1))?;
    println!("indexed {} requests {}", l.documents, l.requests);
    Ok(())
}
