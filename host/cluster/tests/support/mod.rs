//! A throwaway PostgreSQL 15 server per test (shared by the weir-cluster tests and the
//! end-to-end cluster tests): Debian's binaries, a data folder copied from a
//! template made once by `initdb` (under the target folder, so later runs reuse it), loopback
//! only, socket in the test's own folder, fsync off. `initdb` and `pg_ctl` refuse to run as
//! root, so as root they run as the `postgres` user.

#![allow(dead_code, reason = "each test binary uses part of the harness")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Debian's PostgreSQL binaries: version 15 if installed, else the newest there is.
fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = Path::new("/usr/lib/postgresql");
        let preferred = root.join("15/bin");
        if preferred.join("initdb").exists() {
            return preferred;
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse().ok()?;
                Some((version, e.path().join("bin")))
            })
            .filter(|(_, bin)| bin.join("initdb").exists())
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin).unwrap_or(preferred)
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A PostgreSQL command, as the `postgres` user when we are root.
fn pg_command(tool: &str) -> Command {
    let exe = bin().join(tool);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(exe)
    }
}

fn run(mut command: Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn give_to_postgres(path: &Path) {
    if is_root() {
        let mut c = Command::new("chown");
        c.args(["-R", "postgres:postgres"]).arg(path);
        run(c, "chown");
    }
}

/// The template data folder, made once.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        for tool in ["initdb", "pg_ctl", "postgres", "psql"] {
            assert!(
                bin().join(tool).exists(),
                "{}/{tool} is missing: these tests run a throwaway PostgreSQL server (15 or \
                 newer); install it (Debian: apt-get install postgresql)",
                bin().display()
            );
        }
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // Per server version: a data folder only works with the version that made it.
        let version = bin()
            .parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str())
            .unwrap_or("15")
            .to_owned();
        let done = root.join(format!("pg{version}-template"));
        if done.join("PG_VERSION").exists() {
            return done;
        }
        std::fs::create_dir_all(&root).unwrap();
        let work = root.join(format!("pg{version}-template-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        give_to_postgres(&work);
        let mut c = pg_command("initdb");
        c.arg("-D").arg(&work).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(c, "initdb");
        // Another test binary may have won the race; either template is good.
        if std::fs::rename(&work, &done).is_err() {
            let _ = std::fs::remove_dir_all(&work);
        }
        done
    })
}

/// A running server, stopped (immediately) and removed when dropped.
pub struct PgServer {
    dir: tempfile::TempDir,
    port: u16,
}

impl PgServer {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("weir-pg-")
            .tempdir()
            .unwrap();
        let mut copy = Command::new("cp");
        copy.arg("-a").arg(template()).arg(dir.path().join("data"));
        run(copy, "copying the template cluster");
        give_to_postgres(dir.path());
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Self { dir, port };
        server.start_again();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Start the (stopped) server again on the same port.
    pub fn start_again(&self) {
        let mut c = pg_command("pg_ctl");
        c.arg("-D").arg(self.data()).arg("-o").arg(format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        ));
        c.args(["-w", "-t", "30", "-l"])
            .arg(self.dir.path().join("log"))
            .arg("start");
        run(c, "pg_ctl start");
    }

    /// Stop the server at once (as a crash would: sessions are cut).
    pub fn stop(&self) {
        let mut c = pg_command("pg_ctl");
        c.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"]);
        run(c, "pg_ctl stop");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `postgres` as user `postgres` (trust authentication).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Run SQL with psql, returning its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(bin().join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-At",
                "-c",
                sql,
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut c = pg_command("pg_ctl");
        c.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = c.output();
    }
}

/// Poll `check` until it returns `Some`, or panic with `what` after `limit`.
pub async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
