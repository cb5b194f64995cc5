//! The `Host` allow-list, against DNS rebinding.
//!
//! A page on `http://attacker.example` can point that name at 127.0.0.1 once the browser has
//! loaded it; its scripts then reach the API as the *same origin*, so neither `SameSite` nor the
//! `Origin` check nor the absence of CORS stops them reading every open route. What gives them
//! away is the `Host` header: the browser sends the name it resolved, `attacker.example`. So a
//! request is served only when its host is a loopback name, the host `weir serve` listens on, or
//! one the operator named in `engine.allowed_hosts`. IP literals are allowed only when listed too:
//! a rebinding page never has one, but a short list is easier to reason about.

use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::http::uri::Authority;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::error_response;

/// Loopback names every local client may use, with any port.
const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Host names the API answers to (lowercase, without port; IPv6 in brackets).
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    names: Vec<String>,
}

impl Default for AllowedHosts {
    /// Loopback names only.
    fn default() -> Self {
        Self {
            names: LOOPBACK.iter().map(|n| (*n).to_owned()).collect(),
        }
    }
}

impl AllowedHosts {
    /// Loopback names, the host part of `listen` (`"0.0.0.0:7878"`, `"[::]:7878"`,
    /// `"weir.lan:7878"`) and `extra` (`engine.allowed_hosts`, already checked by the config).
    pub fn new<S: AsRef<str>>(listen: &str, extra: impl IntoIterator<Item = S>) -> Self {
        let mut hosts = Self::default();
        let listen_host = listen
            .parse::<Authority>()
            .ok()
            .map(|a| a.host().to_owned())
            .filter(|h| !h.is_empty());
        for name in listen_host
            .into_iter()
            .chain(extra.into_iter().map(|s| s.as_ref().to_owned()))
        {
            let name = name.to_ascii_lowercase();
            if !hosts.names.contains(&name) {
                hosts.names.push(name);
            }
        }
        hosts
    }

    /// Whether `authority` (a `Host` header value: `host` or `host:port`) names this server.
    pub fn allows(&self, authority: &str) -> bool {
        // `user@host` is no Host header a browser sends, and `Authority` would read the part
        // after `@` as the host.
        if authority.contains('@') {
            return false;
        }
        let Ok(authority) = authority.parse::<Authority>() else {
            return false;
        };
        let host = authority.host();
        let port_ok = match &authority.as_str()[host.len()..] {
            "" => true,
            rest => rest
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok()),
        };
        port_ok && self.names.iter().any(|n| n.eq_ignore_ascii_case(host))
    }
}

/// Refuse a request whose `Host` (or, in HTTP/2 and absolute-form requests, the URI's authority)
/// is not an allowed one: `421 Misdirected Request`, or `400` when there is no host at all.
pub async fn check_host(
    State(hosts): State<std::sync::Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    let header = request.headers().get(HOST);
    let uri_host = request.uri().authority().map(Authority::as_str);
    if header.is_none() && uri_host.is_none() {
        return error_response(
            StatusCode::BAD_REQUEST,
            "the request has no Host header; weir serves only requests that name its host",
        );
    }
    let named = [header.map(host_text), uri_host.map(str::to_owned)];
    for host in named.into_iter().flatten() {
        if !hosts.allows(&host) {
            return error_response(
                StatusCode::MISDIRECTED_REQUEST,
                &format!(
                    "host \"{}\" is not served here (DNS rebinding protection): weir answers to \
                     localhost, 127.0.0.1, [::1], the host it listens on and engine.allowed_hosts; \
                     add the name clients use to engine.allowed_hosts",
                    shorten(&host)
                ),
            );
        }
    }
    next.run(request).await
}

/// A header value as text for the check and the message (bytes that are not text never match).
fn host_text(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

/// At most 100 characters of a client-chosen value, for the error message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_listen_host_and_extra_names_with_any_port() {
        let hosts = AllowedHosts::new("0.0.0.0:7878", ["weir.example.com", "[fd00::5]"]);
        for ok in [
            "localhost",
            "localhost:7878",
            "LOCALHOST:1",
            "127.0.0.1:7878",
            "[::1]:7878",
            "[::1]",
            "0.0.0.0:7878",
            "weir.example.com",
            "Weir.Example.COM:443",
            "[fd00::5]:7878",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:7878",
            "localhost.attacker.example",
            "weir.example.com.attacker.example",
            "127.0.0.2:7878",
            "attacker.example@localhost",
            "localhost:notaport",
            "",
            "[::2]:7878",
            "::1",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
    }

    #[test]
    fn the_listen_host_is_allowed_whatever_its_form() {
        assert!(AllowedHosts::new("weir.lan:7878", [""; 0]).allows("weir.lan:7878"));
        assert!(AllowedHosts::new("[::]:7878", [""; 0]).allows("[::]:7878"));
        assert!(AllowedHosts::new("10.1.2.3:0", [""; 0]).allows("10.1.2.3:40000"));
        let default = AllowedHosts::new("127.0.0.1:7878", [""; 0]);
        assert_eq!(default.names, LOOPBACK);
        assert!(!default.allows("10.1.2.3"));
    }

    #[test]
    fn long_hosts_are_shortened_in_messages() {
        assert_eq!(shorten("a.b"), "a.b");
        let long = "x".repeat(500);
        assert_eq!(shorten(&long).chars().count(), 101);
    }
}
