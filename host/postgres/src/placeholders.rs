//! Plugins write parameters `?1`, `?2`, … for every dialect (contract `sql`); PostgreSQL wants
//! `$1`, `$2`, …. The rewrite only touches SQL text: never inside a string literal (`'…'`,
//! `E'…'` with backslash escapes, `$tag$…$tag$`), a quoted identifier (`"…"`) or a comment.

/// `statement` with `?N` outside literals, quoted identifiers and comments rewritten to `$N`.
/// A `?` not followed by a digit is left alone (PostgreSQL's JSON operators `?`, `?|`, `?&`).
pub fn rewrite(statement: &str) -> String {
    let bytes = statement.as_bytes();
    let mut out = String::with_capacity(statement.len());
    let mut i = 0;
    // Start of the text not yet copied to `out`.
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && (i < 2 || !is_ident_byte(bytes[i - 2]));
                i = skip_quoted(bytes, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i, b'"', false),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| i + p + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            b'$' if i == 0 || !is_ident_byte(bytes[i - 1]) => {
                i = match dollar_tag(bytes, i) {
                    Some(tag) => {
                        let body = i + tag.len();
                        find(bytes, body, tag).map_or(bytes.len(), |end| end + tag.len())
                    }
                    None => i + 1,
                };
            }
            b'?' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                && (i == 0 || !is_ident_byte(bytes[i - 1])) =>
            {
                out.push_str(&statement[copied..i]);
                out.push('$');
                i += 1;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&statement[copied..]);
    out
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The index after the literal or identifier opened by `quote` at `start`; a doubled quote is
/// part of it, and with `escapes` so is a backslash-escaped character.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8, escapes: bool) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if escapes && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// Block comments nest in PostgreSQL.
fn skip_block_comment(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// `$tag$` (or `$$`) starting at `start`, if that is what is there (`$1` is a parameter).
fn dollar_tag(bytes: &[u8], start: usize) -> Option<&[u8]> {
    let mut i = start + 1;
    if bytes.get(i).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    while i < bytes.len() && bytes[i] != b'$' {
        if !is_ident_byte(bytes[i]) {
            return None;
        }
        i += 1;
    }
    (i < bytes.len()).then(|| &bytes[start..=i])
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn rewrites_parameters_outside_literals_identifiers_and_comments() {
        assert_eq!(
            rewrite("SELECT a FROM t WHERE b = ?1 AND c = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = $12"
        );
        assert_eq!(
            rewrite("SELECT '?1', \"?2\", ?3 -- ?4\n, ?5 /* ?6 /* ?7 */ ?8 */ , ?9"),
            "SELECT '?1', \"?2\", $3 -- ?4\n, $5 /* ?6 /* ?7 */ ?8 */ , $9"
        );
        assert_eq!(
            rewrite("SELECT 'it''s ?1', E'\\' ?2', $$ ?3 $$, $x$ ?4 $x$, ?5"),
            "SELECT 'it''s ?1', E'\\' ?2', $$ ?3 $$, $x$ ?4 $x$, $5"
        );
        // JSON operators and a parameter glued to a name are not parameters.
        assert_eq!(
            rewrite("SELECT j ? 'k', j ?| ?1, a?1"),
            "SELECT j ? 'k', j ?| $1, a?1"
        );
        // An unterminated literal swallows the rest: the server then refuses the statement.
        assert_eq!(rewrite("SELECT 'x ?1"), "SELECT 'x ?1");
        assert_eq!(rewrite("SELECT ?1, $1"), "SELECT $1, $1");
    }
}
