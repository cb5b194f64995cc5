//! What the workers of one run share: the runtime, the run's id and pipeline, the event bus
//! and the cancel signal.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tokio::sync::Notify;
use weir_runtime::{HttpMeter, LogSink, Runtime};
use weir_store::HttpUsage;

use crate::events::{EventBus, EventKind, shorten};

/// Plugin log lines that become events, per plugin instance; the rest only go to the host log,
/// so a chatty plugin cannot flood the event log.
pub const MAX_LOG_EVENTS: u32 = 100;

/// Longest message of a `plugin_log` event, in bytes (the host log keeps the whole line).
const MAX_LOG_EVENT_BYTES: usize = 2_000;

/// The connection under which `http_usage` counts requests no grant matched (all refused).
pub const UNGRANTED: &str = "(no grant)";

/// Shared by the workers of one run.
pub struct RunContext {
    pub runtime: Arc<Runtime>,
    pub run_id: String,
    pub pipeline: String,
    pub events: EventBus,
    cancelled: AtomicBool,
    cancel_notify: Notify,
}

impl RunContext {
    /// The context of a new run of `pipeline`.
    pub fn new(runtime: Arc<Runtime>, run_id: String, pipeline: String, events: EventBus) -> Self {
        Self {
            runtime,
            run_id,
            pipeline,
            events,
            cancelled: AtomicBool::new(false),
            cancel_notify: Notify::new(),
        }
    }

    /// Where an instance of `plugin` (its name) logs: info, warn and error lines become
    /// `plugin_log` events of this run, up to [`MAX_LOG_EVENTS`], then one event saying the rest
    /// are in the host log only.
    pub fn log_sink(self: &Arc<Self>, plugin: &str, partition: Option<&str>) -> LogSink {
        let ctx = self.clone();
        let (plugin, partition) = (plugin.to_owned(), partition.map(str::to_owned));
        let sent = AtomicU32::new(0);
        LogSink(Arc::new(move |level, message| {
            let level = match level {
                tracing::Level::ERROR => "error",
                tracing::Level::WARN => "warn",
                tracing::Level::INFO => "info",
                _ => return,
            };
            let n = sent.fetch_add(1, Ordering::Relaxed);
            let message = match n.cmp(&MAX_LOG_EVENTS) {
                std::cmp::Ordering::Less => shorten(message, MAX_LOG_EVENT_BYTES),
                std::cmp::Ordering::Equal => format!(
                    "more than {MAX_LOG_EVENTS} log lines from this plugin instance; the rest are in the host log only"
                ),
                std::cmp::Ordering::Greater => return,
            };
            ctx.emit(
                partition.as_deref(),
                EventKind::PluginLog {
                    plugin: plugin.clone(),
                    level: level.to_owned(),
                    message,
                },
            );
        }))
    }

    /// Publish an event of this run.
    pub fn emit(&self, partition: Option<&str>, kind: EventKind) {
        self.events
            .emit(&self.pipeline, &self.run_id, partition, kind);
    }

    /// One `http_usage` event per granted connection these plugin instances used: what
    /// their requests cost, whether or not the work they were for succeeded.
    pub fn report_http_usage(&self, partition: Option<&str>, meters: &[HttpMeter]) {
        let mut by_connection: BTreeMap<String, HttpUsage> = BTreeMap::new();
        for stats in meters.iter().map(HttpMeter::stats) {
            for (grant, c) in stats.by_grant {
                *by_connection.entry(grant).or_default() += HttpUsage {
                    requests: c.requests,
                    response_bytes: c.response_bytes,
                    errors: c.errors,
                    refused: c.refused,
                    retried: c.throttled + c.auth_retries,
                };
            }
            if stats.unmatched_refusals > 0 {
                *by_connection.entry(UNGRANTED.to_owned()).or_default() += HttpUsage {
                    refused: stats.unmatched_refusals,
                    ..HttpUsage::default()
                };
            }
        }
        for (connection, usage) in by_connection {
            if usage != HttpUsage::default() {
                self.emit(partition, EventKind::HttpUsage { connection, usage });
            }
        }
    }

    /// Ask the workers to stop at their next batch boundary.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
        self.cancel_notify.notify_waiters();
    }

    /// Resolves once the run is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.cancel_notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plugin_log_lines_become_events_up_to_the_cap_then_one_notice() {
        let events = EventBus::new();
        let mut rx = events.subscribe();
        let ctx = Arc::new(RunContext::new(
            Arc::new(Runtime::new(None).unwrap()),
            "r1".into(),
            "p".into(),
            events,
        ));
        let LogSink(sink) = ctx.log_sink("chatty", Some("a.csv"));
        sink(tracing::Level::DEBUG, "debug lines stay in the host log");
        sink(tracing::Level::ERROR, &"x".repeat(5_000));
        for i in 0..(MAX_LOG_EVENTS + 50) {
            sink(tracing::Level::INFO, &format!("line {i}"));
        }
        let mut got = Vec::new();
        while let Ok(event) = rx.try_recv() {
            let EventKind::PluginLog {
                plugin,
                level,
                message,
            } = &event.kind
            else {
                panic!("{event:?}");
            };
            assert_eq!(
                (plugin.as_str(), event.partition.as_deref()),
                ("chatty", Some("a.csv"))
            );
            got.push((level.clone(), message.clone()));
        }
        assert_eq!(
            got.len() as u32,
            MAX_LOG_EVENTS + 1,
            "the cap, then one notice"
        );
        assert_eq!(got[0].0, "error");
        assert!(got[0].1.ends_with("… (5000 bytes in all)"), "{}", got[0].1);
        assert!(got[0].1.len() < MAX_LOG_EVENT_BYTES + 40);
        assert_eq!(got[1], ("info".to_owned(), "line 0".to_owned()));
        assert!(
            got.last()
                .unwrap()
                .1
                .contains("the rest are in the host log only")
        );
    }
}
