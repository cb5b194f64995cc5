//! An in-memory HR API behind the [`Source`] trait, for the reader's tests: employees and
//! org units, `updated_since` (inclusive) and keyset `after`, and one pagination style per
//! path prefix: `/employees` (page/per_page, offset/limit, or keyset), `/cursor/…` (a body
//! cursor), `/next/…` (a relative next URL in the body), `/link/…` (an absolute `Link`).

use std::collections::VecDeque;

use serde_json::{Value, json};
use weir_sdk::Error;
use weir_sdk::http::Response;

use crate::page::Source;
use crate::time::Instant;

pub struct FakeApi {
    pub employees: Vec<Value>,
    pub org_units: Vec<Value>,
    pub page_size: usize,
    /// Every URL asked, in order.
    pub log: Vec<String>,
    /// Every URL the reader hinted it will ask next ([`Source::prefetch`]).
    pub hints: Vec<String>,
    /// Responses handed out before the API answers, one per request.
    pub queued: VecDeque<Result<Response, Error>>,
    /// The cursor style returns the same cursor forever.
    pub stuck_cursor: bool,
    /// The page style ignores `page`.
    pub ignore_page: bool,
    pub now: Instant,
}

pub fn employee(id: i64, updated_at: &str, org_unit: i64) -> Value {
    json!({
        "id": id,
        "name": format!("Employee {id}"),
        "salary": format!("{}.50", 3000 + id),
        "hired": "2020-01-15",
        "updated_at": updated_at,
        "org_unit": org_unit,
        "manager": {"id": 1, "name": "Boss"},
        "deleted": false,
    })
}

impl FakeApi {
    /// `n` employees (ids 1..=n) updated one minute apart from 2026-01-01T00:00Z, spread over
    /// three org units, pages of `page_size`.
    pub fn new(n: i64, page_size: usize) -> Self {
        let base = Instant::parse("2026-01-01T00:00:00Z").unwrap();
        let employees = (1..=n)
            .map(|id| {
                let at = Instant {
                    secs: base.secs + id * 60,
                    nanos: 0,
                };
                employee(id, &at.to_rfc3339(), 10 + id % 3)
            })
            .collect();
        FakeApi {
            employees,
            org_units: (10..13)
                .map(|id| json!({"id": id, "name": format!("Unit {id}")}))
                .collect(),
            page_size,
            log: Vec::new(),
            hints: Vec::new(),
            queued: VecDeque::new(),
            stuck_cursor: false,
            ignore_page: false,
            now: Instant::parse("2026-06-01T00:00:00Z").unwrap(),
        }
    }

    /// Change employee `id` (or add it) at `at`.
    pub fn upsert(&mut self, id: i64, at: &str, change: impl FnOnce(&mut Value)) {
        let pos = self.employees.iter().position(|e| e["id"] == id);
        let mut e = match pos {
            Some(p) => self.employees.remove(p),
            None => employee(id, at, 10),
        };
        e["updated_at"] = json!(at);
        change(&mut e);
        self.employees.push(e);
    }

    fn answer(&self, url: &str) -> Response {
        let rest = url
            .strip_prefix("http://hr/")
            .expect("requests go to the connection");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let params: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let (style, resource) = match path.split_once('/') {
            Some((style, resource)) => (style, resource),
            None => ("plain", path),
        };
        let mut all: Vec<Value> = match resource {
            "employees" => self.employees.clone(),
            "org-units" => self.org_units.clone(),
            "broken" => return Response::new(200, "<html>oops</html>"),
            _ => return Response::new(404, "no such resource"),
        };
        if let Some(unit) = param("org_unit") {
            all.retain(|e| e["org_unit"].as_i64().map(|u| u.to_string()).as_deref() == Some(unit));
        }
        let at = |e: &Value| Instant::parse(e["updated_at"].as_str().unwrap_or(""));
        all.sort_by_key(|e| (at(e), e["id"].as_i64()));
        if let Some(since) = param("updated_since") {
            let since = Instant::parse(since).expect("since is RFC 3339");
            match param("after") {
                Some(after) => {
                    let after: i64 = after.parse().unwrap();
                    all.retain(|e| (at(e), e["id"].as_i64().unwrap()) > (Some(since), after));
                }
                None => all.retain(|e| at(e) >= Some(since)),
            }
        }
        let size = param("per_page")
            .or(param("limit"))
            .map_or(self.page_size, |s| s.parse().unwrap());
        let start = match (param("page"), param("offset"), param("cursor")) {
            (Some(_), _, _) if self.ignore_page => 0,
            (Some(p), _, _) => (p.parse::<usize>().unwrap() - 1) * size,
            (_, Some(o), _) => o.parse().unwrap(),
            (_, _, Some(c)) => c.trim_start_matches('c').parse().unwrap(),
            _ => 0,
        };
        let page: Vec<Value> = all.iter().skip(start).take(size).cloned().collect();
        let more = start + page.len() < all.len();
        // A stuck cursor always names the second page.
        let next_start = if self.stuck_cursor {
            size
        } else {
            start + page.len()
        };
        let without = |drop: &str| -> String {
            params
                .iter()
                .filter(|(k, _)| k != drop)
                .map(|(k, v)| format!("{k}={}", crate::url::encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        };
        match style {
            "cursor" => Response::new(
                200,
                json!({"data": page, "meta": {"next_cursor": more.then(|| format!("c{next_start}"))}})
                    .to_string(),
            ),
            "next" => {
                let rest = without("cursor");
                let sep = if rest.is_empty() { "" } else { "&" };
                let next = more.then(|| format!("/next/{resource}?{rest}{sep}cursor=c{next_start}"));
                Response::new(200, json!({"data": page, "links": {"next": next}}).to_string())
            }
            "link" => {
                let n = start / size + 1;
                let mut r = Response::new(200, json!({"data": page}).to_string());
                let rest = without("page");
                let sep = if rest.is_empty() { "" } else { "&" };
                r = r.with_header(
                    "Link",
                    &format!("<http://hr/link/{resource}?{rest}{sep}page=1>; rel=\"first\""),
                );
                if more {
                    r = r.with_header(
                        "Link",
                        &format!("<http://hr/link/{resource}?{rest}{sep}page={}>; rel=\"next\"", n + 1),
                    );
                }
                r
            }
            _ => Response::new(200, json!({"data": page}).to_string()),
        }
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

impl Source for FakeApi {
    fn get(&mut self, url: &str) -> Result<Response, Error> {
        self.log.push(url.to_owned());
        if let Some(r) = self.queued.pop_front() {
            return r;
        }
        Ok(self.answer(url))
    }

    fn prefetch(&mut self, url: &str) {
        self.hints.push(url.to_owned());
    }

    fn now(&self) -> Instant {
        self.now
    }
}

/// So a test can keep the API after a reader is done with it.
impl Source for &mut FakeApi {
    fn get(&mut self, url: &str) -> Result<Response, Error> {
        (**self).get(url)
    }

    fn prefetch(&mut self, url: &str) {
        (**self).prefetch(url)
    }

    fn now(&self) -> Instant {
        (**self).now()
    }
}
