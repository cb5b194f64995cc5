//! `weir-bench`: the figures behind `just bench` (see docs/performance.md).
//!
//! - `weir-bench run`: generate the data, then time weir (the real binary and plugins), the
//!   native baseline and `sqlite3 .import`, alternating, and print medians and ratios.
//!   Then the HTTP case: the HR fixture serves employees over loopback to weir (http-extract →
//!   sqlite-load) and to a native loop (`--http-only` runs only that).
//!   `--fanout` runs only the fan-out case instead: csv → select-transform → SQLite + FTS5 and
//!   a search index (osmem-server), each destination alone, and a native `_bulk` loop.
//! - `weir-bench native`, `weir-bench native-http`, `weir-bench native-bulk`: the native
//!   baselines alone (the driver runs them as child processes, so their CPU time and peak RSS
//!   are their own).
//! - `weir-bench run --postgres`: only the PostgreSQL case (a throwaway server; weir against
//!   `psql \copy` and native tokio-postgres loops); `native-pg`, `native-pg-extract` are its
//!   native baselines.
//! - `weir-bench run --cluster`: only the cluster case (a throwaway PostgreSQL as cluster
//!   database and target; one plain `weir serve` against one, two and three clustered hosts
//!   sharing a run's partitions, and the time to take over from a host killed mid-run).
//! - `weir-bench generate`: write the bank-statement CSV.
//!
//! Figures only: nothing here passes or fails on time. A wrong result (row count or content
//! differing from the native baseline's) is an error.

mod cluster;
mod driver;
mod fanout;
mod generate;
mod http;
mod measure;
mod native;
mod native_bulk;
mod native_http;
mod native_pg;
mod pg_server;
mod postgres;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "weir benchmarks: weir vs a native Rust baseline vs sqlite3 .import")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole benchmark and print the tables. (Boxed: its options are much larger than
    /// the other commands'.)
    Run(Box<driver::Options>),
    /// Load a CSV file into SQLite natively (csv + rusqlite).
    Native {
        #[arg(long)]
        csv: PathBuf,
        #[arg(long)]
        db: PathBuf,
        /// Rows per transaction.
        #[arg(long, default_value_t = 1024)]
        batch: usize,
        #[arg(long, value_enum, default_value_t = native::Journal::Wal)]
        journal: native::Journal,
    },
    /// Copy every employee of the HR fixture at API into SQLite natively (hyper + serde +
    /// rusqlite), page by page.
    NativeHttp {
        /// The API's base URL, `http://ADDR/api/`.
        #[arg(long)]
        api: String,
        /// The bearer token.
        #[arg(long, env = "HR_TOKEN", hide_env_values = true)]
        token: String,
        #[arg(long)]
        db: PathBuf,
        /// Records per page.
        #[arg(long, default_value_t = 1000)]
        page: usize,
    },
    /// Index the bank CSV's compliant rows (the fan-out case's allow-list, filter and mask)
    /// into a search server with `_bulk` requests natively (csv + serde_json + hyper).
    NativeBulk {
        #[arg(long)]
        csv: PathBuf,
        /// The server, `http://ADDR/`.
        #[arg(long)]
        url: String,
        #[arg(long)]
        index: String,
        /// The index's mappings (JSON), sent when it is created.
        #[arg(long)]
        mappings: PathBuf,
        /// Documents per `_bulk` request.
        #[arg(long, default_value_t = 1000)]
        bulk: usize,
    },
    /// Serve the HR fixture with N generated employees on a free loopback port (prints
    /// `listening on ADDR`); the HTTP case runs it as its server.
    ServeHr {
        #[arg(long, default_value_t = 200_000)]
        employees: u64,
        /// The bearer token.
        #[arg(long, env = "HR_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Load a CSV file into PostgreSQL natively (csv + tokio-postgres binary COPY).
    NativePg {
        #[arg(long)]
        csv: PathBuf,
        /// libpq-style `key=value` connection string, without the password.
        #[arg(long)]
        conninfo: String,
        #[arg(long, env = "BENCH_PGPASSWORD", hide_env_values = true)]
        password: String,
        /// Rows per transaction.
        #[arg(long, default_value_t = 1024)]
        batch: usize,
        #[arg(long, value_enum, default_value_t = native_pg::Mode::Append)]
        mode: native_pg::Mode,
    },
    /// Copy table `transactions` of a PostgreSQL database into SQLite natively (keyset pages).
    NativePgExtract {
        #[arg(long)]
        conninfo: String,
        #[arg(long, env = "BENCH_PGPASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        db: PathBuf,
        /// Rows per page (one SQLite transaction).
        #[arg(long, default_value_t = 1024)]
        batch: usize,
    },
    /// Write the bank-statement CSV.
    Generate {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Run(options) => driver::run(&options),
        Command::Native {
            csv,
            db,
            batch,
            journal,
        } => native::load(&csv, &db, batch.max(1), journal).map(|l| {
            println!(
                "loaded {} rejected {} commit_ms={:.1}",
                l.rows,
                l.rejected,
                l.commit.as_secs_f64() * 1e3
            );
        }),
        Command::NativeHttp {
            api,
            token,
            db,
            page,
        } => native_http::load(&api, &token, &db, page.max(1)).map(|l| {
            println!("loaded {} requests {}", l.rows, l.requests);
        }),
        Command::NativePg {
            csv,
            conninfo,
            password,
            batch,
            mode,
        } => native_pg::load(&csv, &conninfo, &password, batch.max(1), mode).map(|l| {
            println!("loaded {} rejected {}", l.rows, l.rejected);
        }),
        Command::NativePgExtract {
            conninfo,
            password,
            db,
            batch,
        } => native_pg::extract(&conninfo, &password, &db, batch.max(1)).map(|n| {
            println!("copied {n}");
        }),
        Command::NativeBulk {
            csv,
            url,
            index,
            mappings,
            bulk,
        } => fanout::native(&csv, &url, &index, &mappings, bulk),
        Command::ServeHr { employees, token } => http::serve(employees, &token),
        Command::Generate { rows, out } => generate::write_file(&out, rows),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
