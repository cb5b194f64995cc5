//! The fixture's data, its listing rules and its fault switches, apart from HTTP.
//!
//! Deterministic: records are generated from their ids, and every change takes its
//! `updated_at` from a logical clock that advances one second per change (unless the change
//! sets `updated_at` itself, as a late-committed row would).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The first timestamp of a generated data set: 2026-01-01T00:00:00Z.
pub const EPOCH: i64 = 1_767_225_600;

/// The largest page a request may ask for.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The page size when a request names none.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Unix seconds as RFC 3339 in UTC.
pub fn rfc3339(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// RFC 3339 (any offset) as Unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
        .or_else(|| s.parse().ok())
}

/// Scripted faults. Every field has an off default; `POST /admin/faults` changes only the
/// fields it names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Every Nth API request (1-based count) answers 429.
    pub rate_limit_every: Option<u64>,
    /// The next K API requests answer 429.
    pub rate_limit_next: u64,
    /// The `Retry-After` of those 429s, in seconds.
    pub retry_after: u64,
    /// The next K API requests answer 500 (a flaky server).
    pub fail_next: u64,
    /// Delay, in milliseconds, of slow pages.
    pub slow_ms: u64,
    /// Only this page number (or offset / cursor position divided by the page size, plus one)
    /// is slow; every page when unset.
    pub slow_page: Option<u64>,
    /// API requests answer `302 Location: <this>` (a redirect to another host).
    pub redirect_to: Option<String>,
    /// The cursor and next-URL styles hand out the second page's cursor forever.
    pub stuck_cursor: bool,
}

/// One API request as the log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logged {
    /// 1-based count of API requests.
    pub n: u64,
    /// Path and query as received.
    pub uri: String,
    /// The status answered.
    pub status: u16,
    /// Records in the answer.
    pub records: usize,
}

/// Pagination styles, by path prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `/api/employees`: `page`/`per_page`, `offset`/`limit`, or keyset (`updated_since` +
    /// `after`); no parameter at all is the first page.
    Plain,
    /// `/api/cursor/employees`: `meta.next_cursor` in the body, sent back as `cursor`.
    Cursor,
    /// `/api/next/employees`: `links.next` in the body, a relative URL.
    Next,
    /// `/api/link/employees`: an RFC 8288 `Link` header with absolute URLs.
    Link,
}

/// What a listing request asks.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// All parameters, decoded.
    pub params: BTreeMap<String, String>,
}

impl Query {
    fn get(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The records.
    pub records: Vec<Value>,
    /// Position of the first record in the filtered list.
    pub start: usize,
    /// The page size used.
    pub size: usize,
    /// Whether records follow.
    pub more: bool,
    /// How many match the filter.
    pub total: usize,
}

/// The whole server state.
#[derive(Debug)]
pub struct State {
    /// The bearer token API requests must carry.
    pub token: String,
    /// Employees by id, tombstones included.
    pub employees: BTreeMap<i64, Value>,
    /// Org units by id.
    pub org_units: BTreeMap<i64, Value>,
    /// The logical clock (Unix seconds of the next change).
    pub clock: i64,
    /// Fault switches.
    pub faults: Faults,
    /// API requests so far.
    pub count: u64,
    /// The request log.
    pub log: Vec<Logged>,
    /// Employees in (updated_at, id) order, rebuilt after a change.
    order: Option<Vec<Entry>>,
}

/// One employee in the listing index.
#[derive(Debug, Clone, Copy)]
struct Entry {
    at: i64,
    id: i64,
    deleted: bool,
    unit: Option<i64>,
}

const FIRST: [&str; 8] = [
    "Ada", "Bo", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana",
];
const LAST: [&str; 8] = [
    "Lovelace", "Berg", "Wei", "Okafor", "Novak", "Haddad", "Ilić", "Sato",
];
const TITLES: [&str; 4] = ["Engineer", "Analyst", "Manager", "Designer"];

/// Employee `id` of a generated data set with `units` org units.
pub fn generated_employee(id: i64, units: i64) -> Value {
    let i = usize::try_from(id).unwrap_or(0);
    let manager = (id > 1).then(|| {
        let m = id / 10 + 1;
        json!({"id": m, "name": format!("{} {}", FIRST[(m as usize) % 8], LAST[(m as usize / 8) % 8])})
    });
    json!({
        "id": id,
        "name": format!("{} {}", FIRST[i % 8], LAST[(i / 8) % 8]),
        "email": format!("e{id}@hr.example.com"),
        "title": TITLES[i % 4],
        "salary": format!("{}.{:02}", 40_000 + (id * 37) % 60_000, id % 100),
        "hired": format!("20{:02}-{:02}-{:02}", 10 + id % 15, 1 + id % 12, 1 + id % 28),
        "org_unit": 1 + id % units.max(1),
        "manager": manager,
        "tags": if id % 5 == 0 { json!(["remote"]) } else { json!([]) },
        "updated_at": rfc3339(EPOCH + id),
        "deleted": false,
        "deleted_at": null,
    })
}

impl State {
    /// A server holding `employees` generated employees in `org_units` units.
    pub fn new(token: &str, employees: i64, org_units: i64) -> Self {
        let mut s = State {
            token: token.to_owned(),
            employees: BTreeMap::new(),
            org_units: BTreeMap::new(),
            clock: EPOCH,
            faults: Faults::default(),
            count: 0,
            log: Vec::new(),
            order: None,
        };
        s.generate(employees, org_units);
        s
    }

    /// Replace the data with `employees` generated employees in `org_units` units.
    pub fn generate(&mut self, employees: i64, org_units: i64) {
        let units = org_units.max(1);
        self.employees = (1..=employees)
            .map(|id| (id, generated_employee(id, units)))
            .collect();
        self.org_units = (1..=units)
            .map(|id| {
                (
                    id,
                    json!({"id": id, "name": format!("Unit {id}"),
                    "parent": if id > 1 { json!(1) } else { Value::Null },
                    "updated_at": rfc3339(EPOCH)}),
                )
            })
            .collect();
        self.clock = EPOCH + employees + 1;
        self.order = None;
        // Built now, not inside the first request's timing.
        self.ensure_order();
    }

    fn tick(&mut self, explicit: Option<&Value>) -> Result<String, String> {
        self.order = None;
        match explicit {
            Some(Value::String(s)) => {
                parse_time(s).ok_or_else(|| format!("updated_at {s:?} is not RFC 3339"))?;
                Ok(s.clone())
            }
            Some(other) => Err(format!("updated_at must be a string, not {other}")),
            None => {
                let at = rfc3339(self.clock);
                self.clock += 1;
                Ok(at)
            }
        }
    }

    /// Add an employee (`id` defaults to the next free one).
    pub fn add(&mut self, mut record: Value) -> Result<Value, String> {
        let Value::Object(map) = &mut record else {
            return Err("an employee is a JSON object".into());
        };
        let id = match map.get("id") {
            Some(v) => v.as_i64().ok_or("id must be an integer")?,
            None => self.employees.keys().next_back().map_or(1, |k| k + 1),
        };
        if self.employees.contains_key(&id) {
            return Err(format!("employee {id} exists"));
        }
        let mut full = generated_employee(id, i64::try_from(self.org_units.len()).unwrap_or(1));
        let explicit = map.remove("updated_at");
        for (k, v) in std::mem::take(map) {
            full[k] = v;
        }
        full["id"] = json!(id);
        full["updated_at"] = json!(self.tick(explicit.as_ref())?);
        self.employees.insert(id, full.clone());
        Ok(full)
    }

    /// Change fields of employee `id` (a JSON merge of top-level keys).
    pub fn change(&mut self, id: i64, patch: Value) -> Result<Value, String> {
        let Value::Object(mut map) = patch else {
            return Err("a change is a JSON object".into());
        };
        if !self.employees.contains_key(&id) {
            return Err(format!("no employee {id}"));
        }
        let explicit = map.remove("updated_at");
        let at = self.tick(explicit.as_ref())?;
        let e = self.employees.get_mut(&id).expect("checked above");
        for (k, v) in map {
            e[k] = v;
        }
        e["id"] = json!(id);
        e["updated_at"] = json!(at);
        Ok(e.clone())
    }

    /// Delete employee `id`: a tombstone (`deleted = true`, `deleted_at` = its `updated_at`)
    /// that incremental listings return and full listings leave out.
    pub fn delete(&mut self, id: i64) -> Result<Value, String> {
        if !self.employees.contains_key(&id) {
            return Err(format!("no employee {id}"));
        }
        let at = self.tick(None)?;
        let e = self.employees.get_mut(&id).expect("checked above");
        e["deleted"] = json!(true);
        e["deleted_at"] = json!(at);
        e["updated_at"] = json!(at);
        Ok(e.clone())
    }

    /// Build the (updated_at, id) index after a change: one entry per employee with what the
    /// filters need, so a listing touches only its page's records (200,000 employees serve a
    /// page in about a millisecond).
    fn ensure_order(&mut self) {
        if self.order.is_none() {
            let mut order: Vec<Entry> = self
                .employees
                .iter()
                .map(|(id, e)| Entry {
                    at: e["updated_at"].as_str().and_then(parse_time).unwrap_or(0),
                    id: *id,
                    deleted: e["deleted"].as_bool() == Some(true),
                    unit: e["org_unit"].as_i64(),
                })
                .collect();
            order.sort_unstable_by_key(|e| (e.at, e.id));
            self.order = Some(order);
        }
    }

    /// A page of `resource` (`employees` or `org-units`) in (updated_at, id) order:
    /// `updated_since` (inclusive) returns tombstones too, a full listing leaves them out;
    /// with `after`, records after (updated_since, after) (keyset); `org_unit` filters.
    pub fn list(&mut self, resource: &str, q: &Query, style: Style) -> Result<Listing, String> {
        let since = match q.get("updated_since") {
            Some(s) => {
                Some(parse_time(s).ok_or_else(|| format!("updated_since {s:?} is not RFC 3339"))?)
            }
            None => None,
        };
        let after: Option<i64> = match q.get("after") {
            Some(a) => Some(a.parse().map_err(|_| format!("after {a:?} is not an id"))?),
            None => None,
        };
        if after.is_some() && since.is_none() {
            return Err("after needs updated_since".into());
        }
        let unit: Option<i64> = match q.get("org_unit") {
            Some(u) => Some(
                u.parse()
                    .map_err(|_| format!("org_unit {u:?} is not an id"))?,
            ),
            None => None,
        };
        let size = match q.get("per_page").or(q.get("limit")) {
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| format!("page size {s:?}: 1 to {MAX_PAGE_SIZE}"))?,
            None => DEFAULT_PAGE_SIZE,
        };
        let start = match (q.get("page"), q.get("offset"), q.get("cursor")) {
            (Some(p), _, _) => {
                let p: usize = p
                    .parse()
                    .ok()
                    .filter(|p| *p >= 1)
                    .ok_or("page starts at 1")?;
                (p - 1) * size
            }
            (_, Some(o), _) => o.parse().map_err(|_| "offset is a number")?,
            (_, _, Some(c)) if style != Style::Plain => decode_cursor(c)?,
            _ => 0,
        };
        let (records, total) = match resource {
            "employees" => {
                self.ensure_order();
                let order = self.order.as_deref().unwrap_or_default();
                // Sorted by (at, id): the lower bound is a binary search.
                let first = match (since, after) {
                    (Some(s), Some(a)) => order.partition_point(|e| (e.at, e.id) <= (s, a)),
                    (Some(s), None) => order.partition_point(|e| e.at < s),
                    _ => 0,
                };
                let rest = &order[first..];
                let fetch = |e: &Entry| self.employees.get(&e.id).cloned();
                if unit.is_none() && (since.is_some() || !rest.iter().any(|e| e.deleted)) {
                    // Nothing filtered out: the page is a slice (the benchmark's case).
                    let page = rest.iter().skip(start).take(size);
                    (page.filter_map(fetch).collect::<Vec<_>>(), rest.len())
                } else {
                    let keep = |e: &&Entry| {
                        (since.is_some() || !e.deleted) && unit.is_none_or(|u| e.unit == Some(u))
                    };
                    let matching = rest.iter().filter(keep);
                    let total = matching.clone().count();
                    let page = matching.skip(start).take(size);
                    (page.filter_map(fetch).collect(), total)
                }
            }
            "org-units" => {
                let all: Vec<Value> = self.org_units.values().cloned().collect();
                let total = all.len();
                (all.into_iter().skip(start).take(size).collect(), total)
            }
            other => return Err(format!("no resource {other:?}")),
        };
        Ok(Listing {
            more: start + records.len() < total,
            records,
            start,
            size,
            total,
        })
    }
}

/// Cursors are opaque to clients: `c` plus the position, base-36.
pub fn encode_cursor(position: usize) -> String {
    let mut n = position;
    let mut digits = Vec::new();
    loop {
        digits.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    format!("c{}", digits.iter().rev().collect::<String>())
}

fn decode_cursor(c: &str) -> Result<usize, String> {
    c.strip_prefix('c')
        .and_then(|d| usize::from_str_radix(d, 36).ok())
        .ok_or_else(|| format!("cursor {c:?} is not one this server gave"))
}
