//! A throwaway PostgreSQL cluster for the PostgreSQL case: Debian's server binaries
//! (`/usr/lib/postgresql/<major>/bin`, the highest major, or `--pg-bin`), `initdb` into a
//! temporary folder (as the `postgres` user through `runuser` when we are root, because
//! `initdb` refuses root), started on a free loopback port with the server's defaults for
//! durability (fsync, synchronous_commit and full_page_writes on: every commit waits for its
//! WAL flush, as on a real server). Stopped and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// The superuser every client logs in as, over TCP with this password (scram-sha-256).
pub const USER: &str = "weir";
pub const PASSWORD: &str = "weir-bench-pg-password";

pub struct PgServer {
    dir: PathBuf,
    pub bin: PathBuf,
    pub port: u16,
    pub version: String,
    as_postgres: bool,
}

/// The highest major's bin folder under /usr/lib/postgresql.
pub fn find_bin() -> anyhow::Result<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).context(
        "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin: install them \
         (Debian/Ubuntu: `apt-get install -y postgresql`) or give the folder with --pg-bin",
    )
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn check(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{what}: cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl PgServer {
    pub fn start(bin: &Path) -> anyhow::Result<Self> {
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!("weir-bench-pg-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let version = check(
            Command::new(bin.join("postgres")).arg("--version"),
            "postgres",
        )?
        .trim()
        .to_owned();
        // From here on, dropping `server` stops and removes whatever was made.
        let server = Self {
            dir,
            bin: bin.to_owned(),
            port,
            version,
            as_postgres,
        };
        let pwfile = server.dir.join("pw");
        std::fs::write(&pwfile, PASSWORD)?;
        if as_postgres {
            check(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&server.dir),
                "chown the cluster folder to postgres",
            )?;
        }
        check(
            server
                .command("initdb")
                .arg("-D")
                .arg(server.data())
                .args(["-U", USER, "-E", "UTF8", "--locale=C"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                .arg(format!("--pwfile={}", pwfile.display())),
            "initdb",
        )?;
        std::fs::remove_file(&pwfile)?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            server.dir.display()
        );
        let log = server.dir.join("server.log");
        check(
            server
                .command("pg_ctl")
                .arg("-D")
                .arg(server.data())
                .args(["-w", "-t", "60", "-l"])
                .arg(&log)
                .args(["-o", &options, "start"]),
            "pg_ctl start",
        )?;
        Ok(server)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Where the cluster lives (for the file system it is on).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn psql(&self) -> PathBuf {
        self.bin.join("psql")
    }

    /// `psql` connected to `db` over TCP as the clients are, quiet, unaligned, stopping at the
    /// first error.
    pub fn psql_command(&self, db: &str) -> Command {
        let mut c = Command::new(self.psql());
        c.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", USER, "-d", db])
            .env("PGPASSWORD", PASSWORD);
        c
    }

    /// Run `sql` in `db`; its output.
    pub fn sql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        check(
            self.psql_command(db).arg("-c").arg(sql),
            &format!("psql `{sql}`"),
        )
    }

    /// Drop `db` (disconnecting whoever is in it) and create it empty.
    pub fn recreate(&self, db: &str) -> anyhow::Result<()> {
        self.sql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        )?;
        self.sql("postgres", &format!("CREATE DATABASE \"{db}\""))?;
        Ok(())
    }

    /// `key = value` of the libpq connection string for `db`.
    pub fn conninfo(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} dbname={db} sslmode=disable",
            self.port
        )
    }

    /// CPU seconds the server has used so far: the postmaster, its live children (checkpointer,
    /// WAL writer, backends) and the children it has reaped (backends of closed connections).
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let pid_file = std::fs::read_to_string(self.data().join("postmaster.pid"))?;
        let postmaster: u32 = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .context("no pid in postmaster.pid")?;
        // /proc counts CPU time in USER_HZ ticks, 100 a second on Linux.
        let ticks = 100.0;
        let mut total = 0.0;
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields after the command name (which may hold spaces, inside parentheses).
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rest[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
            let field = |n: usize| {
                f.get(n - 3)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            let ppid = field(4) as u32;
            if pid == postmaster {
                total += field(14) + field(15) + field(16) + field(17);
            } else if ppid == postmaster {
                total += field(14) + field(15);
            }
        }
        Ok(total / ticks)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
