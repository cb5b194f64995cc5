//! Requests and pages: where a pass's next request goes ([`Position`]), fetching it through a
//! [`Source`], and where the one after goes, for every pagination kind.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_sdk::Error;
use weir_sdk::http::{Response, status_error};

use crate::config::{OnRepeat, Paginate, SinceFormat};
use crate::mapping::describe;
use crate::time::Instant;
use crate::url::{link_next, resolve, with_params};

/// Where HTTP requests go: the host (`weir_sdk::http`) in a component, a fake in tests.
pub trait Source {
    /// `GET url`, any status; `Err` only when no response came (transport, refusal).
    fn get(&mut self, url: &str) -> Result<Response, Error>;

    /// `url` is the next `get` unless the pass stops first: a source may send it now, so the
    /// server works on it while the reader converts the page it has. Nothing by default.
    fn prefetch(&mut self, _url: &str) {}

    /// The current time (the deleted-at of a tombstone seen now).
    fn now(&self) -> Instant;
}

/// Redirects followed per request; the host checks every target against the grant.
const MAX_REDIRECTS: usize = 5;

/// The next request of a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum Position {
    /// The pass's first request.
    Start,
    /// Page number `n`.
    Page {
        /// The page.
        n: u64,
    },
    /// Offset `n`.
    Offset {
        /// The offset.
        n: u64,
    },
    /// The cursor a page returned.
    Cursor {
        /// The token.
        token: String,
    },
    /// The URL a page named (body or `Link`).
    Url {
        /// The URL.
        url: String,
    },
    /// After the last record's watermark and key.
    Keyset {
        /// The watermark, as the query writes it.
        since: String,
        /// The key.
        after: String,
    },
    /// The pass is over.
    End,
}

/// Keyset paging: the watermark and key of the last record become the next request's bound.
#[derive(Debug, Clone)]
pub struct Keyset {
    /// Pointer to the watermark.
    pub field: String,
    /// Pointer to the key.
    pub key: String,
    /// The watermark's parameter.
    pub since_param: String,
    /// The key's parameter.
    pub after_param: String,
    /// How the watermark is written.
    pub format: SinceFormat,
}

/// The requests of one partition.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `http://<connection>/<path>`.
    pub base_url: String,
    /// Parameters of every request.
    pub params: Vec<(String, String)>,
    /// Pointer to the records.
    pub records: String,
    /// Pagination.
    pub paginate: Paginate,
    /// Keyset details, with `Paginate::Keyset`.
    pub keyset: Option<Keyset>,
    /// What a repeat does.
    pub on_repeat: OnRepeat,
}

/// A fetched page.
#[derive(Debug)]
pub struct Page {
    /// The URL asked (before redirects).
    pub url: String,
    /// Its records.
    pub records: Vec<Value>,
    /// The request after it.
    pub next: Position,
}

/// A fetch's outcome.
#[derive(Debug)]
pub enum Fetched {
    /// A new page.
    Page(Page),
    /// The request or its page repeated one of this pass: why, for the message.
    Repeat(String),
}

/// Fetches the pages of one pass, remembering what it saw so a server that hands out the same
/// page forever is caught: a request URL asked before (a cursor or next URL that cycles), or a
/// non-empty page identical to the one before it (a page parameter the server ignores). Only
/// hashes are kept, 8 bytes a page.
#[derive(Debug, Default)]
pub struct Pager {
    asked: HashSet<u64>,
    last_body: Option<u64>,
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl Plan {
    /// The URL of the request at `pos`, with `since` (parameter, value) as the pass's lower
    /// bound; `None` at the end.
    pub fn url(&self, pos: &Position, since: Option<(&str, &str)>) -> Option<String> {
        let mut params = self.params.clone();
        let mut add = |k: &str, v: String| params.push((k.to_owned(), v));
        match pos {
            Position::End => return None,
            Position::Url { url } => return Some(url.clone()),
            Position::Keyset { since: s, after } => {
                let ks = self.keyset.as_ref()?;
                add(&ks.since_param, s.clone());
                add(&ks.after_param, after.clone());
            }
            _ => {
                if let Some((k, v)) = since {
                    add(k, v.to_owned());
                }
            }
        }
        match (&self.paginate, pos) {
            (
                Paginate::PageNumber {
                    page_param,
                    size_param,
                    size,
                    start,
                },
                _,
            ) => {
                let n = match pos {
                    Position::Page { n } => *n,
                    _ => *start,
                };
                add(page_param, n.to_string());
                if let (Some(p), Some(s)) = (size_param, size) {
                    add(p, s.to_string());
                }
            }
            (
                Paginate::Offset {
                    offset_param,
                    limit_param,
                    limit,
                    start,
                },
                _,
            ) => {
                let n = match pos {
                    Position::Offset { n } => *n,
                    _ => *start,
                };
                add(offset_param, n.to_string());
                add(limit_param, limit.to_string());
            }
            (Paginate::Cursor { param, .. }, Position::Cursor { token }) => {
                add(param, token.clone());
            }
            _ => {}
        }
        Some(with_params(&self.base_url, &params))
    }

    /// Fetch the page at `pos`. Statuses other than 2xx, bodies that are not JSON and bodies
    /// without records are errors naming the URL and the status.
    pub fn fetch(
        &self,
        src: &mut dyn Source,
        pager: &mut Pager,
        pos: &Position,
        since: Option<(&str, &str)>,
    ) -> Result<Fetched, Error> {
        let Some(url) = self.url(pos, since) else {
            return Ok(Fetched::Page(Page {
                url: String::new(),
                records: Vec::new(),
                next: Position::End,
            }));
        };
        if !pager.asked.insert(hash(url.as_bytes())) {
            return Ok(Fetched::Repeat(format!(
                "{url} was already fetched in this pass (a cursor or next link that cycles)"
            )));
        }
        let (final_url, response) = get_following(src, &url)?;
        let body_hash = hash(&response.body);
        let mut body: Value = serde_json::from_slice(&response.body).map_err(|e| {
            Error::BadData(format!(
                "{final_url}: HTTP {}: the body is not JSON ({e}): {}",
                response.status,
                String::from_utf8_lossy(&response.body[..response.body.len().min(120)])
            ))
        })?;
        let records = match body.pointer_mut(&self.records).map(Value::take) {
            Some(Value::Array(records)) => records,
            Some(Value::Null) => Vec::new(),
            Some(other) => {
                return Err(Error::BadData(format!(
                    "{final_url}: HTTP {}: the records at {:?} are {}, not an array",
                    response.status,
                    self.records,
                    describe(&other)
                )));
            }
            None => {
                let keys = match &body {
                    Value::Object(m) => {
                        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
                        format!("the body has keys {}", keys.join(", "))
                    }
                    other => format!("the body is {}", describe(other)),
                };
                return Err(Error::BadData(format!(
                    "{final_url}: HTTP {}: no records at {:?} ({keys}); check `records`",
                    response.status, self.records
                )));
            }
        };
        if !records.is_empty() && pager.last_body == Some(body_hash) {
            return Ok(Fetched::Repeat(format!(
                "{url} returned the same page as the request before it \
                 (the server ignores the pagination parameter?)"
            )));
        }
        pager.last_body = Some(body_hash);
        let next = if records.is_empty() {
            Position::End
        } else {
            self.next(pos, &final_url, &response, &body, &records)?
        };
        Ok(Fetched::Page(Page { url, records, next }))
    }

    /// Hint `src` with the request that will follow the page at `next`, when it is known now
    /// and is not one the pass asked already (that one is a repeat, never sent again).
    pub fn prefetch(
        &self,
        src: &mut dyn Source,
        pager: &Pager,
        next: &Position,
        since: Option<(&str, &str)>,
    ) {
        if *next == Position::End {
            return;
        }
        if let Some(url) = self.url(next, since)
            && !pager.asked.contains(&hash(url.as_bytes()))
        {
            src.prefetch(&url);
        }
    }

    fn next(
        &self,
        pos: &Position,
        url: &str,
        response: &Response,
        body: &Value,
        records: &[Value],
    ) -> Result<Position, Error> {
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        Ok(match &self.paginate {
            Paginate::None => Position::End,
            Paginate::PageNumber { start, .. } => Position::Page {
                n: match pos {
                    Position::Page { n } => n + 1,
                    _ => start + 1,
                },
            },
            Paginate::Offset { start, .. } => Position::Offset {
                n: match pos {
                    Position::Offset { n } => *n,
                    _ => *start,
                } + records.len() as u64,
            },
            Paginate::Cursor { cursor, .. } => match text(body.pointer(cursor)) {
                Some(token) => Position::Cursor { token },
                None => Position::End,
            },
            Paginate::NextUrl { next } => match text(body.pointer(next)) {
                Some(target) => Position::Url {
                    url: resolve(url, &target),
                },
                None => Position::End,
            },
            Paginate::LinkHeader => match link_next(response.header_values("link")) {
                Some(target) => Position::Url {
                    url: resolve(url, &target),
                },
                None => Position::End,
            },
            Paginate::Keyset { .. } => {
                let Some(ks) = &self.keyset else {
                    return Ok(Position::End);
                };
                let last = records.last().unwrap_or(&Value::Null);
                let since = watermark(last.pointer(&ks.field))
                    .map(|i| format_since(i, ks.format))
                    .ok_or_else(|| {
                        Error::BadData(format!(
                            "{url}: keyset paging: the last record has no timestamp at {}",
                            ks.field
                        ))
                    })?;
                let after = key_text(last.pointer(&ks.key)).ok_or_else(|| {
                    Error::BadData(format!(
                        "{url}: keyset paging: the last record has no key at {}",
                        ks.key
                    ))
                })?;
                Position::Keyset { since, after }
            }
        })
    }
}

impl Pager {
    /// A pager that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }
}

/// GET `url`, following redirects (each target resolved against the URL that redirected, and
/// checked against the grant by the host), then checking the status.
fn get_following(src: &mut dyn Source, url: &str) -> Result<(String, Response), Error> {
    let mut current = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let response = src.get(&current)?;
        let location = response.header("location");
        match (response.status, location) {
            (301 | 302 | 303 | 307 | 308, Some(location)) => {
                current = resolve(&current, location);
            }
            _ => {
                if let Some(e) = status_error(&current, &response) {
                    return Err(e);
                }
                return Ok((current, response));
            }
        }
    }
    Err(Error::BadData(format!(
        "{url}: more than {MAX_REDIRECTS} redirects (last to {current})"
    )))
}

/// A watermark value: an RFC 3339 timestamp or integer Unix seconds.
pub fn watermark(value: Option<&Value>) -> Option<Instant> {
    match value? {
        Value::String(s) => Instant::parse(s),
        Value::Number(n) => n.as_i64().map(|secs| Instant { secs, nanos: 0 }),
        _ => None,
    }
}

/// A key value as text: strings as they are, numbers in JSON spelling.
pub fn key_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A lower bound as the query writes it.
pub fn format_since(at: Instant, format: SinceFormat) -> String {
    match format {
        SinceFormat::Rfc3339 => at.to_rfc3339(),
        SinceFormat::Unix => at.secs.to_string(),
    }
}
