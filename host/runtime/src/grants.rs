//! What a pipeline grants its plugins: directories to read and databases to use, nothing else.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;

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
}

/// How a granted database may be used, beyond its path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatabaseOptions {
    /// Opened read-only: every write fails with "attempt to write a readonly database".
    pub read_only: bool,
    /// Largest size the file may grow to; past it writes fail with "database or disk is full".
    pub max_size_bytes: Option<u64>,
}

/// How long a statement waits for another writer's lock before it reports `unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A shared connection to one granted database.
///
/// One worker's plugins and its commit loop share it, so that a history store's `save` runs
/// inside the transaction that also holds the batch's rows.
pub type SharedConnection = Arc<Mutex<rusqlite::Connection>>;

/// The granted databases of one worker, opened on first use.
///
/// Clones share the same connections: the worker's commit loop and every plugin store of that
/// worker hold a clone.
#[derive(Debug, Clone, Default)]
pub struct Databases {
    files: Arc<BTreeMap<String, PathBuf>>,
    options: Arc<BTreeMap<String, DatabaseOptions>>,
    open: Arc<Mutex<BTreeMap<String, SharedConnection>>>,
}

impl Databases {
    /// Databases that may be opened: exactly the pipeline's `grants.databases`.
    pub fn new(files: BTreeMap<String, PathBuf>) -> Self {
        Self {
            files: Arc::new(files),
            options: Arc::default(),
            open: Arc::default(),
        }
    }

    /// Options (read-only, size cap) per database name; names without options use defaults.
    pub fn with_options(mut self, options: BTreeMap<String, DatabaseOptions>) -> Self {
        self.options = Arc::new(options);
        self
    }

    /// Whether `name` was granted.
    pub fn is_granted(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    /// The granted names, for error messages.
    pub fn names(&self) -> Vec<&str> {
        self.files.keys().map(String::as_str).collect()
    }

    /// The file behind a granted name.
    pub fn path(&self, name: &str) -> Option<&std::path::Path> {
        self.files.get(name).map(PathBuf::as_path)
    }

    /// The connection to `name`, opening it on first use. `None` if it was not granted.
    pub fn connection(&self, name: &str) -> Option<anyhow::Result<SharedConnection>> {
        let path = self.files.get(name)?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(conn) = open.get(name) {
            return Some(Ok(conn.clone()));
        }
        let options = self.options.get(name).copied().unwrap_or_default();
        Some(open_database_with(path, options).map(|conn| {
            let shared = Arc::new(Mutex::new(conn));
            open.insert(name.to_owned(), shared.clone());
            shared
        }))
    }
}

/// Open a SQLite file for weir's use: WAL (readers never block the commit), `NORMAL` sync (a
/// committed batch survives a process crash; WAL keeps the database consistent on power loss),
/// and a busy timeout so concurrent workers queue instead of failing.
pub fn open_database(path: &std::path::Path) -> anyhow::Result<rusqlite::Connection> {
    open_database_with(path, DatabaseOptions::default())
}

/// [`open_database`] with a grant's options.
pub fn open_database_with(
    path: &std::path::Path,
    options: DatabaseOptions,
) -> anyhow::Result<rusqlite::Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        anyhow::ensure!(
            dir.is_dir(),
            "database directory {} does not exist",
            dir.display()
        );
    }
    use rusqlite::OpenFlags;
    let flags = if options.read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::default()
    };
    let conn = rusqlite::Connection::open_with_flags(path, flags)
        .with_context(|| format!("failed to open database {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if !options.read_only {
        enable_wal(&conn).with_context(|| format!("failed to enable WAL on {}", path.display()))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
    }
    if let Some(max) = options.max_size_bytes {
        let page_size: u64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        conn.pragma_update(None, "max_page_count", (max / page_size).max(1))?;
    }
    Ok(conn)
}

/// Switch the file to WAL unless it already is. Changing the journal mode does not wait on the
/// busy handler: while another connection (another worker of the same run) has the file open,
/// it fails with "database is locked" at once, even when the mode is WAL already. So ask first,
/// and retry a switch that collides with another opener for up to the busy timeout.
fn enable_wal(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let mode = |conn: &rusqlite::Connection| -> rusqlite::Result<String> {
        conn.pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0))
    };
    if mode(conn)?.eq_ignore_ascii_case("wal") {
        return Ok(());
    }
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
                if mode(conn).is_ok_and(|m| m.eq_ignore_ascii_case("wal")) {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Lock a shared connection; a poisoned lock only means another call panicked mid-statement,
/// and SQLite rolled that statement back, so the connection is still usable.
pub fn lock(conn: &SharedConnection) -> MutexGuard<'_, rusqlite::Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
