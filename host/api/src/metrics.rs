//! Prometheus metrics, counted from SyncEvents as they are published (through the bus's tap,
//! so a slow reader can never make them miss one). Labels are bounded: the pipeline and the
//! granted HTTP connection, and only names from the config are used as values (anything else
//! counts as `other`), plus a run status out of three.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use weir_engine::SyncEvent;
use weir_engine::events::{EventTap, MetricEffect, RunOutcome};

/// Upper bounds (seconds) of the run-duration histogram buckets: sub-second test runs up to
/// hour-long monthly loads.
const DURATION_BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0];

#[derive(Default)]
struct PipelineCounters {
    rows_read: u64,
    rows_loaded: u64,
    rows_rejected: u64,
    batches: u64,
    plugin_errors: u64,
    runs_completed: u64,
    runs_failed: u64,
    runs_cancelled: u64,
    runs_skipped: u64,
    /// Per bucket of `DURATION_BUCKETS`, not cumulative (summed when rendered).
    duration_buckets: [u64; DURATION_BUCKETS.len()],
    duration_count: u64,
    duration_sum: f64,
}

/// An HTTP counter's name, help text and value.
type HttpCounter = (
    &'static str,
    &'static str,
    fn(&weir_store::HttpUsage) -> u64,
);

#[derive(Default)]
struct Counters {
    pipelines: BTreeMap<String, PipelineCounters>,
    /// Runs in progress: id → (pipeline label, start), for durations and the active gauge.
    open_runs: HashMap<String, (String, SystemTime)>,
    plugins_rejected: u64,
    /// Per (pipeline, granted HTTP connection).
    http: BTreeMap<(String, String), weir_store::HttpUsage>,
}

/// The metrics registry.
pub struct Metrics {
    known: BTreeSet<String>,
    connections: BTreeSet<String>,
    counters: Mutex<Counters>,
}

impl Metrics {
    /// Metrics for these pipelines (every one is listed, with zeros, from the start).
    pub fn new<'a>(pipelines: impl IntoIterator<Item = &'a str>) -> Arc<Self> {
        let known: BTreeSet<String> = pipelines.into_iter().map(str::to_owned).collect();
        let counters = Counters {
            pipelines: known
                .iter()
                .map(|p| (p.clone(), PipelineCounters::default()))
                .collect(),
            ..Counters::default()
        };
        Arc::new(Self {
            known,
            connections: BTreeSet::new(),
            counters: Mutex::new(counters),
        })
    }

    /// Metrics for a config's pipelines and granted HTTP connections.
    pub fn for_config(config: &weir_engine::Config) -> Arc<Self> {
        let mut metrics = Self::new(config.pipelines.iter().map(|p| p.name.as_str()));
        let connections = config
            .pipelines
            .iter()
            .flat_map(|p| p.grants.http.keys().cloned())
            .collect();
        if let Some(m) = Arc::get_mut(&mut metrics) {
            m.connections = connections;
        }
        metrics
    }

    /// An event tap feeding these metrics.
    pub fn tap(self: &Arc<Self>) -> EventTap {
        let metrics = self.clone();
        Arc::new(move |event: &SyncEvent| metrics.observe(event))
    }

    fn label(&self, pipeline: Option<&str>) -> String {
        match pipeline {
            Some(p) if self.known.contains(p) => p.to_owned(),
            _ => "other".to_owned(),
        }
    }

    /// Count one event, by the effect the engine maps it to.
    pub fn observe(&self, event: &SyncEvent) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let effect = event.kind.metric();
        if effect == MetricEffect::PluginRejected {
            c.plugins_rejected += 1;
            return;
        }
        let Some(pipeline) = event.pipeline.as_deref() else {
            return;
        };
        let label = self.label(Some(pipeline));
        let run = event.run.clone().unwrap_or_default();
        match effect {
            MetricEffect::RunStarted => {
                c.open_runs.insert(run, (label, event.time));
            }
            MetricEffect::RunEnded { outcome, seconds } => {
                let start = c.open_runs.remove(&run);
                let seconds = seconds.or_else(|| {
                    start
                        .and_then(|(_, t)| event.time.duration_since(t).ok())
                        .map(|d| d.as_secs_f64())
                });
                let p = c.pipelines.entry(label).or_default();
                match outcome {
                    RunOutcome::Completed => p.runs_completed += 1,
                    RunOutcome::Failed => p.runs_failed += 1,
                    RunOutcome::Cancelled => p.runs_cancelled += 1,
                }
                if let Some(s) = seconds {
                    let bucket = DURATION_BUCKETS.iter().position(|&b| s <= b);
                    if let Some(i) = bucket {
                        p.duration_buckets[i] += 1;
                    }
                    p.duration_count += 1;
                    p.duration_sum += s;
                }
            }
            MetricEffect::Batch {
                rows_read,
                rows_loaded,
                rows_rejected,
            } => {
                let p = c.pipelines.entry(label).or_default();
                p.rows_read += rows_read;
                p.rows_loaded += rows_loaded;
                p.rows_rejected += rows_rejected;
                p.batches += 1;
            }
            MetricEffect::Http { connection, usage } => {
                let connection = if self.connections.contains(&connection) {
                    connection
                } else {
                    "other".to_owned()
                };
                *c.http.entry((label, connection)).or_default() += usage;
            }
            MetricEffect::WorkerError => c.pipelines.entry(label).or_default().plugin_errors += 1,
            MetricEffect::RunSkipped => c.pipelines.entry(label).or_default().runs_skipped += 1,
            MetricEffect::None | MetricEffect::PluginRejected => {}
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::with_capacity(4096);
        let counter =
            |out: &mut String, name: &str, help: &str, get: &dyn Fn(&PipelineCounters) -> u64| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for (pipeline, p) in &c.pipelines {
                    let _ = writeln!(
                        out,
                        "{name}{{pipeline=\"{}\"}} {}",
                        escape(pipeline),
                        get(p)
                    );
                }
            };
        counter(
            &mut out,
            "weir_rows_read_total",
            "Rows read by extractors, in committed batches.",
            &|p| p.rows_read,
        );
        counter(
            &mut out,
            "weir_rows_loaded_total",
            "Rows loaded, in committed batches.",
            &|p| p.rows_loaded,
        );
        counter(
            &mut out,
            "weir_rows_rejected_total",
            "Rows rejected (kept in _weir_rejects).",
            &|p| p.rows_rejected,
        );
        counter(
            &mut out,
            "weir_batches_committed_total",
            "Batches committed with their checkpoint.",
            &|p| p.batches,
        );
        counter(
            &mut out,
            "weir_plugin_errors_total",
            "Worker attempts that failed with a plugin or host error (retried or not).",
            &|p| p.plugin_errors,
        );
        counter(
            &mut out,
            "weir_runs_skipped_total",
            "Runs not started because the previous run was still going.",
            &|p| p.runs_skipped,
        );

        let _ = writeln!(
            out,
            "# HELP weir_runs_total Runs finished, by outcome.\n# TYPE weir_runs_total counter"
        );
        for (pipeline, p) in &c.pipelines {
            for (status, n) in [
                ("completed", p.runs_completed),
                ("failed", p.runs_failed),
                ("cancelled", p.runs_cancelled),
            ] {
                let _ = writeln!(
                    out,
                    "weir_runs_total{{pipeline=\"{}\",status=\"{status}\"}} {n}",
                    escape(pipeline)
                );
            }
        }

        let _ = writeln!(
            out,
            "# HELP weir_runs_active Runs in progress.\n# TYPE weir_runs_active gauge"
        );
        for pipeline in c.pipelines.keys() {
            let n = c.open_runs.values().filter(|(p, _)| p == pipeline).count();
            let _ = writeln!(
                out,
                "weir_runs_active{{pipeline=\"{}\"}} {n}",
                escape(pipeline)
            );
        }

        let name = "weir_run_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Wall-clock duration of finished runs.\n# TYPE {name} histogram"
        );
        for (pipeline, p) in &c.pipelines {
            let label = escape(pipeline);
            let mut cumulative = 0;
            for (bound, n) in DURATION_BUCKETS.iter().zip(p.duration_buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "{name}_bucket{{pipeline=\"{label}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{pipeline=\"{label}\",le=\"+Inf\"}} {}",
                p.duration_count
            );
            let _ = writeln!(out, "{name}_sum{{pipeline=\"{label}\"}} {}", p.duration_sum);
            let _ = writeln!(
                out,
                "{name}_count{{pipeline=\"{label}\"}} {}",
                p.duration_count
            );
        }

        let http_counters: [HttpCounter; 5] = [
            (
                "weir_http_requests_total",
                "Requests plugins sent through a granted HTTP connection.",
                |u| u.requests,
            ),
            (
                "weir_http_response_bytes_total",
                "Response body bytes plugins received through a granted HTTP connection.",
                |u| u.response_bytes,
            ),
            (
                "weir_http_errors_total",
                "Requests that failed in transport (connect, TLS, timeout, body cap).",
                |u| u.errors,
            ),
            (
                "weir_http_refused_total",
                "Requests a grant refused (host, path, header or address).",
                |u| u.refused,
            ),
            (
                "weir_http_retried_total",
                "Responses that asked to retry (429/503 with Retry-After) and requests resent with a refreshed token.",
                |u| u.retried,
            ),
        ];
        for (name, help, get) in http_counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((pipeline, connection), usage) in &c.http {
                let _ = writeln!(
                    out,
                    "{name}{{pipeline=\"{}\",connection=\"{}\"}} {}",
                    escape(pipeline),
                    escape(connection),
                    get(usage)
                );
            }
        }

        let _ = writeln!(
            out,
            "# HELP weir_plugins_rejected_total Plugin files that failed to load.\n# TYPE weir_plugins_rejected_total counter\nweir_plugins_rejected_total {}",
            c.plugins_rejected
        );
        out
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_engine::EventKind;

    fn event(pipeline: Option<&str>, run: &str, kind: EventKind) -> SyncEvent {
        SyncEvent {
            id: 1,
            time: SystemTime::now(),
            pipeline: pipeline.map(Into::into),
            run: Some(run.into()),
            partition: None,
            kind,
        }
    }

    fn batch(rows_in: u64, rows_out: u64, rejected: u64) -> EventKind {
        EventKind::BatchCommitted {
            rows_in,
            rows_out,
            rejected,
            bytes: 0,
            checkpoint: "c".into(),
            done: 0,
            total: None,
            filtered: 0,
            counters: Default::default(),
            destinations: Default::default(),
        }
    }

    #[test]
    fn counts_batches_runs_and_durations_with_bounded_labels() {
        let m = Metrics::new(["bank"]);
        let started = EventKind::RunStarted {
            trigger: "manual".into(),
            partitions: 1,
            plugins: Default::default(),
        };
        m.observe(&event(Some("bank"), "r1", started));
        assert!(m.render().contains("weir_runs_active{pipeline=\"bank\"} 1"));
        m.observe(&event(Some("bank"), "r1", batch(10, 8, 2)));
        m.observe(&event(Some("bank"), "r1", batch(5, 5, 0)));
        m.observe(&event(Some("nope"), "r9", batch(100, 100, 0)));
        m.observe(&event(
            Some("bank"),
            "r1",
            EventKind::WorkerRetrying {
                attempt: 1,
                delay_ms: 10,
                error: "x".into(),
            },
        ));
        m.observe(&event(
            Some("bank"),
            "r1",
            EventKind::RunCompleted {
                rows_read: 15,
                rows_loaded: 13,
                rows_rejected: 2,
                seconds: 0.7,
            },
        ));
        let text = m.render();
        for line in [
            "weir_rows_read_total{pipeline=\"bank\"} 15",
            "weir_rows_loaded_total{pipeline=\"bank\"} 13",
            "weir_rows_rejected_total{pipeline=\"bank\"} 2",
            "weir_batches_committed_total{pipeline=\"bank\"} 2",
            "weir_rows_read_total{pipeline=\"other\"} 100",
            "weir_plugin_errors_total{pipeline=\"bank\"} 1",
            "weir_runs_total{pipeline=\"bank\",status=\"completed\"} 1",
            "weir_runs_active{pipeline=\"bank\"} 0",
            "weir_run_duration_seconds_bucket{pipeline=\"bank\",le=\"0.5\"} 0",
            "weir_run_duration_seconds_bucket{pipeline=\"bank\",le=\"1\"} 1",
            "weir_run_duration_seconds_bucket{pipeline=\"bank\",le=\"+Inf\"} 1",
            "weir_run_duration_seconds_sum{pipeline=\"bank\"} 0.7",
            "weir_run_duration_seconds_count{pipeline=\"bank\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("nope"), "{text}");
    }

    #[test]
    fn counts_http_usage_per_granted_connection_with_bounded_labels() {
        let mut m = Metrics::new(["staff"]);
        Arc::get_mut(&mut m).unwrap().connections = ["hr".to_owned()].into();
        let usage = |requests, refused| EventKind::HttpUsage {
            connection: "hr".into(),
            usage: weir_store::HttpUsage {
                requests,
                response_bytes: requests * 100,
                errors: 0,
                refused,
                retried: 1,
            },
        };
        m.observe(&event(Some("staff"), "r1", usage(3, 0)));
        m.observe(&event(Some("staff"), "r2", usage(2, 1)));
        m.observe(&event(
            Some("staff"),
            "r2",
            EventKind::HttpUsage {
                connection: "(no grant)".into(),
                usage: weir_store::HttpUsage {
                    refused: 4,
                    ..Default::default()
                },
            },
        ));
        let text = m.render();
        for line in [
            "weir_http_requests_total{pipeline=\"staff\",connection=\"hr\"} 5",
            "weir_http_response_bytes_total{pipeline=\"staff\",connection=\"hr\"} 500",
            "weir_http_refused_total{pipeline=\"staff\",connection=\"hr\"} 1",
            "weir_http_retried_total{pipeline=\"staff\",connection=\"hr\"} 2",
            "weir_http_refused_total{pipeline=\"staff\",connection=\"other\"} 4",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("no grant"), "{text}");
    }
}
