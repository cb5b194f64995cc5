//! Caps on the strings a plugin hands the host: they are logged, stored in the state database
//! and streamed to every SSE client, so each has a size the host is willing to keep.

/// `text` cut to at most `max` bytes (at a character boundary) plus a visible marker saying
/// how long it was, e.g. `…… (209715200 bytes in all)`. Unchanged when it fits.
pub fn truncate_text(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let total = text.len();
    text.truncate(text.floor_char_boundary(max));
    text.push_str(&marker(total));
    text
}

/// The marker [`truncate_text`] appends.
pub(crate) fn marker(total: usize) -> String {
    format!("… ({total} bytes in all)")
}

/// [`truncate_text`] in place.
pub(crate) fn truncate_in_place(text: &mut String, max: usize) {
    if text.len() > max {
        *text = truncate_text(std::mem::take(text), max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_char_boundary_with_the_full_length() {
        assert_eq!(truncate_text("short".into(), 16), "short");
        assert_eq!(
            truncate_text("abcdefgh".into(), 4),
            "abcd… (8 bytes in all)"
        );
        // "é" is two bytes: a cut in its middle moves back before it.
        assert_eq!(truncate_text("aé€x".into(), 2), "a… (7 bytes in all)");
        let mut s = "x".repeat(100);
        truncate_in_place(&mut s, 10);
        assert_eq!(s, format!("{}… (100 bytes in all)", "x".repeat(10)));
    }
}
