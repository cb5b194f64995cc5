//! A real PostgreSQL for tests: a throwaway cluster per test, or the server named by
//! `WEIR_TEST_POSTGRES_URL`, with a database of its own per test.
//!
//! Throwaway cluster: Debian's `postgresql` package (`/usr/lib/postgresql/<major>/bin`, the
//! highest major found; `WEIR_TEST_POSTGRES_BIN` names another folder). `initdb` into a
//! temporary folder — as the `postgres` user through `runuser` when the tests run as root,
//! because `initdb` refuses root — then `pg_ctl start` on a free loopback port with the socket
//! in that folder. The superuser `weir` has a password (TCP connections, the ones weir makes,
//! must give it: scram-sha-256); the harness's own `psql` uses the socket. Dropping the
//! `PgServer` stops the cluster (`immediate`) and removes the folder, also when a test panics.
//! Missing binaries fail the test with what to install; nothing is skipped.
//!
//! Use from any e2e test module: `let pg = PgServer::start(); let db = pg.database("name");`
//! then `db.grant_toml()` in a `weir.toml`, `db.password_env()` on the `weir` command, and
//! `db.query("SELECT …")` to look at the result.

#![allow(dead_code)] // each test module uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The password of the test superuser: long and distinctive, so a test can grep all output
/// for it.
pub const PASSWORD: &str = "weir-test-secret-7f3c9a1e5b";
const USER: &str = "weir";

pub struct PgServer {
    /// The server's command-line options (`pg_ctl -o`), again on `restart`.
    options: String,
    /// `None` when the server is an external one (`WEIR_TEST_POSTGRES_URL`).
    cluster: Option<Cluster>,
    host: String,
    port: u16,
    user: String,
    password: String,
    psql: PathBuf,
}

struct Tls {
    cert: String,
    key: String,
}

struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
}

/// One database of the server, for one test.
pub struct PgDb {
    pub name: String,
    server_host: String,
    port: u16,
    user: String,
    password: String,
    psql: PathBuf,
    socket: Option<PathBuf>,
}

fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("WEIR_TEST_POSTGRES_BIN") {
        return PathBuf::from(dir);
    }
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
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin: install them \
             (Debian/Ubuntu: `apt-get install -y postgresql`), or set WEIR_TEST_POSTGRES_BIN to \
             the folder holding initdb and pg_ctl, or WEIR_TEST_POSTGRES_URL to a server \
             (postgres://superuser:password@host:port/postgres)"
        ),
    }
}

fn is_root() -> bool {
    // The owner of this process's /proc entry is its effective user.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[track_caller]
fn checked(output: std::io::Result<Output>, what: &str) -> Output {
    let output = output.unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

impl Cluster {
    /// `program` from the server's bin folder, run as `postgres` when we are root.
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
        self.dir.path().join("data")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        checked(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(args)
                .stdin(Stdio::null())
                .output(),
            &format!("pg_ctl {}", args.join(" ")),
        )
    }
}

impl PgServer {
    /// A server for this test: `WEIR_TEST_POSTGRES_URL`, else a new throwaway cluster.
    pub fn start() -> Self {
        if let Ok(url) = std::env::var("WEIR_TEST_POSTGRES_URL") {
            return Self::external(&url);
        }
        Self::cluster(None)
    }

    /// Always a throwaway cluster, whatever `WEIR_TEST_POSTGRES_URL` says: for tests that stop
    /// and restart the server.
    pub fn start_own() -> Self {
        Self::cluster(None)
    }

    /// A throwaway cluster that takes TLS connections only (a certificate for `localhost` and
    /// 127.0.0.1 from a CA of its own; plain TCP is rejected by `pg_hba.conf`), and the CA's
    /// PEM file, for `sslrootcert`.
    pub fn start_tls() -> (Self, PathBuf) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "weir test PostgreSQL CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let server = Self::cluster(Some(Tls {
            cert: leaf.pem(),
            key: key.serialize_pem(),
        }));
        let ca_file = server.cluster.as_ref().unwrap().dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        (server, ca_file)
    }

    fn cluster(tls: Option<Tls>) -> Self {
        let bin = bin_dir();
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("weir-pg-")
            .tempdir()
            .unwrap();
        if as_postgres {
            checked(
                Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(dir.path())
                    .output(),
                "chown postgres the cluster folder",
            );
        }
        let cluster = Cluster {
            dir,
            bin,
            as_postgres,
        };
        let pwfile = cluster.dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if as_postgres {
            checked(
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&pwfile)
                    .output(),
                "chown postgres the password file",
            );
        }
        checked(
            cluster
                .command("initdb")
                .arg("-D")
                .arg(cluster.data())
                .args(["-U", USER, "-E", "UTF8", "--locale=C"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                .arg(format!("--pwfile={}", pwfile.display()))
                .arg("--no-sync")
                .output(),
            "initdb",
        );
        std::fs::remove_file(&pwfile).unwrap();
        let port = free_port();
        let log = cluster.dir.path().join("server.log");
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            cluster.socket().display()
        );
        if let Some(tls) = tls {
            let (cert, key) = (
                cluster.data().join("server.crt"),
                cluster.data().join("server.key"),
            );
            std::fs::write(&cert, tls.cert).unwrap();
            std::fs::write(&key, tls.key).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            if as_postgres {
                checked(
                    Command::new("chown")
                        .arg("postgres:postgres")
                        .arg(&cert)
                        .arg(&key)
                        .output(),
                    "chown postgres the server's certificate and key",
                );
            }
            // Plain TCP refused: a connection that works was encrypted.
            let hba = cluster.data().join("pg_hba.conf");
            let rules = std::fs::read_to_string(&hba).unwrap();
            std::fs::write(&hba, format!("hostnossl all all all reject\n{rules}")).unwrap();
            options += " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key";
        }
        cluster.pg_ctl(&[
            "-w",
            "-t",
            "60",
            "-l",
            log.to_str().unwrap(),
            "-o",
            &options,
            "start",
        ]);
        let psql = cluster.bin.join("psql");
        Self {
            options,
            cluster: Some(cluster),
            host: "127.0.0.1".into(),
            port,
            user: USER.into(),
            password: PASSWORD.into(),
            psql,
        }
    }

    fn external(url: &str) -> Self {
        // postgres://user:password@host:port/db — the harness needs the parts for psql and for
        // the grants (whose url must not hold the password).
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .expect("WEIR_TEST_POSTGRES_URL must start with postgres://");
        let (auth, rest) = rest
            .split_once('@')
            .expect("WEIR_TEST_POSTGRES_URL needs user:password@");
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let hostport = rest.split('/').next().unwrap();
        let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
        let psql = which_psql();
        Self {
            options: String::new(),
            cluster: None,
            host: host.into(),
            port: port.parse().expect("port in WEIR_TEST_POSTGRES_URL"),
            user: user.into(),
            password: password.into(),
            psql,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new, empty database named `name` plus a per-process suffix (external servers are
    /// shared between runs).
    pub fn database(&self, name: &str) -> PgDb {
        let name = format!("{name}_{}", std::process::id());
        let admin = self.db_handle("postgres");
        admin.execute(&format!("DROP DATABASE IF EXISTS \"{name}\""));
        admin.execute(&format!("CREATE DATABASE \"{name}\""));
        self.db_handle(&name)
    }

    fn db_handle(&self, name: &str) -> PgDb {
        PgDb {
            name: name.into(),
            server_host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            password: self.password.clone(),
            psql: self.psql.clone(),
            socket: self.cluster.as_ref().map(Cluster::socket),
        }
    }

    /// Stop the server now (`immediate`: as a crash would), to test what weir does meanwhile.
    pub fn stop(&self) {
        let cluster = self
            .cluster
            .as_ref()
            .expect("only a throwaway cluster can be stopped");
        cluster.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }

    /// Start it again on the same port, after `stop`.
    pub fn restart(&self) {
        let cluster = self.cluster.as_ref().expect("a throwaway cluster");
        let log = cluster.dir.path().join("server.log");
        let options = &self.options;
        cluster.pg_ctl(&[
            "-w",
            "-t",
            "60",
            "-l",
            log.to_str().unwrap(),
            "-o",
            options,
            "start",
        ]);
    }

    /// The server's log, for assertions that secrets are not in it or for a failure message.
    pub fn log(&self) -> String {
        self.cluster
            .as_ref()
            .map(|c| std::fs::read_to_string(c.dir.path().join("server.log")).unwrap_or_default())
            .unwrap_or_default()
    }
}

fn which_psql() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("psql");
        if p.is_file() {
            return p;
        }
    }
    bin_dir().join("psql")
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(cluster) = &self.cluster {
            // Best effort: the folder goes with the TempDir whether or not the stop worked.
            let _ = cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(cluster.data())
                .args(["-m", "immediate", "-w", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl PgDb {
    /// The grant's table for `grants.databases`: the url without the password, which comes
    /// from `${WEIR_TEST_PGPASSWORD}` (set it with `password_env`).
    pub fn grant_toml(&self) -> String {
        format!(
            r#"{{ url = "{}", password = "${{WEIR_TEST_PGPASSWORD}}", sslmode = "disable" }}"#,
            self.url()
        )
    }

    /// `postgres://user@host:port/name`: the grant's url (no password).
    pub fn url(&self) -> String {
        format!(
            "postgres://{}@{}:{}/{}",
            self.user, self.server_host, self.port, self.name
        )
    }

    /// The grant with TLS: `sslmode` (and `sslrootcert` when given) instead of `disable`.
    pub fn grant_toml_tls(&self, sslmode: &str, sslrootcert: Option<&Path>) -> String {
        let root = sslrootcert
            .map(|p| format!(r#", sslrootcert = "{}""#, p.display()))
            .unwrap_or_default();
        self.grant_toml().replace(
            r#"sslmode = "disable""#,
            &format!(r#"sslmode = "{sslmode}"{root}"#),
        )
    }

    /// `grant_toml` with more options, e.g. `read_only = true`.
    pub fn grant_toml_with(&self, extra: &str) -> String {
        let grant = self.grant_toml();
        format!("{}, {extra} }}", grant.strip_suffix(" }").unwrap())
    }

    /// The environment variable `grant_toml`'s password reads.
    pub fn password_env(&self) -> (&'static str, String) {
        ("WEIR_TEST_PGPASSWORD", self.password.clone())
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    fn psql_command(&self) -> Command {
        let mut c = Command::new(&self.psql);
        // Records end in NUL: a value may hold line breaks.
        c.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-F",
            "|",
            "-0",
        ]);
        match &self.socket {
            // The harness's own cluster: the socket, trusted.
            Some(socket) => {
                c.arg("-h").arg(socket);
            }
            None => {
                c.args(["-h", &self.server_host]);
                c.env("PGPASSWORD", &self.password);
            }
        }
        c.args([
            "-p",
            &self.port.to_string(),
            "-U",
            &self.user,
            "-d",
            &self.name,
        ]);
        c.env("PGCONNECT_TIMEOUT", "10");
        c
    }

    /// Run statements; panics with the server's message when one fails.
    #[track_caller]
    pub fn execute(&self, sql: &str) {
        checked(
            self.psql_command().arg("-c").arg(sql).output(),
            &format!("psql `{sql}`"),
        );
    }

    /// The rows of a query, each a `|`-separated line (psql's unaligned form: NULL is empty).
    #[track_caller]
    pub fn query(&self, sql: &str) -> Vec<String> {
        let out = checked(
            self.psql_command().arg("-c").arg(sql).output(),
            &format!("psql `{sql}`"),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        text.split_terminator('\0').map(str::to_owned).collect()
    }

    /// A query's single integer.
    #[track_caller]
    pub fn count(&self, sql: &str) -> i64 {
        let rows = self.query(sql);
        assert_eq!(rows.len(), 1, "`{sql}` gave {rows:?}");
        rows[0].trim().parse().unwrap()
    }

    /// Poll `sql` until it gives at least `least`, or panic after `timeout`.
    #[track_caller]
    pub fn wait_for_count_at_least(&self, sql: &str, least: i64, timeout: Duration) {
        let started = Instant::now();
        loop {
            let got = self.count(sql);
            if got >= least {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "`{sql}` is {got}, below {least}, after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Poll `sql` until it gives `want`, or panic after `timeout`.
    #[track_caller]
    pub fn wait_for_count(&self, sql: &str, want: i64, timeout: Duration) {
        let started = Instant::now();
        loop {
            let got = self.count(sql);
            if got == want {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "`{sql}` is {got}, not {want}, after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
