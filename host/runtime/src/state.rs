//! The data of one plugin store: its WASI context, resource table, limits and grants.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use weir_http::wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use weir_http::{HttpHooks, HttpMeter};

use crate::grants::{Databases, Grants};
use crate::limiter::PluginLimiter;
use crate::limits::Limits;

/// Who is running: the labels every log line and error of a plugin carries.
#[derive(Debug, Clone, Default)]
pub struct CallSite {
    /// Plugin name and version, e.g. `csv-extract 0.1.0` (just the file name before describe).
    pub plugin: String,
    /// Pipeline, when running one.
    pub pipeline: Option<String>,
    /// Partition, when running one.
    pub partition: Option<String>,
    /// Where the plugin's log lines (its `log` calls and stdout/stderr lines) go besides the
    /// host log; the engine turns them into events.
    pub logs: Option<LogSink>,
}

/// The function behind a [`LogSink`]: called with each line's level and text.
pub type LogFn = dyn Fn(tracing::Level, &str) + Send + Sync;

/// Receives a plugin's log lines with their level (see [`CallSite::logs`]).
#[derive(Clone)]
pub struct LogSink(pub Arc<LogFn>);

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogSink")
    }
}

/// Store data of a plugin instance.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) store_limits: PluginLimiter,
    /// The instance's limits, for the host functions' own caps.
    pub(crate) limits: Limits,
    pub(crate) databases: Databases,
    /// `sql` connection handles open now (capped at [`crate::limits::MAX_SQL_CONNECTIONS`]).
    pub(crate) sql_connections: usize,
    /// When the current call must end (its wall-clock timeout); `sql` statements stop by then.
    pub(crate) call_deadline: std::time::Instant,
    pub(crate) site: Arc<CallSite>,
    /// Time the current call has spent running guest code, as sampled at epoch ticks (the
    /// CPU deadline compares it with the limit).
    pub(crate) guest_time_in_call: std::time::Duration,
    /// When the guest last passed an epoch tick (or the call began).
    pub(crate) last_tick: std::time::Instant,
    http_ctx: WasiHttpCtx,
    /// weir's `wasi:http` hook over the granted connections (`grants.http`); with none granted
    /// it refuses every request.
    http: HttpHooks,
}

impl PluginState {
    /// A deny-by-default sandbox: no environment, no arguments, no sockets, no preopens except
    /// the granted directories (read-only), stdout/stderr captured into the host log.
    pub fn new(
        site: CallSite,
        limits: &Limits,
        grants: &Grants,
        databases: Databases,
    ) -> anyhow::Result<Self> {
        let site = Arc::new(site);
        let mut wasi = WasiCtxBuilder::new();
        let max_line = limits.max_message_bytes;
        wasi.stdout(LogStream::new(site.clone(), false, max_line))
            .stderr(LogStream::new(site.clone(), true, max_line))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for dir in &grants.read_dirs {
            wasi.preopened_dir(&dir.host_path, &dir.guest_path, FsPerms::ReadOnly)
                .map_err(|e| {
                    anyhow::anyhow!("failed to grant directory {}: {e}", dir.host_path.display())
                })?;
        }
        let store_limits = PluginLimiter::new(limits.memory_bytes);
        // Refusals and failures of granted HTTP are explained in the instance's log, so they
        // reach the user as plugin_log events even when the plugin swallows the error code.
        let log_site = site.clone();
        let report: weir_http::Reporter =
            Arc::new(move |level, line: &str| emit_plugin_log(&log_site, level, line));
        let http = HttpHooks::new(grants.http.values(), Some(report));
        Ok(Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            store_limits,
            limits: limits.clone(),
            databases,
            sql_connections: 0,
            call_deadline: std::time::Instant::now() + limits.wall_per_call,
            site,
            guest_time_in_call: std::time::Duration::ZERO,
            last_tick: std::time::Instant::now(),
            http_ctx: WasiHttpCtx::new(),
            http,
        })
    }

    /// Labels of this instance.
    pub fn site(&self) -> &CallSite {
        &self.site
    }

    /// What this instance did over its granted HTTP connections.
    pub fn http_meter(&self) -> HttpMeter {
        self.http.meter()
    }

    /// The `Retry-After` of the 429s/503s kept (see [`Self::forget_retry_after_before`]), cleared.
    pub(crate) fn take_retry_after(&self) -> Option<std::time::Duration> {
        self.http.take_retry_after()
    }

    /// Forget a `Retry-After` that arrived before `instant`.
    pub(crate) fn forget_retry_after_before(&self, instant: std::time::Instant) {
        self.http.forget_retry_after_before(instant);
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http,
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Emit one line a plugin logged, with its labels as fields.
pub(crate) fn emit_plugin_log(site: &CallSite, level: tracing::Level, message: &str) {
    let pipeline = site.pipeline.as_deref().unwrap_or("-");
    let partition = site.partition.as_deref().unwrap_or("-");
    let plugin = site.plugin.as_str();
    match level {
        tracing::Level::ERROR => {
            tracing::error!(target: "weir::plugin", plugin, pipeline, partition, "{message}")
        }
        tracing::Level::WARN => {
            tracing::warn!(target: "weir::plugin", plugin, pipeline, partition, "{message}")
        }
        tracing::Level::INFO => {
            tracing::info!(target: "weir::plugin", plugin, pipeline, partition, "{message}")
        }
        tracing::Level::DEBUG => {
            tracing::debug!(target: "weir::plugin", plugin, pipeline, partition, "{message}")
        }
        tracing::Level::TRACE => {
            tracing::trace!(target: "weir::plugin", plugin, pipeline, partition, "{message}")
        }
    }
    if let Some(LogSink(sink)) = &site.logs {
        sink(level, message);
    }
}

/// A guest's stdout or stderr, turned into log lines.
struct LogStream {
    site: Arc<CallSite>,
    is_stderr: bool,
    max_line: usize,
}

impl LogStream {
    fn new(site: Arc<CallSite>, is_stderr: bool, max_line: usize) -> Self {
        Self {
            site,
            is_stderr,
            max_line,
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            site: self.site.clone(),
            level: if self.is_stderr {
                tracing::Level::WARN
            } else {
                tracing::Level::INFO
            },
            pending: Vec::new(),
            line_bytes: 0,
            max_line: self.max_line,
        })
    }
}

/// Buffers output until a newline and logs each complete line. A line longer than the cap
/// keeps only its beginning (so a plugin printing without newlines cannot grow host memory)
/// and is logged at its newline with the truncation marker.
struct LineWriter {
    site: Arc<CallSite>,
    level: tracing::Level,
    pending: Vec<u8>,
    /// Bytes of the current line so far, kept or not.
    line_bytes: usize,
    max_line: usize,
}

impl LineWriter {
    fn flush_line(&mut self) {
        let text = String::from_utf8_lossy(&self.pending);
        let text = text.trim_end_matches(['\r', '\n']);
        if !text.is_empty() {
            if self.line_bytes > self.pending.len() {
                let line = format!("{text}{}", crate::caps::marker(self.line_bytes));
                emit_plugin_log(&self.site, self.level, &line);
            } else {
                emit_plugin_log(&self.site, self.level, text);
            }
        }
        self.pending.clear();
        self.line_bytes = 0;
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        for &byte in buf {
            if byte == b'\n' {
                self.flush_line();
                continue;
            }
            self.line_bytes += 1;
            if self.pending.len() < self.max_line {
                self.pending.push(byte);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flush_line();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.flush_line();
    }
}
