//! The native PostgreSQL baselines: what a careful Rust program does with tokio-postgres and no
//! plugins, committing every `batch` rows together with its checkpoint, as weir does.
//!
//! - append: the csv crate reads the file; each batch is one binary `COPY` straight into the
//!   table, then the byte offset reached is upserted, then COMMIT;
//! - upsert: each batch is one binary `COPY` into a temporary staging table (with the row's
//!   position, so the last row of a key wins), then one `INSERT … SELECT DISTINCT ON (id) … ON
//!   CONFLICT (id) DO UPDATE`, the checkpoint, COMMIT;
//! - extract: keyset pagination over the PostgreSQL table (`WHERE id > $last ORDER BY id
//!   LIMIT batch`), each page inserted into SQLite in one transaction with the last key read.

use std::path::Path;
use std::pin::pin;

use anyhow::Context as _;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

/// The columns, as weir's PostgreSQL writer types them (integer → bigint, real → double
/// precision, the rest text). The driver checks weir's tables have the same column types.
pub const COLUMNS: [(&str, Type); 10] = [
    ("id", Type::INT8),
    ("account", Type::TEXT),
    ("booking_date", Type::TEXT),
    ("value_date", Type::TEXT),
    ("amount", Type::FLOAT8),
    ("currency", Type::TEXT),
    ("counterparty", Type::TEXT),
    ("memo", Type::TEXT),
    ("category", Type::TEXT),
    ("balance", Type::FLOAT8),
];

/// `CREATE TABLE transactions (…)`, with `id` the primary key when `keyed`.
pub fn table_ddl(keyed: bool) -> String {
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty)| {
            let ty = if *ty == Type::INT8 {
                "bigint"
            } else if *ty == Type::FLOAT8 {
                "double precision"
            } else {
                "text"
            };
            let pk = if keyed && *name == "id" {
                " NOT NULL PRIMARY KEY"
            } else {
                ""
            };
            format!("\"{name}\" {ty}{pk}")
        })
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS \"transactions\" ({})",
        columns.join(", ")
    )
}

fn column_list() -> String {
    COLUMNS
        .iter()
        .map(|(n, _)| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Append,
    Upsert,
}

pub struct Loaded {
    pub rows: u64,
    pub rejected: u64,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn connect(conninfo: &str, password: &str) -> anyhow::Result<Client> {
    let mut config: tokio_postgres::Config = conninfo.parse()?;
    config.password(password);
    let (client, connection) = config
        .connect(NoTls)
        .await
        .with_context(|| format!("cannot connect to {conninfo}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("connection error: {e}");
        }
    });
    Ok(client)
}

/// Load `csv` into table `transactions` of the database at `conninfo`.
pub fn load(
    csv_path: &Path,
    conninfo: &str,
    password: &str,
    batch: usize,
    mode: Mode,
) -> anyhow::Result<Loaded> {
    runtime()?.block_on(load_async(csv_path, conninfo, password, batch, mode))
}

async fn load_async(
    csv_path: &Path,
    conninfo: &str,
    password: &str,
    batch: usize,
    mode: Mode,
) -> anyhow::Result<Loaded> {
    let mut client = connect(conninfo, password).await?;
    client
        .batch_execute(&format!(
            "{};
             CREATE TABLE IF NOT EXISTS _bench_checkpoint (partition text PRIMARY KEY, byte_offset bigint NOT NULL);",
            table_ddl(mode == Mode::Upsert)
        ))
        .await?;
    let columns = column_list();
    let (copy, merge) = match mode {
        Mode::Append => (
            format!("COPY \"transactions\" ({columns}) FROM STDIN (FORMAT binary)"),
            None,
        ),
        Mode::Upsert => {
            client
                .batch_execute(
                    "CREATE TEMPORARY TABLE staging (ord bigint NOT NULL, LIKE \"transactions\") ON COMMIT DELETE ROWS",
                )
                .await?;
            let updates: Vec<String> = COLUMNS
                .iter()
                .skip(1)
                .map(|(n, _)| format!("\"{n}\" = EXCLUDED.\"{n}\""))
                .collect();
            (
                format!("COPY staging (ord, {columns}) FROM STDIN (FORMAT binary)"),
                Some(format!(
                    "INSERT INTO \"transactions\" ({columns}) SELECT DISTINCT ON (\"id\") {columns} \
                     FROM staging ORDER BY \"id\", ord DESC \
                     ON CONFLICT (\"id\") DO UPDATE SET {}",
                    updates.join(", ")
                )),
            )
        }
    };
    let mut types: Vec<Type> = COLUMNS.iter().map(|(_, t)| t.clone()).collect();
    if mode == Mode::Upsert {
        types.insert(0, Type::INT8);
    }
    let partition = csv_path.to_string_lossy().into_owned();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(csv_path)
        .with_context(|| format!("cannot open {}", csv_path.display()))?;
    let mut records: Vec<csv::StringRecord> = vec![csv::StringRecord::new(); batch];
    let (mut loaded, mut rejected) = (0u64, 0u64);
    let mut ord: i64 = 0;
    loop {
        let mut n = 0;
        while n < batch && reader.read_record(&mut records[n])? {
            n += 1;
        }
        if n == 0 {
            break;
        }
        let offset = reader.position().byte() as i64;
        let tx = client.transaction().await?;
        let sink = tx.copy_in(&copy).await?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        let mut in_batch = 0u64;
        for record in &records[..n] {
            let typed = (
                record[0].parse::<i64>(),
                record[4].parse::<f64>(),
                record[9].parse::<f64>(),
            );
            let (Ok(id), Ok(amount), Ok(balance)) = typed else {
                rejected += 1;
                continue;
            };
            ord += 1;
            let values: [&(dyn ToSql + Sync); 10] = [
                &id,
                &&record[1],
                &&record[2],
                &&record[3],
                &amount,
                &&record[5],
                &&record[6],
                &&record[7],
                &&record[8],
                &balance,
            ];
            if mode == Mode::Upsert {
                let mut with_ord: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(11);
                with_ord.push(&ord);
                with_ord.extend_from_slice(&values);
                writer.as_mut().write(&with_ord).await?;
            } else {
                writer.as_mut().write(&values).await?;
            }
            in_batch += 1;
        }
        writer.as_mut().finish().await?;
        if let Some(merge) = &merge {
            tx.execute(merge.as_str(), &[]).await?;
        }
        tx.execute(
            "INSERT INTO _bench_checkpoint (partition, byte_offset) VALUES ($1, $2) \
             ON CONFLICT (partition) DO UPDATE SET byte_offset = EXCLUDED.byte_offset",
            &[&partition, &offset],
        )
        .await?;
        tx.commit().await?;
        loaded += in_batch;
    }
    Ok(Loaded {
        rows: loaded,
        rejected,
    })
}

/// Copy table `transactions` of the PostgreSQL database at `conninfo` into SQLite `db`, page
/// by page in key order.
pub fn extract(conninfo: &str, password: &str, db: &Path, batch: usize) -> anyhow::Result<u64> {
    runtime()?.block_on(extract_async(conninfo, password, db, batch))
}

async fn extract_async(
    conninfo: &str,
    password: &str,
    db: &Path,
    batch: usize,
) -> anyhow::Result<u64> {
    let client = connect(conninfo, password).await?;
    let sqlite = rusqlite::Connection::open(db)?;
    sqlite.pragma_update(None, "journal_mode", "WAL")?;
    sqlite.pragma_update(None, "synchronous", "NORMAL")?;
    sqlite.execute_batch(crate::native::TABLE_DDL)?;
    sqlite.execute_batch(
        "CREATE TABLE IF NOT EXISTS _bench_checkpoint (partition TEXT PRIMARY KEY, last_id INTEGER NOT NULL)",
    )?;
    let page = client
        .prepare(&format!(
            "SELECT {} FROM \"transactions\" WHERE \"id\" > $1 ORDER BY \"id\" LIMIT $2",
            column_list()
        ))
        .await?;
    let mut insert = sqlite
        .prepare("INSERT INTO \"transactions\" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?;
    let mut checkpoint = sqlite.prepare(
        "INSERT INTO _bench_checkpoint (partition, last_id) VALUES ('transactions', ?1) \
         ON CONFLICT (partition) DO UPDATE SET last_id = excluded.last_id",
    )?;
    let mut last = i64::MIN;
    let mut copied = 0u64;
    loop {
        let rows = client.query(&page, &[&last, &(batch as i64)]).await?;
        let Some(tail) = rows.last() else {
            break;
        };
        last = tail.try_get(0)?;
        sqlite.execute_batch("BEGIN IMMEDIATE")?;
        for row in &rows {
            insert.execute(rusqlite::params![
                row.try_get::<_, Option<i64>>(0)?,
                row.try_get::<_, Option<&str>>(1)?,
                row.try_get::<_, Option<&str>>(2)?,
                row.try_get::<_, Option<&str>>(3)?,
                row.try_get::<_, Option<f64>>(4)?,
                row.try_get::<_, Option<&str>>(5)?,
                row.try_get::<_, Option<&str>>(6)?,
                row.try_get::<_, Option<&str>>(7)?,
                row.try_get::<_, Option<&str>>(8)?,
                row.try_get::<_, Option<f64>>(9)?,
            ])?;
        }
        checkpoint.execute([last])?;
        sqlite.execute_batch("COMMIT")?;
        copied += rows.len() as u64;
    }
    Ok(copied)
}
