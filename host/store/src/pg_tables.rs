//! Creating a host-owned table on PostgreSQL (the rejects, the fences) from workers that may
//! all try at once: PostgreSQL's `CREATE TABLE IF NOT EXISTS` still races on its catalog, so
//! the creation runs under a transaction-scoped advisory lock, after a cheap look.

use weir_postgres::tokio_postgres::{Client, Error};

/// The advisory lock class of weir's table creations ("weir" in ASCII).
const CREATE_LOCK_CLASS: i32 = 2003134834;

/// Run `create` (idempotent DDL for `table`) unless `table` exists, outside any transaction.
pub(crate) async fn create_once(client: &Client, table: &str, create: &str) -> Result<(), Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await?
        .get(0);
    if exists {
        return Ok(());
    }
    let outcome = client
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({CREATE_LOCK_CLASS}, hashtext('{table}')); \
             {create} COMMIT;"
        ))
        .await;
    if outcome.is_err() {
        // Leave no transaction open on a connection that goes back to its pool.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    outcome
}
