//! Terminal output: logging setup, progress bars, number formatting.

use std::collections::HashMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;
use weir_engine::{EventKind, SyncEvent};

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

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_separators() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_000), "1,000");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
    }
}
