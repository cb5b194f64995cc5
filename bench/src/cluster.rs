//! The cluster case (`weir-bench run --cluster`): one partitioned load (the bank CSV split into
//! `--cluster-files` files, one partition each) from a shared inbox into PostgreSQL, run by
//! `weir serve` processes on this machine:
//!
//! - plain: one host without `engine.cluster` (run records and events in its SQLite state);
//! - clustered ×1, ×2, ×3: hosts with `engine.cluster` sharing the run's partitions through the
//!   cluster database, each with the same `concurrency`;
//! - clustered ×1 with its cluster database apart and `synchronous_commit = off`: a diagnostic
//!   of what the cluster's own commits cost;
//! - takeover: two clustered hosts on a short lease; the host that does not hold the run lease is
//!   killed with SIGKILL once it is in the middle of a partition, and the time to the first
//!   `partition_claimed` event taken over from it, and to the run's end, is reported;
//! - the event log's serial point: pgbench on the counter row every event transaction updates.
//!
//! One throwaway PostgreSQL (`pg_server`) is the cluster database, the target and the history
//! store; every run gets a fresh database made from an emptied template (weir's own tables),
//! so it starts from an empty target, no checkpoints, no fences and no cluster state. A run is
//! timed from its trigger (`POST /api/pipelines/bank/runs`) to the run's end event on that
//! host's event stream (`GET /api/events`), with the hosts already up.
//! Afterwards the target must hold every source row exactly once (an error otherwise).

use std::collections::BTreeMap;
use std::io::{BufRead as _, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use crate::driver::{self, machine, spread, thousands};
use crate::measure::median;
use crate::pg_server::{self, PASSWORD, PgServer, USER};

/// Options of the cluster case (part of `weir-bench run`).
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterOptions {
    /// Only the cluster case (skips everything else `run` measures).
    #[arg(long)]
    pub cluster: bool,
    /// Rows of the cluster case, over all files.
    #[arg(long = "cluster-rows", default_value_t = 1_000_000)]
    pub cluster_rows: u64,
    /// Files (partitions) the rows are split into.
    #[arg(long = "cluster-files", default_value_t = 24)]
    pub cluster_files: u64,
    /// Partitions each host loads at once (`concurrency`, the same on every host, as with one
    /// weir.toml deployed everywhere).
    #[arg(long = "cluster-concurrency", default_value_t = 2)]
    pub cluster_concurrency: usize,
    /// Timed rounds; each runs every case once, in rotating order.
    #[arg(long = "cluster-rounds", visible_alias = "rounds", default_value_t = 3)]
    pub cluster_rounds: usize,
    /// The most hosts of the throughput cases (clustered ×1 up to ×N).
    #[arg(long = "cluster-hosts", default_value_t = 3)]
    pub cluster_hosts: usize,
    /// `lease_seconds` of the takeover case (the throughput cases use weir's default).
    #[arg(long = "cluster-lease", default_value_t = 3)]
    pub cluster_lease: u32,
    /// Runs of the takeover case (0 skips it).
    #[arg(long = "cluster-takeovers", default_value_t = 3)]
    pub cluster_takeovers: usize,
    /// Skip the diagnostic case (clustered ×1 with the cluster's tables in a database of their
    /// own with `synchronous_commit = off`: what the cluster's own commits cost).
    #[arg(long = "cluster-no-diagnostic")]
    pub cluster_no_diagnostic: bool,
}

pub struct ClusterBench<'a> {
    pub opts: &'a ClusterOptions,
    pub pg_bin: Option<PathBuf>,
    pub weir: PathBuf,
    pub plugins: PathBuf,
    pub work: PathBuf,
    pub batch: u32,
}

/// The API token every host is started with (`WEIR_TOKEN`).
const TOKEN: &str = "weir-bench-cluster-token";
/// The database each run writes (dropped and created before each run).
const DB: &str = "cluster_bench";
/// The diagnostic case's cluster database.
const META_DB: &str = "cluster_meta";
/// The empty target every run's database is created from (see `Ctx::template`).
const TEMPLATE_DB: &str = "cluster_template";
const PIPELINE: &str = "bank";
/// Host ids, in the order they are started.
const HOST_IDS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

/// What is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Case {
    /// One host without `engine.cluster`.
    Plain,
    /// This many hosts with `engine.cluster`.
    Clustered(usize),
    /// One clustered host whose cluster database is apart from the target, with
    /// `synchronous_commit = off`: its commits do not wait for WAL flushes. Not a setting to
    /// use (a server crash could lose a lease's newer epoch); it shows what the cluster's
    /// own commits cost.
    Diagnostic,
}

/// How a host joins a cluster.
#[derive(Debug, Clone, Copy)]
struct Clustering {
    /// `lease_seconds` (None: weir's default).
    lease: Option<u32>,
    /// The cluster database.
    db: &'static str,
}

impl Case {
    fn label(self) -> String {
        match self {
            Case::Plain => "plain: 1 host, no engine.cluster".into(),
            Case::Clustered(n) => format!("clustered ×{n}"),
            Case::Diagnostic => "clustered ×1, cluster db async".into(),
        }
    }

    fn hosts(self) -> usize {
        match self {
            Case::Plain => 1,
            Case::Clustered(n) => n,
            Case::Diagnostic => 1,
        }
    }

    fn clustering(self) -> Option<Clustering> {
        match self {
            Case::Plain => None,
            Case::Clustered(_) => Some(Clustering {
                lease: None,
                db: DB,
            }),
            Case::Diagnostic => Some(Clustering {
                lease: None,
                db: META_DB,
            }),
        }
    }
}

/// What one host used during a run.
struct HostUse {
    /// Peak resident set over the process's life (`VmHWM`), MiB.
    peak_rss_mib: f64,
    /// User + system CPU over the process's life, seconds.
    cpu: f64,
}

/// One timed run.
struct Sample {
    /// Trigger to the end seen on the API, seconds.
    wall: f64,
    /// The run record's own duration (started_ms to ended_ms), seconds.
    recorded: f64,
    hosts: Vec<HostUse>,
    /// CPU PostgreSQL's processes spent during the run.
    server_cpu: f64,
    /// Cluster only: partitions per host id, and events the run wrote.
    partitions: BTreeMap<String, u64>,
    events: u64,
    /// Cluster only: `kind count, …` of the run's events.
    event_kinds: String,
    server_work: ServerWork,
}

/// One run of the takeover case.
struct Takeover {
    victim: String,
    /// The partition it held with committed batches (file name).
    partition: String,
    /// Seconds from the trigger to the kill.
    into_run: f64,
    /// Seconds from the kill to the first `partition_claimed` taken over from the victim
    /// (the event's own time).
    to_claim: f64,
    /// Seconds from the kill to the run's end seen on the API.
    to_end: f64,
    /// Seconds from the trigger to the run's end.
    wall: f64,
    /// Partitions taken over from the victim.
    taken: usize,
    /// `rows_loaded` of the run's record.
    recorded_loaded: u64,
}

/// What PostgreSQL did for one run's hosts (their start to their stop).
struct ServerWork {
    /// Transactions committed in the run's database.
    commits: f64,
    /// WAL flushes of the whole server.
    wal_syncs: f64,
    /// WAL written, MB.
    wal_mb: f64,
    /// `table inserted/updated, …` over the run's databases.
    writes: String,
}

/// The server, the shared inbox and what every run needs.
struct Ctx<'a> {
    bench: &'a ClusterBench<'a>,
    server: PgServer,
    dir: PathBuf,
    inbox: PathBuf,
}

impl ClusterBench<'_> {
    pub fn run(&self) -> anyhow::Result<()> {
        let o = self.opts;
        ensure!(o.cluster_files > 0, "--cluster-files must be at least 1");
        ensure!(
            (1..=HOST_IDS.len()).contains(&o.cluster_hosts),
            "--cluster-hosts must be 1 to {}",
            HOST_IDS.len()
        );
        ensure!(
            o.cluster_concurrency > 0,
            "--cluster-concurrency must be at least 1"
        );
        for plugin in ["csv-extract", "sqlite-load", "sqlite-history"] {
            ensure!(
                self.plugins.join(format!("{plugin}.wasm")).is_file(),
                "{} has no {plugin}.wasm: build the plugins with `just plugins`",
                self.plugins.display()
            );
        }
        let bin = match &self.pg_bin {
            Some(b) => b.clone(),
            None => pg_server::find_bin()?,
        };
        let dir = self.work.join("cluster");
        std::fs::create_dir_all(&dir)?;
        let inbox = self.inbox(&dir)?;
        eprintln!("starting a throwaway PostgreSQL from {}…", bin.display());
        let server = PgServer::start(&bin)?;
        let ctx = Ctx {
            bench: self,
            server,
            dir,
            inbox,
        };
        println!("{}", machine(None));
        println!(
            "PostgreSQL: {} ({}), throwaway cluster in {} ({}), server defaults (fsync, synchronous_commit on); it is the cluster database, the target and the history store",
            ctx.server.version,
            bin.display(),
            ctx.server.dir().display(),
            driver::filesystem(ctx.server.dir())
        );
        let size: u64 = std::fs::read_dir(&ctx.inbox)?
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        println!(
            "data: {} rows in {} CSV files ({:.1} MB, {}), one partition each; batch {} rows; concurrency {} per host; {} rounds, medians (min–max); the hosts are `weir serve` processes on this machine",
            thousands(o.cluster_rows),
            o.cluster_files,
            size as f64 / 1e6,
            ctx.inbox.display(),
            self.batch,
            o.cluster_concurrency,
            o.cluster_rounds
        );
        println!();

        let mut cases = vec![Case::Plain];
        cases.extend((1..=o.cluster_hosts).map(Case::Clustered));
        if !o.cluster_no_diagnostic {
            cases.push(Case::Diagnostic);
        }
        // Untimed: the compile cache (every host after this one finds the plugins compiled)
        // and the page cache.
        ctx.template()?;
        let mut rounds: Vec<BTreeMap<Case, Sample>> = Vec::new();
        for round in 0..o.cluster_rounds {
            let mut order = cases.clone();
            order.rotate_left(round % cases.len());
            let mut samples = BTreeMap::new();
            for case in order {
                let s = ctx.one(case)?;
                eprintln!(
                    "cluster round {}/{}: {:<34} {:>6.2} s (record {:.2} s), server CPU {:.2} s, hosts CPU {:.2} s",
                    round + 1,
                    o.cluster_rounds,
                    case.label(),
                    s.wall,
                    s.recorded,
                    s.server_cpu,
                    s.hosts.iter().map(|h| h.cpu).sum::<f64>()
                );
                samples.insert(case, s);
            }
            rounds.push(samples);
        }
        print(&rounds, &cases, o.cluster_rows);

        if o.cluster_takeovers > 0 {
            println!();
            ctx.takeovers()?;
        }
        println!();
        ctx.event_log_ceiling()?;
        Ok(())
    }

    /// The shared inbox: `cluster_files` CSV files of the bank rows (ids unique across files),
    /// made once per size and kept (a marker file says it is complete).
    fn inbox(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let (rows, files) = (self.opts.cluster_rows, self.opts.cluster_files);
        let inbox = dir.join(format!(
            "inbox-{rows}x{files}-v{}",
            crate::generate::VERSION
        ));
        let done = inbox.join(".complete");
        if done.is_file() {
            return Ok(inbox);
        }
        if inbox.exists() {
            std::fs::remove_dir_all(&inbox)?;
        }
        std::fs::create_dir_all(&inbox)?;
        eprintln!(
            "generating {} rows into {} files in {}…",
            thousands(rows),
            files,
            inbox.display()
        );
        for f in 0..files {
            let (from, to) = (rows * f / files, rows * (f + 1) / files);
            let path = inbox.join(format!("part-{f:02}.csv"));
            let file = std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            crate::generate::write_rows(file, from, to, true)?;
        }
        std::fs::write(&done, "")?;
        Ok(inbox)
    }
}

impl Ctx<'_> {
    fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.server.port)
    }

    /// The weir.toml of host `id`: clustered or plain.
    fn config(&self, id: &str, cluster: Option<Clustering>, concurrency: usize) -> String {
        let b = self.bench;
        let cluster = match cluster {
            None => String::new(),
            Some(c) => format!(
                "cluster = {{ url = \"{}\", password = \"${{BENCH_PGPASSWORD}}\", host_id = \"{id}\"{} }}\n",
                self.url(c.db),
                c.lease
                    .map(|s| format!(", lease_seconds = {s}"))
                    .unwrap_or_default()
            ),
        };
        let inbox = self.inbox.display();
        format!(
            r#"# Written by weir-bench (the cluster case).
[engine]
plugins_dir = "{plugins}"
cache_dir = "{cache}"
batch_size = {batch}
{cluster}
[[pipeline]]
name = "{PIPELINE}"
concurrency = {concurrency}
# Every host reads the same folder (as a shared volume would be) and writes the same database.
grants = {{ read_dirs = ["{inbox}"], databases = {{ bench = {{ url = "{url}", password = "${{BENCH_PGPASSWORD}}", sslmode = "disable" }} }} }}
extract = {{ plugin = "csv-extract", config = {{ path = "{inbox}/*.csv", types = {{ id = "integer", amount = "real", balance = "real" }} }} }}
load = [{{ plugin = "sqlite-load", config = {{ database = "bench", table = "transactions" }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "bench" }} }}
"#,
            plugins = b.plugins.display(),
            cache = b.work.join("cache").display(),
            batch = b.batch,
            concurrency = concurrency,
            url = self.url(DB),
        )
    }

    /// Start `n` hosts (fresh folders) and wait until each is ready: listening, its pipeline
    /// valid, and in a cluster joined.
    fn start_hosts(&self, n: usize, cluster: Option<Clustering>) -> anyhow::Result<Vec<Host>> {
        self.start_hosts_with(n, cluster, self.bench.opts.cluster_concurrency)
    }

    fn start_hosts_with(
        &self,
        n: usize,
        cluster: Option<Clustering>,
        concurrency: usize,
    ) -> anyhow::Result<Vec<Host>> {
        let mut hosts = Vec::new();
        for id in &HOST_IDS[..n] {
            let dir = self.dir.join(format!("host-{id}"));
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("weir.toml"), self.config(id, cluster, concurrency))?;
            hosts.push(Host::start(&self.bench.weir, id, &dir)?);
        }
        for host in &mut hosts {
            host.ready(cluster.is_some())?;
        }
        Ok(hosts)
    }

    /// Trigger the pipeline on `host`; the run id.
    fn trigger(&self, host: &Host) -> anyhow::Result<String> {
        let (status, body) = http(
            host.addr,
            "POST",
            &format!("/api/pipelines/{PIPELINE}/runs"),
            true,
        )?;
        ensure!(
            status == 202,
            "triggering on host {}: HTTP {status}: {body}",
            host.id
        );
        let answer: Value = serde_json::from_str(&body)?;
        answer["run_id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no run_id in {body}"))
    }

    /// Poll `GET /api/runs/ID` on `host` until the run is no longer running; its record.
    fn finished(&self, host: &Host, run: &str, limit: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let (status, body) = http(host.addr, "GET", &format!("/api/runs/{run}"), false)?;
            if status == 200 {
                let record: Value = serde_json::from_str(&body)?;
                if record["status"] != "running" {
                    return Ok(record);
                }
            }
            ensure!(
                Instant::now() < deadline,
                "run {run} still not over after {limit:?} (last answer HTTP {status}: {body})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The run completed and the target holds every source row exactly once. `counts`: the
    /// run record's row counts must say so too (not after a takeover: the killed host's
    /// counts of its last moments may be lost with it; the target is what counts).
    fn verify(&self, case: &str, record: &Value, counts: bool) -> anyhow::Result<()> {
        let rows = self.bench.opts.cluster_rows;
        ensure!(
            record["status"] == "completed",
            "{case}: the run ended {}: {record}",
            record["status"]
        );
        ensure!(
            !counts
                || (record["rows_loaded"].as_u64() == Some(rows) && record["rows_rejected"] == 0),
            "{case}: the run loaded {} and rejected {}, expected {rows} and none: {record}",
            record["rows_loaded"],
            record["rows_rejected"]
        );
        let target = self.server.sql(
            DB,
            "SELECT count(*) || '|' || count(DISTINCT id) || '|' || coalesce(min(id), 0) || '|' || coalesce(max(id), 0) FROM transactions",
        )?;
        let expected = format!("{rows}|{rows}|1|{rows}");
        ensure!(
            target.trim() == expected,
            "{case}: the target holds (rows|distinct ids|min id|max id) {}, expected {expected}",
            target.trim()
        );
        Ok(())
    }

    /// The empty target, made once: an untimed warm-up run (one clustered host, one
    /// partition at a time; it also fills the compile cache and the page cache) creates weir's
    /// tables in a database, which is then emptied (the cluster's tables dropped, the rest
    /// truncated) and kept as the template of every run's database. Why not let each run
    /// create its tables: two workers creating `_weir_checkpoints` in an empty PostgreSQL
    /// database at the same time can fail one partition (`CREATE TABLE IF NOT EXISTS` races
    /// in PostgreSQL, and weir treats the loser's "already exists" as a configuration error),
    /// and a target that already has its tables is the usual case anyway.
    fn template(&self) -> anyhow::Result<()> {
        eprintln!("warm-up: 1 clustered host, concurrency 1 (makes the empty target's template)");
        self.server.recreate(DB)?;
        let clustering = Clustering {
            lease: None,
            db: DB,
        };
        let mut hosts = self.start_hosts_with(1, Some(clustering), 1)?;
        let run = self.trigger(&hosts[0])?;
        let record = self.finished(&hosts[0], &run, Duration::from_secs(1800))?;
        for host in &mut hosts {
            host.stop()?;
        }
        self.verify("warm-up", &record, true)?;
        self.server.sql(
            DB,
            r"DO $$ DECLARE t record; BEGIN
               FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
                 IF t.tablename LIKE 'weir\_%' THEN
                   EXECUTE format('DROP TABLE %I CASCADE', t.tablename);
                 ELSE
                   EXECUTE format('TRUNCATE %I', t.tablename);
                 END IF;
               END LOOP;
             END $$",
        )?;
        let tables = self.server.sql(
            DB,
            "SELECT string_agg(tablename, ', ' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'",
        )?;
        eprintln!("empty target template: {}", tables.trim());
        self.server.sql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)"),
        )?;
        self.disconnected()?;
        self.server.sql(
            "postgres",
            &format!("CREATE DATABASE {TEMPLATE_DB} TEMPLATE {DB}"),
        )?;
        Ok(())
    }

    /// The run's database, made afresh from the template: an empty target, no checkpoints,
    /// no fences, no cluster state.
    fn fresh_db(&self) -> anyhow::Result<()> {
        self.server.sql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"),
        )?;
        self.server.sql(
            "postgres",
            &format!("CREATE DATABASE {DB} TEMPLATE {TEMPLATE_DB}"),
        )?;
        Ok(())
    }

    /// One run of `case` from an empty database, on freshly started hosts.
    fn one(&self, case: Case) -> anyhow::Result<Sample> {
        self.fresh_db()?;
        let cluster = case.clustering();
        if case == Case::Diagnostic {
            self.server.recreate(META_DB)?;
            self.server.sql(
                "postgres",
                &format!("ALTER DATABASE {META_DB} SET synchronous_commit = off"),
            )?;
        } else {
            self.server.sql(
                "postgres",
                &format!("DROP DATABASE IF EXISTS {META_DB} WITH (FORCE)"),
            )?;
        }
        self.server.sql(DB, "SELECT pg_stat_reset_shared('wal')")?;
        let mut hosts = self.start_hosts(case.hosts(), cluster)?;
        let cpu_before = self.server.cpu_seconds()?;
        // The end is seen on the event stream, not by polling the API: on a clustered host
        // every poll is a read of the cluster database, which would load the very server
        // being measured (a plain host's reads go to its own SQLite file).
        let ends = RunEnds::watch(hosts[0].addr)?;
        let started = Instant::now();
        let run = self.trigger(&hosts[0])?;
        let ended = ends.wait(&run, Duration::from_secs(1800))?;
        let wall = ended.duration_since(started).as_secs_f64();
        let server_cpu = self.server.cpu_seconds()? - cpu_before;
        let record = self.finished(&hosts[0], &run, Duration::from_secs(60))?;
        let usage = hosts
            .iter()
            .map(Host::usage)
            .collect::<anyhow::Result<_>>()?;
        for host in &mut hosts {
            host.stop()?;
        }
        let server_work = self.server_work()?;
        self.verify(&case.label(), &record, true)?;
        let mut event_kinds = String::new();
        let (partitions, events) = if let Some(c) = cluster {
            let per_host = self.server.sql(
                c.db,
                &format!(
                    "SELECT host || '|' || count(*) FROM weir_run_partitions WHERE run_id = '{run}' GROUP BY host ORDER BY host"
                ),
            )?;
            let partitions = per_host
                .lines()
                .filter_map(|l| {
                    let (h, n) = l.split_once('|')?;
                    Some((h.to_owned(), n.parse().ok()?))
                })
                .collect();
            let kinds = self.server.sql(
                c.db,
                &format!(
                    "SELECT kind || ' ' || count(*) FROM weir_events WHERE run = '{run}' GROUP BY kind ORDER BY count(*) DESC, kind"
                ),
            )?;
            event_kinds = kinds.lines().collect::<Vec<_>>().join(", ");
            let events = self
                .server
                .sql(
                    c.db,
                    &format!("SELECT count(*) FROM weir_events WHERE run = '{run}'"),
                )?
                .trim()
                .parse()?;
            (partitions, events)
        } else {
            (BTreeMap::new(), 0)
        };
        Ok(Sample {
            wall,
            recorded: record["duration_seconds"].as_f64().unwrap_or(f64::NAN),
            hosts: usage,
            server_cpu,
            partitions,
            events,
            event_kinds,
            server_work,
        })
    }

    /// Wait until nobody is connected to the run's databases (the hosts' backends end a
    /// moment after the hosts).
    fn disconnected(&self) -> anyhow::Result<()> {
        poll(
            "the hosts' connections to close",
            Duration::from_secs(30),
            || {
                let others = self.server.sql(
                    "postgres",
                    &format!(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname IN ('{DB}', '{META_DB}')"
                    ),
                )?;
                Ok((others.trim() == "0").then_some(()))
            },
        )
    }

    /// What the server did for the hosts, from their start to their stop: transactions
    /// committed in the run's database, and WAL flushes (fsyncs) of the whole server. Read
    /// once the hosts' connections have closed (a backend reports its counts when it ends).
    fn server_work(&self) -> anyhow::Result<ServerWork> {
        self.disconnected()?;
        let line = self.server.sql(
            DB,
            &format!(
                "SELECT (SELECT sum(xact_commit) FROM pg_stat_database WHERE datname IN ('{DB}', '{META_DB}')) || '|' || wal_sync || '|' || wal_bytes FROM pg_stat_wal"
            ),
        )?;
        let f: Vec<f64> = line
            .trim()
            .split('|')
            .filter_map(|v| v.parse().ok())
            .collect();
        ensure!(
            f.len() == 3,
            "cannot read the server's statistics: {line:?}"
        );
        let mut writes = Vec::new();
        let exists = self.server.sql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{META_DB}'"),
        )?;
        let dbs: &[&str] = if exists.trim() == "1" {
            &[DB, META_DB]
        } else {
            &[DB]
        };
        for db in dbs {
            let tables = self.server.sql(
                db,
                "SELECT relname || ' ' || n_tup_ins || '/' || n_tup_upd FROM pg_stat_user_tables
                 WHERE n_tup_ins + n_tup_upd > 0 ORDER BY n_tup_ins + n_tup_upd DESC, relname",
            )?;
            writes.extend(tables.lines().map(str::to_owned));
        }
        Ok(ServerWork {
            commits: f[0],
            wal_syncs: f[1],
            wal_mb: f[2] / 1e6,
            writes: writes.join(", "),
        })
    }

    /// The takeover case `--cluster-takeovers` times: each run's line, then the medians.
    fn takeovers(&self) -> anyhow::Result<()> {
        let o = self.bench.opts;
        println!(
            "takeover: 2 clustered hosts, lease_seconds = {} (heartbeat every {:.1} s), {} rows, concurrency {} per host; the host without the run lease killed with SIGKILL once it holds a partition with committed batches",
            o.cluster_lease,
            f64::from(o.cluster_lease) / 3.0,
            thousands(o.cluster_rows),
            o.cluster_concurrency
        );
        let mut samples = Vec::new();
        for i in 0..o.cluster_takeovers {
            let t = self.takeover()?;
            println!(
                "  {}/{}: host {} killed {:.1} s into the run holding {}; kill → first claim of its partitions {:.2} s, → run end {:.2} s; whole run {:.2} s; {} partitions taken over; target = source, no duplicate id; the run record says {} rows loaded",
                i + 1,
                o.cluster_takeovers,
                t.victim,
                t.into_run,
                t.partition,
                t.to_claim,
                t.to_end,
                t.wall,
                t.taken,
                thousands(t.recorded_loaded)
            );
            samples.push(t);
        }
        let m = |f: &dyn Fn(&Takeover) -> f64| -> String {
            spread(&samples.iter().map(f).collect::<Vec<_>>())
        };
        println!(
            "  median (min–max): kill → first claim {} s (the lease is {} s); kill → run end {} s; whole run {} s",
            m(&|t| t.to_claim),
            o.cluster_lease,
            m(&|t| t.to_end),
            m(&|t| t.wall)
        );
        Ok(())
    }

    /// Two hosts on a short lease; the one without the run lease is killed mid-partition.
    fn takeover(&self) -> anyhow::Result<Takeover> {
        let lease = self.bench.opts.cluster_lease;
        self.fresh_db()?;
        let mut hosts = self.start_hosts(
            2,
            Some(Clustering {
                lease: Some(lease),
                db: DB,
            }),
        )?;
        let started = Instant::now();
        let run = self.trigger(&hosts[0])?;
        let limit = Duration::from_secs(600);
        // The run lease's holder (the host the trigger reached, unless it lost it since).
        let holder = poll("the run lease held", limit, || {
            let owner = self.server.sql(
                DB,
                &format!(
                    "SELECT owner FROM weir_leases WHERE pipeline = '{PIPELINE}' AND partition = '*' AND state = 'held' AND run_id = '{run}'"
                ),
            )?;
            Ok((!owner.trim().is_empty()).then(|| owner.trim().to_owned()))
        })?;
        let victim_index = hosts
            .iter()
            .position(|h| h.id != holder)
            .context("no host without the run lease")?;
        let victim = hosts[victim_index].id.clone();
        let partition = poll(
            &format!("host {victim} in the middle of a partition"),
            limit,
            || {
                let status = self.server.sql(
                    DB,
                    &format!("SELECT status FROM weir_runs WHERE id = '{run}'"),
                )?;
                // No record yet: the run's first events are still on their way (a host's
                // writer gathers its events for a moment before it stores them).
                let status = status.trim();
                ensure!(
                    status.is_empty() || status == "running",
                    "takeover: the run ended ({status}) before host {victim} was in the middle of a partition: give more rows (--cluster-rows)",
                );
                let p = self.server.sql(
                    DB,
                    &format!(
                        "SELECT l.partition FROM weir_leases l JOIN weir_run_partitions p
                       ON p.run_id = l.run_id AND p.partition = l.partition
                     WHERE l.run_id = '{run}' AND l.owner = '{victim}' AND l.state = 'held'
                       AND p.batches >= 2 AND p.host = '{victim}' LIMIT 1"
                    ),
                )?;
                Ok((!p.trim().is_empty()).then(|| p.trim().to_owned()))
            },
        )?;
        let mut dead = hosts.remove(victim_index);
        let killed_ms = now_ms();
        let killed = Instant::now();
        dead.kill()?;
        let into_run = started.elapsed().as_secs_f64();
        eprintln!(
            "takeover: killed host {victim} (SIGKILL, the run lease is {holder}'s) {into_run:.1} s into the run, holding {partition}"
        );
        let survivor = &hosts[0];
        let first_claim: i64 = poll(
            &format!("a partition taken over from {victim}"),
            limit,
            || {
                let t = self.server.sql(
                DB,
                &format!(
                    "SELECT min(time_ms) FROM weir_events WHERE run = '{run}'
                       AND kind = 'partition_claimed' AND data::json->>'taken_over_from' = '{victim}'"
                ),
            )?;
                Ok(t.trim().parse().ok())
            },
        )?;
        let record = self.finished(survivor, &run, limit)?;
        let to_end = killed.elapsed().as_secs_f64();
        let wall = started.elapsed().as_secs_f64();
        for host in &mut hosts {
            host.stop()?;
        }
        self.verify("takeover", &record, false)?;
        let taken: Vec<String> = self
            .server
            .sql(
                DB,
                &format!(
                    "SELECT partition FROM weir_events WHERE run = '{run}'
                       AND kind = 'partition_claimed' AND data::json->>'taken_over_from' = '{victim}'
                     ORDER BY id"
                ),
            )?
            .lines()
            .map(str::to_owned)
            .collect();
        ensure!(
            taken.contains(&partition),
            "takeover: {partition} (held by the killed host) was not taken over: {taken:?}"
        );
        Ok(Takeover {
            victim,
            partition: partition
                .rsplit('/')
                .next()
                .unwrap_or(&partition)
                .to_owned(),
            into_run,
            to_claim: (first_claim - killed_ms) as f64 / 1e3,
            to_end,
            wall,
            taken: taken.len(),
            recorded_loaded: record["rows_loaded"].as_u64().unwrap_or(0),
        })
    }

    /// The event log's serial point: every event transaction, whichever host writes it,
    /// updates the one counter row of `weir_event_ids` and holds its lock until COMMIT. pgbench
    /// runs that transaction (the counter update and one event row) from 3 clients for 5 s on
    /// a fresh cluster database: the ceiling of event transactions a second, each of which
    /// carries every event its host has queued (up to 512).
    fn event_log_ceiling(&self) -> anyhow::Result<()> {
        // A clustered host started and stopped creates the tables.
        self.server.recreate(DB)?;
        let clustering = Clustering {
            lease: None,
            db: DB,
        };
        for mut host in self.start_hosts(1, Some(clustering))? {
            host.stop()?;
        }
        let script = self.dir.join("event-tx.sql");
        std::fs::write(
            &script,
            "BEGIN;\n\
             UPDATE weir_event_ids SET last_id = last_id + 1 RETURNING last_id \\gset\n\
             INSERT INTO weir_events (id, time_ms, kind, data, host, origin, origin_seq) VALUES (:last_id, 0, 'bench', '{}', 'pgbench', 'pgbench', :last_id);\n\
             COMMIT;\n",
        )?;
        let pgbench = self.server.bin.join("pgbench");
        let out = Command::new(&pgbench)
            .args(["-n", "-h", "127.0.0.1", "-p", &self.server.port.to_string()])
            .args(["-U", USER, "-c", "3", "-j", "1", "-T", "5", "-f"])
            .arg(&script)
            .arg(DB)
            .env("PGPASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", pgbench.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "pgbench failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tps = text
            .lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("no tps line in pgbench's output:\n{text}"))?;
        let latency = text
            .lines()
            .find(|l| l.starts_with("latency average"))
            .map_or("?", |l| l.trim());
        println!(
            "event log serial point (pgbench, 3 clients, 5 s: UPDATE weir_event_ids + INSERT one event, COMMIT): {tps:.0} transactions/s ({latency}); each event transaction of a host carries up to 512 events"
        );
        Ok(())
    }
}

/// A `weir serve` process of the bench.
struct Host {
    id: String,
    dir: PathBuf,
    child: Child,
    addr: SocketAddr,
    /// Still running (not stopped or killed by us).
    alive: bool,
}

impl Host {
    /// Start `weir serve` in `dir` on a free loopback port; output goes to `dir`/serve.log.
    fn start(weir: &Path, id: &str, dir: &Path) -> anyhow::Result<Self> {
        let log = std::fs::File::create(dir.join("serve.log"))?;
        let child = Command::new(weir)
            .args(["-c", "weir.toml", "serve", "--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .env("WEIR_TOKEN", TOKEN)
            .env("BENCH_PGPASSWORD", PASSWORD)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", weir.display()))?;
        Ok(Self {
            id: id.to_owned(),
            dir: dir.to_owned(),
            child,
            // Known once `ready` has read it from the log.
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            alive: true,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    /// Wait until the host says where it listens, that its pipeline runs when triggered and,
    /// in a cluster, that it joined.
    fn ready(&mut self, cluster: bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.alive = false;
                bail!(
                    "host {} exited ({status}) while starting:\n{}",
                    self.id,
                    self.log()
                );
            }
            let log = self.log();
            if log.contains(&format!("pipeline {PIPELINE}: INVALID")) {
                bail!("host {}: the pipeline is invalid:\n{log}", self.id);
            }
            let addr = log
                .lines()
                .find_map(|l| l.strip_prefix("weir serve: listening on http://"));
            let pipeline = log.contains(&format!("pipeline {PIPELINE}: "));
            let joined = !cluster || log.contains("cluster: host");
            if let (Some(addr), true, true) = (addr, pipeline, joined) {
                self.addr = addr
                    .trim()
                    .parse()
                    .with_context(|| format!("bad address {addr:?}"))?;
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "host {} not ready after 300 s:\n{log}",
                self.id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Peak RSS and CPU so far, from /proc (the host is still running).
    fn usage(&self) -> anyhow::Result<HostUse> {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let hwm_kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmHWM in /proc/PID/status")?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        // After the command name: field 3 (state) is fields[0]; utime and stime are fields 14
        // and 15, in ticks of 1/100 s.
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
            .sum();
        Ok(HostUse {
            peak_rss_mib: hwm_kib / 1024.0,
            cpu: ticks / 100.0,
        })
    }

    /// SIGTERM, and wait (bounded) for a clean exit.
    fn stop(&mut self) -> anyhow::Result<()> {
        if !self.alive {
            return Ok(());
        }
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM host {}", self.id);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.alive = false;
                ensure!(
                    status.success(),
                    "host {} exited {status} on SIGTERM:\n{}",
                    self.id,
                    self.log()
                );
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "host {} still running 60 s after SIGTERM",
                self.id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and reap it (the process is gone when this returns).
    fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        self.alive = false;
        Ok(())
    }
}

impl Drop for Host {
    /// A host left running by an error is killed, so no bench process outlives the bench.
    fn drop(&mut self) {
        if self.alive {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `check` every 50 ms until it gives a value; an error naming `what` after `limit`.
fn poll<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check()? {
            return Ok(v);
        }
        ensure!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One HTTP/1.1 request over loopback (`Connection: close`), with the bearer token when
/// `auth`; the status and the body (chunked bodies decoded).
/// The ends of runs as a host's event stream says them (`GET /api/events`), with when each
/// arrived: a reader thread follows the stream from before the trigger.
struct RunEnds {
    ended: std::sync::mpsc::Receiver<(String, Instant)>,
}

impl RunEnds {
    fn watch(addr: SocketAddr) -> anyhow::Result<Self> {
        let mut stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        write!(
            stream,
            "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        )?;
        let (tx, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Lines as they come (chunk sizes between them do not matter): an end event's
            // `event:` line, then its `data:` line naming the run.
            let mut is_end = false;
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(kind) = line.strip_prefix("event: ") {
                    is_end = matches!(
                        kind.trim(),
                        "run_completed" | "run_failed" | "run_cancelled"
                    );
                } else if let Some(data) = line.strip_prefix("data: ")
                    && is_end
                    && let Ok(event) = serde_json::from_str::<Value>(data)
                    && let Some(run) = event["run"].as_str()
                    && tx.send((run.to_owned(), Instant::now())).is_err()
                {
                    return;
                }
            }
        });
        Ok(Self { ended })
    }

    /// When the end of `run` arrived.
    fn wait(&self, run: &str, limit: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (ended, at) = self.ended.recv_timeout(left).with_context(|| {
                format!("run {run}: no end on the event stream within {limit:?}")
            })?;
            if ended == run {
                return Ok(at);
            }
        }
    }
}

fn http(addr: SocketAddr, method: &str, path: &str, auth: bool) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let auth = if auth {
        format!("Authorization: Bearer {TOKEN}\r\n")
    } else {
        String::new()
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("{method} {path}: no end of the response head"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{method} {path}: bad status line in {head:?}"))?;
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body)?;
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A chunked body's data.
fn dechunk(mut raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk size line without its end")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        ensure!(raw.len() >= size + 2, "a chunk cut short");
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn print(rounds: &[BTreeMap<Case, Sample>], cases: &[Case], rows: u64) {
    let series = |c: Case, f: &dyn Fn(&Sample) -> f64| -> Vec<f64> {
        rounds.iter().filter_map(|r| r.get(&c)).map(f).collect()
    };
    println!(
        "{:<34} {:>18} {:>9} {:>9} {:>12} {:>14} {:>8} {:>8} {:>10} {:>7} {:>7}",
        "case",
        "wall s",
        "rows/s",
        "vs plain",
        "hosts CPU s",
        "peak RSS/host",
        "srv CPU",
        "commits",
        "WAL flush",
        "WAL MB",
        "events"
    );
    for &c in cases {
        let walls = series(c, &|s| s.wall);
        let ratios: Vec<f64> = rounds
            .iter()
            .filter_map(|r| Some(r.get(&c)?.wall / r.get(&Case::Plain)?.wall))
            .collect();
        let rss = series(c, &|s| {
            s.hosts.iter().map(|h| h.peak_rss_mib).fold(0.0, f64::max)
        })
        .into_iter()
        .fold(0.0, f64::max);
        let events = match c {
            Case::Plain => "-".to_owned(),
            Case::Clustered(_) | Case::Diagnostic => {
                format!("{:.0}", median(&series(c, &|s| s.events as f64)))
            }
        };
        println!(
            "{:<34} {:>18} {:>9} {:>9.3} {:>12.2} {:>10.0} MiB {:>8.2} {:>8.0} {:>10.0} {:>7.0} {:>7}",
            c.label(),
            spread(&walls),
            thousands((rows as f64 / median(&walls)).round() as u64),
            median(&ratios),
            median(&series(c, &|s| s.hosts.iter().map(|h| h.cpu).sum())),
            rss,
            median(&series(c, &|s| s.server_cpu)),
            median(&series(c, &|s| s.server_work.commits)),
            median(&series(c, &|s| s.server_work.wal_syncs)),
            median(&series(c, &|s| s.server_work.wal_mb)),
            events
        );
    }
    println!(
        "wall: trigger to the run's end on the trigger host's event stream (hosts already up); rows/s: source rows / median wall; vs plain: median of the same round's wall ratios; hosts CPU: all hosts' user+system (startup included); peak RSS/host: the largest host's VmHWM; srv CPU: PostgreSQL's processes during the run; commits: transactions committed in the run's database, WAL flush: the server's WAL fsyncs, WAL MB: WAL written (these three from the hosts' start to their stop); events: the run's rows in weir_events"
    );
    if let Some(kinds) = rounds
        .first()
        .and_then(|r| r.get(&Case::Clustered(1)))
        .map(|s| &s.event_kinds)
    {
        println!("events of a clustered ×1 run by kind: {kinds}");
    }
    for c in [Case::Plain, Case::Clustered(1)] {
        if let Some(s) = rounds.first().and_then(|r| r.get(&c)) {
            println!(
                "rows inserted/updated per table, {} (first round): {}",
                c.label(),
                s.server_work.writes
            );
        }
    }
    for &c in cases {
        if let Case::Clustered(n) = c
            && n > 1
        {
            let split: Vec<String> = rounds
                .iter()
                .filter_map(|r| r.get(&c))
                .map(|s| {
                    s.partitions
                        .iter()
                        .map(|(h, k)| format!("{h} {k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .collect();
            println!("partitions per host, {}: {}", c.label(), split.join(" | "));
        }
    }
    let against_plain = |c: Case| -> Vec<f64> {
        rounds
            .iter()
            .filter_map(|r| Some(r.get(&c)?.wall / r.get(&Case::Plain)?.wall))
            .collect()
    };
    let overhead = against_plain(Case::Clustered(1));
    if !overhead.is_empty() {
        let m = median(&overhead);
        println!(
            "coordination overhead, clustered ×1 / plain: {} (target ≤ 1.05×: {})",
            spread(&overhead),
            if m <= 1.05 { "met" } else { "MISSED" }
        );
    }
    let diagnostic = against_plain(Case::Diagnostic);
    if !diagnostic.is_empty() {
        println!(
            "diagnostic, clustered ×1 with its cluster database apart and synchronous_commit = off / plain: {} (what is left once the cluster's own commits stop waiting for WAL flushes; not a setting to use)",
            spread(&diagnostic)
        );
    }
    let recorded: Vec<String> = cases
        .iter()
        .map(|&c| format!("{} {:.2} s", c.label(), median(&series(c, &|s| s.recorded))))
        .collect();
    println!(
        "run records' own duration (median): {}",
        recorded.join("; ")
    );
    println!(
        "on one machine every host shares the same two cores (and PostgreSQL runs on them too): more hosts cannot add throughput here, the table shows where it saturates"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined_and_bad_ones_refused() {
        let body = b"4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(dechunk(body).unwrap(), b"{\"a\":1}");
        assert!(dechunk(b"zz\r\nabc\r\n0\r\n\r\n").is_err(), "bad size");
        assert!(dechunk(b"9\r\nabc\r\n0\r\n\r\n").is_err(), "cut short");
        assert!(dechunk(b"3\r\nabc").is_err(), "no end");
    }
}
