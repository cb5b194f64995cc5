//! The checkpoint: JSON, small and bounded whatever the source's size (no set of seen keys or
//! pages): the watermark of the last complete pass, and the position inside the pass in
//! progress.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use weir_sdk::Error;

use crate::config::NAME;
use crate::mapping::ColumnSpec;
use crate::page::Position;
use crate::time::Instant;

/// The format version.
pub const VERSION: u32 = 1;

/// A partition's saved state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// [`VERSION`].
    pub v: u32,
    /// The partition it belongs to.
    pub partition: String,
    /// The pagination kind that wrote it.
    pub paginate: String,
    /// The incremental field that wrote it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<String>,
    /// Records read from this partition so far, over every pass (the next row's position is
    /// one more).
    pub seen: u64,
    /// The highest (watermark, key) of the last complete pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<Mark>,
    /// The pass in progress; `None` between passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<Pass>,
    /// Inferred columns, kept so a partition's schema never changes between runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<ColumnSpec>>,
}

/// The pass in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pass {
    /// The lower bound every request of the pass sends, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The next request.
    pub next: Position,
    /// Records of that request's page already delivered (a batch ended inside it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skip: u64,
    /// The key of the last of them: a resume re-reads the page whole if it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_key: Option<String>,
    /// The highest (watermark, key) delivered in this pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<Mark>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A watermark with its tie-breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mark {
    /// The instant, RFC 3339 in UTC.
    pub at: String,
    /// The tie-breaker key of the record that had it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Mark {
    /// A mark at `at` for `key`.
    pub fn new(at: Instant, key: Option<String>) -> Self {
        Mark {
            at: at.to_rfc3339(),
            key,
        }
    }

    /// The instant.
    pub fn instant(&self) -> Option<Instant> {
        Instant::parse(&self.at)
    }

    /// Order by instant, then by key (numerically when both are integers).
    pub fn order(&self, other: &Mark) -> Ordering {
        self.instant()
            .cmp(&other.instant())
            .then_with(|| key_cmp(self.key.as_deref(), other.key.as_deref()))
    }

    /// The later of two marks.
    pub fn max(a: Option<Mark>, b: Option<Mark>) -> Option<Mark> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.order(&a) == Ordering::Greater {
                b
            } else {
                a
            }),
            (a, b) => a.or(b),
        }
    }
}

fn key_cmp(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => match (a.parse::<i64>(), b.parse::<i64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.cmp(b),
        },
        (a, b) => a.cmp(&b),
    }
}

impl Checkpoint {
    /// The state of a partition never read.
    pub fn new(partition: &str, paginate: &str, incremental: Option<&str>) -> Self {
        Checkpoint {
            v: VERSION,
            partition: partition.to_owned(),
            paginate: paginate.to_owned(),
            incremental: incremental.map(str::to_owned),
            seen: 0,
            watermark: None,
            pass: None,
            fields: None,
        }
    }

    /// Parse a saved checkpoint and check that it still fits the configuration; one that does
    /// not is `bad-data` naming the difference and the reset command, never silently re-read
    /// or skipped.
    pub fn resume(
        text: &str,
        partition: &str,
        paginate: &str,
        incremental: Option<&str>,
    ) -> Result<Self, Error> {
        let reset = format!(
            "run `weir checkpoints reset <pipeline> {partition}` to read the partition from the start"
        );
        let bad = |why: String| Error::BadData(format!("{NAME}: {partition}: {why}; {reset}"));
        let cp: Checkpoint = serde_json::from_str(text).map_err(|e| {
            bad(format!(
                "the checkpoint is not one http-extract {} wrote ({e})",
                env!("CARGO_PKG_VERSION")
            ))
        })?;
        if cp.v != VERSION {
            return Err(bad(format!("checkpoint version {} is not {VERSION}", cp.v)));
        }
        if cp.partition != partition {
            return Err(bad(format!(
                "the checkpoint belongs to partition {:?}",
                cp.partition
            )));
        }
        if cp.incremental.as_deref() != incremental && (cp.watermark.is_some() || cp.pass.is_some())
        {
            let name = |f: Option<&str>| f.map_or("none".to_owned(), |f| format!("field {f}"));
            return Err(bad(format!(
                "the checkpoint was written for incremental {}, the config now says {}",
                name(cp.incremental.as_deref()),
                name(incremental)
            )));
        }
        if let Some(pass) = &cp.pass
            && cp.paginate != paginate
            && pass.next != Position::Start
        {
            return Err(bad(format!(
                "a pass paged by {} is in progress, the config now pages by {paginate}",
                cp.paginate
            )));
        }
        Ok(Checkpoint {
            paginate: paginate.to_owned(),
            incremental: incremental.map(str::to_owned),
            ..cp
        })
    }

    /// The checkpoint as saved.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a checkpoint serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(at: &str, key: &str) -> Mark {
        Mark::new(Instant::parse(at).unwrap(), Some(key.into()))
    }

    #[test]
    fn marks_order_by_time_then_key() {
        let a = mark("2026-01-01T00:00:00Z", "9");
        let b = mark("2026-01-01T00:00:00Z", "10");
        let c = mark("2026-01-01T01:00:00+02:00", "1");
        assert_eq!(a.order(&b), Ordering::Less, "keys numerically");
        assert_eq!(c.order(&b), Ordering::Less, "instants, not text");
        assert_eq!(Mark::max(Some(a.clone()), Some(b.clone())), Some(b.clone()));
        assert_eq!(Mark::max(None, Some(a.clone())), Some(a));
        assert_eq!(
            mark("2026-01-01T00:00:00Z", "b").order(&mark("2026-01-01T00:00:00Z", "a")),
            Ordering::Greater
        );
    }

    #[test]
    fn checkpoints_round_trip_and_stay_small() {
        let mut cp = Checkpoint::new("employees", "page_number", Some("/updated_at"));
        cp.seen = 250;
        cp.watermark = Some(mark("2026-01-01T00:00:00Z", "17"));
        cp.pass = Some(Pass {
            since: Some("2025-12-31T23:59:00Z".into()),
            next: Position::Page { n: 3 },
            skip: 20,
            skip_key: Some("42".into()),
            high: None,
        });
        let text = cp.to_json();
        assert_eq!(
            text,
            r#"{"v":1,"partition":"employees","paginate":"page_number","incremental":"/updated_at","seen":250,"watermark":{"at":"2026-01-01T00:00:00Z","key":"17"},"pass":{"since":"2025-12-31T23:59:00Z","next":{"at":"page","n":3},"skip":20,"skip_key":"42"}}"#
        );
        let back =
            Checkpoint::resume(&text, "employees", "page_number", Some("/updated_at")).unwrap();
        assert_eq!(back, cp);
    }

    #[test]
    fn a_checkpoint_that_no_longer_fits_is_bad_data_naming_the_reset() {
        let mut cp = Checkpoint::new("employees", "cursor", Some("/updated_at"));
        cp.watermark = Some(mark("2026-01-01T00:00:00Z", "1"));
        cp.pass = Some(Pass {
            since: None,
            next: Position::Cursor {
                token: "abc".into(),
            },
            skip: 0,
            skip_key: None,
            high: None,
        });
        let text = cp.to_json();
        let err = |r: Result<Checkpoint, Error>| match r {
            Err(Error::BadData(m)) => m,
            other => panic!("expected bad-data, got {other:?}"),
        };
        let m = err(Checkpoint::resume(
            &text,
            "employees",
            "page_number",
            Some("/updated_at"),
        ));
        assert_eq!(
            m,
            "http-extract: employees: a pass paged by cursor is in progress, the config now pages \
             by page_number; run `weir checkpoints reset <pipeline> employees` to read the \
             partition from the start"
        );
        let m = err(Checkpoint::resume(
            &text,
            "employees",
            "cursor",
            Some("/modified"),
        ));
        assert!(
            m.contains(
                "written for incremental field /updated_at, the config now says field /modified"
            ),
            "{m}"
        );
        let m = err(Checkpoint::resume(
            &text,
            "org-units",
            "cursor",
            Some("/updated_at"),
        ));
        assert!(m.contains("belongs to partition \"employees\""), "{m}");
        let m = err(Checkpoint::resume(
            "offset 18211",
            "employees",
            "cursor",
            None,
        ));
        assert!(m.contains("is not one http-extract"), "{m}");

        // Between passes the pagination may change freely.
        cp.pass = None;
        let ok = Checkpoint::resume(
            &cp.to_json(),
            "employees",
            "page_number",
            Some("/updated_at"),
        );
        assert_eq!(ok.unwrap().paginate, "page_number");
    }
}
