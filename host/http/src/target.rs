//! From the URL a plugin asked for to the URL the host requests, or a refusal naming the
//! grant: `http://<grant>/…` (scheme ignored) or the granted base URL itself, the path kept
//! under the grant's base path.

use http::{HeaderMap, Method, Uri};

use crate::grant::{Endpoint, HttpGrant};

/// Why a request was refused; the message is what the plugin and the log see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The grant the request was meant for, when one was recognised.
    pub grant: Option<String>,
    pub message: String,
}

/// Where a request goes once it is allowed.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub grant: HttpGrant,
    pub endpoint: Endpoint,
}

/// The request as the guest wrote it, for messages: `GET http://hr/x`.
pub(crate) fn describe(method: &Method, uri: &Uri) -> String {
    format!("{method} {uri}")
}

fn refuse(grant: &HttpGrant, method: &Method, uri: &Uri, why: impl std::fmt::Display) -> Refusal {
    Refusal {
        grant: Some(grant.name().to_owned()),
        message: format!(
            "weir: http grant \"{}\" refuses {}: {why}",
            grant.name(),
            describe(method, uri)
        ),
    }
}

/// `name → base URL` of every grant, for "no grant matches".
fn granted_list(grants: &[HttpGrant]) -> String {
    if grants.is_empty() {
        return "this step has no http grants (grants.http)".into();
    }
    let list: Vec<String> = grants
        .iter()
        .map(|g| format!("{} → {}", g.name(), g.base_url()))
        .collect();
    format!("granted: {}", list.join(", "))
}

/// Map the guest's request onto a grant, or refuse it.
pub(crate) fn resolve(
    grants: &[HttpGrant],
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Target, Refusal> {
    let no_match = |why: &str| Refusal {
        grant: None,
        message: format!(
            "weir: no http grant matches {}{why}; {}",
            describe(method, uri),
            granted_list(grants)
        ),
    };
    let Some(authority) = uri.authority() else {
        return Err(no_match(" (no host)"));
    };
    let host = authority.host();
    // `http://hr/…`: the grant's name as the host; the scheme is the grant's.
    if let Some(grant) = grants.iter().find(|g| g.name().eq_ignore_ascii_case(host)) {
        if authority.as_str().contains('@') {
            return Err(refuse(grant, method, uri, USERINFO));
        }
        if authority.port().is_some() {
            return Err(refuse(
                grant,
                method,
                uri,
                format!(
                    "a port cannot be given with the grant name ({}); the grant's URL {} says where to connect",
                    authority,
                    grant.base_url()
                ),
            ));
        }
        check_headers(grant, method, uri, headers)?;
        let base = &grant.inner.base;
        let path = relative_path(uri.path(), &base.path, &grant.inner.base_segments)
            .map_err(|why| refuse(grant, method, uri, why.explain(&base.path)))?;
        return Ok(Target {
            endpoint: Endpoint {
                path,
                query: query(uri),
                ..base.clone()
            },
            grant: grant.clone(),
        });
    }
    // The base URL itself: same host, then the grant whose base path holds the path.
    let host = host.to_ascii_lowercase();
    let candidates: Vec<&HttpGrant> = grants
        .iter()
        .filter(|g| g.inner.base.host == host)
        .collect();
    if candidates.is_empty() {
        return Err(no_match(""));
    }
    let path = match normalise(uri.path()) {
        Ok(path) => path,
        Err(why) => {
            let grant = candidates[0];
            return Err(refuse(
                grant,
                method,
                uri,
                why.explain(&grant.inner.base.path),
            ));
        }
    };
    let grant = candidates
        .iter()
        .filter(|g| path.segments.starts_with(&g.inner.base_segments))
        .max_by_key(|g| g.inner.base_segments.len());
    let Some(grant) = grant else {
        // Written under a grant's base path but resolved outside it: a `..` escape.
        let raw: Vec<String> = uri
            .path()
            .trim_start_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect();
        if let Some(grant) = candidates
            .iter()
            .find(|g| raw.starts_with(&g.inner.base_segments))
        {
            return Err(refuse(
                grant,
                method,
                uri,
                PathProblem::Escapes.explain(&grant.inner.base.path),
            ));
        }
        let grant = candidates[0];
        let others = if candidates.len() > 1 {
            format!(
                " (nor under any other grant of this host: {})",
                candidates[1..]
                    .iter()
                    .map(|g| format!("{} → {}", g.name(), g.base_url()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        };
        return Err(refuse(
            grant,
            method,
            uri,
            format!(
                "path {} is outside the grant's base path {} ({}){others}",
                uri.path(),
                grant.inner.base.path,
                grant.base_url()
            ),
        ));
    };
    let base = &grant.inner.base;
    if authority.as_str().contains('@') {
        return Err(refuse(grant, method, uri, USERINFO));
    }
    let scheme = uri.scheme_str().unwrap_or("https");
    if !scheme.eq_ignore_ascii_case(base.scheme.as_str()) {
        return Err(refuse(
            grant,
            method,
            uri,
            format!(
                "it uses {scheme}://, the grant {} ({})",
                base.scheme.as_str(),
                grant.base_url()
            ),
        ));
    }
    let port = authority.port_u16().unwrap_or(base.scheme.default_port());
    if port != base.port {
        return Err(refuse(
            grant,
            method,
            uri,
            format!(
                "port {port} is not the grant's port {} ({})",
                base.port,
                grant.base_url()
            ),
        ));
    }
    check_headers(grant, method, uri, headers)?;
    Ok(Target {
        endpoint: Endpoint {
            path: path.render(),
            query: query(uri),
            ..base.clone()
        },
        grant: (*grant).clone(),
    })
}

const USERINFO: &str =
    "credentials in the URL are not allowed; the host adds the grant's credentials itself";

fn query(uri: &Uri) -> String {
    uri.query().map(|q| format!("?{q}")).unwrap_or_default()
}

/// Credentials are the host's: a plugin that sets its own is refused, whatever the grant's auth.
fn check_headers(
    grant: &HttpGrant,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    for name in [
        http::header::AUTHORIZATION,
        http::header::PROXY_AUTHORIZATION,
    ] {
        if headers.contains_key(&name) {
            let auth = grant.spec().auth.kind();
            return Err(refuse(
                grant,
                method,
                uri,
                format!(
                    "the plugin set its own {} header; the host adds the grant's credentials itself (auth: {auth})",
                    canonical(&name)
                ),
            ));
        }
    }
    Ok(())
}

fn canonical(name: &http::HeaderName) -> &'static str {
    if name == http::header::AUTHORIZATION {
        "Authorization"
    } else {
        "Proxy-Authorization"
    }
}

/// Why a path is not allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathProblem {
    /// A `..` went above the base path (or the root).
    Escapes,
    /// A segment a server could read as a dot segment in another way: an encoded slash or
    /// backslash beside dots (`..%2f`), a backslash, or a `;` parameter (`..;`).
    Ambiguous(String),
}

impl PathProblem {
    fn explain(&self, base_path: &str) -> String {
        match self {
            Self::Escapes => {
                format!("the path leaves the grant's base path {base_path} through \"..\"")
            }
            Self::Ambiguous(segment) => format!(
                "path segment \"{segment}\" could be read as \".\" or \"..\" by a server (an encoded slash or backslash, a backslash or a ';' beside dots); the grant's base path is {base_path}"
            ),
        }
    }
}

/// A path with its dot segments resolved: segments as written (percent-encoding kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Normalised {
    pub segments: Vec<String>,
    pub trailing_slash: bool,
}

impl Normalised {
    pub(crate) fn render(&self) -> String {
        let mut out = String::from("/");
        out.push_str(&self.segments.join("/"));
        if self.trailing_slash && !self.segments.is_empty() {
            out.push('/');
        }
        out
    }
}

/// What a segment is once `%2e` is read as `.`.
enum Dots {
    One,
    Two,
    Neither,
}

fn dots(segment: &str) -> Dots {
    let decoded = segment.replace("%2e", ".").replace("%2E", ".");
    match decoded.as_str() {
        "." => Dots::One,
        ".." => Dots::Two,
        _ => Dots::Neither,
    }
}

/// A segment that is not a dot segment here but may be one to a server that decodes `%2f` or
/// `%5c`, treats `\` as `/`, or drops `;parameters` (Tomcat's `..;`).
fn ambiguous(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    if !(lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains('\\')
        || lower.contains(';'))
    {
        return false;
    }
    let decoded = lower
        .replace("%2e", ".")
        .replace("%2f", "/")
        .replace("%5c", "/")
        .replace('\\', "/");
    decoded
        .split('/')
        .map(|piece| piece.split(';').next().unwrap_or(""))
        .any(|piece| piece == "." || piece == "..")
}

/// Resolve `.` and `..` in `path` (RFC 3986 §5.2.4, with `%2e` read as `.`); `floor` segments
/// at the start may not be removed.
pub(crate) fn normalise_from(start: Vec<String>, path: &str) -> Result<Normalised, PathProblem> {
    let floor = start.len();
    let mut segments = start;
    let rest = path.strip_prefix('/').unwrap_or(path);
    let mut trailing_slash = false;
    if rest.is_empty() {
        return Ok(Normalised {
            segments,
            trailing_slash: path.ends_with('/'),
        });
    }
    let pieces: Vec<&str> = rest.split('/').collect();
    for (i, piece) in pieces.iter().enumerate() {
        let last = i + 1 == pieces.len();
        if ambiguous(piece) {
            return Err(PathProblem::Ambiguous((*piece).to_owned()));
        }
        match dots(piece) {
            Dots::One => trailing_slash = last,
            Dots::Two => {
                if segments.len() <= floor {
                    return Err(PathProblem::Escapes);
                }
                segments.pop();
                trailing_slash = last;
            }
            Dots::Neither if last && piece.is_empty() => trailing_slash = true,
            Dots::Neither => {
                segments.push((*piece).to_owned());
                trailing_slash = false;
            }
        }
    }
    Ok(Normalised {
        segments,
        trailing_slash,
    })
}

/// [`normalise_from`] from the root.
pub(crate) fn normalise(path: &str) -> Result<Normalised, PathProblem> {
    normalise_from(Vec::new(), path)
}

/// The real path of `http://<grant>/<path>`: the base path, then `path` resolved under it.
fn relative_path(path: &str, base_path: &str, base: &[String]) -> Result<String, PathProblem> {
    // `http://hr` and `http://hr/` both mean the base URL as written.
    if path.is_empty() || path == "/" {
        return Ok(base_path.to_owned());
    }
    Ok(normalise_from(base.to_vec(), path)?.render())
}

/// The segments of a grant's base path; dot segments there are a configuration error.
pub(crate) fn base_segments(path: &str) -> Result<Vec<String>, String> {
    let normalised = normalise(path).map_err(|_| format!("base path {path} has dot segments"))?;
    if normalised.render().trim_end_matches('/') != path.trim_end_matches('/') {
        return Err(format!("base path {path} has dot segments"));
    }
    let mut segments = normalised.segments;
    while segments.last().is_some_and(String::is_empty) {
        segments.pop();
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{HttpAuth, HttpGrantSpec, Secret};

    fn grants() -> Vec<HttpGrant> {
        let mut hr = HttpGrantSpec::new("https://hr.example.com/api/");
        hr.auth = HttpAuth::Bearer(Secret::new("t"));
        vec![
            HttpGrant::new("hr", hr).unwrap(),
            HttpGrant::new("files", HttpGrantSpec::new("https://hr.example.com/files")).unwrap(),
            HttpGrant::new("local", HttpGrantSpec::new("http://localhost:8080")).unwrap(),
        ]
    }

    fn map(uri: &str) -> Result<(String, String), String> {
        map_with(uri, &HeaderMap::new())
    }

    fn map_with(uri: &str, headers: &HeaderMap) -> Result<(String, String), String> {
        let uri: Uri = uri.parse().unwrap();
        resolve(&grants(), &Method::GET, &uri, headers)
            .map(|t| (t.grant.name().to_owned(), t.endpoint.to_string()))
            .map_err(|r| r.message)
    }

    fn ok(grant: &str, url: &str) -> Result<(String, String), String> {
        Ok((grant.to_owned(), url.to_owned()))
    }

    #[test]
    fn the_grant_name_maps_onto_the_base_url_whatever_the_scheme() {
        assert_eq!(
            map("http://hr/employees?page=2"),
            ok("hr", "https://hr.example.com/api/employees?page=2")
        );
        assert_eq!(
            map("https://HR/employees/"),
            ok("hr", "https://hr.example.com/api/employees/")
        );
        assert_eq!(map("http://hr"), ok("hr", "https://hr.example.com/api/"));
        assert_eq!(map("http://hr/"), ok("hr", "https://hr.example.com/api/"));
        assert_eq!(
            map("http://files/a.pdf"),
            ok("files", "https://hr.example.com/files/a.pdf")
        );
        assert_eq!(
            map("http://files"),
            ok("files", "https://hr.example.com/files")
        );
        assert_eq!(
            map("http://local/x"),
            ok("local", "http://localhost:8080/x")
        );
        // Dot segments that stay inside are resolved.
        assert_eq!(
            map("http://hr/a/../b/./c"),
            ok("hr", "https://hr.example.com/api/b/c")
        );
        assert_eq!(
            map("http://hr/a/%2e%2E/b"),
            ok("hr", "https://hr.example.com/api/b")
        );
        // Percent-encoding elsewhere is kept as written.
        assert_eq!(
            map("http://hr/a%20b/c%2fd"),
            ok("hr", "https://hr.example.com/api/a%20b/c%2fd")
        );
    }

    #[test]
    fn the_base_url_itself_is_accepted_under_its_path() {
        assert_eq!(
            map("https://hr.example.com/api/employees"),
            ok("hr", "https://hr.example.com/api/employees")
        );
        assert_eq!(
            map("https://HR.EXAMPLE.COM:443/api"),
            ok("hr", "https://hr.example.com/api")
        );
        assert_eq!(
            map("https://hr.example.com/files/x"),
            ok("files", "https://hr.example.com/files/x")
        );
        assert_eq!(
            map("http://localhost:8080/"),
            ok("local", "http://localhost:8080/")
        );
        assert_eq!(
            map("https://hr.example.com/api/x/../y"),
            ok("hr", "https://hr.example.com/api/y")
        );
    }

    #[test]
    fn paths_that_leave_the_base_are_refused_naming_the_grant() {
        let cases = [
            (
                "http://hr/../admin",
                "the path leaves the grant's base path /api/ through \"..\"",
            ),
            ("http://hr/a/../../admin", "leaves the grant's base path"),
            ("http://hr/%2e%2e/admin", "leaves the grant's base path"),
            ("http://hr/%2E./admin", "leaves the grant's base path"),
            (
                "http://hr/..%2fadmin",
                "path segment \"..%2fadmin\" could be read",
            ),
            ("http://hr/..%5Cadmin", "could be read as"),
            ("http://hr/..;/admin", "could be read as"),
            (
                "https://hr.example.com/api/../admin",
                "the path leaves the grant's base path /api/ through \"..\"",
            ),
            (
                "https://hr.example.com/admin",
                "path /admin is outside the grant's base path /api/ (https://hr.example.com/api/)",
            ),
            (
                "https://hr.example.com/apix",
                "is outside the grant's base path",
            ),
            (
                "http://hr.example.com/api/x",
                "it uses http://, the grant https (https://hr.example.com/api/)",
            ),
            (
                "https://hr.example.com:8443/api/x",
                "port 8443 is not the grant's port 443",
            ),
            (
                "http://hr:8080/x",
                "a port cannot be given with the grant name (hr:8080)",
            ),
            (
                "http://user:pw@hr/x",
                "credentials in the URL are not allowed",
            ),
        ];
        for (uri, needle) in cases {
            let message = map(uri).unwrap_err();
            assert!(
                message.starts_with("weir: http grant \""),
                "{uri}: {message}"
            );
            assert!(message.contains(needle), "{uri}: {message}");
            assert!(
                message.contains(&format!("GET {uri}")) || uri.contains("HR"),
                "{uri}: {message}"
            );
        }
        assert!(
            map("http://hr/../admin")
                .unwrap_err()
                .starts_with("weir: http grant \"hr\" refuses GET http://hr/../admin: ")
        );
    }

    #[test]
    fn other_hosts_are_refused_listing_the_grants() {
        let message = map("https://evil.example.com/api/").unwrap_err();
        assert_eq!(
            message,
            "weir: no http grant matches GET https://evil.example.com/api/; granted: hr → https://hr.example.com/api/, files → https://hr.example.com/files, local → http://localhost:8080/"
        );
        let none = resolve(
            &[],
            &Method::GET,
            &"http://hr/".parse().unwrap(),
            &HeaderMap::new(),
        )
        .unwrap_err();
        assert!(
            none.message
                .ends_with("this step has no http grants (grants.http)"),
            "{}",
            none.message
        );
    }

    #[test]
    fn a_plugin_set_authorization_is_refused() {
        for name in ["authorization", "proxy-authorization"] {
            let mut headers = HeaderMap::new();
            headers.insert(name, "Bearer stolen".parse().unwrap());
            let message = map_with("http://hr/x", &headers).unwrap_err();
            assert!(
                message.starts_with(
                    "weir: http grant \"hr\" refuses GET http://hr/x: the plugin set its own"
                ),
                "{message}"
            );
            assert!(
                message.contains("the host adds the grant's credentials itself (auth: bearer)"),
                "{message}"
            );
            let message = map_with("https://hr.example.com/api/x", &headers).unwrap_err();
            assert!(message.contains("the plugin set its own"), "{message}");
        }
    }

    #[test]
    fn base_paths_are_split_and_must_be_clean() {
        assert_eq!(base_segments("/").unwrap(), Vec::<String>::new());
        assert_eq!(base_segments("/api/").unwrap(), vec!["api"]);
        assert_eq!(base_segments("/api/v1").unwrap(), vec!["api", "v1"]);
        assert!(base_segments("/api/../x/").is_err());
        assert!(base_segments("/api/./x/").is_err());
    }
}
