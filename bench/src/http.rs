//! The HTTP case: the HR fixture (`tests/hr-fixture`, served by `weir-bench serve-hr` as a
//! child process on 127.0.0.1) serves N generated employees in pages over loopback; weir
//! (http-extract → sqlite-load, upsert by id) and the native baseline (`native_http`) copy them
//! into SQLite, alternating, in the same run. Both must make the same requests and write the
//! same table, value for value.
//!
//! The server is a process of its own, not a thread of this one, because a child's peak RSS
//! (`ru_maxrss`) counts the memory of the process it was spawned from: with 200,000 employees
//! held here, every child would report this process's 600+ MiB.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use crate::driver::{self, Digest, remove_db, spread, thousands};
use crate::measure::{self, Measured, median};

/// The fixture's token; weir gets it as `$HR_TOKEN`, as an operator would give it.
const TOKEN: &str = "bench-token";

/// Options of the HTTP case (part of `weir-bench run`).
#[derive(Debug, Clone, clap::Args)]
pub struct HttpOptions {
    /// Employees the fixture serves in the HTTP case (0 skips it).
    #[arg(long = "http-records", default_value_t = 200_000)]
    pub records: u64,
    /// Records per page (one request) and rows per weir batch, in the HTTP case.
    #[arg(long = "http-page", default_value_t = 1000)]
    pub page: usize,
    /// Only the HTTP case: skip the CSV benchmark.
    #[arg(long)]
    pub http_only: bool,
}

/// What the HTTP case needs from `weir-bench run`.
pub struct HttpBench<'a> {
    pub opts: &'a HttpOptions,
    pub weir: PathBuf,
    pub plugins: PathBuf,
    pub work: PathBuf,
    pub me: PathBuf,
    pub reps: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    Native,
    Weir,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Native => "native (hyper + serde + rusqlite)",
            Variant::Weir => "weir http-extract → sqlite-load",
        }
    }

    fn db(self, dir: &Path) -> PathBuf {
        dir.join(match self {
            Variant::Native => "native.db",
            Variant::Weir => "weir.db",
        })
    }
}

struct Sample {
    m: Measured,
    /// CPU the fixture spent serving the run.
    server_cpu: Duration,
    stages: BTreeMap<String, f64>,
}

/// The fixture, served by `weir-bench serve-hr` in a child process; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(me: &Path, records: u64) -> anyhow::Result<Self> {
        let mut child = Command::new(me)
            .args(["serve-hr", "--employees", &records.to_string()])
            .env("HR_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start weir-bench serve-hr")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("serve-hr said {line:?}"))?;
        Ok(Server { child, addr })
    }

    fn api_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// `METHOD path` with the token: (status, body).
    fn call(&self, method: &str, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut stream = TcpStream::connect(self.addr)?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        )?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("no end of the response head")?;
        let head = String::from_utf8_lossy(&response[..split]);
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("no status")?;
        Ok((status, response[split + 4..].to_vec()))
    }

    /// The request log: (status, records) of each API request.
    fn log(&self) -> anyhow::Result<Vec<(u16, u64)>> {
        let (status, body) = self.call("GET", "/admin/requests")?;
        ensure!(status == 200, "GET /admin/requests: {status}");
        let log: Value = serde_json::from_slice(&body)?;
        Ok(log
            .as_array()
            .context("the log is an array")?
            .iter()
            .map(|r| {
                (
                    r["status"].as_u64().unwrap_or(0) as u16,
                    r["records"].as_u64().unwrap_or(0),
                )
            })
            .collect())
    }

    fn clear_log(&self) -> anyhow::Result<()> {
        let (status, _) = self.call("DELETE", "/admin/requests")?;
        ensure!(status == 204, "DELETE /admin/requests: {status}");
        Ok(())
    }

    /// The server's CPU time so far (user + system, from /proc).
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // The fields after the command name (which may hold spaces) at its closing paren.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        // USER_HZ is 100 on Linux.
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `weir-bench serve-hr`: serve `employees` generated employees on a free loopback port,
/// print `listening on ADDR`, and serve until killed.
pub fn serve(employees: u64, token: &str) -> anyhow::Result<()> {
    let state = hr_fixture::State::new(token, i64::try_from(employees)?, 20);
    let running = hr_fixture::spawn("127.0.0.1:0", state)?;
    println!("listening on {}", running.addr());
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
    }
}

impl HttpBench<'_> {
    /// Serve, warm up, time `reps` alternating rounds, verify, print.
    pub fn run(&self) -> anyhow::Result<()> {
        let (records, page) = (self.opts.records, self.opts.page.clamp(1, 1000));
        let dir = self.work.join("http");
        std::fs::create_dir_all(&dir)?;
        eprintln!("HTTP: generating {} employees…", thousands(records));
        let hr = Server::start(&self.me, records)?;
        std::fs::write(dir.join("weir.toml"), self.config(&hr.api_url(), page))?;
        let requests = records / page as u64 + 1;
        let (status, body) = hr.call("GET", &format!("/api/employees?page=1&per_page={page}"))?;
        ensure!(status == 200, "the fixture answered {status}");

        println!(
            "HTTP: {} employees served by hr-fixture (its own process) on 127.0.0.1 in pages of {} ({} requests a run, about {:.0} MB of JSON), upserted by id into SQLite; {} rounds, medians (min–max)",
            thousands(records),
            thousands(page as u64),
            thousands(requests),
            body.len() as f64 * (requests - 1) as f64 / 1e6,
            self.reps
        );
        let variants = [Variant::Native, Variant::Weir];
        for v in variants {
            eprintln!("HTTP warm-up: {}", v.label());
            self.one(&hr, &dir, v, requests)?;
        }
        let mut rounds: Vec<BTreeMap<Variant, Sample>> = Vec::new();
        for round in 0..self.reps {
            let mut order = variants.to_vec();
            order.rotate_left(round % variants.len());
            let mut samples = BTreeMap::new();
            for v in order {
                let s = self.one(&hr, &dir, v, requests)?;
                eprintln!(
                    "HTTP round {}/{}: {:<36} {:>6.2} s wall {:>6.2} s CPU {:>6.1} MiB",
                    round + 1,
                    self.reps,
                    v.label(),
                    s.m.wall.as_secs_f64(),
                    s.m.cpu().as_secs_f64(),
                    s.m.rss_mib()
                );
                samples.insert(v, s);
            }
            if round == 0 {
                let native = Digest::of_table(&Variant::Native.db(&dir), "employees")?;
                let weir = Digest::of_table(&Variant::Weir.db(&dir), "employees")?;
                ensure!(
                    native.count == records && weir.count == records,
                    "rows: native {}, weir {}, expected {records}",
                    native.count,
                    weir.count
                );
                ensure!(
                    native.ddl == weir.ddl,
                    "the tables differ:\n{}\nvs\n{}",
                    native.ddl,
                    weir.ddl
                );
                ensure!(native.hash == weir.hash, "the tables' contents differ");
            }
            rounds.push(samples);
        }
        self.print(&rounds, records);
        for v in variants {
            remove_db(&v.db(&dir))?;
        }
        Ok(())
    }

    /// The weir.toml of the HTTP case: one pipeline `http`, the bundled plugins, batches of a
    /// page.
    fn config(&self, api_url: &str, page: usize) -> String {
        format!(
            r#"# Written by weir-bench (the HTTP case).
[engine]
plugins_dir = "{plugins}"
cache_dir = "{cache}"
batch_size = {page}

[[pipeline]]
name = "http"
grants.http.hr = {{ url = "{api_url}", auth = {{ bearer = "${{HR_TOKEN}}" }}, allow_private = true }}
grants.databases = {{ bench = "{db}" }}

[pipeline.extract]
plugin = "http-extract"
[pipeline.extract.config]
connection = "hr"

[[pipeline.extract.config.resources]]
name = "employees"
path = "employees"
records = "/data"
primary_key = ["id"]
paginate = {{ type = "page_number", size_param = "per_page", size = {page} }}
[pipeline.extract.config.resources.fields]
id = "integer"
name = "text"
email = "text"
title = "text"
salary = "decimal"
hired = "date"
org_unit = "integer"
manager_id = {{ pointer = "/manager/id", type = "integer" }}
tags = "json"
updated_at = "timestamp"

[[pipeline.load]]
plugin = "sqlite-load"
config = {{ database = "bench", table = "employees", mode = "upsert", key = ["id"] }}

[pipeline.history]
plugin = "sqlite-history"
config = {{ database = "bench" }}
"#,
            plugins = self.plugins.display(),
            // The CSV case's compile cache: no timed run includes compiling a plugin.
            cache = self.work.join("cache").display(),
            db = Variant::Weir.db(&self.work.join("http")).display(),
        )
    }

    /// One run of `v` on a fresh database; the fixture's log must show every page asked once.
    fn one(&self, hr: &Server, dir: &Path, v: Variant, requests: u64) -> anyhow::Result<Sample> {
        let db = v.db(dir);
        remove_db(&db)?;
        hr.clear_log()?;
        let server_before = hr.cpu();
        let (m, stages) = match v {
            Variant::Native => {
                let m = measure::run(
                    Command::new(&self.me)
                        .arg("native-http")
                        .arg("--api")
                        .arg(hr.api_url())
                        .arg("--db")
                        .arg(&db)
                        .arg("--page")
                        .arg(self.opts.page.to_string())
                        .env("HR_TOKEN", TOKEN),
                    &dir.join("last"),
                )?;
                (m, BTreeMap::new())
            }
            Variant::Weir => {
                let r = driver::weir_run(&self.weir, dir, "http", &[("HR_TOKEN", TOKEN)])?;
                ensure!(
                    r.read == self.opts.records && r.loaded == self.opts.records && r.rejected == 0,
                    "weir: read {} loaded {} rejected {}, expected {} rows",
                    r.read,
                    r.loaded,
                    r.rejected,
                    self.opts.records
                );
                (r.m, r.stages)
            }
        };
        let server_cpu = hr.cpu().saturating_sub(server_before);
        let log = hr.log()?;
        let records: u64 = log.iter().map(|(_, n)| n).sum();
        if log.len() as u64 != requests
            || log.iter().any(|(status, _)| *status != 200)
            || records != self.opts.records
        {
            bail!(
                "{}: {} requests ({} not 200) for {records} records, expected {requests} answered 200 for {}",
                v.label(),
                log.len(),
                log.iter().filter(|(s, _)| *s != 200).count(),
                self.opts.records
            );
        }
        Ok(Sample {
            m,
            server_cpu,
            stages,
        })
    }

    fn print(&self, rounds: &[BTreeMap<Variant, Sample>], records: u64) {
        let series = |v: Variant, f: &dyn Fn(&Sample) -> f64| -> Vec<f64> {
            rounds.iter().filter_map(|r| r.get(&v)).map(f).collect()
        };
        let ratio = |f: &dyn Fn(&Sample) -> f64| -> f64 {
            median(
                &rounds
                    .iter()
                    .filter_map(|r| Some(f(r.get(&Variant::Weir)?) / f(r.get(&Variant::Native)?)))
                    .collect::<Vec<_>>(),
            )
        };
        println!(
            "verified: both wrote the same table (schema and every value) and made the same requests"
        );
        println!(
            "{:<36} {:>18} {:>7} {:>9} {:>9} {:>11} {:>10} {:>12}",
            "variant",
            "wall s",
            "CPU s",
            "rows/s",
            "peak RSS",
            "wall/native",
            "CPU/native",
            "server CPU s"
        );
        let wall = |s: &Sample| s.m.wall.as_secs_f64();
        let cpu = |s: &Sample| s.m.cpu().as_secs_f64();
        for v in [Variant::Native, Variant::Weir] {
            let walls = series(v, &wall);
            let w = median(&walls);
            let (rw, rc) = if v == Variant::Native {
                (1.0, 1.0)
            } else {
                (ratio(&wall), ratio(&cpu))
            };
            println!(
                "{:<36} {:>18} {:>7.2} {:>9} {:>5.0} MiB {:>11.2} {:>10.2} {:>12.2}",
                v.label(),
                spread(&walls),
                median(&series(v, &cpu)),
                format!("{}k", (records as f64 / w / 1e3).round()),
                series(v, &|s| s.m.rss_mib())
                    .into_iter()
                    .fold(0.0, f64::max),
                rw,
                rc,
                median(&series(v, &|s| s.server_cpu.as_secs_f64())),
            );
        }
        println!(
            "ratios: median over rounds of (weir / the same round's native run); peak RSS: largest of the rounds; server CPU: the fixture's, serving that run"
        );
        let keys = [
            ("instantiate", "instantiate"),
            ("extract", "extract call"),
            ("check", "host checks"),
            ("load", "load (bind+insert)"),
            ("commit", "commit"),
            ("send_wait", "extract waits"),
            ("recv_wait", "load waits"),
            ("total", "worker total"),
        ];
        print!("inside weir, per stage (median ms):");
        for (key, name) in keys {
            let values = series(Variant::Weir, &|s| {
                s.stages.get(key).copied().unwrap_or(f64::NAN)
            });
            print!(" {name} {}", driver::ms(median(&values)));
            if key != "total" {
                print!(",");
            }
        }
        println!();
        let wall_ratio = ratio(&wall);
        let rss = series(Variant::Weir, &|s| s.m.rss_mib())
            .into_iter()
            .fold(0.0, f64::max);
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "targets: weir wall ≤ 1.2× native: {wall_ratio:.2}× ({}); weir peak RSS ≤ 64 MiB: {rss:.0} MiB ({})",
            verdict(wall_ratio <= 1.2),
            verdict(rss <= 64.0)
        );
        println!();
    }
}
