//! Masking one value: redact it, keep only its last characters, or replace it with a salted
//! SHA-256 pseudonym. Every mask turns a value into text; a null stays null.

use sha2::{Digest, Sha256};
use weir_sdk::Cell;

/// The text a redacted value becomes.
pub(crate) const REDACTED: &str = "[redacted]";

/// How a column is masked.
#[derive(Clone)]
pub(crate) enum Mask {
    /// Every value becomes [`REDACTED`].
    Redact,
    /// All but the last N characters become `*`; a value of N characters or fewer is all `*`.
    KeepLast(usize),
    /// `hex(SHA-256(salt ‖ value))`: the same value always gives the same pseudonym (so joins
    /// and searches by it still work), and without the salt it cannot be looked up. The hasher
    /// has the salt absorbed already.
    Pseudonym(Sha256),
}

/// Never print the salt, not even inside a hasher's state.
impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mask::Redact => f.write_str("Redact"),
            Mask::KeepLast(n) => write!(f, "KeepLast({n})"),
            Mask::Pseudonym(_) => f.write_str("Pseudonym(<salted>)"),
        }
    }
}

impl Mask {
    /// A pseudonym mask salted with `salt`.
    pub(crate) fn pseudonym(salt: &str) -> Self {
        Mask::Pseudonym(Sha256::new_with_prefix(salt.as_bytes()))
    }

    /// The masked text of the non-null `cell`, written into `out` (cleared first).
    pub(crate) fn apply(&self, cell: Cell<'_>, scratch: &mut String, out: &mut String) {
        out.clear();
        match self {
            Mask::Redact => out.push_str(REDACTED),
            Mask::KeepLast(n) => {
                let text = canonical(cell, scratch);
                let count = text.chars().count();
                let hidden = if count <= *n { count } else { count - n };
                out.extend(std::iter::repeat_n('*', hidden));
                out.extend(text.chars().skip(hidden));
            }
            Mask::Pseudonym(salted) => {
                let digest = match cell {
                    Cell::Blob(bytes) => salted.clone().chain_update(bytes).finalize(),
                    other => salted
                        .clone()
                        .chain_update(canonical(other, scratch).as_bytes())
                        .finalize(),
                };
                for byte in digest {
                    out.push(HEX[usize::from(byte >> 4)]);
                    out.push(HEX[usize::from(byte & 0xf)]);
                }
            }
        }
    }
}

const HEX: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
];

/// A value as its canonical text (the contract's: `true`, `42`, `-1.5`, text as it is).
fn canonical<'a>(cell: Cell<'a>, scratch: &'a mut String) -> &'a str {
    use std::fmt::Write as _;
    match cell {
        Cell::Text(s) => s,
        other => {
            scratch.clear();
            let _ = match other {
                Cell::Boolean(b) => write!(scratch, "{b}"),
                Cell::Integer(i) => write!(scratch, "{i}"),
                Cell::Real(r) => write!(scratch, "{r}"),
                // Blobs are refused for keep_last when the config is read; pseudonyms hash
                // their bytes directly.
                Cell::Blob(b) => write!(scratch, "<{} bytes>", b.len()),
                Cell::Null | Cell::Text(_) => Ok(()),
            };
            scratch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(mask: &Mask, cell: Cell<'_>) -> String {
        let (mut scratch, mut out) = (String::new(), String::new());
        mask.apply(cell, &mut scratch, &mut out);
        out
    }

    #[test]
    fn keep_last_hides_everything_but_the_tail() {
        let m = Mask::KeepLast(4);
        assert_eq!(
            masked(&m, Cell::Text("+41 79 123 45 67")),
            "************5 67"
        );
        assert_eq!(
            masked(&m, Cell::Text("Zürich")),
            "**rich",
            "characters, not bytes"
        );
        assert_eq!(
            masked(&m, Cell::Text("1234")),
            "****",
            "never the whole value"
        );
        assert_eq!(masked(&m, Cell::Text("")), "");
        assert_eq!(masked(&m, Cell::Integer(756_123_456)), "*****3456");
    }

    #[test]
    fn redact_replaces_the_value() {
        assert_eq!(
            masked(&Mask::Redact, Cell::Text("756.1234.5678.97")),
            REDACTED
        );
        assert_eq!(masked(&Mask::Redact, Cell::Boolean(false)), REDACTED);
    }

    #[test]
    fn pseudonyms_are_salted_sha256_in_hex() {
        let m = Mask::pseudonym("pepper-0123456789");
        // printf 'pepper-0123456789alice@example.com' | sha256sum
        assert_eq!(
            masked(&m, Cell::Text("alice@example.com")),
            "9ad49c528a50d96253ba31c3246b48e5c11babbf3a8c30184f8fa57110867b60"
        );
        let again = masked(&m, Cell::Text("alice@example.com"));
        assert_eq!(again, masked(&m, Cell::Text("alice@example.com")), "stable");
        let other_salt = Mask::pseudonym("another-salt-0123");
        assert_ne!(masked(&other_salt, Cell::Text("alice@example.com")), again);
        assert_eq!(
            masked(&m, Cell::Integer(42)),
            masked(&m, Cell::Text("42")),
            "a number hashes as its canonical text"
        );
        assert_eq!(format!("{m:?}"), "Pseudonym(<salted>)");
    }
}
