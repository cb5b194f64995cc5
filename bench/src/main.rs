//! `weir-bench`: the figures behind `just bench` (see docs/performance.md).
//!
//! - `weir-bench run`: generate the data, then time weir (the real binary and plugins), the
//!   native baseline and `sqlite3 .import`, alternating, and print medians and ratios.
//! - `weir-bench native`: the native baseline alone (the driver runs it as a child process, so
//!   its CPU time and peak RSS are its own).
//! - `weir-bench generate`: write the bank-statement CSV.
//!
//! Figures only: nothing here passes or fails on time. A wrong result (row count or content
//! differing from the native baseline's) is an error.

mod driver;
mod generate;
mod measure;
mod native;

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
    /// Run the whole benchmark and print the tables.
    Run(driver::Options),
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
