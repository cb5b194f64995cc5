//! The native search-index baseline of the fan-out case: what a careful Rust program does
//! without plugins to put the bank CSV's compliant subset into an index. It reads the CSV with
//! the `csv` crate, applies the same allow-list, filter and mask as the bench's
//! select-transform config (see [`KEPT_COLUMNS`]), encodes each row with serde_json as the
//! same `_bulk` lines opensearch-load writes (`_id` and `version` from `id`,
//! `version_type=external`), and sends `bulk` documents per `POST /_bulk`, one request at a
//! time on a new connection each (as weir's host does), hyper over tokio. The index is created
//! first with the mappings the driver passes (the ones opensearch-load derived), so both index
//! the same way.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context as _, bail, ensure};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use serde::Serialize;

/// The allow-list of the bench's select-transform, in output order (`value_date` never
/// leaves).
pub const KEPT_COLUMNS: [&str; 9] = [
    "id",
    "account",
    "booking_date",
    "amount",
    "currency",
    "counterparty",
    "memo",
    "category",
    "balance",
];

/// The category the bench's filter drops (`keep = "category != 'fees'"`).
pub const DROPPED_CATEGORY: &str = "fees";

/// Characters of `account` left visible (`mask = { account = { keep_last = 4 } }`).
pub const ACCOUNT_KEEP_LAST: usize = 4;

/// One document, fields in the allow-list's order (serde keeps declaration order).
#[derive(Serialize)]
struct Document<'a> {
    id: i64,
    account: &'a str,
    booking_date: &'a str,
    amount: Option<f64>,
    currency: &'a str,
    counterparty: &'a str,
    memo: &'a str,
    category: &'a str,
    balance: Option<f64>,
}

/// What a load did.
pub struct Loaded {
    pub documents: u64,
    pub requests: u64,
}

/// Index the compliant rows of `csv` into `index` at `url` (`http://ADDR/`), `bulk` documents
/// a request; the index is created with `mappings` (a JSON file) first.
pub fn load(
    csv: &Path,
    url: &str,
    index: &str,
    mappings: &Path,
    bulk: usize,
) -> anyhow::Result<Loaded> {
    let authority = url
        .strip_prefix("http://")
        .map(|r| r.trim_end_matches('/'))
        .context("the URL must be http://ADDR/")?;
    let addr: SocketAddr = authority
        .parse()
        .with_context(|| format!("{authority}: not an IP address and port"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let send = |method: hyper::Method, path: String, body: Vec<u8>, ndjson: bool| {
        runtime.block_on(request(addr, authority, method, path, body, ndjson))
    };

    let mappings: serde_json::Value = serde_json::from_slice(
        &std::fs::read(mappings).with_context(|| format!("cannot read {}", mappings.display()))?,
    )?;
    let create = serde_json::json!({ "mappings": mappings });
    let (status, answer) = send(
        hyper::Method::PUT,
        format!("/{index}"),
        serde_json::to_vec(&create)?,
        false,
    )?;
    ensure!(
        status.is_success(),
        "PUT /{index}: HTTP {status}: {}",
        String::from_utf8_lossy(&answer)
    );

    let mut reader = csv::ReaderBuilder::new().from_path(csv)?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no column {name}", csv.display()))
    };
    let cols: Vec<usize> = KEPT_COLUMNS
        .iter()
        .map(|c| column(c))
        .collect::<anyhow::Result<_>>()?;
    let index_key = {
        let mut k = b"\"_index\":".to_vec();
        serde_json::to_writer(&mut k, index)?;
        k
    };
    let path = "/_bulk".to_owned();
    let mut body: Vec<u8> = Vec::with_capacity(bulk * 400);
    let mut in_body = 0usize;
    let (mut documents, mut requests) = (0u64, 0u64);
    let mut masked = String::new();
    let mut flush = |body: &mut Vec<u8>, in_body: &mut usize| -> anyhow::Result<()> {
        let (status, answer) = send(
            hyper::Method::POST,
            path.clone(),
            std::mem::take(body),
            true,
        )?;
        requests += 1;
        ensure!(
            status.is_success(),
            "POST /_bulk: HTTP {status}: {}",
            String::from_utf8_lossy(&answer[..answer.len().min(300)])
        );
        #[derive(serde::Deserialize)]
        struct Summary {
            errors: bool,
        }
        let summary: Summary = serde_json::from_slice(&answer)?;
        if summary.errors {
            bail!(
                "POST /_bulk: some actions failed: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(600)])
            );
        }
        *in_body = 0;
        Ok(())
    };
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        let field = |i: usize| record.get(cols[i]).unwrap_or_default();
        if field(7) == DROPPED_CATEGORY {
            continue;
        }
        let id: i64 = field(0)
            .parse()
            .with_context(|| format!("id {:?} is not an integer", field(0)))?;
        let real = |s: &str| -> anyhow::Result<Option<f64>> {
            if s.is_empty() {
                Ok(None)
            } else {
                Ok(Some(s.parse()?))
            }
        };
        let account = field(1);
        let count = account.chars().count();
        // select-transform's keep_last: a value no longer than N is hidden whole.
        let hidden = if count <= ACCOUNT_KEEP_LAST {
            count
        } else {
            count - ACCOUNT_KEEP_LAST
        };
        masked.clear();
        masked.extend(std::iter::repeat_n('*', hidden));
        masked.extend(account.chars().skip(hidden));
        body.extend_from_slice(b"{\"index\":{");
        body.extend_from_slice(&index_key);
        body.extend_from_slice(
            format!(",\"_id\":\"{id}\",\"version\":{id},\"version_type\":\"external\"}}}}\n")
                .as_bytes(),
        );
        serde_json::to_writer(
            &mut body,
            &Document {
                id,
                account: &masked,
                booking_date: field(2),
                amount: real(field(3))?,
                currency: field(4),
                counterparty: field(5),
                memo: field(6),
                category: field(7),
                balance: real(field(8))?,
            },
        )?;
        body.push(b'\n');
        in_body += 1;
        documents += 1;
        if in_body >= bulk {
            flush(&mut body, &mut in_body)?;
        }
    }
    if in_body > 0 {
        flush(&mut body, &mut in_body)?;
    }
    Ok(Loaded {
        documents,
        requests,
    })
}

/// `METHOD path` with `body` on a new connection: the status and the whole answer.
async fn request(
    addr: SocketAddr,
    authority: &str,
    method: hyper::Method,
    path: String,
    body: Vec<u8>,
    ndjson: bool,
) -> anyhow::Result<(hyper::StatusCode, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let content_type = if ndjson {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let answer = response.into_body().collect().await?.to_bytes();
    drop(sender);
    let _ = driver.await;
    Ok((status, answer))
}
