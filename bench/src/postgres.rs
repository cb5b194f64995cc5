//! The PostgreSQL case (`weir-bench run --postgres`): a throwaway cluster (`pg_server`), the
//! bank CSV, and in alternating rounds on the same server:
//!
//! - append: weir (csv-extract → sqlite-load on a PostgreSQL grant, history in the same
//!   database: rows and checkpoint in one transaction per batch) against `psql \copy` of the
//!   same file (one transaction) and the native binary-COPY loader (`native_pg`, one
//!   transaction per batch with its checkpoint);
//! - upsert by id: weir against the native staging-table loop;
//! - sql-extract PostgreSQL → SQLite: weir against the native keyset-pagination loop.
//!
//! Every run starts from an empty database; every run's table is checked against the first
//! run's of its group (column types, row count, a checksum of every row's text).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, ensure};

use crate::driver::{self, Digest, machine, spread, thousands};
use crate::measure::{self, Measured, median};
use crate::pg_server::{self, PASSWORD, PgServer};

/// Options of the PostgreSQL case (part of `weir-bench run`).
#[derive(Debug, Clone, clap::Args)]
pub struct PgOptions {
    /// Only the PostgreSQL case: skip the CSV and HTTP benchmarks.
    #[arg(long)]
    pub postgres: bool,
    /// Rows of the PostgreSQL case.
    #[arg(long, default_value_t = 1_000_000)]
    pub pg_rows: u64,
    /// The PostgreSQL server's bin folder (default: the highest /usr/lib/postgresql/*/bin).
    #[arg(long)]
    pub pg_bin: Option<PathBuf>,
    /// Skip the sql-extract PostgreSQL → SQLite comparison.
    #[arg(long)]
    pub pg_no_extract: bool,
}

pub struct PgBench<'a> {
    pub opts: &'a PgOptions,
    pub weir: PathBuf,
    pub plugins: PathBuf,
    pub work: PathBuf,
    pub me: PathBuf,
    pub reps: usize,
    pub batch: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    Psql,
    NativeAppend,
    WeirAppend,
    NativeUpsert,
    WeirUpsert,
    NativeExtract,
    WeirExtract,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Self::Psql => "psql \\copy (one transaction)",
            Self::NativeAppend => "native binary COPY, commit/batch",
            Self::WeirAppend => "weir csv-extract → sqlite-load",
            Self::NativeUpsert => "native staging + ON CONFLICT",
            Self::WeirUpsert => "weir upsert",
            Self::NativeExtract => "native keyset loop → SQLite",
            Self::WeirExtract => "weir sql-extract → SQLite",
        }
    }

    /// The database (PostgreSQL) or file (SQLite) it writes.
    fn target(self) -> &'static str {
        match self {
            Self::Psql => "b_psql",
            Self::NativeAppend => "b_native_append",
            Self::WeirAppend => "b_weir_append",
            Self::NativeUpsert => "b_native_upsert",
            Self::WeirUpsert => "b_weir_upsert",
            Self::NativeExtract => "native-extract.db",
            Self::WeirExtract => "weir-extract.db",
        }
    }
}

struct Sample {
    m: Measured,
    /// CPU the server spent during the run.
    server_cpu: f64,
    stages: BTreeMap<String, f64>,
}

/// The database the extract case reads: loaded once, by the native upsert (id is its key).
const SOURCE_DB: &str = "b_source";

impl PgBench<'_> {
    pub fn run(&self) -> anyhow::Result<()> {
        let bin = match &self.opts.pg_bin {
            Some(b) => b.clone(),
            None => pg_server::find_bin()?,
        };
        let rows = self.opts.pg_rows;
        let data = self.data(rows)?;
        let dir = self.work.join("postgres");
        std::fs::create_dir_all(&dir)?;
        eprintln!("starting a throwaway PostgreSQL from {}…", bin.display());
        let server = PgServer::start(&bin)?;
        println!("{}", machine(None));
        println!(
            "PostgreSQL: {} ({}), throwaway cluster in {} ({}), server defaults: fsync on, synchronous_commit on, full_page_writes on",
            server.version,
            bin.display(),
            server.dir().display(),
            driver::filesystem(server.dir())
        );
        println!(
            "data: {} rows, {:.1} MB, batch {} rows, {} rounds; medians, (min–max); CPU = the client process's own; server CPU = PostgreSQL's processes during the run",
            thousands(rows),
            std::fs::metadata(&data)?.len() as f64 / 1e6,
            self.batch,
            self.reps
        );
        println!();
        self.setup(&dir, &data, &server)?;

        let append = [Variant::Psql, Variant::NativeAppend, Variant::WeirAppend];
        let rounds = self.rounds(&server, &dir, &data, &append)?;
        self.print("append", &append, &rounds, Variant::Psql);
        let weir = Variant::WeirAppend;
        let wall_psql = ratio(&rounds, weir, Variant::Psql);
        let wall_native = ratio(&rounds, weir, Variant::NativeAppend);
        let rss = max_rss(&rounds, weir);
        println!(
            "targets (append): weir ≤ 1.0× psql \\copy: {wall_psql:.2}× {}; ≤ 1.3× native: {wall_native:.2}× {}; peak RSS ≤ 64 MiB: {rss:.0} MiB {}",
            verdict(wall_psql <= 1.0),
            verdict(wall_native <= 1.3),
            verdict(rss <= 64.0)
        );
        println!();

        let upsert = [Variant::NativeUpsert, Variant::WeirUpsert];
        let rounds = self.rounds(&server, &dir, &data, &upsert)?;
        self.print("upsert by id", &upsert, &rounds, Variant::NativeUpsert);
        println!();

        if !self.opts.pg_no_extract {
            eprintln!("loading the extract source…");
            server.recreate(SOURCE_DB)?;
            self.native_load(&server, &data, SOURCE_DB, "upsert")?;
            let extract = [Variant::NativeExtract, Variant::WeirExtract];
            let rounds = self.rounds(&server, &dir, &data, &extract)?;
            self.print(
                "sql-extract PostgreSQL → SQLite",
                &extract,
                &rounds,
                Variant::NativeExtract,
            );
        }
        Ok(())
    }

    fn data(&self, rows: u64) -> anyhow::Result<PathBuf> {
        let dir = self.work.join("data");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("bank-{rows}-v{}.csv", crate::generate::VERSION));
        if !path.is_file() {
            eprintln!("generating {} ({} rows)…", path.display(), thousands(rows));
            crate::generate::write_file(&path, rows)?;
        }
        Ok(path)
    }

    /// `inbox/bank.csv` and a weir.toml with the pipelines `append`, `upsert` and `extract`.
    fn setup(&self, dir: &Path, data: &Path, server: &PgServer) -> anyhow::Result<()> {
        let inbox = dir.join("inbox");
        if inbox.exists() {
            std::fs::remove_dir_all(&inbox)?;
        }
        std::fs::create_dir_all(&inbox)?;
        let csv = inbox.join("bank.csv");
        if std::fs::hard_link(data, &csv).is_err() {
            std::fs::copy(data, &csv)?;
        }
        let grant = |db: &str, extra: &str| {
            format!(
                "{{ url = \"postgres://{}@127.0.0.1:{}/{db}\", password = \"${{BENCH_PGPASSWORD}}\", sslmode = \"disable\"{extra} }}",
                pg_server::USER,
                server.port
            )
        };
        let extract_csv = r#"extract = { plugin = "csv-extract", config = { path = "inbox/*.csv", types = { id = "integer", amount = "real", balance = "real" } } }"#;
        let toml = format!(
            r#"# Written by weir-bench (the PostgreSQL case).
[engine]
plugins_dir = "{plugins}"
cache_dir = "{cache}"
batch_size = {batch}

[[pipeline]]
name = "append"
grants = {{ read_dirs = ["inbox"], databases = {{ bench = {append} }} }}
{extract_csv}
load = [{{ plugin = "sqlite-load", config = {{ database = "bench", table = "transactions" }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "bench" }} }}

[[pipeline]]
name = "upsert"
grants = {{ read_dirs = ["inbox"], databases = {{ bench = {upsert} }} }}
{extract_csv}
load = [{{ plugin = "sqlite-load", config = {{ database = "bench", table = "transactions", mode = "upsert", key = ["id"] }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "bench" }} }}

[[pipeline]]
name = "extract"
grants = {{ databases = {{ source = {source}, ledger = "{ledger}" }} }}
extract = {{ plugin = "sql-extract", config = {{ database = "source", table = "transactions" }} }}
load = [{{ plugin = "sqlite-load", config = {{ database = "ledger", table = "transactions" }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "ledger" }} }}
"#,
            plugins = self.plugins.display(),
            cache = self.work.join("cache").display(),
            batch = self.batch,
            append = grant(Variant::WeirAppend.target(), ""),
            upsert = grant(Variant::WeirUpsert.target(), ""),
            source = grant(SOURCE_DB, ", read_only = true"),
            ledger = dir.join(Variant::WeirExtract.target()).display(),
        );
        std::fs::write(dir.join("weir.toml"), toml)?;
        Ok(())
    }

    /// One untimed warm-up run of each variant, then `reps` rounds in rotating order, each run
    /// verified against the first.
    fn rounds(
        &self,
        server: &PgServer,
        dir: &Path,
        data: &Path,
        variants: &[Variant],
    ) -> anyhow::Result<Vec<BTreeMap<Variant, Sample>>> {
        let mut reference: Option<(Variant, String)> = None;
        for v in variants {
            eprintln!("warm-up: {}", v.label());
            self.one(server, dir, data, *v)?;
            let d = self.digest(server, dir, *v)?;
            match &reference {
                None => reference = Some((*v, d)),
                Some((r, rd)) => same(&format!("{} vs {}", v.label(), r.label()), &d, rd)?,
            }
        }
        let (first, reference) = reference.context("no variants")?;
        let mut rounds = Vec::new();
        for round in 0..self.reps {
            let mut order = variants.to_vec();
            order.rotate_left(round % variants.len());
            let mut samples = BTreeMap::new();
            for v in order {
                eprintln!("round {}: {}", round + 1, v.label());
                let s = self.one(server, dir, data, v)?;
                same(
                    &format!("round {}: {} vs {}", round + 1, v.label(), first.label()),
                    &self.digest(server, dir, v)?,
                    &reference,
                )?;
                samples.insert(v, s);
            }
            rounds.push(samples);
        }
        Ok(rounds)
    }

    /// A fresh target, then one timed run of `v`.
    fn one(
        &self,
        server: &PgServer,
        dir: &Path,
        data: &Path,
        v: Variant,
    ) -> anyhow::Result<Sample> {
        let rows = self.opts.pg_rows;
        match v {
            Variant::NativeExtract | Variant::WeirExtract => {
                driver::remove_db(&dir.join(v.target()))?
            }
            _ => server.recreate(v.target())?,
        }
        if v == Variant::Psql {
            server.sql(v.target(), &crate::native_pg::table_ddl(false))?;
        }
        let cpu_before = server.cpu_seconds()?;
        let (m, stages) = match v {
            Variant::WeirAppend | Variant::WeirUpsert | Variant::WeirExtract => {
                let pipeline = match v {
                    Variant::WeirAppend => "append",
                    Variant::WeirUpsert => "upsert",
                    _ => "extract",
                };
                let r =
                    driver::weir_run(&self.weir, dir, pipeline, &[("BENCH_PGPASSWORD", PASSWORD)])?;
                ensure!(
                    r.read == rows && r.loaded == rows && r.rejected == 0,
                    "weir {pipeline} read {} loaded {} rejected {}, expected {rows} rows",
                    r.read,
                    r.loaded,
                    r.rejected
                );
                (r.m, r.stages)
            }
            Variant::Psql => {
                let copy = format!(
                    "\\copy transactions FROM '{}' WITH (FORMAT csv, HEADER true)",
                    data.display()
                );
                let mut cmd = server.psql_command(v.target());
                cmd.arg("-c").arg(copy);
                (measure::run(&mut cmd, &dir.join("last"))?, BTreeMap::new())
            }
            Variant::NativeAppend | Variant::NativeUpsert => {
                let mode = if v == Variant::NativeAppend {
                    "append"
                } else {
                    "upsert"
                };
                (
                    self.native_load(server, data, v.target(), mode)?,
                    BTreeMap::new(),
                )
            }
            Variant::NativeExtract => {
                let mut cmd = Command::new(&self.me);
                cmd.args(["native-pg-extract", "--conninfo"])
                    .arg(server.conninfo(SOURCE_DB))
                    .arg("--db")
                    .arg(dir.join(v.target()))
                    .args(["--batch", &self.batch.to_string()])
                    .env("BENCH_PGPASSWORD", PASSWORD);
                let m = measure::run(&mut cmd, &dir.join("last"))?;
                ensure!(
                    m.stdout.trim() == format!("copied {rows}"),
                    "native extract: {}",
                    m.stdout
                );
                (m, BTreeMap::new())
            }
        };
        let server_cpu = server.cpu_seconds()? - cpu_before;
        Ok(Sample {
            m,
            server_cpu,
            stages,
        })
    }

    /// `weir-bench native-pg` into `db`, as a child process (its own CPU and RSS).
    fn native_load(
        &self,
        server: &PgServer,
        data: &Path,
        db: &str,
        mode: &str,
    ) -> anyhow::Result<Measured> {
        let mut cmd = Command::new(&self.me);
        cmd.args(["native-pg", "--csv"])
            .arg(data)
            .arg("--conninfo")
            .arg(server.conninfo(db))
            .args(["--batch", &self.batch.to_string(), "--mode", mode])
            .env("BENCH_PGPASSWORD", PASSWORD);
        let m = measure::run(&mut cmd, &self.work.join("postgres").join("last"))?;
        ensure!(
            m.stdout.trim() == format!("loaded {} rejected 0", self.opts.pg_rows),
            "native-pg {mode}: {}",
            m.stdout
        );
        Ok(m)
    }

    /// What `v` wrote: column types, row count and a checksum of every row's text.
    fn digest(&self, server: &PgServer, dir: &Path, v: Variant) -> anyhow::Result<String> {
        if matches!(v, Variant::NativeExtract | Variant::WeirExtract) {
            let d = Digest::of_table(&dir.join(v.target()), "transactions")?;
            return Ok(format!("{} rows, hash {:x}, {}", d.count, d.hash, d.ddl));
        }
        let out = server.sql(
            v.target(),
            "SELECT (SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
                     FROM information_schema.columns WHERE table_name = 'transactions')
                    || ' | ' || count(*) || ' rows | '
                    || coalesce(sum(('x' || left(md5(t::text), 15))::bit(60)::bigint), 0)
             FROM transactions t",
        )?;
        Ok(out.trim().to_owned())
    }

    fn print(
        &self,
        title: &str,
        variants: &[Variant],
        rounds: &[BTreeMap<Variant, Sample>],
        base: Variant,
    ) {
        let rows = self.opts.pg_rows as f64;
        println!(
            "{title}: {} rows, ratios against {} (median of the per-round ratios)",
            thousands(self.opts.pg_rows),
            base.label()
        );
        println!(
            "{:<34} {:>18} {:>7} {:>8} {:>9} {:>9} {:>9} {:>11}",
            "variant",
            "wall s",
            "CPU s",
            "srv CPU",
            "rows/s",
            "peak RSS",
            "wall/base",
            "wall/native"
        );
        let native = variants
            .iter()
            .copied()
            .find(|v| {
                matches!(
                    v,
                    Variant::NativeAppend | Variant::NativeUpsert | Variant::NativeExtract
                )
            })
            .unwrap_or(base);
        for v in variants {
            let walls = series(rounds, *v, |s| s.m.wall.as_secs_f64());
            let wall = median(&walls);
            println!(
                "{:<34} {:>18} {:>7.2} {:>8.2} {:>9} {:>5.0} MiB {:>9.2} {:>11.2}",
                v.label(),
                spread(&walls),
                median(&series(rounds, *v, |s| s.m.cpu().as_secs_f64())),
                median(&series(rounds, *v, |s| s.server_cpu)),
                format!("{}k", (rows / wall / 1e3).round()),
                max_rss(rounds, *v),
                ratio(rounds, *v, base),
                ratio(rounds, *v, native),
            );
        }
        let weir = variants
            .iter()
            .copied()
            .find(|v| {
                matches!(
                    v,
                    Variant::WeirAppend | Variant::WeirUpsert | Variant::WeirExtract
                )
            })
            .unwrap_or(base);
        let keys = [
            "extract",
            "check",
            "load",
            "commit",
            "send_wait",
            "recv_wait",
            "total",
        ];
        let parts: Vec<String> = keys
            .iter()
            .map(|k| {
                let ms = median(&series(rounds, weir, |s| {
                    s.stages.get(*k).copied().unwrap_or(f64::NAN)
                }));
                format!("{k} {}", driver::ms(ms))
            })
            .collect();
        println!("  inside weir (median ms): {}", parts.join(", "));
    }
}

fn series(
    rounds: &[BTreeMap<Variant, Sample>],
    v: Variant,
    f: impl Fn(&Sample) -> f64,
) -> Vec<f64> {
    rounds.iter().filter_map(|r| r.get(&v)).map(f).collect()
}

fn ratio(rounds: &[BTreeMap<Variant, Sample>], v: Variant, base: Variant) -> f64 {
    let ratios: Vec<f64> = rounds
        .iter()
        .filter_map(|r| Some(r.get(&v)?.m.wall.as_secs_f64() / r.get(&base)?.m.wall.as_secs_f64()))
        .collect();
    median(&ratios)
}

fn max_rss(rounds: &[BTreeMap<Variant, Sample>], v: Variant) -> f64 {
    series(rounds, v, |s| s.m.rss_mib())
        .into_iter()
        .fold(0.0, f64::max)
}

fn verdict(met: bool) -> &'static str {
    if met { "(met)" } else { "(missed)" }
}

/// An error unless two digests agree, naming what was compared.
fn same(what: &str, a: &str, b: &str) -> anyhow::Result<()> {
    ensure!(a == b, "{what}: tables differ:\n  {a}\n  {b}");
    Ok(())
}
