//! `[[pipeline]] grants.http`: named HTTP connections, their credentials (`${VAR}`
//! interpolated), TLS, timeouts and limits, each problem reported at its grant's line.
//!
//! ```toml
//! grants.http = { hr = { url = "https://hr.example.com/api/", auth = { bearer = "${HR_TOKEN}" } } }
//! ```
//!
//! Keys per grant, with defaults: `url` (required), `auth` (none; `{ bearer = "…" }`,
//! `{ basic = { user, password } }`, `{ oauth2 = { token_url, client_id, client_secret, scope,
//! client_auth = "basic" | "post" } }`), `allow_private = false`, `ca_file` (none; relative to
//! the config file), `connect_timeout_seconds = 10`, `first_byte_timeout_seconds = 30`,
//! `between_bytes_timeout_seconds = 30`, `max_body_bytes = 67108864`, `requests_per_second`
//! (none).

use std::collections::BTreeMap;
use std::ops::Range;

use weir_runtime::{
    ClientAuth, DEFAULT_MAX_BODY_BYTES, HttpAuth, HttpGrant, HttpGrantSpec, HttpTimeouts, OAuth2,
    Secret,
};

use super::Reader;
use super::raw::{RawHttpAuth, RawHttpGrant, RawPipeline};

impl Reader<'_> {
    /// Every `grants.http` entry that checks out; the others are problems.
    pub(super) fn http_grants(&mut self, p: &RawPipeline) -> BTreeMap<String, HttpGrant> {
        let mut grants: BTreeMap<String, HttpGrant> = BTreeMap::new();
        for (name, raw) in &p.grants.http {
            let span = raw.span();
            // Plugins write the name as a URL host, where case does not count.
            if let Some(other) = grants.keys().find(|n| n.eq_ignore_ascii_case(name)) {
                self.problem(
                    &span,
                    format!("http grants \"{other}\" and \"{name}\" differ only in case; plugins could not tell them apart"),
                );
                continue;
            }
            if let Some(spec) = self.http_spec(name, raw.get_ref(), &span) {
                match HttpGrant::new(name, spec) {
                    Ok(grant) => {
                        grants.insert(name.clone(), grant);
                    }
                    Err(m) => self.problem(&span, format!("http grant \"{name}\": {m}")),
                }
            }
        }
        grants
    }

    fn http_spec(
        &mut self,
        name: &str,
        raw: &RawHttpGrant,
        span: &Range<usize>,
    ) -> Option<HttpGrantSpec> {
        let key = |k: &str| format!("grants.http.{name}.{k}");
        let url = self.interpolate(raw.url.get_ref(), &raw.url.span());
        let auth = match &raw.auth {
            None => Some(HttpAuth::None),
            Some(auth) => self.http_auth(name, auth.get_ref(), &auth.span()),
        };
        let ca_file = match &raw.ca_file {
            None => Some(None),
            Some(f) => self
                .interpolate(f.get_ref(), &f.span())
                .map(|f| Some(self.resolve(&f))),
        };
        let d = HttpTimeouts::default();
        let timeouts = HttpTimeouts {
            connect: self.seconds(
                raw.connect_timeout_seconds,
                d.connect,
                &key("connect_timeout_seconds"),
                span,
            ),
            first_byte: self.seconds(
                raw.first_byte_timeout_seconds,
                d.first_byte,
                &key("first_byte_timeout_seconds"),
                span,
            ),
            between_bytes: self.seconds(
                raw.between_bytes_timeout_seconds,
                d.between_bytes,
                &key("between_bytes_timeout_seconds"),
                span,
            ),
        };
        Some(HttpGrantSpec {
            url: url?,
            auth: auth?,
            allow_private: raw.allow_private,
            ca_file: ca_file?,
            timeouts,
            max_body_bytes: raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            requests_per_second: raw.requests_per_second,
        })
    }

    fn http_auth(
        &mut self,
        name: &str,
        raw: &RawHttpAuth,
        span: &Range<usize>,
    ) -> Option<HttpAuth> {
        let secret = |reader: &mut Self, value: &str| reader.interpolate(value, span);
        Some(match raw {
            RawHttpAuth::Bearer(token) => HttpAuth::Bearer(Secret::new(secret(self, token)?)),
            RawHttpAuth::Basic(b) => {
                let user = secret(self, &b.user);
                let password = secret(self, &b.password);
                HttpAuth::Basic {
                    user: user?,
                    password: Secret::new(password?),
                }
            }
            RawHttpAuth::OAuth2(o) => {
                let client_auth = match o.client_auth.as_deref() {
                    None | Some("basic") => ClientAuth::Basic,
                    Some("post") => ClientAuth::Post,
                    Some(other) => {
                        self.problem(
                            span,
                            format!(
                                "grants.http.{name}.auth.oauth2.client_auth = \"{other}\" is not supported (expected \"basic\" or \"post\")"
                            ),
                        );
                        ClientAuth::Basic
                    }
                };
                let token_url = secret(self, &o.token_url);
                let client_id = secret(self, &o.client_id);
                let client_secret = secret(self, &o.client_secret);
                let scope = match &o.scope {
                    None => Some(None),
                    Some(s) => secret(self, s).map(Some),
                };
                HttpAuth::OAuth2(OAuth2 {
                    token_url: token_url?,
                    client_id: client_id?,
                    client_secret: Secret::new(client_secret?),
                    scope: scope?,
                    client_auth,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::config::Config;

    fn parse(grants: &str, env: &[(&str, &str)]) -> Result<Config, String> {
        // One grant per line from line 8.
        let text = format!(
            r#"
[[pipeline]]
name = "hr"
extract = {{ plugin = "http-extract" }}
load = [{{ plugin = "sqlite-load" }}]
history = {{ plugin = "sqlite-history" }}
[pipeline.grants.http]
{grants}
"#
        );
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::parse(Path::new("/etc/weir/weir.toml"), &text, &|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn named_connections_parse_with_interpolated_secrets_and_defaults() {
        let config = parse(
            r#"hr = { url = "https://hr.example.com/api/", auth = { bearer = "${HR_TOKEN}" } }
files = { url = "https://files.internal/", auth = { basic = { user = "weir", password = "${PW}" } }, allow_private = true, connect_timeout_seconds = 2, first_byte_timeout_seconds = 3.5, between_bytes_timeout_seconds = 4, max_body_bytes = 1024, requests_per_second = 0.5 }
sso = { url = "https://api.example.com/", auth = { oauth2 = { token_url = "https://login.example.com/token", client_id = "weir", client_secret = "${SECRET}", scope = "read", client_auth = "post" } } }"#,
            &[("HR_TOKEN", "t0k"), ("PW", "pw"), ("SECRET", "s3")],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let http = &config.pipelines[0].grants.http;
        let hr = http["hr"].spec();
        assert_eq!(hr.auth, HttpAuth::Bearer(Secret::new("t0k")));
        assert!(!hr.allow_private);
        assert_eq!(hr.timeouts, HttpTimeouts::default());
        assert_eq!(hr.max_body_bytes, 64 << 20);
        assert_eq!(hr.requests_per_second, None);
        let files = http["files"].spec();
        assert_eq!(
            files.auth,
            HttpAuth::Basic {
                user: "weir".into(),
                password: Secret::new("pw")
            }
        );
        assert!(files.allow_private);
        assert_eq!(files.timeouts.first_byte, Duration::from_millis(3500));
        assert_eq!(
            (files.max_body_bytes, files.requests_per_second),
            (1024, Some(0.5))
        );
        let HttpAuth::OAuth2(o) = &http["sso"].spec().auth else {
            panic!("oauth2")
        };
        assert_eq!(
            (o.client_secret.expose(), o.scope.as_deref(), o.client_auth),
            ("s3", Some("read"), ClientAuth::Post)
        );
        // No secret in what the configuration shows.
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("t0k") && !shown.contains("s3\"") && !shown.contains("\"pw\""),
            "{shown}"
        );
    }

    #[test]
    fn the_ca_file_is_read_relative_to_the_config_file() {
        let e = parse(
            r#"files = { url = "https://files.internal/", ca_file = "certs/ca.pem" }"#,
            &[],
        )
        .unwrap_err();
        assert!(
            e.contains("http grant \"files\": cannot read ca_file /etc/weir/certs/ca.pem"),
            "{e}"
        );
    }

    #[test]
    fn every_problem_is_reported_naming_the_grant_and_line() {
        let e = parse(
            r#"hr = { url = "ftp://x/", auth = { bearer = "${MISSING}" }, connect_timeout_seconds = 0, colour = "red" }
"a.b" = { url = "https://x/" }
ok = { url = "https://x/" }
sso = { url = "https://x/", auth = { oauth2 = { token_url = "https://x/t", client_id = "i", client_secret = "s", client_auth = "jwt" } } }
Ok = { url = "https://y/" }
rate = { url = "https://x/", requests_per_second = -1 }"#,
            &[],
        )
        .unwrap_err();
        for (line, needle) in [
            (8, "MISSING is not set"),
            (
                8,
                "grants.http.hr.connect_timeout_seconds must be a positive number of seconds, not 0",
            ),
            (8, "unknown field `colour`"),
            (
                9,
                "http grant name \"a.b\" must be 1 to 63 letters, digits, '-' or '_'",
            ),
            (
                13,
                "http grant \"rate\": requests_per_second must be a positive number, not -1",
            ),
            (11, "client_auth = \"jwt\" is not supported"),
            (10, "http grants \"Ok\" and \"ok\" differ only in case"),
        ] {
            let at = format!("/etc/weir/weir.toml:{line}: ");
            assert!(
                e.lines().any(|l| l.starts_with(&at) && l.contains(needle)),
                "{at}{needle} in:\n{e}"
            );
        }
        let e = parse(r#"hr = { url = "ftp://x/" }"#, &[]).unwrap_err();
        assert!(
            e.contains("http grant \"hr\": URL ftp://x/ is ftp:, not http: or https:"),
            "{e}"
        );
        let e = parse(
            r#"hr = { url = "https://x/", auth = { token = "t" } }"#,
            &[],
        )
        .unwrap_err();
        assert!(e.contains("unknown variant `token`"), "{e}");
    }
}
