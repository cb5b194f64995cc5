//! Opening a granted SQLite file: for a run (read-write, WAL), for `weir validate` (an
//! in-memory copy of the schema, nothing on disk touched) and for listing from the API
//! (read-only, nothing created).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use rusqlite::{Connection, OpenFlags};

use crate::grants::DatabaseOptions;
use crate::sql_guard::{self, Policy};

/// How long a statement waits for another writer's lock before it reports `unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How the granted databases of a [`crate::Databases`] are opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DatabaseMode {
    /// For runs: the real file, created when missing, switched to WAL.
    #[default]
    ReadWrite,
    /// For `weir validate`: an in-memory scratch database holding a copy of the file's schema
    /// (no rows), so plugins' `open` DDL runs harmlessly. Nothing on disk is written or created:
    /// the schema is read through an open that makes no `-wal`/`-shm`, and a file that does not
    /// exist yet gives an empty scratch. `read_only` grants stay read-only, `max_size_mb`
    /// applies.
    Validation,
    /// For reading from the API (listing checkpoints): the real file read-only, no WAL switch,
    /// no `-wal`/`-shm` created; writes and DDL that would change it fail. A file that does not
    /// exist yet gives an empty in-memory database (nothing created), so a history store's
    /// `create table if not exists` succeeds there and lists nothing.
    ReadOnly,
}

/// Everything [`open`] needs besides the path.
#[derive(Debug, Clone)]
pub(crate) struct OpenSpec {
    pub mode: DatabaseMode,
    pub options: DatabaseOptions,
    pub policy: Policy,
    pub max_value_bytes: usize,
}

/// Open `path` as `spec` says, hardened for plugin use.
pub(crate) fn open(path: &Path, spec: &OpenSpec) -> anyhow::Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        anyhow::ensure!(
            dir.is_dir(),
            "database directory {} does not exist",
            dir.display()
        );
    }
    let conn = match spec.mode {
        DatabaseMode::ReadWrite => open_read_write(path, spec.options)?,
        DatabaseMode::ReadOnly if path.exists() => open_snapshot(path)?,
        DatabaseMode::ReadOnly => Connection::open_in_memory()?,
        DatabaseMode::Validation => open_scratch(path, spec.options)?,
    };
    sql_guard::harden(&conn, spec.policy.clone(), spec.max_value_bytes)
        .with_context(|| format!("failed to configure database {}", path.display()))?;
    Ok(conn)
}

/// The file itself, for a run. No URI filenames: a path from `weir.toml` is a path, never
/// `file:…?mode=…` options.
fn open_read_write(path: &Path, options: DatabaseOptions) -> anyhow::Result<Connection> {
    let flags = if options.read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("failed to open database {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if !options.read_only {
        enable_wal(&conn).with_context(|| format!("failed to enable WAL on {}", path.display()))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
    }
    cap_size(&conn, options)?;
    Ok(conn)
}

fn cap_size(conn: &Connection, options: DatabaseOptions) -> anyhow::Result<()> {
    if let Some(max) = options.max_size_bytes {
        let page_size: u64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        conn.pragma_update(None, "max_page_count", (max / page_size).max(1))?;
    }
    Ok(())
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// An existing file, read-only, creating nothing next to it.
///
/// A read-only connection to a WAL database creates the `-wal` and `-shm` files when they are
/// missing. When both exist, someone is (or was) writing through the WAL and a read-only open
/// sees their commits without creating anything. When they do not, nothing is writing and
/// the file alone is the whole database: `immutable=1` makes SQLite take no locks and create
/// nothing. (Should a writer start between the check and the read, validation may see a
/// stale or briefly inconsistent schema; it reports the error and the next attempt is fine.)
/// Open an existing SQLite file to read it without creating or changing any file: read-only,
/// and `immutable` when no writer has it open (a read-only reader of a WAL database would
/// otherwise create `-shm` and `-wal` beside it and leave them there).
pub fn open_snapshot(path: &Path) -> anyhow::Result<Connection> {
    let live_wal = sidecar(path, "-wal").exists() && sidecar(path, "-shm").exists();
    let conn = if live_wal {
        Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    } else {
        Connection::open_with_flags(
            immutable_uri(path)?,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    }
    .with_context(|| format!("failed to open database {} read-only", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// `file:/abs/path?immutable=1`, the path percent-encoded so `?`, `#` and `%` in it stay part
/// of the name. Built by the host from a configured path, never from plugin input.
fn immutable_uri(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::ffi::OsStrExt as _;
    let absolute =
        std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let mut uri = String::from("file:");
    for &b in absolute.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    Ok(uri)
}

/// An in-memory database with the schema (tables, indexes, views, triggers) of `path`, or
/// empty when `path` does not exist.
fn open_scratch(path: &Path, options: DatabaseOptions) -> anyhow::Result<Connection> {
    let scratch = Connection::open_in_memory()?;
    if path.exists() {
        let source = open_snapshot(path)?;
        seed_schema(&source, &scratch)
            .with_context(|| format!("failed to read the schema of {}", path.display()))?;
    }
    cap_size(&scratch, options)?;
    if options.read_only {
        // The file would be opened read-only in a run; the copy refuses writes the same way.
        scratch.pragma_update(None, "query_only", true)?;
    }
    Ok(scratch)
}

fn seed_schema(source: &Connection, scratch: &Connection) -> anyhow::Result<()> {
    let page_size: i64 = source.pragma_query_value(None, "page_size", |r| r.get(0))?;
    scratch.pragma_update(None, "page_size", page_size)?;
    let mut stmt = source.prepare(
        "SELECT name, sql FROM sqlite_schema
         WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
    )?;
    let objects = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (name, sql) in objects {
        // Creation order satisfies dependencies; what cannot be recreated (a virtual table's
        // shadow tables, made by the virtual table itself; a module this build lacks) is left
        // out: validation runs the plugins against the rest.
        if let Err(e) = scratch.execute_batch(&sql) {
            tracing::debug!(object = %name, "not copied into the validation scratch: {e}");
        }
    }
    Ok(())
}

/// Switch the file to WAL unless it already is. Changing the journal mode does not wait on the
/// busy handler: while another connection (another worker of the same run) has the file open,
/// it fails with "database is locked" at once, even when the mode is WAL already. So ask first,
/// and retry a switch that collides with another opener for up to the busy timeout.
fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mode = |conn: &Connection| -> rusqlite::Result<String> {
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
                std::thread::sleep(Duration::from_millis(10));
                if mode(conn).is_ok_and(|m| m.eq_ignore_ascii_case("wal")) {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
}
