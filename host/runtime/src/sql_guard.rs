//! The rules plugin SQL runs under, on connections the host shares with its own commit loop.
//!
//! Every connection to a granted database gets an authorizer when it is opened
//! ([`harden`]). It has two modes, chosen per thread: while a plugin statement is prepared or
//! stepped ([`as_plugin`], and every `sql` import call) it refuses whatever could leave the
//! grant, break the host's transaction or outlive the call; otherwise (the host's own
//! `BEGIN IMMEDIATE`/`COMMIT`, reject inserts, WAL pragmas) it allows everything but a trigger
//! writing to a table the host owns. A thread-local mode, not a per-connection flag, because
//! SQLite calls the authorizer on the thread that prepares or steps, and a plugin statement is
//! only ever prepared and stepped inside one synchronous [`as_plugin`] scope.
//!
//! Plugin statements must be prepared uncached: `prepare_cached` could hand back a statement
//! the host prepared, authorized as the host.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization, TransactionOperation};
use rusqlite::limits::Limit;
use rusqlite::{Connection, Statement};

/// Tables the host writes and plugins must not: the commit protocol's own records (the
/// rejects, and the fences of clustered runs). The engine adds its own with
/// [`crate::Databases::with_host_tables`].
pub const HOST_TABLES: &[&str] = &["_weir_rejects", "_weir_fences"];

/// PRAGMAs a plugin may run: read-only introspection of tables and indexes, which loaders need
/// to plan their writes (also reached through `pragma_table_info(…)` and friends). And
/// `quick_check`, read-only too: SQLite runs it itself (through `pragma_quick_check`) when
/// `ALTER TABLE … ADD COLUMN` adds a column to a STRICT table or one with constraints.
pub const ALLOWED_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "table_list",
    "quick_check",
];

/// SQL functions a plugin may not call: they load code or reach files (the file functions only
/// exist in the sqlite3 shell today; listed so that a future build that links them stays safe).
const DENIED_FUNCTIONS: &[&str] = &[
    "load_extension",
    "fts3_tokenizer",
    "readfile",
    "writefile",
    "edit",
];

/// Longest string or blob, and therefore row, SQLite builds on a granted connection (64 MiB,
/// twice the default `max_row_bytes`). SQLite's default of 1 GB would let one `zeroblob` or
/// `printf('%.*c', …)` in a query allocate that much host memory.
pub const MAX_SQL_VALUE_BYTES: usize = 64 << 20;

/// Longest SQL statement text (1 MiB); a generated `CREATE TABLE` of 2,000 columns is ~100 KiB.
const MAX_SQL_TEXT_BYTES: i32 = 1 << 20;

/// What a connection's authorizer knows about its database.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// Tables only the host writes (lowercase).
    pub host_tables: Vec<String>,
}

thread_local! {
    /// How many [`PluginMode`] scopes are open on this thread.
    static PLUGIN_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Why the authorizer last refused something on this thread, for the error message.
    static DENIAL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// While alive, statements this thread prepares or steps are authorized as a plugin's.
pub(crate) struct PluginMode(());

impl PluginMode {
    pub(crate) fn enter() -> Self {
        PLUGIN_DEPTH.with(|d| d.set(d.get() + 1));
        DENIAL.with(|d| d.borrow_mut().take());
        Self(())
    }
}

impl Drop for PluginMode {
    fn drop(&mut self) {
        PLUGIN_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

fn in_plugin_mode() -> bool {
    PLUGIN_DEPTH.with(|d| d.get() > 0)
}

/// Apply weir's connection settings and install the authorizer. Called on every connection to a
/// granted database before anyone else uses it.
pub(crate) fn harden(
    conn: &Connection,
    policy: Policy,
    max_value_bytes: usize,
) -> rusqlite::Result<()> {
    // Defensive: no writes to the schema tables or sqlite_dbpage, no shadow-table tampering,
    // even through writable_schema. Untrusted schema: functions with side effects and virtual
    // tables are not run from views and triggers the plugin (or anyone) left in the file.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, false)?;
    // No other database file on this connection, whoever asks (VACUUM attaches one too).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_CREATE, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_WRITE, false)?;
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    let max_value = i32::try_from(max_value_bytes.max(MAX_SQL_VALUE_BYTES)).unwrap_or(i32::MAX);
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, max_value)?;
    conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_TEXT_BYTES)?;
    let policy = Arc::new(policy);
    conn.authorizer(Some(move |ctx: AuthContext<'_>| authorize(&policy, ctx)));
    Ok(())
}

fn authorize(policy: &Policy, ctx: AuthContext<'_>) -> Authorization {
    let verdict = if in_plugin_mode() {
        plugin_rule(policy, &ctx)
    } else {
        host_rule(policy, &ctx)
    };
    match verdict {
        None => Authorization::Allow,
        Some(why) => {
            DENIAL.with(|d| {
                d.borrow_mut().get_or_insert(why);
            });
            Authorization::Deny
        }
    }
}

/// The table an action writes to, if it writes to one.
fn written_table<'a>(action: &AuthAction<'a>) -> Option<&'a str> {
    match *action {
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. } => Some(table_name),
        _ => None,
    }
}

fn is_schema_table(name: &str) -> bool {
    // SQLite's own bookkeeping: creating a table "writes" sqlite_master through the authorizer.
    name.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("sqlite_"))
}

fn is_host_table(policy: &Policy, name: &str) -> bool {
    policy
        .host_tables
        .iter()
        .any(|t| t.eq_ignore_ascii_case(name))
}

/// The host's statements: anything, except a trigger writing to a host table (a trigger a
/// plugin or anyone left on a table the host writes would otherwise run with the host's rights).
fn host_rule(policy: &Policy, ctx: &AuthContext<'_>) -> Option<String> {
    let (Some(trigger), Some(table)) = (ctx.accessor, written_table(&ctx.action)) else {
        return None;
    };
    is_host_table(policy, table)
        .then(|| format!("trigger {trigger} writes to {table}, which only the host may write"))
}

/// A plugin's statements: only what stays inside the grant and the call.
fn plugin_rule(policy: &Policy, ctx: &AuthContext<'_>) -> Option<String> {
    use AuthAction as A;
    const OWN_TRANSACTION: &str = "the host owns the transactions (a plugin's statements run inside the worker's commit transaction)";
    const TEMP: &str = "temporary objects outlive the call on the worker's shared connection and would shadow the host's tables";
    let host_table = |name: &str| -> Option<String> {
        is_host_table(policy, name).then(|| format!("{name} belongs to the host"))
    };
    match ctx.action {
        A::Attach { .. } => Some(
            "ATTACH is not allowed: a plugin uses only the databases its pipeline grants".into(),
        ),
        A::Detach { .. } => Some("DETACH is not allowed: nothing can be attached".into()),
        A::Transaction { operation } => Some(format!(
            "{} is not allowed: {OWN_TRANSACTION}",
            match operation {
                TransactionOperation::Begin => "BEGIN",
                TransactionOperation::Rollback => "ROLLBACK",
                _ => "COMMIT",
            }
        )),
        A::Savepoint { operation, .. } => Some(format!(
            "{} is not allowed: {OWN_TRANSACTION}",
            match operation {
                TransactionOperation::Begin => "SAVEPOINT",
                TransactionOperation::Release => "RELEASE",
                _ => "ROLLBACK TO",
            }
        )),
        A::Pragma { pragma_name, .. } => {
            let name = pragma_name.to_ascii_lowercase();
            (!ALLOWED_PRAGMAS.contains(&name.as_str())).then(|| {
                format!(
                    "PRAGMA {name} is not allowed: plugins may only read {}",
                    ALLOWED_PRAGMAS.join(", ")
                )
            })
        }
        A::Function { function_name } => {
            let name = function_name.to_ascii_lowercase();
            DENIED_FUNCTIONS
                .contains(&name.as_str())
                .then(|| format!("function {name}() is not allowed"))
        }
        A::CreateTrigger { .. } | A::CreateTempTrigger { .. } => Some(
            "CREATE TRIGGER is not allowed: a plugin's trigger would run inside the host's own statements"
                .into(),
        ),
        A::DropTrigger { .. } | A::DropTempTrigger { .. } => {
            Some("DROP TRIGGER is not allowed: triggers belong to the operator".into())
        }
        A::CreateTempTable { .. } | A::CreateTempIndex { .. } | A::CreateTempView { .. } => {
            Some(format!("CREATE TEMP is not allowed: {TEMP}"))
        }
        A::DropTempTable { .. } | A::DropTempIndex { .. } | A::DropTempView { .. } => {
            Some(format!("DROP on temp objects is not allowed: {TEMP}"))
        }
        A::CreateVtable { module_name, .. } => Some(format!(
            "CREATE VIRTUAL TABLE is not allowed: module {module_name} runs host code the grant does not cover"
        )),
        A::DropVtable { .. } => Some("DROP on virtual tables is not allowed".into()),
        A::Read { table_name, .. } if table_name.eq_ignore_ascii_case("sqlite_dbpage") => {
            Some("sqlite_dbpage is not allowed: it reads raw pages".into())
        }
        A::Insert { table_name } | A::Delete { table_name } | A::Update { table_name, .. } => {
            if is_schema_table(table_name) {
                // SQLite's own schema bookkeeping; DEFENSIVE refuses direct writes.
                return None;
            }
            let verb = match ctx.action {
                A::Insert { .. } => "INSERT",
                A::Delete { .. } => "DELETE",
                _ => "UPDATE",
            };
            host_table(table_name).map(|why| match ctx.accessor {
                Some(t) => format!("trigger {t} writes to {table_name}: {why}"),
                None => format!("{verb} on {table_name} is not allowed: {why}"),
            })
        }
        A::CreateTable { table_name } | A::DropTable { table_name } => {
            let verb = if matches!(ctx.action, A::CreateTable { .. }) {
                "CREATE TABLE"
            } else {
                "DROP TABLE"
            };
            host_table(table_name).map(|why| format!("{verb} {table_name} is not allowed: {why}"))
        }
        A::CreateView { view_name } | A::DropView { view_name } => host_table(view_name)
            .map(|why| format!("a view named {view_name} is not allowed: {why}")),
        A::CreateIndex { table_name, .. } | A::DropIndex { table_name, .. } => host_table(table_name)
            .map(|why| format!("an index on {table_name} is not allowed: {why}")),
        A::AlterTable { table_name, .. } => host_table(table_name)
            .map(|why| format!("ALTER TABLE {table_name} is not allowed: {why}")),
        // Reads, SELECT, recursive CTEs, ANALYZE, REINDEX: allowed.
        _ => None,
    }
}

/// The first keyword of `sql`, after whitespace and comments.
fn first_keyword(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Why `sql` is refused before SQLite sees it, if it is.
///
/// SQLite's authorizer is not asked about VACUUM itself, only about the ATTACH and the
/// statements VACUUM runs internally while it executes (which plugin mode refuses too, as does
/// `SQLITE_LIMIT_ATTACHED = 0`). Those are implementation details of SQLite; the first keyword
/// is not, and VACUUM cannot hide behind a `WITH` or another prefix.
fn refused_up_front(sql: &str) -> Option<String> {
    first_keyword(sql).eq_ignore_ascii_case("vacuum").then(|| {
        "VACUUM is not allowed: VACUUM INTO writes a copy outside the grants, and VACUUM rewrites a database the host is writing"
            .to_owned()
    })
}

/// An `SQLITE_AUTH` error carrying `why`.
fn denied(why: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_AUTH),
        Some(why),
    )
}

/// Whether `err` is a refusal by these rules.
pub fn is_denied(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(rusqlite::ErrorCode::AuthorizationForStatementDenied)
}

/// Replace SQLite's bare "not authorized" with the rule that refused, when this thread's
/// authorizer refused something since the last plugin scope began.
pub fn explain(err: rusqlite::Error) -> rusqlite::Error {
    // A refused function is reported as a plain error ("not authorized to use function"),
    // everything else as SQLITE_AUTH ("not authorized").
    if !is_denied(&err) && !err.to_string().contains("not authorized") {
        return err;
    }
    match DENIAL.with(|d| d.borrow_mut().take()) {
        Some(why) => denied(why),
        None => err,
    }
}

/// Run `f` with the plugin rules on, for SQL a plugin wrote that the host executes: a loader's
/// write plan (`setup` statements and the per-row `statement`). Everything `f` prepares and
/// steps through the [`PluginSql`] it gets is refused what a plugin's own `sql` call would be.
/// Statements cannot outlive `f`, so none is stepped later outside the rules (a schema change
/// makes SQLite prepare a statement again, authorizing it again, when it is next stepped).
///
/// ```no_run
/// # fn load(conn: &rusqlite::Connection, plan: &weir_runtime::SqlPlan) -> rusqlite::Result<u64> {
/// use weir_runtime::sql_guard::{as_plugin, explain};
/// // Once per stream:
/// as_plugin(conn, |db| plan.setup.iter().try_for_each(|s| db.execute_batch(s)))?;
/// // Once per batch, inside the commit transaction:
/// as_plugin(conn, |db| {
///     let mut stmt = db.prepare(&plan.statement)?;
///     let mut written = 0;
///     for row in 0..2 {
///         stmt.raw_bind_parameter(1, row)?;
///         stmt.raw_execute().map_err(explain)?;
///         written += 1;
///         // A row error that ended the transaction is the batch's, not the row's.
///         assert!(!db.is_autocommit());
///     }
///     Ok(written)
/// })
/// # }
/// ```
pub fn as_plugin<R>(conn: &Connection, f: impl for<'s> FnOnce(&'s PluginSql<'s>) -> R) -> R {
    let _mode = PluginMode::enter();
    f(&PluginSql { conn })
}

/// A connection seen through the plugin rules; see [`as_plugin`].
pub struct PluginSql<'c> {
    conn: &'c Connection,
}

/// Prepare one plugin statement, uncached, refusing what the rules refuse up front. Call in
/// plugin mode.
pub(crate) fn prepare<'c>(conn: &'c Connection, sql: &str) -> rusqlite::Result<Statement<'c>> {
    DENIAL.with(|d| d.borrow_mut().take());
    if let Some(why) = refused_up_front(sql) {
        return Err(denied(why));
    }
    conn.prepare(sql).map_err(explain)
}

impl PluginSql<'_> {
    /// Prepare one statement, uncached. Refusals are `SQLITE_AUTH` errors saying which rule.
    pub fn prepare(&self, sql: &str) -> rusqlite::Result<Statement<'_>> {
        prepare(self.conn, sql)
    }

    /// Execute every statement of `sql` in turn (like [`Connection::execute_batch`]).
    pub fn execute_batch(&self, sql: &str) -> rusqlite::Result<()> {
        use rusqlite::fallible_iterator::FallibleIterator as _;
        let mut batch = rusqlite::Batch::new(self.conn, sql);
        while let Some(mut stmt) = batch.next().map_err(explain)? {
            if let Some(why) = stmt.expanded_sql().as_deref().and_then(refused_up_front) {
                return Err(denied(why));
            }
            // One step, like `execute_batch`: DDL and DML finish in it; rows are ignored.
            stmt.raw_query().next().map_err(explain)?;
        }
        Ok(())
    }

    /// Whether the connection is outside any transaction (see [`Connection::is_autocommit`]).
    pub fn is_autocommit(&self) -> bool {
        self.conn.is_autocommit()
    }
}

#[cfg(test)]
#[path = "sql_guard_tests.rs"]
mod tests;
