//! The native HTTP baseline: what a careful Rust program does without plugins to copy the HR
//! fixture's employees into SQLite. The same requests as http-extract (`GET
//! employees?page=N&per_page=SIZE` with the bearer token, one connection per request like
//! weir's host, hyper over tokio), the body parsed by serde straight into typed structs, and
//! per page one transaction: the same upsert statement weir's sqlite-load plans into the same
//! STRICT table, plus the next page number upserted as the checkpoint (weir's commit protocol:
//! rows and checkpoint together), in WAL with `synchronous=NORMAL` like weir's connections.

use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use rusqlite::Connection;
use serde::Deserialize;

/// The table sqlite-load creates for the bench pipeline's schema (upsert by `id`: the key
/// first, NOT NULL, a one-column key declared `INT`; the other columns in name order, as
/// http-extract gets its `fields` table; STRICT). The driver checks it matches weir's.
pub const TABLE_DDL: &str = "CREATE TABLE IF NOT EXISTS \"employees\" (\"id\" INT NOT NULL, \
\"email\" TEXT, \"hired\" TEXT, \"manager_id\" INTEGER, \"name\" TEXT, \"org_unit\" INTEGER, \
\"salary\" TEXT, \"tags\" TEXT, \"title\" TEXT, \"updated_at\" TEXT, PRIMARY KEY (\"id\")) STRICT";

const UPSERT: &str = "INSERT INTO \"employees\" (\"id\", \"email\", \"hired\", \"manager_id\", \
\"name\", \"org_unit\", \"salary\", \"tags\", \"title\", \"updated_at\") \
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (\"id\") DO UPDATE SET \
\"email\" = excluded.\"email\", \"hired\" = excluded.\"hired\", \
\"manager_id\" = excluded.\"manager_id\", \"name\" = excluded.\"name\", \
\"org_unit\" = excluded.\"org_unit\", \"salary\" = excluded.\"salary\", \
\"tags\" = excluded.\"tags\", \"title\" = excluded.\"title\", \
\"updated_at\" = excluded.\"updated_at\"";

/// One page of `GET /api/employees`; `meta` and `links` are skipped by serde.
#[derive(Deserialize)]
struct Page {
    data: Vec<Employee>,
}

/// An employee as the columns want it.
#[derive(Deserialize)]
struct Employee {
    id: i64,
    name: Option<String>,
    email: Option<String>,
    title: Option<String>,
    /// Decimal text (`"41234.56"`), kept exact.
    salary: Option<String>,
    hired: Option<String>,
    org_unit: Option<i64>,
    manager: Option<Manager>,
    tags: Option<Vec<String>>,
    updated_at: Option<String>,
}

#[derive(Deserialize)]
struct Manager {
    id: Option<i64>,
}

/// What a load did.
pub struct Loaded {
    pub rows: u64,
    pub requests: u64,
}

/// Copy every employee of the fixture at `api` (`http://ADDR/api/`) into `db`.
pub fn load(
    api: &str,
    token: &str,
    db: &std::path::Path,
    page_size: usize,
) -> anyhow::Result<Loaded> {
    let rest = api
        .strip_prefix("http://")
        .context("the API URL must be http://ADDR/…")?;
    let (authority, base_path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr: SocketAddr = authority
        .parse()
        .with_context(|| format!("{authority}: not an IP address and port"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let conn = Connection::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(TABLE_DDL)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _bench_checkpoint (partition TEXT PRIMARY KEY, next_page INTEGER NOT NULL)",
    )?;
    let mut upsert = conn.prepare(UPSERT)?;
    let mut checkpoint = conn.prepare(
        "INSERT INTO _bench_checkpoint (partition, next_page) VALUES ('employees', ?1) \
         ON CONFLICT (partition) DO UPDATE SET next_page = excluded.next_page",
    )?;
    let auth = format!("Bearer {token}");
    let (mut rows, mut requests) = (0u64, 0u64);
    for page in 1u64.. {
        let path = format!("/{base_path}employees?page={page}&per_page={page_size}");
        let body = runtime.block_on(get(addr, authority, &path, &auth))?;
        requests += 1;
        let page_data: Page = serde_json::from_slice(&body)
            .with_context(|| format!("GET {path}: the body is not a page of employees"))?;
        if page_data.data.is_empty() {
            break;
        }
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for e in &page_data.data {
            // A json column: the array as compact JSON text, as http-extract writes it.
            let tags = e.tags.as_ref().map(serde_json::to_string).transpose()?;
            upsert.execute(rusqlite::params![
                e.id,
                e.email,
                e.hired,
                e.manager.as_ref().and_then(|m| m.id),
                e.name,
                e.org_unit,
                e.salary,
                tags,
                e.title,
                e.updated_at,
            ])?;
            rows += 1;
        }
        checkpoint.execute([page as i64 + 1])?;
        conn.execute_batch("COMMIT")?;
    }
    Ok(Loaded { rows, requests })
}

/// `GET path` on a new connection (as weir's host makes one per request); the whole body.
async fn get(addr: SocketAddr, authority: &str, path: &str, auth: &str) -> anyhow::Result<Bytes> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::AUTHORIZATION, auth)
        .header(hyper::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    drop(sender);
    let _ = driver.await;
    if !status.is_success() {
        bail!(
            "GET {path}: HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
    }
    Ok(body)
}
