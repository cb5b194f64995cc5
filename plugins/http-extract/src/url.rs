//! The few URL operations a REST client needs: a query string, a relative reference resolved
//! against the page it came from, and the `next` target of an RFC 8288 `Link` header.
//! (A full URL crate would bring IDNA tables into every component for none of its use.)

/// `url` with `params` appended to its query, each name and value percent-encoded.
pub fn with_params(url: &str, params: &[(String, String)]) -> String {
    let mut out = url.to_owned();
    for (name, value) in params {
        out.push(if out.contains('?') { '&' } else { '?' });
        encode_into(&mut out, name);
        out.push('=');
        encode_into(&mut out, value);
    }
    out
}

/// Percent-encode everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    encode_into(&mut out, s);
    out
}

fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// `reference` (from a body or a header) resolved against `base`, the URL of the page it came
/// from, per RFC 3986 §5.2 for the forms APIs use: absolute, `//authority/…`, `/path`, `?query`
/// and a relative path. Dot segments are kept: the host's grant check sees the result.
pub fn resolve(base: &str, reference: &str) -> String {
    let reference = reference.trim();
    if reference.contains("://") && !reference.starts_with('/') && !reference.starts_with('?') {
        return reference.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let path_start = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..path_start];
    let path_and_query = rest[path_start..].split('#').next().unwrap_or_default();
    let path = path_and_query.split('?').next().unwrap_or_default();
    if let Some(net) = reference.strip_prefix("//") {
        format!("{scheme}://{net}")
    } else if reference.starts_with('/') {
        format!("{scheme}://{authority}{reference}")
    } else if reference.starts_with('?') {
        format!("{scheme}://{authority}{path}{reference}")
    } else if reference.is_empty() {
        format!("{scheme}://{authority}{path_and_query}")
    } else {
        let dir = match path.rfind('/') {
            Some(i) => &path[..=i],
            None => "/",
        };
        format!("{scheme}://{authority}{dir}{reference}")
    }
}

/// The target of the first link with relation `next` among `Link` header values
/// (`<https://…?page=3>; rel="next", <…>; rel="last"`). Relations are case-insensitive and a
/// `rel` may list several (`rel="next last"`).
pub fn link_next<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    for value in values {
        let mut rest = value;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let close = after.find('>')?;
            let target = &after[..close];
            // The parameters run to the next link: a `,` outside quotes followed by `<`.
            let params_all = &after[close + 1..];
            let mut in_quotes = false;
            let mut end = params_all.len();
            for (i, c) in params_all.char_indices() {
                match c {
                    '"' => in_quotes = !in_quotes,
                    ',' if !in_quotes => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let params = &params_all[..end];
            let is_next = params.split(';').any(|p| {
                let Some((name, val)) = p.split_once('=') else {
                    return false;
                };
                name.trim().eq_ignore_ascii_case("rel")
                    && val
                        .trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if is_next {
                return Some(target.trim().to_owned());
            }
            rest = &params_all[end..];
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_encoded_and_appended() {
        let p = |kv: &[(&str, &str)]| -> Vec<(String, String)> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            with_params("http://hr/employees", &p(&[("page", "2"), ("q", "a b&c")])),
            "http://hr/employees?page=2&q=a%20b%26c"
        );
        assert_eq!(
            with_params(
                "http://hr/e?x=1",
                &p(&[("since", "2026-01-01T00:00:00+01:00")])
            ),
            "http://hr/e?x=1&since=2026-01-01T00%3A00%3A00%2B01%3A00"
        );
        assert_eq!(encode("ü/"), "%C3%BC%2F");
    }

    #[test]
    fn references_resolve_against_their_page() {
        let base = "http://hr/api/employees?page=1";
        for (reference, expected) in [
            ("http://other/x", "http://other/x"),
            (
                "https://hr/api/employees?page=2",
                "https://hr/api/employees?page=2",
            ),
            ("//hr2/x", "http://hr2/x"),
            (
                "/api/employees?cursor=abc",
                "http://hr/api/employees?cursor=abc",
            ),
            ("?page=2", "http://hr/api/employees?page=2"),
            ("employees?page=2", "http://hr/api/employees?page=2"),
            ("", "http://hr/api/employees?page=1"),
        ] {
            assert_eq!(resolve(base, reference), expected, "{reference}");
        }
        assert_eq!(resolve("http://hr", "e?p=2"), "http://hr/e?p=2");
    }

    #[test]
    fn link_headers_give_the_next_target() {
        let h = r#"<http://hr/e?page=1>; rel="first", <http://hr/e?page=3>; rel="next", <http://hr/e?page=9>; rel="last""#;
        assert_eq!(link_next([h]).as_deref(), Some("http://hr/e?page=3"));
        assert_eq!(
            link_next([r#"</e?page=2>; title="a, b"; REL="Next Last""#]).as_deref(),
            Some("/e?page=2"),
            "quoted commas, case and several relations"
        );
        assert_eq!(
            link_next([
                "<http://hr/e?page=1>; rel=prev",
                "<http://hr/e?page=3>;rel=next"
            ])
            .as_deref(),
            Some("http://hr/e?page=3"),
            "several headers, unquoted rel"
        );
        assert_eq!(link_next([r#"<http://hr/e?page=1>; rel="prev""#]), None);
        assert_eq!(link_next([r#"<http://hr/nextpage>; rel="nextish""#]), None);
        assert_eq!(link_next(["garbage"]), None);
        assert_eq!(link_next([]), None);
    }
}
