//! The patient-portal pipeline the fan-out tests share: a practice-management CSV (with a
//! tombstone column) → map-transform (types) → select-transform (allow-list, consent and status
//! filters, masks) → sqlite-load (upsert, FTS5, tombstones) and opensearch-load (a real
//! osmem-server), and what both destinations must hold afterwards, worked out from the source.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::support::*;

/// The pseudonyms' salt, given to weir as `$PORTAL_SALT`; it must never show anywhere.
pub const SALT: &str = "portal-test-salt-7f3a9c2e41d0";

/// The columns that may leave, in order.
pub const ALLOWED: [&str; 10] = [
    "id",
    "first_name",
    "last_name",
    "status",
    "phone",
    "email",
    "room",
    "visit_date",
    "updated_at",
    "deleted_at",
];

/// One record of the practice-management export.
#[derive(Debug, Clone)]
pub struct Patient {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    /// Must never leave.
    pub national_id: String,
    pub consent: Option<bool>,
    pub status: &'static str,
    pub phone: String,
    pub email: String,
    /// Free text that must never leave.
    pub diagnosis: String,
    pub room: String,
    pub visit_date: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
}

/// A line of the export after its header: a record, or one csv-extract rejects.
#[derive(Debug, Clone)]
pub enum Line {
    Record(Box<Patient>),
    Malformed(String),
}

/// The export, line by line; line `i` of `lines` is the file's physical line `i + 2`.
pub struct Source {
    pub lines: Vec<Line>,
}

/// What both destinations must hold, worked out from the source in order.
pub struct Expected {
    /// id → the document / row, as JSON values, and the source line that wrote it last.
    pub rows: BTreeMap<i64, (Map<String, Value>, u64)>,
    pub rejects: usize,
    pub filtered: usize,
    /// Tombstones that passed the filters.
    pub deletes: usize,
}

const FIRST: [&str; 8] = [
    "Ada", "Bob", "Zoë", "Émile", "Grace", "Linus", "Mia", "Noor",
];
const LAST: [&str; 6] = [
    "Lovelace", "Builder", "Hopper", "Dubois", "O'Neil", "Keller",
];

impl Patient {
    fn new(id: i64, n: usize) -> Self {
        Self {
            id,
            first_name: FIRST[n % FIRST.len()].to_owned(),
            last_name: format!("{}{}", LAST[n % LAST.len()], n % 97),
            national_id: format!(
                "756.{:04}.{:04}.{:02}",
                id % 10_000,
                (id * 7) % 10_000,
                id % 100
            ),
            consent: match n % 10 {
                3 => Some(false),
                7 => None,
                _ => Some(true),
            },
            status: match n % 9 {
                4 => "closed",
                5 => "pending",
                _ => "active",
            },
            phone: format!(
                "+41 79 {:03} {:02} {:02}",
                id % 1000,
                n % 100,
                (id + 3) % 100
            ),
            email: format!("patient{id}.{n}@example.com"),
            diagnosis: format!("Diagnosis {n}, patient {id}: secret-dx-{id}-{n}"),
            room: format!("{}", 100 + id % 50),
            visit_date: format!("2026-{:02}-{:02}", 1 + n % 12, 1 + n % 28),
            updated_at: format!("2026-03-{:02}T{:02}:{:02}:00", 1 + n % 28, n % 24, n % 60),
            deleted_at: None,
        }
    }

    fn csv(&self) -> String {
        let consent = self.consent.map_or(String::new(), |c| c.to_string());
        let quoted = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            self.id,
            self.first_name,
            quoted(&self.last_name),
            self.national_id,
            consent,
            self.status,
            self.phone,
            self.email,
            quoted(&self.diagnosis),
            self.room,
            self.visit_date,
            self.updated_at,
            self.deleted_at.as_deref().unwrap_or_default()
        )
    }

    fn passes(&self) -> bool {
        self.consent == Some(true) && matches!(self.status, "active" | "pending")
    }

    /// The row as select-transform lets it leave.
    fn output(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("first_name".into(), json!(self.first_name));
        out.insert("last_name".into(), json!(self.last_name));
        out.insert("status".into(), json!(self.status));
        out.insert("phone".into(), json!(keep_last(&self.phone, 4)));
        out.insert("email".into(), json!(pseudonym(&self.email)));
        out.insert("room".into(), json!(self.room));
        out.insert("visit_date".into(), json!(self.visit_date));
        out.insert("updated_at".into(), json!(self.updated_at));
        out.insert("deleted_at".into(), Value::Null);
        out
    }
}

/// `hex(SHA-256(salt ‖ value))`, as README documents select-transform's pseudonym.
pub fn pseudonym(value: &str) -> String {
    let digest = Sha256::new_with_prefix(SALT.as_bytes())
        .chain_update(value.as_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn keep_last(value: &str, n: usize) -> String {
    let count = value.chars().count();
    let hidden = count.saturating_sub(n);
    "*".repeat(hidden) + &value.chars().skip(hidden).collect::<String>()
}

impl Source {
    /// `rows` first records (every `malformed_every`-th line broken, 0 for none), then
    /// `updates` changed records and `deletes` tombstones of earlier ids.
    pub fn generate(rows: usize, updates: usize, deletes: usize, malformed_every: usize) -> Self {
        let mut lines = Vec::new();
        for n in 0..rows {
            let id = n as i64 + 1;
            if malformed_every > 0 && n % malformed_every == malformed_every - 1 {
                lines.push(Line::Malformed(format!("{id},broken,record\n")));
            } else {
                lines.push(Line::Record(Box::new(Patient::new(id, n))));
            }
        }
        for k in 0..updates {
            let id = 1 + (k * 37 % rows) as i64;
            let mut p = Patient::new(id, k + 1);
            p.last_name = format!("Updated{k}");
            p.consent = Some(true);
            p.status = "active";
            p.updated_at = format!("2026-04-{:02}T08:00:00", 1 + k % 28);
            lines.push(Line::Record(Box::new(p)));
        }
        for k in 0..deletes {
            let id = 1 + ((k * 53 + 11) % rows) as i64;
            let mut p = Patient::new(id, k + 2);
            p.consent = Some(true);
            p.status = "active";
            p.deleted_at = Some(format!("2026-05-{:02}T09:30:00", 1 + k % 28));
            lines.push(Line::Record(Box::new(p)));
        }
        Self { lines }
    }

    pub fn header() -> &'static str {
        "id,first_name,last_name,national_id,consent,status,phone,email,diagnosis,room,visit_date,updated_at,deleted_at\n"
    }

    /// The lines from `from` on, as CSV text (with the header when `from` is 0).
    pub fn csv(&self, from: usize) -> String {
        let mut out = if from == 0 {
            Self::header().to_owned()
        } else {
            String::new()
        };
        for line in &self.lines[from..] {
            match line {
                Line::Record(p) => out.push_str(&p.csv()),
                Line::Malformed(raw) => out.push_str(raw),
            }
        }
        out
    }

    /// What the destinations hold after the first `upto` lines.
    pub fn expected(&self, upto: usize) -> Expected {
        let mut e = Expected {
            rows: BTreeMap::new(),
            rejects: 0,
            filtered: 0,
            deletes: 0,
        };
        for (i, line) in self.lines[..upto].iter().enumerate() {
            let position = i as u64 + 2;
            match line {
                Line::Malformed(_) => e.rejects += 1,
                Line::Record(p) if !p.passes() => e.filtered += 1,
                Line::Record(p) if p.deleted_at.is_some() => {
                    e.deletes += 1;
                    e.rows.remove(&p.id);
                }
                Line::Record(p) => {
                    e.rows.insert(p.id, (p.output(), position));
                }
            }
        }
        e
    }

    /// Every value that must never reach a destination: national ids, diagnoses, clear
    /// e-mail addresses and phone numbers of every patient, consenting or not. Checked whole
    /// against every value, and by [`FORBIDDEN_MARKS`] inside every value.
    pub fn forbidden(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for line in &self.lines {
            if let Line::Record(p) = line {
                out.insert(p.national_id.clone());
                out.insert(p.diagnosis.clone());
                out.insert(format!("secret-dx-{}", p.id));
                out.insert(p.email.clone());
                out.insert(p.phone.clone());
            }
        }
        out
    }

    /// The ids that must not be in any destination: never a passing record.
    pub fn never_passing_ids(&self) -> BTreeSet<i64> {
        let mut all = BTreeSet::new();
        let mut passing = BTreeSet::new();
        for line in &self.lines {
            if let Line::Record(p) = line {
                all.insert(p.id);
                if p.passes() {
                    passing.insert(p.id);
                }
            }
        }
        all.difference(&passing).copied().collect()
    }
}

/// What every forbidden value carries, so one scan finds any of them inside a longer text:
/// national ids start `756.`, diagnoses hold `secret-dx-`, clear addresses end
/// `@example.com`, clear phone numbers start `+41 79` (a masked one keeps its last 4
/// characters only).
pub const FORBIDDEN_MARKS: [&str; 4] = ["756.", "secret-dx-", "@example.com", "+41 79"];

/// Whether `text` holds a forbidden value (whole, or by its mark) or the salt: what it holds.
pub fn leaks(text: &str, forbidden: &BTreeSet<String>) -> Option<String> {
    if forbidden.contains(text) {
        return Some(text.to_owned());
    }
    FORBIDDEN_MARKS
        .iter()
        .chain([&SALT])
        .find(|mark| text.contains(**mark))
        .map(|mark| (*mark).to_owned())
}

/// `weir.toml`'s pipeline `portal`; `search_url` is the granted cluster (the server or a
/// proxy), `extra_load` more keys for opensearch-load's config.
pub fn pipeline(search_url: &str, batch_size: usize, extra_load: &str) -> String {
    format!(
        r#"
[[pipeline]]
name = "portal"
batch_size = {batch_size}
restart = {{ max_restarts = 8, window_seconds = 600, backoff_min_ms = 200, backoff_max_ms = 2000 }}
grants = {{ read_dirs = ["inbox"], databases = {{ portal = "portal.db" }}, http = {{ search = {{ url = "{search_url}", allow_private = true }} }} }}
extract = {{ plugin = "csv-extract", config = {{ path = "inbox/*.csv", types = {{ id = "integer" }}, settle_seconds = 0 }} }}
transform = [
  {{ plugin = "map-transform", config = {{ types = {{ consent = "boolean", visit_date = "date", updated_at = "timestamp", deleted_at = "timestamp" }}, primary_key = ["id"] }} }},
  {{ plugin = "select-transform", config = {{ columns = {columns}, filters = [{{ name = "consent", keep = "consent = true" }}, {{ name = "status", keep = "status in ('active', 'pending')" }}], mask = {{ phone = {{ keep_last = 4 }}, email = "pseudonym" }}, salt = "${{PORTAL_SALT}}" }} }},
]
load = [
  {{ plugin = "sqlite-load", config = {{ database = "portal", table = "patients", mode = "upsert", key = ["id"], deleted_by = "deleted_at", fts = ["first_name", "last_name"] }} }},
  {{ plugin = "opensearch-load", config = {{ connection = "search", index = "patients", deleted_by = "deleted_at"{extra_load} }} }},
]
history = {{ plugin = "sqlite-history", config = {{ database = "portal" }} }}
"#,
        columns = serde_json::to_string(&ALLOWED).unwrap(),
    )
}

/// A `weir` command in the fixture's folder with `$PORTAL_SALT` set.
pub fn weir_command(fx: &Fixture, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
    command
        .arg("-c")
        .arg(fx.path("weir.toml"))
        .args(args)
        .current_dir(fx.dir.path())
        .env_remove("RUST_LOG")
        .env("PORTAL_SALT", SALT);
    command
}

/// Run `weir ARGS --events events.jsonl` to the end; the run and its events.
pub fn weir(fx: &Fixture, args: &[&str]) -> (Run, Vec<Value>) {
    let events = fx.path("events.jsonl");
    let _ = std::fs::remove_file(&events);
    let output: Output = weir_command(fx, args)
        .args(["--events", events.to_str().unwrap()])
        .output()
        .unwrap();
    (Run(output), read_events(&events))
}

pub fn read_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Every row of `patients` as JSON values, by id.
pub fn sql_rows(fx: &Fixture) -> BTreeMap<i64, Map<String, Value>> {
    let db = fx.db("portal.db");
    let mut stmt = db.prepare("SELECT * FROM patients").unwrap();
    let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let rows = stmt
        .query_map([], |r| {
            let mut row = Map::new();
            for (i, name) in names.iter().enumerate() {
                use rusqlite::types::ValueRef;
                let v = match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => json!(n),
                    ValueRef::Real(x) => json!(x),
                    ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                    ValueRef::Blob(b) => json!(b),
                };
                row.insert(name.clone(), v);
            }
            Ok(row)
        })
        .unwrap()
        .map(Result::unwrap);
    rows.map(|row| (row["id"].as_i64().unwrap(), row)).collect()
}

/// Every document of the index: id → (version, source).
pub fn index_docs(server: &osmem_fixture::Osmem) -> BTreeMap<i64, (i64, Map<String, Value>)> {
    server
        .client()
        .documents("patients")
        .unwrap()
        .into_iter()
        .map(|d| (d.id.parse().unwrap(), (d.version, d.source)))
        .collect()
}

/// Both destinations hold exactly `expected`: the same ids, every value as the source's row
/// after select-transform, the index's versions the source lines that wrote them last.
pub fn assert_destinations_exact(fx: &Fixture, server: &osmem_fixture::Osmem, expected: &Expected) {
    let sql = sql_rows(fx);
    let docs = index_docs(server);
    let want: BTreeMap<i64, &Map<String, Value>> = expected
        .rows
        .iter()
        .map(|(id, (row, _))| (*id, row))
        .collect();
    let sql_ids: BTreeSet<i64> = sql.keys().copied().collect();
    let want_ids: BTreeSet<i64> = want.keys().copied().collect();
    let doc_ids: BTreeSet<i64> = docs.keys().copied().collect();
    assert_eq!(
        sql_ids.symmetric_difference(&want_ids).collect::<Vec<_>>(),
        Vec::<&i64>::new(),
        "SQL ids differ from the source's (missing or extra)"
    );
    assert_eq!(
        doc_ids.symmetric_difference(&want_ids).collect::<Vec<_>>(),
        Vec::<&i64>::new(),
        "index ids differ from the source's (missing, extra or stale)"
    );
    for (id, (row, line)) in &expected.rows {
        assert_eq!(&sql[id], row, "SQL row {id}");
        let (version, source) = &docs[id];
        assert_eq!(source, row, "document {id}");
        assert_eq!(
            *version as u64, *line,
            "document {id}'s version is its source line"
        );
    }
}

/// Nothing outside the allow-list, nothing forbidden, no never-consenting id in the SQL
/// destination's tables (rows and the FTS index) or in the index: scanned value by value.
pub fn assert_nothing_leaves(fx: &Fixture, server: &osmem_fixture::Osmem, source: &Source) {
    let forbidden = source.forbidden();
    let never = source.never_passing_ids();
    let db = fx.db("portal.db");
    let columns: Vec<String> = db
        .prepare("SELECT name FROM pragma_table_info('patients')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        columns, ALLOWED,
        "the table has the allow-list's columns only"
    );
    // Every table the destination database holds, but weir's own (checkpoints, rejects).
    let tables: Vec<String> = db
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_weir\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite_%'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        tables.contains(&"patients".to_owned()) && tables.contains(&"patients_fts".to_owned()),
        "{tables:?}"
    );
    let mut scanned = 0;
    for table in &tables {
        let mut stmt = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                let text = match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    rusqlite::types::ValueRef::Blob(b) => String::from_utf8_lossy(b).into_owned(),
                    rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                    _ => continue,
                };
                scanned += 1;
                if let Some(bad) = leaks(&text, &forbidden) {
                    panic!("{table}: {text:?} holds {bad:?}");
                }
            }
        }
    }
    assert!(scanned > 0);
    for (id, (_, source)) in index_docs(server) {
        assert!(!never.contains(&id), "document {id}: never consented");
        let keys: Vec<&str> = source.keys().map(String::as_str).collect();
        let mut allowed = ALLOWED.to_vec();
        allowed.sort_unstable();
        assert_eq!(keys, allowed, "document {id}: fields");
        for (field, value) in &source {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            if let Some(bad) = leaks(&text, &forbidden) {
                panic!("document {id}: {field} = {text:?} holds {bad:?}");
            }
        }
    }
    for id in &never {
        assert_eq!(
            count(
                &db,
                &format!("SELECT count(*) FROM patients WHERE id = {id}")
            ),
            0,
            "row {id}: never consented"
        );
    }
    let mapping = server
        .client()
        .ok("GET", "/patients/_mapping", None)
        .unwrap();
    let mut fields: Vec<String> = mapping["patients"]["mappings"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    fields.sort();
    let mut allowed: Vec<String> = ALLOWED.iter().map(|s| (*s).to_owned()).collect();
    allowed.sort();
    assert_eq!(
        fields, allowed,
        "the index maps the allow-list's fields only"
    );
}

/// The sum over a run's `batch_committed` events of `destinations[name][field]`.
pub fn destination_total(events: &[Value], name: &str, field: &str) -> u64 {
    events
        .iter()
        .filter(|e| e["type"] == "batch_committed")
        .filter_map(|e| e["destinations"][name][field].as_u64())
        .sum()
}

pub const SQL: &str = "sqlite-load → portal.patients";
pub const INDEX: &str = "opensearch-load";
