//! A blocking client for the OpenSearch API, enough for tests to set up indexes and read back
//! every document with its version.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::server::TIMEOUT;

/// A client of one server (or of a proxy in front of it).
#[derive(Debug, Clone)]
pub struct Client {
    addr: SocketAddr,
}

/// A document as the index holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    /// Its external version.
    pub version: i64,
    pub source: serde_json::Map<String, Value>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr }
    }

    /// `METHOD path` with a JSON (or NDJSON) body; returns the status and the body as JSON
    /// (`null` when empty or not JSON).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut stream = TcpStream::connect(self.addr)
            .with_context(|| format!("failed to connect to {}", self.addr))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        let body = body.unwrap_or_default();
        let content_type = if path.contains("_bulk") {
            "application/x-ndjson"
        } else {
            "application/json"
        };
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let (status, body) = parse_response(&raw)?;
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok((status, json))
    }

    /// `request`, failing unless the status is 2xx.
    pub fn ok(&self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<Value> {
        let (status, answer) = self.request(method, path, body)?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: HTTP {status}: {answer}");
        }
        Ok(answer)
    }

    /// Make every write visible to searches.
    pub fn refresh(&self, index: &str) -> anyhow::Result<()> {
        self.ok("POST", &format!("/{index}/_refresh"), None)
            .map(drop)
    }

    /// Every document of `index` with its version, by `_id` (refreshed first), paged with
    /// `search_after` so any number comes back.
    pub fn documents(&self, index: &str) -> anyhow::Result<Vec<Document>> {
        self.refresh(index)?;
        let mut out = Vec::new();
        let mut after: Option<Value> = None;
        loop {
            let mut query = json!({"size": 5000, "version": true, "sort": [{"_id": "asc"}], "query": {"match_all": {}}});
            if let Some(after) = &after {
                query["search_after"] = after.clone();
            }
            let answer = self.ok(
                "POST",
                &format!("/{index}/_search"),
                Some(&query.to_string()),
            )?;
            let hits = answer["hits"]["hits"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if hits.is_empty() {
                return Ok(out);
            }
            for hit in &hits {
                out.push(Document {
                    id: hit["_id"].as_str().unwrap_or_default().to_owned(),
                    version: hit["_version"].as_i64().unwrap_or(-1),
                    source: hit["_source"].as_object().cloned().unwrap_or_default(),
                });
            }
            after = hits.last().map(|h| h["sort"].clone());
        }
    }

    /// The documents a query (the body of `_search`) finds, as `_source`s.
    pub fn search(&self, index: &str, query: Value) -> anyhow::Result<Vec<Value>> {
        self.refresh(index)?;
        let answer = self.ok(
            "POST",
            &format!("/{index}/_search"),
            Some(&query.to_string()),
        )?;
        Ok(answer["hits"]["hits"]
            .as_array()
            .map(|hits| hits.iter().map(|h| h["_source"].clone()).collect())
            .unwrap_or_default())
    }
}

/// Status and body of a whole HTTP/1.1 response (`Content-Length` or chunked).
fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers in the response")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    let mut body = raw[split + 4..].to_vec();
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .context("a chunk size without its line end")?;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..end])?.trim(), 16)?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 4 + size..];
        }
        body = out;
    }
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_with_a_length_or_in_chunks() {
        let (status, body) =
            parse_response(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!((status, body.as_slice()), (201, &b"{}"[..]));
        let (status, body) = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"{\"a\":1}"[..]));
    }
}
