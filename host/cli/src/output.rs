//! Terminal output: logging setup, progress bars, number formatting.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write as _};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;
use weir_engine::events::EventTap;
use weir_engine::{EventKind, SyncEvent};
use weir_store::{DestinationCount, HttpUsage};

/// Logs go to stderr; `RUST_LOG` wins over `-v`.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn,weir::plugin=info",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .compact()
        .init();
}

/// The second line of a plugin in `weir plugins list`: the pipelines that use it.
pub fn print_used_by(pipelines: &[String]) {
    let users = if pipelines.is_empty() {
        "no pipeline".to_owned()
    } else {
        pipelines.join(", ")
    };
    println!("  {:<16} used by: {users}", "");
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One progress bar per partition, on a terminal only.
pub struct Progress {
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            multi: std::io::stderr().is_terminal().then(MultiProgress::new),
            bars: HashMap::new(),
        }
    }

    pub fn on_event(&mut self, event: &SyncEvent) {
        let (Some(multi), Some(partition)) = (&self.multi, &event.partition) else {
            return;
        };
        let bar = self.bars.entry(partition.clone()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("{prefix:40!} [{bar:30}] {percent:>3}% {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(partition.clone());
            bar
        });
        match &event.kind {
            EventKind::BatchCommitted { done, total, .. } => {
                if let Some(total) = total {
                    bar.set_length(*total);
                }
                bar.set_position(*done);
            }
            EventKind::WorkerCompleted {
                rows_loaded,
                rows_rejected,
                ..
            } => {
                bar.finish_with_message(format!(
                    "{} loaded, {} rejected",
                    thousands(*rows_loaded),
                    thousands(*rows_rejected)
                ));
            }
            EventKind::WorkerRetrying {
                attempt, delay_ms, ..
            } => {
                bar.set_message(format!(
                    "attempt {attempt} failed, retrying in {:.1} s",
                    *delay_ms as f64 / 1e3
                ));
            }
            EventKind::WorkerFailed { .. } => bar.abandon_with_message("failed"),
            _ => {}
        }
    }

    pub fn clear(&self) {
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }
}

/// Every event of `weir run`, through the bus's tap: written to the `--events` file, and
/// tallied per pipeline for the lines after the summary table.
pub struct Recorder {
    inner: Mutex<Recorded>,
}

#[derive(Default)]
struct Recorded {
    events_out: Option<std::io::BufWriter<std::fs::File>>,
    pipelines: BTreeMap<String, Details>,
}

/// What a pipeline's run did beyond its totals.
#[derive(Default)]
struct Details {
    filtered: u64,
    counters: BTreeMap<String, u64>,
    destinations: BTreeMap<String, DestinationCount>,
    http: BTreeMap<String, HttpUsage>,
}

impl Recorder {
    pub fn new(events_out: Option<std::fs::File>) -> Self {
        Self {
            inner: Mutex::new(Recorded {
                events_out: events_out.map(std::io::BufWriter::new),
                ..Recorded::default()
            }),
        }
    }

    pub fn tap(self: &Arc<Self>) -> EventTap {
        let recorder = self.clone();
        Arc::new(move |event: &SyncEvent| recorder.record(event))
    }

    fn record(&self, event: &SyncEvent) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(out) = inner.events_out.as_mut() {
            // Flushed per event: the file is complete up to the moment it is read.
            let _ = serde_json::to_writer(&mut *out, event);
            let _ = out.write_all(b"\n");
            let _ = out.flush();
        }
        let Some(pipeline) = &event.pipeline else {
            return;
        };
        match &event.kind {
            EventKind::BatchCommitted {
                filtered,
                counters,
                destinations,
                ..
            } => {
                let d = inner.pipelines.entry(pipeline.clone()).or_default();
                d.filtered += filtered;
                for (name, n) in counters {
                    *d.counters.entry(name.clone()).or_default() += n;
                }
                for (name, count) in destinations {
                    *d.destinations.entry(name.clone()).or_default() += *count;
                }
            }
            EventKind::HttpUsage { connection, usage } => {
                let d = inner.pipelines.entry(pipeline.clone()).or_default();
                *d.http.entry(connection.clone()).or_default() += *usage;
            }
            _ => {}
        }
    }

    /// The lines after a pipeline's summary table: rows filtered, per-destination counts
    /// (when there is more than one destination), transform counts and HTTP usage.
    pub fn print_details(&self, pipeline: &str) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(d) = inner.pipelines.get(pipeline) else {
            return;
        };
        if d.filtered > 0 {
            println!("filtered out by transforms: {}", thousands(d.filtered));
        }
        if d.destinations.len() > 1 {
            for (name, c) in &d.destinations {
                println!(
                    "destination {name}: {} loaded, {} rejected",
                    thousands(c.loaded),
                    thousands(c.rejected)
                );
            }
        }
        for (name, n) in &d.counters {
            println!("count {name}: {}", thousands(*n));
        }
        for (name, u) in &d.http {
            println!(
                "http {name}: {} requests, {} received, {} errors, {} refused, {} retried",
                thousands(u.requests),
                bytes(u.response_bytes),
                thousands(u.errors),
                thousands(u.refused),
                thousands(u.retried)
            );
        }
    }
}

/// `1536` → `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_separators() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_000), "1,000");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(super::bytes(10), "10 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
