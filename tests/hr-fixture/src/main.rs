//! `hr-fixture --listen 127.0.0.1:0 --token … --employees 200`: serve the fixture until
//! interrupted, printing its API URL first (the URL to grant).

use clap::Parser;

/// A deterministic HR REST API for trying and testing http-extract.
#[derive(Parser)]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8917")]
    listen: String,
    /// The bearer token API requests must carry.
    #[arg(long, env = "HR_TOKEN")]
    token: String,
    /// Employees to generate.
    #[arg(long, default_value_t = 200)]
    employees: i64,
    /// Org units to spread them over.
    #[arg(long, default_value_t = 5)]
    org_units: i64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let state = hr_fixture::State::new(&args.token, args.employees, args.org_units);
    let running = hr_fixture::spawn(&args.listen, state)?;
    println!("hr-fixture: API at {}", running.api_url());
    println!(
        "hr-fixture: {} employees in {} org units; admin at {}admin/ (faults, requests, employees)",
        args.employees,
        args.org_units,
        running.url()
    );
    // Serve until killed; the server thread does the work.
    loop {
        std::thread::park();
    }
}
