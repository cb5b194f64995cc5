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
}

impl Sandbox {
    pub(crate) fn new(
        engine: &wasmtime::Engine,
        state: PluginState,
        limits: Limits,
        label: Arc<str>,
    ) -> Self {
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limits);
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
        }
    }

    /// Check the instance may be entered and reset the per-call CPU budget.
    pub(crate) fn enter(&mut self, call: &'static str) -> Result<(), PluginError> {
        if let Some(reason) = &self.poisoned {
            return Err(PluginError {
                plugin: self.label.to_string(),
                call,
                kind: FaultKind::Trap,
                message: format!("instance unusable after an earlier failure ({reason})"),
            });
        }
        let state = self.store.data_mut();
        state.guest_time_in_call = std::time::Duration::ZERO;
        state.last_tick = std::time::Instant::now();
        self.call_started = std::time::Instant::now();
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
            Ok(Ok(Err(guest))) => PluginError::from_guest(&self.label, call, guest),
            Ok(Err(host)) => PluginError::from_host(&self.label, call, host),
            Err(_) => PluginError {
                plugin: self.label.to_string(),
                call,
                kind: FaultKind::Timeout,
                message: format!("no answer within {:?}", self.limits.wall_per_call),
            },
        };
        let mut result = result;
        if matches!(result.kind, FaultKind::CpuLimit | FaultKind::Timeout) {
            result.message = format!(
                "stopped after {:.3} s ({})",
                self.call_started.elapsed().as_secs_f64(),
                result.message
            );
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

/// Call into a sandboxed instance with the wall-clock timeout, CPU deadline and fault
/// classification. `$call` is the WIT function name used in messages; the body gets the store.
///
/// A macro rather than a function because the call future borrows the store mutably while the
/// guard needs the sandbox's other fields.
macro_rules! guarded {
    ($sandbox:expr, $call:literal, |$store:ident| $body:expr) => {{
        let sandbox: &mut $crate::sandbox::Sandbox = &mut $sandbox;
        match sandbox.enter($call) {
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
    ($sandbox:expr, $call:literal, |$store:ident| $body:expr) => {{
        $crate::sandbox::guarded!($sandbox, $call, |$store| async {
            $body.await.map(Ok::<_, weir_bindings::types::Error>)
        })
    }};
}
pub(crate) use guarded_infallible;
