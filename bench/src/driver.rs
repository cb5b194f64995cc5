//! The benchmark run: data, variants in alternating rounds, medians, ratios, and the side
//! measurements (memory at 5M rows, incremental re-run, plugin load, levers).

use std::collections::BTreeMap;
use std::hash::Hasher as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail, ensure};

use crate::generate;
use crate::measure::{self, Measured, median};
use crate::native::{self, Journal};

/// Options of `weir-bench run`. Relative paths are relative to the current directory (the
/// repository root under `just bench`).
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The weir binary (a release build).
    #[arg(long, default_value = "target/release/weir")]
    weir: PathBuf,
    /// The bundled plugins (`just plugins`).
    #[arg(long, default_value = "plugins/dist")]
    plugins: PathBuf,
    /// Scratch folder: generated data, databases, configs.
    #[arg(long, default_value = "target/bench")]
    work: PathBuf,
    /// Rows of the main comparison.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Rows of the memory check (0 skips it).
    #[arg(long, default_value_t = 5_000_000)]
    big_rows: u64,
    /// Timed rounds; each round runs every variant once, in rotating order.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Rows per batch (weir) and per transaction (native).
    #[arg(long, default_value_t = 1024)]
    batch: u32,
    /// Where the databases go (default: next to each config in the work folder). A tmpfs such
    /// as /dev/shm takes the disk's fsync latency out of the figures.
    #[arg(long)]
    db_dir: Option<PathBuf>,
    /// Rows appended before each incremental re-run (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    append_rows: u64,
    /// Also measure the levers: batch sizes, the native baseline's journal mode.
    #[arg(long)]
    levers: bool,
    /// Batch sizes the lever sweep tries.
    #[arg(long, value_delimiter = ',', default_value = "256,1024,4096,16384")]
    sweep: Vec<u32>,
    /// The HTTP case.
    #[command(flatten)]
    http: crate::http::HttpOptions,
    /// The PostgreSQL case.
    #[command(flatten)]
    pg: crate::postgres::PgOptions,
    /// The fan-out case.
    #[command(flatten)]
    fanout: crate::fanout::FanoutOptions,
    /// The cluster case.
    #[command(flatten)]
    cluster: crate::cluster::ClusterOptions,
}

/// What is timed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    Native(Journal),
    /// A weir pipeline of the main config, by name.
    Weir(String),
    Sqlite3,
}

impl Variant {
    fn label(&self) -> String {
        match self {
            Self::Native(Journal::Wal) => "native (csv + rusqlite)".into(),
            Self::Native(Journal::Default) => "native, default journal".into(),
            Self::Weir(p) if p == "direct" => "weir csv-extract → sqlite-load".into(),
            Self::Weir(p) if p == "mapped" => "weir csv → map-transform → sqlite".into(),
            Self::Weir(p) => format!("weir {p}"),
            Self::Sqlite3 => "sqlite3 .import".into(),
        }
    }
}

/// One timed run.
#[derive(Debug, Clone)]
struct Sample {
    m: Measured,
    /// weir only: the `weir::stages` line, name → ms.
    stages: BTreeMap<String, f64>,
}

/// What `weir run` reported.
pub(crate) struct WeirRun {
    pub m: Measured,
    pub read: u64,
    pub loaded: u64,
    pub rejected: u64,
    pub stages: BTreeMap<String, f64>,
}

struct Bench<'a> {
    opts: &'a Options,
    weir: PathBuf,
    plugins: PathBuf,
    work: PathBuf,
    me: PathBuf,
    sqlite3: Option<String>,
    db_dir: Option<PathBuf>,
}

pub fn run(opts: &Options) -> anyhow::Result<()> {
    let abs = |p: &Path| -> anyhow::Result<PathBuf> {
        std::path::absolute(p).with_context(|| format!("bad path {}", p.display()))
    };
    let weir = abs(&opts.weir)?;
    ensure!(
        weir.is_file(),
        "{} is missing: build it with `cargo build --release -p weir`",
        weir.display()
    );
    let plugins = abs(&opts.plugins)?;
    for plugin in ["csv-extract", "http-extract"] {
        ensure!(
            plugins.join(format!("{plugin}.wasm")).is_file(),
            "{} has no {plugin}.wasm: build the plugins with `just plugins`",
            plugins.display()
        );
    }
    let work = abs(&opts.work)?;
    std::fs::create_dir_all(&work)?;
    let me = std::env::current_exe()?;
    let http = crate::http::HttpBench {
        opts: &opts.http,
        weir: weir.clone(),
        plugins: plugins.clone(),
        work: work.clone(),
        me: me.clone(),
        reps: opts.reps,
    };
    if opts.cluster.cluster {
        return crate::cluster::ClusterBench {
            opts: &opts.cluster,
            pg_bin: opts.pg.pg_bin.clone(),
            weir,
            plugins,
            work,
            batch: opts.batch,
        }
        .run();
    }
    if opts.pg.postgres {
        return crate::postgres::PgBench {
            opts: &opts.pg,
            weir,
            plugins,
            work,
            me,
            reps: opts.reps,
            batch: opts.batch,
        }
        .run();
    }
    if opts.http.http_only {
        println!("{}", machine(None));
        return http.run();
    }
    if opts.fanout.fanout {
        println!("{}", machine(None));
        return crate::fanout::FanoutBench {
            opts: &opts.fanout,
            weir,
            plugins,
            work,
            me,
            reps: opts.reps,
        }
        .run();
    }
    let sqlite3 = Command::new("sqlite3")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let v = String::from_utf8_lossy(&o.stdout);
            v.split_whitespace().next().unwrap_or("?").to_owned()
        });
    let db_dir = match &opts.db_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            Some(abs(d)?)
        }
        None => None,
    };
    let bench = Bench {
        db_dir,
        opts,
        weir,
        plugins,
        work,
        me,
        sqlite3,
    };
    bench.all()?;
    if opts.http.records > 0 {
        println!();
        http.run()?;
    }
    Ok(())
}

impl Bench<'_> {
    fn all(&self) -> anyhow::Result<()> {
        let opts = self.opts;
        let data = self.data(opts.rows)?;
        let size = std::fs::metadata(&data)?.len();
        println!("{}", machine(self.sqlite3.as_deref()));
        println!(
            "data: {} rows, {:.1} MB ({}), batch {} rows, {} rounds; medians, (min–max)",
            thousands(opts.rows),
            size as f64 / 1e6,
            data.display(),
            opts.batch,
            opts.reps
        );
        let db_home = self.db_dir.clone().unwrap_or_else(|| self.work.clone());
        println!(
            "databases: {} ({})",
            db_home.display(),
            filesystem(&db_home)
        );
        println!();

        let dir = self.work.join("main");
        let mut sweep: Vec<u32> = Vec::new();
        if opts.levers {
            sweep = opts
                .sweep
                .iter()
                .copied()
                .chain([opts.batch])
                .collect::<std::collections::BTreeSet<u32>>()
                .into_iter()
                .collect();
        }
        self.setup_dir(&dir, &data, &sweep)?;

        let mut variants = vec![
            Variant::Native(Journal::Wal),
            Variant::Weir("direct".into()),
            Variant::Weir("mapped".into()),
        ];
        if self.sqlite3.is_some() {
            variants.push(Variant::Sqlite3);
        } else {
            println!("(sqlite3 not found: its column is left out)");
        }
        let rounds = self.rounds(&dir, &data, &variants, opts.reps, true)?;
        self.print_main(&variants, &rounds);

        if opts.levers {
            let mut lever_variants = vec![
                Variant::Native(Journal::Wal),
                Variant::Native(Journal::Default),
            ];
            lever_variants.extend(sweep.iter().map(|b| Variant::Weir(format!("direct_b{b}"))));
            let lever_rounds = self.rounds(&dir, &data, &lever_variants, opts.reps, false)?;
            self.print_levers(&lever_variants, &lever_rounds);
        }

        let main_direct: Vec<&Sample> = rounds
            .iter()
            .filter_map(|r| r.get(&Variant::Weir("direct".into())))
            .collect();
        let main_native: Vec<&Sample> = rounds
            .iter()
            .filter_map(|r| r.get(&Variant::Native(Journal::Wal)))
            .collect();
        if opts.big_rows > 0 {
            self.memory(&main_direct, &main_native)?;
        }
        if opts.append_rows > 0 {
            self.incremental(&data)?;
        }
        self.plugin_load()?;
        Ok(())
    }

    fn data(&self, rows: u64) -> anyhow::Result<PathBuf> {
        data_file(&self.work, rows)
    }

    /// A folder with `inbox/bank.csv` (a hard link to `data`, or a copy when `copy`) and a
    /// weir.toml with the pipelines `direct`, `mapped` and `direct_b{N}` for each `sweep` size.
    fn setup_dir(&self, dir: &Path, data: &Path, sweep: &[u32]) -> anyhow::Result<()> {
        self.setup_dir_with(dir, data, sweep, false)
    }

    fn setup_dir_with(
        &self,
        dir: &Path,
        data: &Path,
        sweep: &[u32],
        copy: bool,
    ) -> anyhow::Result<()> {
        let inbox = dir.join("inbox");
        if inbox.exists() {
            std::fs::remove_dir_all(&inbox)?;
        }
        std::fs::create_dir_all(&inbox)?;
        let target = inbox.join("bank.csv");
        if copy || std::fs::hard_link(data, &target).is_err() {
            std::fs::copy(data, &target)?;
        }
        let mut toml = format!(
            "# Written by weir-bench.\n[engine]\nplugins_dir = \"{}\"\ncache_dir = \"{}\"\nbatch_size = {}\n",
            self.plugins.display(),
            // One compile cache for every config, warm after the first warm-up run, so no
            // timed run (nor the memory check) includes compiling the plugins.
            self.work.join("cache").display(),
            self.opts.batch
        );
        let typed = r#"types = { id = "integer", amount = "real", balance = "real" }"#;
        let db = |v: &Variant| self.db_path(dir, v).display().to_string();
        toml += &pipeline(
            "direct",
            &db(&Variant::Weir("direct".into())),
            typed,
            "",
            None,
        );
        toml += &pipeline(
            "mapped",
            &db(&Variant::Weir("mapped".into())),
            "",
            r#"transform = [{ plugin = "map-transform", config = { types = { id = "integer", booking_date = "date", value_date = "date", amount = "real", balance = "real" } } }]"#,
            None,
        );
        for b in sweep {
            toml += &pipeline(
                &format!("direct_b{b}"),
                &db(&Variant::Weir(format!("direct_b{b}"))),
                typed,
                "",
                Some(*b),
            );
        }
        std::fs::write(dir.join("weir.toml"), toml)?;
        Ok(())
    }

    /// One untimed warm-up run of each variant (page cache, compile cache), then `reps` rounds
    /// in rotating order. The first timed run of each variant is checked against the native
    /// baseline's table, row by row.
    fn rounds(
        &self,
        dir: &Path,
        data: &Path,
        variants: &[Variant],
        reps: usize,
        verify: bool,
    ) -> anyhow::Result<Vec<BTreeMap<Variant, Sample>>> {
        for v in variants {
            eprintln!("warm-up: {}", v.label());
            self.one(dir, data, v)?;
        }
        let mut reference: Option<Digest> = None;
        let mut rounds = Vec::new();
        for round in 0..reps {
            let mut order = variants.to_vec();
            order.rotate_left(round % variants.len());
            let mut samples = BTreeMap::new();
            for v in order {
                let sample = self.one(dir, data, &v)?;
                eprintln!(
                    "round {}/{reps}: {:<40} {:>6.2} s wall {:>6.2} s CPU {:>6.1} MiB",
                    round + 1,
                    v.label(),
                    sample.m.wall.as_secs_f64(),
                    sample.m.cpu().as_secs_f64(),
                    sample.m.rss_mib()
                );
                if verify && round == 0 {
                    let digest = Digest::of(&self.db_path(dir, &v))?;
                    ensure!(
                        digest.count == self.opts.rows,
                        "{}: table has {} rows, expected {}",
                        v.label(),
                        digest.count,
                        self.opts.rows
                    );
                    match &reference {
                        None => reference = Some(digest),
                        Some(r) => {
                            ensure!(
                                r.ddl == digest.ddl,
                                "{}: table differs from the others:\n{}\nvs\n{}",
                                v.label(),
                                digest.ddl,
                                r.ddl
                            );
                            ensure!(
                                r.hash == digest.hash,
                                "{}: table content differs from the other variants'",
                                v.label()
                            );
                        }
                    }
                }
                samples.insert(v, sample);
            }
            rounds.push(samples);
        }
        if verify {
            eprintln!("verified: every variant wrote the same table (schema and every value)");
        }
        Ok(rounds)
    }

    /// Run one variant on a fresh database.
    fn one(&self, dir: &Path, data: &Path, v: &Variant) -> anyhow::Result<Sample> {
        let db = self.db_path(dir, v);
        remove_db(&db)?;
        let scratch = dir.join("last");
        Ok(match v {
            Variant::Native(journal) => {
                let m = measure::run(
                    Command::new(&self.me)
                        .arg("native")
                        .arg("--csv")
                        .arg(data)
                        .arg("--db")
                        .arg(&db)
                        .arg("--batch")
                        .arg(self.opts.batch.to_string())
                        .arg("--journal")
                        .arg(match journal {
                            Journal::Wal => "wal",
                            Journal::Default => "default",
                        }),
                    &scratch,
                )?;
                let stages = m
                    .stdout
                    .split_whitespace()
                    .filter_map(|t| t.split_once("_ms="))
                    .filter_map(|(k, v)| Some((k.to_owned(), v.parse::<f64>().ok()?)))
                    .collect();
                Sample { m, stages }
            }
            Variant::Sqlite3 => {
                let m = measure::run(
                    Command::new("sqlite3")
                        .arg(&db)
                        .arg(native::TABLE_DDL)
                        .arg(format!(
                            ".import --csv --skip 1 '{}' transactions",
                            data.display()
                        )),
                    &scratch,
                )?;
                Sample {
                    m,
                    stages: BTreeMap::new(),
                }
            }
            Variant::Weir(pipeline) => {
                let r = self.weir_run(dir, pipeline)?;
                ensure!(
                    r.read == self.opts.rows && r.loaded == self.opts.rows && r.rejected == 0,
                    "weir {pipeline}: read {} loaded {} rejected {}, expected {} rows",
                    r.read,
                    r.loaded,
                    r.rejected,
                    self.opts.rows
                );
                Sample {
                    m: r.m,
                    stages: r.stages,
                }
            }
        })
    }

    /// `weir -c weir.toml run PIPELINE` in `dir`, with the stage-times log on.
    fn weir_run(&self, dir: &Path, pipeline: &str) -> anyhow::Result<WeirRun> {
        weir_run(&self.weir, dir, pipeline, &[])
    }

    fn print_main(&self, variants: &[Variant], rounds: &[BTreeMap<Variant, Sample>]) {
        let rows = self.opts.rows as f64;
        let native = Variant::Native(Journal::Wal);
        let has_sqlite = variants.contains(&Variant::Sqlite3);
        println!(
            "{:<36} {:>18} {:>7} {:>9} {:>9} {:>11} {:>10}{}",
            "variant",
            "wall s",
            "CPU s",
            "rows/s",
            "peak RSS",
            "wall/native",
            "CPU/native",
            if has_sqlite { "  wall/sqlite3" } else { "" }
        );
        for v in variants {
            let walls = series(rounds, v, |s| s.m.wall.as_secs_f64());
            let cpus = series(rounds, v, |s| s.m.cpu().as_secs_f64());
            let rss = series(rounds, v, |s| s.m.rss_mib());
            let wall = median(&walls);
            println!(
                "{:<36} {:>18} {:>7.2} {:>9} {:>5.0} MiB {:>11.2} {:>10.2}{}",
                v.label(),
                spread(&walls),
                median(&cpus),
                format!("{}k", (rows / wall / 1e3).round()),
                rss.iter().copied().fold(0.0, f64::max),
                ratio(rounds, v, &native, |s| s.m.wall.as_secs_f64()),
                ratio(rounds, v, &native, |s| s.m.cpu().as_secs_f64()),
                if has_sqlite {
                    format!(
                        "  {:>13.2}",
                        ratio(rounds, v, &Variant::Sqlite3, |s| s.m.wall.as_secs_f64())
                    )
                } else {
                    String::new()
                }
            );
        }
        println!(
            "ratios: median over rounds of (run / the same round's native or sqlite3 run); peak RSS: largest of the rounds"
        );
        println!();
        println!(
            "inside weir, per stage (median ms; the extract side and the load side run in parallel):"
        );
        let keys = [
            ("instantiate", "instantiate"),
            ("extract", "extract call"),
            ("check", "host checks"),
            ("transform", "transform call"),
            ("load", "load (bind+insert)"),
            ("commit", "commit"),
            ("send_wait", "extract waits"),
            ("recv_wait", "load waits"),
            ("total", "worker total"),
        ];
        print!("{:<36}", "variant");
        for (_, name) in keys {
            print!(" {name:>12}");
        }
        println!();
        for v in variants.iter().filter(|v| matches!(v, Variant::Weir(_))) {
            print!("{:<36}", v.label());
            for (key, _) in keys {
                let values = series(rounds, v, |s| {
                    s.stages.get(key).copied().unwrap_or(f64::NAN)
                });
                print!(" {:>12}", ms(median(&values)));
            }
            println!();
        }
        let native_commit = series(rounds, &native, |s| {
            s.stages.get("commit").copied().unwrap_or(f64::NAN)
        });
        println!(
            "native for comparison: commit (checkpoint upsert + COMMIT) {:.1} ms; everything else (parse, bind, insert) {:.1} ms",
            median(&native_commit),
            median(&series(rounds, &native, |s| s.m.wall.as_secs_f64() * 1e3))
                - median(&native_commit)
        );
        println!();
    }

    fn print_levers(&self, variants: &[Variant], rounds: &[BTreeMap<Variant, Sample>]) {
        let native = Variant::Native(Journal::Wal);
        println!("levers ({} rounds, same data):", self.opts.reps);
        println!(
            "{:<36} {:>18} {:>7} {:>9} {:>11} {:>10} {:>12} {:>12}",
            "config",
            "wall s",
            "CPU s",
            "peak RSS",
            "wall/native",
            "CPU/native",
            "extract ms",
            "load ms"
        );
        for v in variants {
            let walls = series(rounds, v, |s| s.m.wall.as_secs_f64());
            if walls.is_empty() {
                continue;
            }
            let label = match v {
                Variant::Weir(p) => {
                    format!("weir direct, batch {}", p.trim_start_matches("direct_b"))
                }
                other => other.label(),
            };
            println!(
                "{:<36} {:>18} {:>7.2} {:>5.0} MiB {:>11.2} {:>10.2} {:>12} {:>12}",
                label,
                spread(&walls),
                median(&series(rounds, v, |s| s.m.cpu().as_secs_f64())),
                series(rounds, v, |s| s.m.rss_mib())
                    .into_iter()
                    .fold(0.0, f64::max),
                ratio(rounds, v, &native, |s| s.m.wall.as_secs_f64()),
                ratio(rounds, v, &native, |s| s.m.cpu().as_secs_f64()),
                ms(median(&series(rounds, v, |s| s
                    .stages
                    .get("extract")
                    .copied()
                    .unwrap_or(f64::NAN)))),
                ms(median(&series(rounds, v, |s| s
                    .stages
                    .get("load")
                    .copied()
                    .unwrap_or(f64::NAN)))),
            );
        }
        println!();
    }

    /// Peak RSS at `big_rows` against the main rounds' figures.
    fn memory(&self, direct: &[&Sample], native_runs: &[&Sample]) -> anyhow::Result<()> {
        let big = self.opts.big_rows;
        let data = self.data(big)?;
        let dir = self.work.join("big");
        self.setup_dir(&dir, &data, &[])?;
        eprintln!("memory check: {} rows", thousands(big));
        remove_db(&self.db_path(&dir, &Variant::Weir("direct".into())))?;
        let r = self.weir_run(&dir, "direct")?;
        remove_db(&self.db_path(&dir, &Variant::Weir("direct".into())))?;
        ensure!(r.loaded == big, "weir loaded {} of {big} rows", r.loaded);
        let weir = r.m;
        let db = self.db_path(&dir, &Variant::Native(Journal::Wal));
        remove_db(&db)?;
        let native_big = measure::run(
            Command::new(&self.me)
                .arg("native")
                .arg("--csv")
                .arg(&data)
                .arg("--db")
                .arg(&db)
                .arg("--batch")
                .arg(self.opts.batch.to_string()),
            &dir.join("last"),
        )?;
        remove_db(&db)?;
        let max = |s: &[&Sample]| s.iter().map(|s| s.m.rss_mib()).fold(0.0, f64::max);
        let med =
            |s: &[&Sample]| median(&s.iter().map(|s| s.m.wall.as_secs_f64()).collect::<Vec<_>>());
        println!(
            "peak RSS, {} → {} rows: weir {:.0} → {:.0} MiB, native {:.0} → {:.0} MiB (wall: weir {:.2} → {:.2} s, native {:.2} → {:.2} s)",
            thousands(self.opts.rows),
            thousands(big),
            max(direct),
            weir.rss_mib(),
            max(native_runs),
            native_big.rss_mib(),
            med(direct),
            weir.wall.as_secs_f64(),
            med(native_runs),
            native_big.wall.as_secs_f64(),
        );
        Ok(())
    }

    /// A full load, then three times: append rows, evict the file from the page cache, re-run.
    fn incremental(&self, data: &Path) -> anyhow::Result<()> {
        let dir = self.work.join("incremental");
        // A real copy: appending to a hard link would change the generated file.
        self.setup_dir_with(&dir, data, &[], true)?;
        let db = self.db_path(&dir, &Variant::Weir("direct".into()));
        remove_db(&db)?;
        let csv = dir.join("inbox/bank.csv");
        let full = self.weir_run(&dir, "direct")?;
        ensure!(
            full.loaded == self.opts.rows,
            "full load loaded {}",
            full.loaded
        );
        let add = self.opts.append_rows;
        let mut walls = Vec::new();
        let mut reads = Vec::new();
        let mut lines = Vec::new();
        for k in 0..3 {
            let before = checkpoint_offset(&db)?;
            let from = self.opts.rows + k * add;
            generate::append_file(&csv, from, from + add)?;
            measure::evict_from_page_cache(&csv)?;
            let size = std::fs::metadata(&csv)?.len();
            let r = self.weir_run(&dir, "direct")?;
            let after = checkpoint_offset(&db)?;
            ensure!(
                r.read == add && r.loaded == add,
                "re-run read {} and loaded {} rows, expected {add}",
                r.read,
                r.loaded
            );
            ensure!(
                after == size,
                "checkpoint offset {after} after the re-run is not the file size {size}"
            );
            walls.push(r.m.wall.as_secs_f64());
            reads.push(r.m.disk_read_bytes as f64);
            lines.push(format!(
                "  re-run {}: {:.3} s, read {} rows, checkpoint {} → {} (+{} B), {} B read from disk",
                k + 1,
                r.m.wall.as_secs_f64(),
                thousands(r.read),
                thousands(before),
                thousands(after),
                thousands(after - before),
                thousands(r.m.disk_read_bytes)
            ));
        }
        let count: u64 = rusqlite::Connection::open(&db)?.query_row(
            "SELECT count(*) FROM transactions",
            [],
            |r| r.get(0),
        )?;
        ensure!(
            count == self.opts.rows + 3 * add,
            "after the re-runs the table has {count} rows, expected {}",
            self.opts.rows + 3 * add
        );
        println!(
            "incremental: full load of {} rows {:.2} s; re-run after appending {} rows {:.3} s (median of 3), {:.0} KB read from disk (file {:.0} MB)",
            thousands(self.opts.rows),
            full.m.wall.as_secs_f64(),
            thousands(add),
            median(&walls),
            median(&reads) / 1e3,
            std::fs::metadata(&csv)?.len() as f64 / 1e6
        );
        for l in lines {
            println!("{l}");
        }
        remove_db(&db)?;
        std::fs::remove_file(&csv)?;
        Ok(())
    }

    /// `weir plugins list` with an empty compile cache (cold: compile) and with a warm one.
    fn plugin_load(&self) -> anyhow::Result<()> {
        let dir = self.work.join("plugins");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("weir.toml"),
            format!(
                "[engine]\nplugins_dir = \"{}\"\ncache_dir = \"cache\"\n",
                self.plugins.display()
            ),
        )?;
        let list = || {
            measure::run(
                Command::new(&self.weir)
                    .args(["-c", "weir.toml", "plugins", "list"])
                    .current_dir(&dir),
                &dir.join("last"),
            )
        };
        let mut per_plugin: BTreeMap<(String, bool), Vec<f64>> = BTreeMap::new();
        let mut process: BTreeMap<bool, Vec<f64>> = BTreeMap::new();
        for round in 0..3 {
            let cache = dir.join("cache");
            if cache.exists() {
                std::fs::remove_dir_all(&cache)?;
            }
            for cached in [false, true, true] {
                let m = list()?;
                process
                    .entry(cached)
                    .or_default()
                    .push(m.wall.as_secs_f64() * 1e3);
                for line in m.stdout.lines().skip(1) {
                    let tokens: Vec<&str> = line.split_whitespace().collect();
                    let Some(ms_at) = tokens.iter().position(|t| *t == "ms") else {
                        continue;
                    };
                    let Ok(ms) = tokens[ms_at - 1].parse::<f64>() else {
                        continue;
                    };
                    let hit = line.ends_with("(cached)");
                    ensure!(
                        hit == cached,
                        "round {round}: expected {} but weir said: {line}",
                        if cached { "(cached)" } else { "(compiled)" }
                    );
                    per_plugin
                        .entry((tokens[0].to_owned(), cached))
                        .or_default()
                        .push(ms);
                }
            }
        }
        println!(
            "plugin load (`weir plugins list`; read, compile or cache hit, pre-instantiate, describe), median ms:"
        );
        let names: Vec<String> = per_plugin
            .keys()
            .map(|(n, _)| n.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for name in names {
            let get = |c: bool| {
                per_plugin
                    .get(&(name.clone(), c))
                    .map_or(f64::NAN, |v| median(v))
            };
            println!(
                "  {name:<16} cold (compiled) {:>8.1}   cached {:>6.1}",
                get(false),
                get(true)
            );
        }
        println!(
            "  whole `weir plugins list` process: cold {:.0} ms, cached {:.0} ms",
            median(process.get(&false).map_or(&[][..], |v| v)),
            median(process.get(&true).map_or(&[][..], |v| v))
        );
        Ok(())
    }
}

/// The generated bank CSV of `rows` rows in `work`/data, made once and kept.
pub(crate) fn data_file(work: &Path, rows: u64) -> anyhow::Result<PathBuf> {
    let dir = work.join("data");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("bank-{rows}-v{}.csv", generate::VERSION));
    if !path.is_file() {
        eprintln!("generating {} ({} rows)…", path.display(), thousands(rows));
        generate::write_file(&path, rows)?;
    }
    Ok(path)
}

/// `weir -c weir.toml run PIPELINE` in `dir` with `env` set and the stage-times log on: what it
/// cost, the totals it printed and its stage times (summed over partitions).
pub(crate) fn weir_run(
    weir: &Path,
    dir: &Path,
    pipeline: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<WeirRun> {
    let m = measure::run(
        Command::new(weir)
            .args(["-c", "weir.toml", "run", pipeline])
            .current_dir(dir)
            .env("RUST_LOG", "warn,weir::stages=info")
            .envs(env.iter().copied()),
        &dir.join("last"),
    )?;
    let total = m
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .with_context(|| format!("no total line in weir's output:\n{}", m.stdout))?;
    let n: Vec<u64> = total
        .split_whitespace()
        .skip(1)
        .map(|t| t.replace(',', "").parse().unwrap_or(0))
        .collect();
    ensure!(n.len() == 3, "cannot read the total line {total:?}");
    let stages = m
        .stderr
        .lines()
        .filter(|l| l.contains("stage times"))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|t| t.split_once("_ms="))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse::<f64>().ok()?)))
        .fold(BTreeMap::new(), |mut acc, (k, v)| {
            *acc.entry(k).or_insert(0.0) += v;
            acc
        });
    Ok(WeirRun {
        m,
        read: n[0],
        loaded: n[1],
        rejected: n[2],
        stages,
    })
}

/// One `[[pipeline]]` table reading `inbox/*.csv` into table `transactions` of `db`.
fn pipeline(
    name: &str,
    db: &str,
    extract_types: &str,
    transform: &str,
    batch: Option<u32>,
) -> String {
    let mut s = format!("\n[[pipeline]]\nname = \"{name}\"\n");
    if let Some(b) = batch {
        s += &format!("batch_size = {b}\n");
    }
    s += &format!("grants = {{ read_dirs = [\"inbox\"], databases = {{ bench = \"{db}\" }} }}\n");
    let sep = if extract_types.is_empty() { "" } else { ", " };
    s += &format!(
        "extract = {{ plugin = \"csv-extract\", config = {{ path = \"inbox/*.csv\"{sep}{extract_types} }} }}\n"
    );
    if !transform.is_empty() {
        s += transform;
        s.push('\n');
    }
    s += "load = [{ plugin = \"sqlite-load\", config = { database = \"bench\", table = \"transactions\" } }]\n";
    s += "history = { plugin = \"sqlite-history\", config = { database = \"bench\" } }\n";
    s
}

impl Bench<'_> {
    /// The database file of variant `v` for the configs in `dir`.
    fn db_path(&self, dir: &Path, v: &Variant) -> PathBuf {
        let base = match &self.db_dir {
            Some(d) => d.join(dir.file_name().unwrap_or_default()),
            None => dir.to_owned(),
        };
        let _ = std::fs::create_dir_all(&base);
        base.join(db_file(v))
    }
}

fn db_file(v: &Variant) -> String {
    match v {
        Variant::Native(Journal::Wal) => "native.db".to_owned(),
        Variant::Native(Journal::Default) => "native-journal.db".to_owned(),
        Variant::Weir(p) => format!("{p}.db"),
        Variant::Sqlite3 => "sqlite3.db".to_owned(),
    }
}

pub(crate) fn remove_db(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", db.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The byte offset of the (single) checkpoint csv-extract saved in `db`.
fn checkpoint_offset(db: &Path) -> anyhow::Result<u64> {
    let conn = rusqlite::Connection::open(db)?;
    let text: String =
        conn.query_row("SELECT checkpoint FROM _weir_checkpoints", [], |r| r.get(0))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    v["offset"]
        .as_u64()
        .with_context(|| format!("checkpoint without offset: {text}"))
}

/// A table's schema and a hash of every value (with its SQLite type), in id order.
pub(crate) struct Digest {
    pub ddl: String,
    pub count: u64,
    pub hash: u64,
}

impl Digest {
    fn of(db: &Path) -> anyhow::Result<Self> {
        Self::of_table(db, "transactions")
    }

    /// The digest of `table` (which has an `id` column) in `db`.
    pub fn of_table(db: &Path, table: &str) -> anyhow::Result<Self> {
        use rusqlite::types::ValueRef;
        let conn = rusqlite::Connection::open(db)?;
        let ddl: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .with_context(|| format!("{}: no table {table}", db.display()))?;
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\" ORDER BY id"))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([])?;
        // DefaultHasher::new() has fixed keys: the same table gives the same hash.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut count = 0;
        while let Some(row) = rows.next()? {
            count += 1;
            for i in 0..columns {
                match row.get_ref(i)? {
                    ValueRef::Null => h.write_u8(0),
                    ValueRef::Integer(n) => {
                        h.write_u8(1);
                        h.write_i64(n);
                    }
                    ValueRef::Real(f) => {
                        h.write_u8(2);
                        h.write_u64(f.to_bits());
                    }
                    ValueRef::Text(t) => {
                        h.write_u8(3);
                        h.write(t);
                        h.write_u8(0xff);
                    }
                    ValueRef::Blob(b) => {
                        h.write_u8(4);
                        h.write(b);
                        h.write_u8(0xff);
                    }
                }
            }
        }
        if count == 0 {
            bail!("{}: table {table} is empty", db.display());
        }
        Ok(Self {
            ddl: normalise_ddl(&ddl),
            count,
            hash: h.finish(),
        })
    }
}

/// SQLite keeps `IF NOT EXISTS` out of `sqlite_master.sql` in some versions and not others.
fn normalise_ddl(ddl: &str) -> String {
    ddl.replace("IF NOT EXISTS ", "")
}

fn series(
    rounds: &[BTreeMap<Variant, Sample>],
    v: &Variant,
    f: impl Fn(&Sample) -> f64,
) -> Vec<f64> {
    rounds.iter().filter_map(|r| r.get(v)).map(f).collect()
}

/// Median over rounds of `v`'s figure divided by `base`'s figure in the same round.
fn ratio(
    rounds: &[BTreeMap<Variant, Sample>],
    v: &Variant,
    base: &Variant,
    f: impl Fn(&Sample) -> f64,
) -> f64 {
    let ratios: Vec<f64> = rounds
        .iter()
        .filter_map(|r| Some(f(r.get(v)?) / f(r.get(base)?)))
        .collect();
    median(&ratios)
}

/// Milliseconds with one decimal, `-` when there is no figure.
pub(crate) fn ms(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.1}")
    }
}

/// `1.89 (1.63–2.23)`.
pub(crate) fn spread(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    format!("{:.2} ({:.2}–{:.2})", median(values), min, max)
}

pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One line about the machine.
pub(crate) fn machine(sqlite3: Option<&str>) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "machine: {cpus} × {model}, {mem_gib:.1} GiB, Linux {}; sqlite3 CLI {}",
        kernel.trim(),
        sqlite3.unwrap_or("not found")
    )
}

/// The file system type `path` is on (`ext4`, `tmpfs`), from /proc/mounts.
pub(crate) fn filesystem(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, point, kind) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max()
        .map_or_else(|| "unknown file system".into(), |(_, kind)| kind)
}
