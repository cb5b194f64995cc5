//! Logging into the host's log and event stream, under the plugin's name, pipeline and
//! partition. (A plugin's stdout and stderr land there too, at `info` and `warn`.)
//!
//! Natively, in a plugin's unit tests, there is no host: messages go to stderr instead.

use crate::bindings::extractor::weir::plugin::log::Level;

fn emit(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::extractor::weir::plugin::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{level:?}: {message}");
}

/// Log at `trace`.
pub fn trace(message: &str) {
    emit(Level::Trace, message);
}

/// Log at `debug`.
pub fn debug(message: &str) {
    emit(Level::Debug, message);
}

/// Log at `info`.
pub fn info(message: &str) {
    emit(Level::Info, message);
}

/// Log at `warn`.
pub fn warn(message: &str) {
    emit(Level::Warn, message);
}

/// Log at `error`.
pub fn error(message: &str) {
    emit(Level::Error, message);
}

#[cfg(test)]
mod tests {
    #[test]
    fn logging_natively_does_not_need_a_host() {
        super::info("hello from a unit test");
    }
}
