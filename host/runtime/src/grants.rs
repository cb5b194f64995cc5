//! What a pipeline grants its plugins: directories to read, databases to use and HTTP
//! connections to make, nothing else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::database::{self, DatabaseMode, OpenSpec};
use crate::sql_guard::{HOST_TABLES, MAX_SQL_VALUE_BYTES, Policy};

/// A directory preopened read-only, visible to the guest under `guest_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// Where it is on the host.
    pub host_path: PathBuf,
    /// The path the guest uses: exactly what the user wrote in `grants.read_dirs`, so a plugin's
    /// config can name files the way the user thinks of them.
    pub guest_path: String,
}

/// Capabilities granted to the plugins of one pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Read-only directories (extractors only).
    pub read_dirs: Vec<DirGrant>,
    /// Databases by name → SQLite file.
    pub databases: BTreeMap<String, PathBuf>,
    /// Databases by name → PostgreSQL server (a name is in `databases` or here, never both);
    /// clones share each grant's pool.
    pub postgres: BTreeMap<String, weir_postgres::PgGrant>,
    /// HTTP connections by name (extractors and loaders only); clones share each grant's rate
    /// limit, OAuth2 token and counters.
    pub http: BTreeMap<String, weir_http::HttpGrant>,
}

/// How a granted database may be used, beyond its path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatabaseOptions {
    /// Opened read-only: every write fails with "attempt to write a readonly database".
    pub read_only: bool,
    /// Largest size the file may grow to; past it writes fail with "database or disk is full".
    pub max_size_bytes: Option<u64>,
}

/// A shared connection to one granted database.
///
/// One worker's plugins and its commit loop share it, so that a history store's `save` runs
/// inside the transaction that also holds the batch's rows. Plugin SQL on it runs under
/// [`crate::sql_guard`]'s rules.
pub type SharedConnection = Arc<Mutex<rusqlite::Connection>>;

/// The granted databases of one worker, opened on first use.
///
/// Clones share the same connections: the worker's commit loop and every plugin store of that
/// worker hold a clone.
#[derive(Debug, Clone)]
pub struct Databases {
    files: Arc<BTreeMap<String, PathBuf>>,
    options: Arc<BTreeMap<String, DatabaseOptions>>,
    mode: DatabaseMode,
    host_tables: Arc<Vec<String>>,
    max_value_bytes: usize,
    open: Arc<Mutex<BTreeMap<String, SharedConnection>>>,
    postgres: Arc<BTreeMap<String, weir_postgres::PgGrant>>,
    /// Sessions checked out of the PostgreSQL grants' pools, one per grant, held for the
    /// worker attempt (dropped with the last clone, which returns them to their pools).
    pg_open: Arc<tokio::sync::Mutex<BTreeMap<String, weir_postgres::PgSession>>>,
}

impl Default for Databases {
    fn default() -> Self {
        Self::new(BTreeMap::new())
    }
}

impl Databases {
    /// Databases that may be opened: exactly the pipeline's `grants.databases`.
    pub fn new(files: BTreeMap<String, PathBuf>) -> Self {
        Self {
            files: Arc::new(files),
            options: Arc::default(),
            mode: DatabaseMode::default(),
            host_tables: Arc::new(HOST_TABLES.iter().map(|t| t.to_ascii_lowercase()).collect()),
            max_value_bytes: MAX_SQL_VALUE_BYTES,
            open: Arc::default(),
            postgres: Arc::default(),
            pg_open: Arc::default(),
        }
    }

    /// PostgreSQL databases that may be used, beside the SQLite files.
    pub fn with_postgres(mut self, grants: BTreeMap<String, weir_postgres::PgGrant>) -> Self {
        self.postgres = Arc::new(grants);
        self
    }

    /// Options (read-only, size cap) per database name; names without options use defaults.
    pub fn with_options(mut self, options: BTreeMap<String, DatabaseOptions>) -> Self {
        self.options = Arc::new(options);
        self
    }

    /// How the files are opened: for a run (the default), for `weir validate`, or read-only
    /// for the API. Set it before the first connection is opened.
    pub fn with_mode(mut self, mode: DatabaseMode) -> Self {
        self.mode = mode;
        self
    }

    /// More tables only the host may write, besides [`HOST_TABLES`] (e.g. a lock or fencing
    /// table the engine adds). Plugins cannot write, create, alter, drop or index them, and no
    /// trigger may write them, whoever runs the statement.
    pub fn with_host_tables<I, S>(mut self, tables: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut all = (*self.host_tables).clone();
        all.extend(tables.into_iter().map(|t| t.as_ref().to_ascii_lowercase()));
        self.host_tables = Arc::new(all);
        self
    }

    /// Raise SQLite's longest string, blob and row on these connections above the default
    /// [`MAX_SQL_VALUE_BYTES`], for pipelines whose `max_row_bytes` is larger.
    pub fn with_max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes.max(MAX_SQL_VALUE_BYTES);
        self
    }

    /// How the files are opened.
    pub fn mode(&self) -> DatabaseMode {
        self.mode
    }

    /// Whether `name` was granted.
    pub fn is_granted(&self, name: &str) -> bool {
        self.files.contains_key(name) || self.postgres.contains_key(name)
    }

    /// The granted names, for error messages.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .files
            .keys()
            .chain(self.postgres.keys())
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names
    }

    /// Whether `name` is a granted PostgreSQL database.
    pub fn is_postgres(&self, name: &str) -> bool {
        self.postgres.contains_key(name)
    }

    /// The PostgreSQL grant behind a name.
    pub fn postgres_grant(&self, name: &str) -> Option<&weir_postgres::PgGrant> {
        self.postgres.get(name)
    }

    /// Tables only the host writes (lowercase), for the PostgreSQL rules.
    pub fn host_tables(&self) -> &[String] {
        &self.host_tables
    }

    /// The session on PostgreSQL grant `name`, checked out of its pool on first use and kept
    /// for the worker attempt. `None` if it was not granted as a PostgreSQL database.
    pub async fn postgres(
        &self,
        name: &str,
    ) -> Option<Result<weir_postgres::PgSession, weir_postgres::PgError>> {
        let grant = self.postgres.get(name)?;
        let mut open = self.pg_open.lock().await;
        if let Some(session) = open.get(name) {
            return Some(Ok(session.clone()));
        }
        let mode = match self.mode {
            DatabaseMode::ReadWrite => weir_postgres::SessionMode::Run,
            DatabaseMode::Validation => weir_postgres::SessionMode::Validation,
            DatabaseMode::ReadOnly => weir_postgres::SessionMode::ReadOnly,
        };
        Some(
            weir_postgres::PgSession::open(grant, mode)
                .await
                .inspect(|session| {
                    open.insert(name.to_owned(), session.clone());
                }),
        )
    }

    /// The file behind a granted name.
    pub fn path(&self, name: &str) -> Option<&Path> {
        self.files.get(name).map(PathBuf::as_path)
    }

    /// The options of a granted name.
    pub fn options(&self, name: &str) -> DatabaseOptions {
        self.options.get(name).copied().unwrap_or_default()
    }

    /// The connection to `name`, opening it on first use. `None` if it was not granted.
    pub fn connection(&self, name: &str) -> Option<anyhow::Result<SharedConnection>> {
        let path = self.files.get(name)?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(conn) = open.get(name) {
            return Some(Ok(conn.clone()));
        }
        let spec = OpenSpec {
            mode: self.mode,
            options: self.options(name),
            policy: Policy {
                host_tables: (*self.host_tables).clone(),
            },
            max_value_bytes: self.max_value_bytes,
        };
        Some(database::open(path, &spec).map(|conn| {
            let shared = Arc::new(Mutex::new(conn));
            open.insert(name.to_owned(), shared.clone());
            shared
        }))
    }
}

/// Open a SQLite file for weir's use: WAL (readers never block the commit), `NORMAL` sync (a
/// committed batch survives a process crash; WAL keeps the database consistent on power loss),
/// a busy timeout so concurrent workers queue instead of failing, and the plugin SQL rules.
pub fn open_database(path: &Path) -> anyhow::Result<rusqlite::Connection> {
    open_database_with(path, DatabaseOptions::default())
}

/// [`open_database`] with a grant's options.
pub fn open_database_with(
    path: &Path,
    options: DatabaseOptions,
) -> anyhow::Result<rusqlite::Connection> {
    let spec = OpenSpec {
        mode: DatabaseMode::ReadWrite,
        options,
        policy: Policy {
            host_tables: HOST_TABLES.iter().map(|t| t.to_ascii_lowercase()).collect(),
        },
        max_value_bytes: MAX_SQL_VALUE_BYTES,
    };
    database::open(path, &spec)
}

/// Lock a shared connection; a poisoned lock only means another call panicked mid-statement,
/// and SQLite rolled that statement back, so the connection is still usable.
pub fn lock(conn: &SharedConnection) -> MutexGuard<'_, rusqlite::Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Grant names that lead to one database file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateDatabase {
    /// The file, canonical.
    pub path: PathBuf,
    /// The grant names (sorted), two or more.
    pub names: Vec<String>,
}

/// Grants that name the same file twice under different names (`a = "x.db"`,
/// `b = "./x.db"`, a symlink or a hard link to it). Each name would get its own connection, so
/// a batch would hold two write transactions on one file and deadlock on itself, or a history
/// store would save outside the load's transaction; `weir validate` refuses them.
pub fn duplicate_databases<'a, I>(grants: I) -> Vec<DuplicateDatabase>
where
    I: IntoIterator<Item = (&'a str, &'a Path)>,
{
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Identity {
        /// An existing file: device and inode, so hard links are the same file too.
        Inode(u64, u64),
        /// A file to be created: its canonical path.
        Path(PathBuf),
    }
    let mut by_file: BTreeMap<Identity, (PathBuf, Vec<String>)> = BTreeMap::new();
    for (name, path) in grants {
        let canonical = canonical_path(path);
        let identity = match std::fs::metadata(path) {
            Ok(meta) => {
                use std::os::unix::fs::MetadataExt as _;
                Identity::Inode(meta.dev(), meta.ino())
            }
            Err(_) => Identity::Path(canonical.clone()),
        };
        by_file
            .entry(identity)
            .or_insert_with(|| (canonical, Vec::new()))
            .1
            .push(name.to_owned());
    }
    by_file
        .into_values()
        .filter(|(_, names)| names.len() > 1)
        .map(|(path, mut names)| {
            names.sort();
            DuplicateDatabase { path, names }
        })
        .collect()
}

/// `path` with symlinks and `..` resolved as far as it exists (a file not created yet resolves
/// through its directory).
fn canonical_path(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(file)) => std::fs::canonicalize(dir)
            .map(|d| d.join(file))
            .unwrap_or(absolute.clone()),
        _ => absolute,
    }
}

#[cfg(test)]
#[path = "grants_tests.rs"]
mod tests;
