//! Fencing tokens for clustered runs (docs/cluster.md, "Fencing"): the `_weir_fences` table of
//! a pipeline's commit database keeps, per partition, the newest lease epoch any host claimed
//! it with. A host stamps its epoch there when it starts the partition (before it reads the
//! checkpoint), and every batch's transaction checks it, so a host that was paused past its
//! lease and wakes up holding an older epoch cannot commit: the check is in the same
//! transaction as the rows and the checkpoint, on the same database.

use rusqlite::{Connection, OptionalExtension as _, params};

/// The fence table every clustered commit database gets. Host-owned: plugins may not write it.
pub const TABLE: &str = "_weir_fences";

/// What a stamp found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// The partition is fenced at this epoch now.
    Taken,
    /// A newer epoch was stamped already: another host claimed the partition since.
    Superseded { newer: i64 },
}

/// Create the table if needed. Idempotent.
pub fn ensure_table(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (
            pipeline TEXT NOT NULL,
            partition TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            PRIMARY KEY (pipeline, partition)
        ) STRICT"
    ))
}

/// Raise the partition's fence to `epoch` (never lower it), outside a batch.
pub fn stamp(
    conn: &Connection,
    pipeline: &str,
    partition: &str,
    epoch: i64,
) -> rusqlite::Result<Stamp> {
    ensure_table(conn)?;
    conn.execute(
        &format!(
            "INSERT INTO {TABLE} (pipeline, partition, epoch) VALUES (?1, ?2, ?3)
             ON CONFLICT (pipeline, partition) DO UPDATE SET epoch = excluded.epoch
             WHERE {TABLE}.epoch < excluded.epoch"
        ),
        params![pipeline, partition, epoch],
    )?;
    let stored: i64 = conn.query_row(
        &format!("SELECT epoch FROM {TABLE} WHERE pipeline = ?1 AND partition = ?2"),
        params![pipeline, partition],
        |row| row.get(0),
    )?;
    Ok(judge(epoch, Some(stored)))
}

/// Inside the batch's transaction: whether `epoch` is still the partition's newest. The row
/// is written (to the same value), so it stays locked until the batch commits: a host stamping
/// a newer epoch meanwhile waits for this batch, and then reads its checkpoint.
pub fn check(
    conn: &Connection,
    pipeline: &str,
    partition: &str,
    epoch: i64,
) -> rusqlite::Result<Stamp> {
    conn.execute(
        &format!(
            "UPDATE {TABLE} SET epoch = ?3 WHERE pipeline = ?1 AND partition = ?2 AND epoch = ?3"
        ),
        params![pipeline, partition, epoch],
    )?;
    let stored: Option<i64> = conn
        .query_row(
            &format!("SELECT epoch FROM {TABLE} WHERE pipeline = ?1 AND partition = ?2"),
            params![pipeline, partition],
            |row| row.get(0),
        )
        .optional()?;
    Ok(judge(epoch, stored))
}

/// The same on PostgreSQL (the statements are the same but for the placeholders).
pub async fn stamp_postgres(
    client: &weir_postgres::tokio_postgres::Client,
    pipeline: &str,
    partition: &str,
    epoch: i64,
) -> Result<Stamp, weir_postgres::tokio_postgres::Error> {
    ensure_table_postgres(client).await?;
    let stored: i64 = client
        .query_one(
            &format!(
                "INSERT INTO {TABLE} (pipeline, partition, epoch) VALUES ($1, $2, $3)
                 ON CONFLICT (pipeline, partition) DO UPDATE
                     SET epoch = greatest({TABLE}.epoch, excluded.epoch)
                 RETURNING epoch"
            ),
            &[&pipeline, &partition, &epoch],
        )
        .await?
        .get(0);
    Ok(judge(epoch, Some(stored)))
}

/// [`check`] on PostgreSQL: `FOR UPDATE` holds the row until the batch's commit.
pub async fn check_postgres(
    client: &weir_postgres::tokio_postgres::Client,
    pipeline: &str,
    partition: &str,
    epoch: i64,
) -> Result<Stamp, weir_postgres::tokio_postgres::Error> {
    let stored: Option<i64> = client
        .query_opt(
            &format!("SELECT epoch FROM {TABLE} WHERE pipeline = $1 AND partition = $2 FOR UPDATE"),
            &[&pipeline, &partition],
        )
        .await?
        .map(|row| row.get(0));
    Ok(judge(epoch, stored))
}

async fn ensure_table_postgres(
    client: &weir_postgres::tokio_postgres::Client,
) -> Result<(), weir_postgres::tokio_postgres::Error> {
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (
            pipeline text NOT NULL,
            partition text NOT NULL,
            epoch bigint NOT NULL,
            PRIMARY KEY (pipeline, partition)
        );"
    );
    crate::pg_tables::create_once(client, TABLE, &create).await
}

/// Why a worker holding `mine` is fenced, in words (`newer` from [`Stamp::Superseded`]).
pub fn explain(partition: &str, mine: i64, newer: i64) -> String {
    if newer < 0 {
        return format!(
            "fenced: partition \"{partition}\" has no fence row in the commit database (its \
             `{TABLE}` row was removed while this host held epoch {mine}); refusing to commit \
             without one"
        );
    }
    format!(
        "fenced: this host's lease on partition \"{partition}\" (epoch {mine}) is stale, the \
         commit database holds epoch {newer}: another host took the partition over (or the \
         cluster database was recreated: then clear `{TABLE}` in the commit database)"
    )
}

/// A missing row counts as superseded: the worker stamped it before its first batch, so only
/// an operator can have removed it, and committing without a fence is what this prevents.
fn judge(mine: i64, stored: Option<i64>) -> Stamp {
    match stored {
        Some(stored) if stored == mine => Stamp::Taken,
        Some(newer) => Stamp::Superseded { newer },
        None => Stamp::Superseded { newer: -1 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_stamp_fences_out_the_older_epoch_and_never_goes_back() {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(stamp(&conn, "p", "a.csv", 3).unwrap(), Stamp::Taken);
        conn.execute_batch("BEGIN").unwrap();
        assert_eq!(check(&conn, "p", "a.csv", 3).unwrap(), Stamp::Taken);
        conn.execute_batch("COMMIT").unwrap();
        // Another host claims the partition at epoch 4.
        assert_eq!(stamp(&conn, "p", "a.csv", 4).unwrap(), Stamp::Taken);
        assert_eq!(
            check(&conn, "p", "a.csv", 3).unwrap(),
            Stamp::Superseded { newer: 4 }
        );
        // The paused host stamping again (a restart of its worker) does not lower it.
        assert_eq!(
            stamp(&conn, "p", "a.csv", 3).unwrap(),
            Stamp::Superseded { newer: 4 }
        );
        assert_eq!(check(&conn, "p", "a.csv", 4).unwrap(), Stamp::Taken);
        // Other partitions are fenced apart.
        assert_eq!(
            check(&conn, "p", "b.csv", 4).unwrap(),
            Stamp::Superseded { newer: -1 }
        );
    }
}
