//! One partition's reader: passes over a resource, page by page, into batches whose
//! checkpoints resume exactly where they end.
//!
//! A **pass** reads every page of the resource from its first request to an empty page or
//! a missing next. With `incremental`, each request of a pass sends the same lower bound: the
//! previous complete pass's highest watermark minus `lookback_seconds` (or `start`, or none on
//! the first pass). The watermark advances only when a pass completes, to the highest
//! (watermark, tie-breaker) it delivered, because pages need not be sorted by the watermark.
//! A batch ending mid-pass saves the next request and how many records of its page were
//! delivered, so a restart re-asks that request and skips them.

use std::time::Duration;

use serde_json::Value;
use weir_sdk::{Batch, Error, Progress, RowsBuilder, Schema, SourceReject};

use crate::checkpoint::{Checkpoint, Mark, Pass};
use crate::config::{Config, Incremental, NAME, Paginate};
use crate::mapping::{self, Mapping};
use crate::page::{self, Fetched, Keyset, Page, Pager, Plan, Position, Source};
use crate::url::encode;

/// Stop adding pages to a batch after this long, so a call stays well inside the host's
/// per-call wall-clock limit (30 s by default) even with slow pages.
const BATCH_TIME_BUDGET: Duration = Duration::from_secs(10);

/// The longest raw record kept with a reject.
const MAX_RAW_BYTES: usize = 4096;

/// A log line for the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `info`.
    Info(String),
    /// `warn`.
    Warn(String),
}

/// A partition id split: `employees` or `employees@org_unit=42`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionId<'a> {
    /// The resource.
    pub resource: &'a str,
    /// The parent's parameter and value.
    pub parent: Option<(&'a str, &'a str)>,
}

impl<'a> PartitionId<'a> {
    /// Split an id.
    pub fn parse(id: &'a str) -> Self {
        match id.split_once('@') {
            Some((resource, rest)) => PartitionId {
                resource,
                parent: rest.split_once('='),
            },
            None => PartitionId {
                resource: id,
                parent: None,
            },
        }
    }

    /// The id of a child partition.
    pub fn child(resource: &str, param: &str, value: &str) -> String {
        format!("{resource}@{param}={value}")
    }
}

/// The requests of resource `name`, with a parent value when it has one.
pub fn plan(config: &Config, name: &str, parent_value: Option<&str>) -> Result<Plan, Error> {
    let r = config
        .resource(name)
        .ok_or_else(|| Error::InvalidConfig(format!("{NAME}: no resource named `{name}`")))?;
    let mut path = r.path.trim_start_matches('/').to_owned();
    let mut params = r.params.clone();
    if let (Some(parent), Some(value)) = (&r.parent, parent_value) {
        let placeholder = format!("{{{}}}", parent.param);
        if path.contains(&placeholder) {
            path = path.replace(&placeholder, &encode(value));
        } else {
            params.push((parent.param.clone(), value.to_owned()));
        }
    }
    let keyset = match (&r.paginate, &r.incremental) {
        (Paginate::Keyset { param }, Some(inc)) => Some(Keyset {
            field: inc.field.clone(),
            key: key_pointer(config, name).unwrap_or_default(),
            since_param: inc.param.clone(),
            after_param: param.clone(),
            format: inc.format,
        }),
        _ => None,
    };
    Ok(Plan {
        base_url: format!("http://{}/{path}", config.connection),
        params,
        records: r.records.clone(),
        paginate: r.paginate.clone(),
        keyset,
        on_repeat: r.on_repeat,
    })
}

/// The tie-breaker's pointer: configured, or the single key column's field.
fn key_pointer(config: &Config, name: &str) -> Option<String> {
    let r = config.resource(name)?;
    if let Some(t) = r.incremental.as_ref().and_then(|i| i.tie_breaker.clone()) {
        return Some(t);
    }
    let [key] = r.primary_key.as_slice() else {
        return None;
    };
    Some(match mapping::declared(&r.fields) {
        Some(cols) => cols.into_iter().find(|c| &c.name == key)?.pointer,
        None => crate::config::pointer(key),
    })
}

/// Every record of a resource (a parent's, to list partitions), following its pagination.
pub fn read_all(
    src: &mut dyn Source,
    config: &Config,
    name: &str,
    notices: &mut Vec<Notice>,
) -> Result<Vec<Value>, Error> {
    let plan = plan(config, name, None)?;
    let mut pager = Pager::new();
    let mut pos = Position::Start;
    let mut all = Vec::new();
    while pos != Position::End {
        match plan.fetch(src, &mut pager, &pos, None)? {
            Fetched::Page(page) => {
                all.extend(page.records);
                pos = page.next;
            }
            Fetched::Repeat(why) => repeat(&plan, name, why, notices)?,
        }
    }
    Ok(all)
}

fn repeat(
    plan: &Plan,
    partition: &str,
    why: String,
    notices: &mut Vec<Notice>,
) -> Result<(), Error> {
    match plan.on_repeat {
        crate::config::OnRepeat::Fail => Err(Error::BadData(format!(
            "{NAME}: {partition}: {why}; stopped instead of looping (on_repeat = \"stop\" ends \
             the pass there instead)"
        ))),
        crate::config::OnRepeat::Stop => {
            notices.push(Notice::Warn(format!(
                "{NAME}: {partition}: {why}; the pass ends here (on_repeat = \"stop\")"
            )));
            Ok(())
        }
    }
}

/// The reader of one partition.
pub struct HttpReader<S: Source> {
    src: S,
    partition: String,
    plan: Plan,
    incremental: Option<Incremental>,
    key: Option<String>,
    since_param: Option<String>,
    mapping: Mapping,
    cp: Checkpoint,
    pager: Pager,
    page: Option<OpenPage>,
    /// The checkpoint of the last batch handed out (or the one opened with).
    last_saved: Option<String>,
    finished: bool,
    pending: Option<Error>,
    notices: Vec<Notice>,
}

/// A fetched page not yet delivered whole.
struct OpenPage {
    records: Vec<Value>,
    /// The next record to deliver.
    index: usize,
    next: Position,
}

impl<S: Source> HttpReader<S> {
    /// Open `partition` after `checkpoint`. With inferred fields and no fields in the
    /// checkpoint, the first page is fetched now to type the columns.
    pub fn open(
        config: &Config,
        partition: &str,
        checkpoint: Option<&str>,
        src: S,
    ) -> Result<Self, Error> {
        let id = PartitionId::parse(partition);
        let resource = config.resource(id.resource).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "{NAME}: partition {partition:?}: no resource named `{}` in the config",
                id.resource
            ))
        })?;
        let parent_value = match (&resource.parent, id.parent) {
            (Some(p), Some((param, value))) if p.param == param => Some(value),
            (None, None) => None,
            _ => {
                return Err(Error::InvalidConfig(format!(
                    "{NAME}: partition {partition:?} does not match resource `{}`'s parent \
                     in the config",
                    resource.name
                )));
            }
        };
        let plan = plan(config, id.resource, parent_value)?;
        let incremental = resource.incremental.clone();
        let kind = resource.paginate.kind();
        let field = incremental.as_ref().map(|i| i.field.as_str());
        let mut cp = match checkpoint {
            Some(text) => Checkpoint::resume(text, partition, kind, field)?,
            None => Checkpoint::new(partition, kind, field),
        };
        if cp.pass.is_none() {
            cp.pass = Some(Pass {
                since: first_since(incremental.as_ref(), cp.watermark.as_ref()),
                next: Position::Start,
                skip: 0,
                skip_key: None,
                high: None,
            });
        }
        let key = key_pointer(config, id.resource);
        let mut reader = HttpReader {
            partition: partition.to_owned(),
            since_param: incremental.as_ref().map(|i| i.param.clone()),
            incremental,
            key,
            plan,
            mapping: Mapping::new(Vec::new(), &[], None),
            cp,
            pager: Pager::new(),
            page: None,
            last_saved: checkpoint.map(str::to_owned),
            finished: false,
            pending: None,
            notices: Vec::new(),
            src,
        };
        let columns = match mapping::declared(&resource.fields) {
            Some(columns) => columns,
            None => match reader.cp.fields.clone() {
                Some(columns) => columns,
                None => {
                    reader.fill_page()?;
                    let records = reader.page.as_ref().map_or(&[][..], |p| &p.records[..]);
                    let (columns, reasons) = mapping::infer(records, &resource.primary_key);
                    reader.notices.push(Notice::Info(format!(
                        "{NAME}: {partition}: inferred from the first page ({} records): {}",
                        records.len(),
                        reasons.join(", ")
                    )));
                    if !records.is_empty() {
                        reader.cp.fields = Some(columns.clone());
                    }
                    columns
                }
            },
        };
        reader.mapping = Mapping::new(columns, &resource.primary_key, resource.deleted.as_ref());
        Ok(reader)
    }

    /// The schema of every batch.
    pub fn schema(&self) -> &Schema {
        self.mapping.schema()
    }

    /// Log lines gathered since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// The source (for tests to look at what was asked).
    pub fn source(&self) -> &S {
        &self.src
    }

    fn pass(&mut self) -> &mut Pass {
        self.cp.pass.get_or_insert(Pass {
            since: None,
            next: Position::End,
            skip: 0,
            skip_key: None,
            high: None,
        })
    }

    /// Fetch the pass's next page unless one is open. `Ok(false)` when the pass has no more.
    fn fill_page(&mut self) -> Result<bool, Error> {
        if self.page.is_some() {
            return Ok(true);
        }
        loop {
            let pass = self.pass().clone();
            if pass.next == Position::End {
                return Ok(false);
            }
            let since = match (&self.since_param, &pass.since) {
                (Some(p), Some(v)) => Some((p.as_str(), v.as_str())),
                _ => None,
            };
            let fetched = self
                .plan
                .fetch(&mut self.src, &mut self.pager, &pass.next, since)
                .map_err(|e| e.context(format!("{NAME}: {}", self.partition)))?;
            match fetched {
                Fetched::Page(Page { records, next, url }) => {
                    // The next page is on its way while this one is converted.
                    self.plan.prefetch(&mut self.src, &self.pager, &next, since);
                    let index = self.resume_index(&records, &pass, &url);
                    self.page = Some(OpenPage {
                        records,
                        index,
                        next,
                    });
                    return Ok(true);
                }
                Fetched::Repeat(why) => {
                    repeat(&self.plan, &self.partition, why, &mut self.notices)?;
                    let pass = self.pass();
                    pass.next = Position::End;
                    pass.skip = 0;
                    pass.skip_key = None;
                }
            }
        }
    }

    /// Where to start in a page a checkpoint ended inside: after the records already
    /// delivered, if the last of them is still where it was; else the whole page again.
    fn resume_index(&mut self, records: &[Value], pass: &Pass, url: &str) -> usize {
        let skip = usize::try_from(pass.skip).unwrap_or(usize::MAX);
        if skip == 0 {
            return 0;
        }
        let still = skip <= records.len()
            && match (&self.key, &pass.skip_key) {
                (Some(ptr), Some(expected)) => {
                    page::key_text(records[skip - 1].pointer(ptr)).as_ref() == Some(expected)
                }
                _ => true,
            };
        if still {
            skip
        } else {
            self.notices.push(Notice::Warn(format!(
                "{NAME}: {}: {url} changed since the checkpoint ({} records were delivered \
                 from it, the last one is no longer there); reading the page again from its \
                 start (rows may be delivered twice)",
                self.partition, pass.skip
            )));
            0
        }
    }

    /// Up to `max_rows` records as rows and rejects, or `None` at the end of the pass.
    pub fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, Error> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        if self.finished {
            return Ok(None);
        }
        let max = usize::try_from(max_rows.max(1)).unwrap_or(usize::MAX);
        let mut rows = RowsBuilder::with_capacity(self.mapping.schema(), max.min(10_000));
        let mut positions = Vec::new();
        let mut rejects = Vec::new();
        let started = std::time::Instant::now();
        let now = self.src.now();
        loop {
            match self.fill_page() {
                Ok(true) => {}
                Ok(false) => {
                    self.finish_pass();
                    break;
                }
                Err(e) if positions.is_empty() && rejects.is_empty() => return Err(e),
                Err(e) => {
                    // Hand out what was read first: it is committed, the error comes next call.
                    self.pending = Some(e);
                    break;
                }
            }
            let mut page = self.page.take().expect("fill_page opened a page");
            while page.index < page.records.len() && positions.len() + rejects.len() < max {
                let record = &page.records[page.index];
                page.index += 1;
                self.cp.seen += 1;
                let position = self.cp.seen;
                match self.mapping.push(&mut rows, record, now) {
                    Ok(()) => positions.push(position),
                    Err(reason) => rejects.push(SourceReject {
                        position,
                        reason: format!("record {position}: {reason}"),
                        raw: raw(record),
                    }),
                }
                self.advance_high(record);
            }
            let pass = self.cp.pass.as_mut().expect("a pass is open");
            if page.index == page.records.len() {
                pass.next = page.next;
                pass.skip = 0;
                pass.skip_key = None;
            } else {
                pass.skip = page.index as u64;
                pass.skip_key = self
                    .key
                    .as_ref()
                    .and_then(|ptr| page::key_text(page.records[page.index - 1].pointer(ptr)));
                self.page = Some(page);
            }
            if positions.len() + rejects.len() >= max || started.elapsed() > BATCH_TIME_BUDGET {
                break;
            }
        }
        let checkpoint = self.cp.to_json();
        if positions.is_empty()
            && rejects.is_empty()
            && self.last_saved.as_deref() == Some(checkpoint.as_str())
        {
            return match self.pending.take() {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        self.last_saved = Some(checkpoint.clone());
        Ok(Some(Batch {
            rows: rows.finish(),
            positions,
            rejects,
            checkpoint,
            progress: Progress {
                done: self.cp.seen,
                total: None,
            },
        }))
    }

    fn advance_high(&mut self, record: &Value) {
        let Some(inc) = &self.incremental else { return };
        let Some(at) = page::watermark(record.pointer(&inc.field)) else {
            return;
        };
        let key = self
            .key
            .as_ref()
            .and_then(|p| page::key_text(record.pointer(p)));
        let pass = self.cp.pass.as_mut().expect("a pass is open");
        pass.high = Mark::max(pass.high.take(), Some(Mark::new(at, key)));
    }

    /// The pass is complete: its highest mark becomes the watermark (never moving back).
    fn finish_pass(&mut self) {
        if let Some(pass) = self.cp.pass.take() {
            self.cp.watermark = Mark::max(self.cp.watermark.take(), pass.high);
        }
        self.finished = true;
    }
}

/// The lower bound of a new pass.
fn first_since(inc: Option<&Incremental>, watermark: Option<&Mark>) -> Option<String> {
    let inc = inc?;
    let from = match watermark.and_then(Mark::instant) {
        Some(at) => Some(at.minus_seconds(inc.lookback_seconds)),
        None => inc.start.as_deref().and_then(crate::time::Instant::parse),
    }?;
    Some(page::format_since(from, inc.format))
}

/// A record as a reject keeps it: JSON, cut at a character boundary.
fn raw(record: &Value) -> String {
    let mut text = record.to_string();
    if text.len() > MAX_RAW_BYTES {
        let mut end = MAX_RAW_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
