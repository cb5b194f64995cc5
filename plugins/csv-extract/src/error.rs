//! Errors: the contract's `error` variant (re-exported by the SDK), whose case tells the host
//! whether to retry. Single bad records are rejects, never errors.

pub use weir_sdk::Error;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Map a read error on `path` to the case the host should act on: a vanished file or a missing
/// grant is not worth retrying, anything else (an I/O hiccup) is.
pub fn io_error(path: &str, what: &str, e: &std::io::Error) -> Error {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => Error::BadData(format!("{path}: {what}: file not found")),
        ErrorKind::PermissionDenied => Error::AccessDenied(format!(
            "{path}: {what}: permission denied; its directory must be listed in grants.read_dirs"
        )),
        _ => Error::Unavailable(format!("{path}: {what}: {e}")),
    }
}
