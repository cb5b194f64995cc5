//! One plugin instance in its store, and the guard around every call into it.

use std::sync::Arc;

use wasmtime::{Store, UpdateDeadline};
use weir_bindings::types::Error as GuestError;

use crate::error::{FaultKind, PluginError};
use crate::limits::{EPOCH_TICK, Limits};
use crate::state::PluginState;

/// A store plus the bookkeeping that makes calls safe: limits, deadline, poisoning.
pub struct Sandbox {
    pub(crate) store: Store<PluginState>,
    pub(crate) limits: Limits,
    /// `"name" version` for messages.
    pub(crate) label: Arc<str>,
    /// Set once a call trapped or was cancelled; the instance must not be entered again.
    poisoned: Option<String>,
    /// When the current call began, to say how long a stopped call ran.
    call_started: std::time::Instant,
    /// The current call's cap on data copied out of the guest, and the limit it comes from.
    data_cap: DataCap,
}

/// How many bytes the host copies out of the guest in one call, and which limit says so.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataCap {
    pub bytes: usize,
    /// The limit's name in `weir.toml`, for the message.
    pub limit: &'static str,
}

impl Sandbox {
    pub(crate) fn new(
        engine: &wasmtime::Engine,
        state: PluginState,
        limits: Limits,
        label: Arc<str>,
    ) -> Self {
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.store_limits);
        let cpu_limit = limits.cpu_per_call;
        store.set_epoch_deadline(1);
        // Every tick, yield to tokio (so a wall-clock timeout can fire and other tasks run) and
        // charge the time since the previous tick to the call's CPU budget. Real time between
        // ticks, not a tick count, keeps the deadline right when a loaded machine delays the
        // ticker; the cap keeps time spent descheduled after a yield from being charged.
        store.epoch_deadline_callback(move |mut ctx| {
            let state = ctx.data_mut();
            let now = std::time::Instant::now();
            state.guest_time_in_call += now.duration_since(state.last_tick).min(EPOCH_TICK * 3);
            state.last_tick = now;
            if state.guest_time_in_call > cpu_limit {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Self {
            store,
            limits,
            label,
            poisoned: None,
            call_started: std::time::Instant::now(),
            data_cap: DataCap {
                bytes: 0,
                limit: "limits.max_result_bytes",
            },
        }
    }

    /// The cap for control calls (everything but batches).
    pub(crate) fn result_cap(&self) -> DataCap {
        DataCap {
            bytes: self.limits.max_result_bytes,
            limit: "limits.max_result_bytes",
        }
    }

    /// Check the instance may be entered, reset the per-call CPU budget and set how much data
    /// the call may hand the host.
    ///
    /// The cap is wasmtime's hostcall fuel: every string and list lifted out of the guest in
    /// one call (the call's result, and each host call's arguments) is charged as the host
    /// holds it, before it is copied, so a result whose many lists alias one large guest buffer
    /// is stopped at the cap instead of being copied once per reference. (Lifting into
    /// `WasmList`s and copying them out later is no alternative in wasmtime 48: it runs the
    /// guest's post-return, which frees the buffers, before the call returns.)
    pub(crate) fn enter(&mut self, call: &'static str, cap: DataCap) -> Result<(), PluginError> {
        if let Some(reason) = &self.poisoned {
            return Err(PluginError {
                plugin: self.label.to_string(),
                call,
                kind: FaultKind::Trap,
                message: format!("instance unusable after an earlier failure ({reason})"),
                retry_after: None,
            });
        }
        let now = std::time::Instant::now();
        let state = self.store.data_mut();
        state.guest_time_in_call = std::time::Duration::ZERO;
        state.last_tick = now;
        state.call_deadline = now + self.limits.wall_per_call;
        // A Retry-After belongs to the call whose requests got it, and a request sent ahead
        // in one call is answered in the next: keep what arrived since the previous call began.
        state.forget_retry_after_before(self.call_started);
        self.call_started = now;
        self.data_cap = cap;
        self.store.set_hostcall_fuel(cap.bytes);
        Ok(())
    }

    /// Classify a call's outcome, poisoning the instance after traps and timeouts.
    pub(crate) fn leave<T>(
        &mut self,
        call: &'static str,
        outcome: Result<wasmtime::Result<Result<T, GuestError>>, tokio::time::error::Elapsed>,
    ) -> Result<T, PluginError> {
        let result = match outcome {
            Ok(Ok(Ok(value))) => return Ok(value),
            Ok(Ok(Err(guest))) => {
                PluginError::from_guest(&self.label, call, guest, self.limits.max_message_bytes)
            }
            Ok(Err(host)) => PluginError::from_host(&self.label, call, host),
            Err(_) => PluginError {
                plugin: self.label.to_string(),
                call,
                kind: FaultKind::Timeout,
                message: format!("no answer within {:?}", self.limits.wall_per_call),
                retry_after: None,
            },
        };
        let mut result = result;
        if result.kind == FaultKind::DataLimit
            && result.message.contains(crate::error::FUEL_EXHAUSTED)
        {
            let hint = if self.data_cap.limit.contains("max_batch_bytes") {
                "; lower batch_size or raise limits.max_batch_bytes"
            } else {
                ""
            };
            result.message = format!(
                "handed the host more than {} bytes in one call ({}); the host stopped copying there{hint}",
                self.data_cap.bytes, self.data_cap.limit
            );
        }
        if matches!(result.kind, FaultKind::CpuLimit | FaultKind::Timeout) {
            result.message = format!(
                "stopped after {:.3} s ({})",
                self.call_started.elapsed().as_secs_f64(),
                result.message
            );
        }
        if result.kind == FaultKind::Unavailable {
            result.retry_after = self.store.data().take_retry_after();
        }
        if result.kind.poisons_instance() {
            self.poisoned = Some(format!("{}: {}", call, result.message));
        }
        Err(result)
    }

    /// Whether the instance was poisoned and must be re-created.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }
}

/// Call into a sandboxed instance with the wall-clock timeout, CPU deadline, data cap and fault
/// classification. `$call` is the WIT function name used in messages, `$cap` the call's
/// [`DataCap`]; the body gets the store.
///
/// A macro rather than a function because the call future borrows the store mutably while the
/// guard needs the sandbox's other fields.
macro_rules! guarded {
    ($sandbox:expr, $call:literal, $cap:expr, |$store:ident| $body:expr) => {{
        let sandbox: &mut $crate::sandbox::Sandbox = &mut $sandbox;
        let cap = $cap;
        match sandbox.enter($call, cap) {
            Err(e) => Err(e),
            Ok(()) => {
                let outcome = {
                    let $store = &mut sandbox.store;
                    tokio::time::timeout(sandbox.limits.wall_per_call, $body).await
                };
                sandbox.leave($call, outcome)
            }
        }
    }};
}
pub(crate) use guarded;

/// Like [`guarded!`] for calls whose WIT result is not a `result<_, error>`.
macro_rules! guarded_infallible {
    ($sandbox:expr, $call:literal, $cap:expr, |$store:ident| $body:expr) => {{
        $crate::sandbox::guarded!($sandbox, $call, $cap, |$store| async {
            $body.await.map(Ok::<_, weir_bindings::types::Error>)
        })
    }};
}
pub(crate) use guarded_infallible;
