//! The hook against real loopback servers: mapping, injected credentials, refusals, the body
//! cap, clamped timeouts, TLS with and without the grant's CA, OAuth2 caching and refresh,
//! Retry-After, counters.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::*;
use crate::grant::{ClientAuth, HttpAuth, HttpGrant, HttpGrantSpec, OAuth2, Secret};
use crate::test_servers::{reply, serve, streamed, tls_server};

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<WasiBody> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder
        .body(
            http_body_util::Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .unwrap()
}

/// Hooks over `grants` whose reports are collected.
fn hooks_for(grants: &[HttpGrant]) -> (HttpHooks, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let report: Reporter =
        Arc::new(move |_, line: &str| sink.lock().unwrap().push(line.to_owned()));
    (HttpHooks::new(grants, Some(report)), lines)
}

async fn send(
    hooks: &HttpHooks,
    req: Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<Response<WasiBody>, Error> {
    let (response, io) = hooks.send(req, options).await?;
    tokio::spawn(Box::into_pin(io));
    Ok(response)
}

async fn body(response: Response<WasiBody>) -> Result<Bytes, Error> {
    response.into_body().collect().await.map(|c| c.to_bytes())
}

fn grant(name: &str, url: &str, edit: impl FnOnce(&mut HttpGrantSpec)) -> HttpGrant {
    let mut spec = HttpGrantSpec::new(url);
    spec.allow_private = true;
    edit(&mut spec);
    HttpGrant::new(name, spec).unwrap()
}

/// What the server saw of each request: path and query, Host, Authorization.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

async fn recording_server(status: u16, body: &'static str) -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let addr = serve(None, move |r: Request<hyper::body::Incoming>| {
        let header = |n| {
            r.headers()
                .get(n)
                .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        log.lock().unwrap().push((
            r.uri().to_string(),
            header(http::header::HOST),
            header(http::header::AUTHORIZATION),
        ));
        async move { reply(status, body) }
    })
    .await;
    (addr, seen)
}

#[tokio::test]
async fn a_granted_request_goes_to_the_real_url_with_the_hosts_credentials() {
    let (addr, seen) = recording_server(200, "hello").await;
    let api = grant(
        "api",
        &format!("http://127.0.0.1:{}/api/", addr.port()),
        |s| s.auth = HttpAuth::Bearer(Secret::new("s3cret")),
    );
    let (hooks, _) = hooks_for(std::slice::from_ref(&api));
    let response = send(
        &hooks,
        request("GET", "http://api/people?page=2", &[]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await.unwrap(), "hello");
    // The base URL itself works too.
    let direct = format!("http://127.0.0.1:{}/api/org-units", addr.port());
    let response = send(&hooks, request("GET", &direct, &[]), None)
        .await
        .unwrap();
    body(response).await.unwrap();
    let host = format!("127.0.0.1:{}", addr.port());
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (
                "/api/people?page=2".to_owned(),
                host.clone(),
                "Bearer s3cret".to_owned()
            ),
            (
                "/api/org-units".to_owned(),
                host,
                "Bearer s3cret".to_owned()
            ),
        ]
    );
    let counted = api.counters();
    assert_eq!(
        (counted.requests, counted.response_bytes, counted.status[1]),
        (2, 10, 2)
    );
    assert_eq!(hooks.stats().by_grant["api"], counted);

    let basic = grant("b", &format!("http://127.0.0.1:{}/", addr.port()), |s| {
        s.auth = HttpAuth::Basic {
            user: "weir".into(),
            password: Secret::new("pw"),
        }
    });
    let (hooks, _) = hooks_for(&[basic]);
    body(
        send(&hooks, request("GET", "http://b/x", &[]), None)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(seen.lock().unwrap()[2].2, "Basic d2Vpcjpwdw==");
}

#[tokio::test]
async fn refusals_name_the_grant_reach_the_report_and_are_counted() {
    let (addr, seen) = recording_server(200, "x").await;
    let api = grant(
        "api",
        &format!("http://127.0.0.1:{}/api/", addr.port()),
        |_| {},
    );
    let local = HttpGrant::new(
        "local",
        HttpGrantSpec::new(format!("http://localhost:{}/", addr.port())),
    )
    .unwrap();
    let (hooks, lines) = hooks_for(&[api.clone(), local.clone()]);
    let refused = |e: Error| match e {
        Error::InternalError(Some(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let message = refused(
        send(&hooks, request("GET", "http://api/../admin", &[]), None)
            .await
            .unwrap_err(),
    );
    assert!(
        message.starts_with(
            "weir: http grant \"api\" refuses GET http://api/../admin: the path leaves"
        ),
        "{message}"
    );
    let message = refused(
        send(
            &hooks,
            request("GET", "http://api/x", &[("authorization", "Bearer mine")]),
            None,
        )
        .await
        .unwrap_err(),
    );
    assert!(
        message.contains("the plugin set its own Authorization header"),
        "{message}"
    );
    let message = refused(
        send(
            &hooks,
            request(
                "GET",
                "http://api/x",
                &[("proxy-authorization", "Basic eA==")],
            ),
            None,
        )
        .await
        .unwrap_err(),
    );
    assert!(
        message.contains("the plugin set its own Proxy-Authorization header"),
        "{message}"
    );
    let message = refused(
        send(&hooks, request("GET", "https://evil.example/x", &[]), None)
            .await
            .unwrap_err(),
    );
    assert!(
        message
            .starts_with("weir: no http grant matches GET https://evil.example/x; granted: api → "),
        "{message}"
    );
    // localhost is loopback: refused without allow_private, and nothing was sent.
    let message = refused(
        send(&hooks, request("GET", "http://local/x", &[]), None)
            .await
            .unwrap_err(),
    );
    assert!(
        message.starts_with(
            "weir: http grant \"local\" refuses GET http://local/x: localhost resolves to "
        ),
        "{message}"
    );
    assert!(
        message.ends_with("a loopback address; the grant does not say allow_private = true"),
        "{message}"
    );
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(lines.lock().unwrap().len(), 5);
    let stats = hooks.stats();
    assert_eq!(
        (
            stats.by_grant["api"].refused,
            stats.by_grant["local"].refused,
            stats.unmatched_refusals
        ),
        (3, 1, 1)
    );
    assert_eq!(local.counters().refused, 1);
    assert_eq!(local.counters().requests, 0, "refused before it was sent");
}

#[tokio::test]
async fn a_redirect_is_handed_to_the_plugin_not_followed() {
    let addr = serve(None, |_| async {
        let mut r = reply(302, "");
        r.headers_mut().insert(
            "location",
            "http://elsewhere.example/steal".parse().unwrap(),
        );
        r
    })
    .await;
    let api = grant("api", &format!("http://127.0.0.1:{}/", addr.port()), |_| {});
    let (hooks, _) = hooks_for(&[api]);
    let response = send(&hooks, request("GET", "http://api/", &[]), None)
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "http://elsewhere.example/steal"
    );
}

#[tokio::test]
async fn a_body_past_the_cap_fails_with_response_body_size() {
    let addr = serve(None, |r: Request<hyper::body::Incoming>| async move {
        if r.uri().path() == "/declared" {
            return reply(200, vec![b'x'; 5000]);
        }
        let (response, tx) = streamed(200);
        tokio::spawn(async move {
            for _ in 0..5 {
                if tx.send(Bytes::from(vec![b'y'; 1000])).await.is_err() {
                    return;
                }
            }
        });
        response
    })
    .await;
    let api = grant("api", &format!("http://127.0.0.1:{}/", addr.port()), |s| {
        s.max_body_bytes = 2500
    });
    let (hooks, lines) = hooks_for(std::slice::from_ref(&api));
    for path in ["declared", "streamed"] {
        let response = send(
            &hooks,
            request("GET", &format!("http://api/{path}"), &[]),
            None,
        )
        .await
        .unwrap();
        match body(response).await {
            Err(Error::HttpResponseBodySize(Some(n))) => assert!(n > 2500, "{path}: {n}"),
            other => panic!("{path}: expected HttpResponseBodySize, got {other:?}"),
        }
    }
    let lines = lines.lock().unwrap();
    assert!(
        lines[0].contains(
            "weir: http grant \"api\": GET http://api/declared: the response body of 5000 bytes"
        ),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("went past max_body_bytes (2500)"),
        "{lines:?}"
    );
    assert_eq!(api.counters().errors, 2);
    assert!(api.counters().response_bytes <= 2500);
}

#[tokio::test]
async fn the_plugins_timeouts_are_clamped_to_the_grants() {
    let addr = serve(None, |_| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        reply(200, "late")
    })
    .await;
    let url = format!("http://127.0.0.1:{}/", addr.port());
    // The grant allows 300 ms; the plugin asks for 60 s: 300 ms it is.
    let strict = grant("api", &url, |s| {
        s.timeouts.first_byte = Duration::from_millis(300)
    });
    let (hooks, lines) = hooks_for(&[strict]);
    let asks_long = RequestOptions {
        first_byte_timeout: Some(Duration::from_secs(60)),
        ..RequestOptions::default()
    };
    let started = Instant::now();
    let error = send(&hooks, request("GET", "http://api/", &[]), Some(asks_long))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ConnectionReadTimeout), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        lines.lock().unwrap()[0].contains("no response within 0.3 s (first_byte_timeout_seconds")
    );
    // A plugin asking for less than the grant gets less.
    let (hooks, _) = hooks_for(&[grant("api", &url, |_| {})]);
    let asks_short = RequestOptions {
        first_byte_timeout: Some(Duration::from_millis(200)),
        ..RequestOptions::default()
    };
    let started = Instant::now();
    let error = send(&hooks, request("GET", "http://api/", &[]), Some(asks_short))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ConnectionReadTimeout), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_stalled_body_fails_after_the_between_bytes_timeout() {
    let addr = serve(None, |_| async {
        let (response, tx) = streamed(200);
        tokio::spawn(async move {
            let _ = tx.send(Bytes::from_static(b"first")).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(tx);
        });
        response
    })
    .await;
    let api = grant("api", &format!("http://127.0.0.1:{}/", addr.port()), |s| {
        s.timeouts.between_bytes = Duration::from_millis(300)
    });
    let (hooks, _) = hooks_for(&[api]);
    let response = send(&hooks, request("GET", "http://api/", &[]), None)
        .await
        .unwrap();
    let started = Instant::now();
    let error = body(response).await.unwrap_err();
    assert!(matches!(error, Error::ConnectionReadTimeout), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn tls_trusts_the_grants_ca_file_and_refuses_an_unknown_ca() {
    let (ca_pem, acceptor) = tls_server();
    let addr = serve(Some(acceptor), |_| async { reply(200, "secure") }).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("internal-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}/", addr.port());
        let trusted = grant("hr", &url, |s| s.ca_file = Some(ca_file.clone()));
        let (hooks, _) = hooks_for(&[trusted]);
        let response = send(&hooks, request("GET", "http://hr/", &[]), None)
            .await
            .unwrap();
        assert_eq!(body(response).await.unwrap(), "secure", "{host}");

        let untrusted = grant("hr", &url, |_| {});
        let (hooks, lines) = hooks_for(&[untrusted]);
        let error = send(&hooks, request("GET", "http://hr/", &[]), None)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::TlsCertificateError),
            "{host}: {error:?}"
        );
        let line = lines.lock().unwrap()[0].clone();
        assert!(line.starts_with("weir: http grant \"hr\": GET http://hr/: TLS: the server's certificate is not trusted"), "{line}");
        assert!(
            line.contains("give that CA as the grant's ca_file"),
            "{line}"
        );
    }
    // A file that is no CA bundle is refused when the grant is made.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let mut spec = HttpGrantSpec::new("https://hr.example.com/");
    spec.ca_file = Some(junk);
    assert!(
        HttpGrant::new("hr", spec)
            .unwrap_err()
            .contains("holds no PEM certificate")
    );
}

#[tokio::test]
async fn a_429_keeps_its_retry_after_for_the_engine() {
    let addr = serve(None, |_| async {
        let mut r = reply(429, "slow down");
        r.headers_mut().insert("retry-after", "7".parse().unwrap());
        r
    })
    .await;
    let api = grant("api", &format!("http://127.0.0.1:{}/", addr.port()), |_| {});
    let (hooks, lines) = hooks_for(std::slice::from_ref(&api));
    let response = send(&hooks, request("GET", "http://api/", &[]), None)
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(hooks.take_retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(hooks.take_retry_after(), None);
    assert_eq!((api.counters().throttled, api.counters().status[3]), (1, 1));
    assert!(lines.lock().unwrap()[0].contains("429 Too Many Requests with Retry-After 7 s"));

    // An answer that arrived after a call began is kept at the next call's start; one that
    // arrived before is forgotten.
    let before = std::time::Instant::now();
    send(&hooks, request("GET", "http://api/", &[]), None)
        .await
        .unwrap();
    hooks.forget_retry_after_before(before);
    assert_eq!(hooks.take_retry_after(), Some(Duration::from_secs(7)));
    send(&hooks, request("GET", "http://api/", &[]), None)
        .await
        .unwrap();
    hooks.forget_retry_after_before(std::time::Instant::now());
    assert_eq!(hooks.take_retry_after(), None);
}

/// A token endpoint and an API on one server: tokens `t1`, `t2`, … valid for `expires_in`;
/// the API accepts tokens numbered above `revoked` unless `reject_all`.
struct OAuthServer {
    addr: std::net::SocketAddr,
    fetches: Arc<AtomicUsize>,
    revoked: Arc<AtomicUsize>,
    reject_all: Arc<AtomicBool>,
    api_calls: Arc<AtomicUsize>,
}

async fn oauth_server(expires_in: u64) -> OAuthServer {
    let fetches = Arc::new(AtomicUsize::new(0));
    let revoked = Arc::new(AtomicUsize::new(0));
    let reject_all = Arc::new(AtomicBool::new(false));
    let api_calls = Arc::new(AtomicUsize::new(0));
    let (f, rv, ra, a) = (
        fetches.clone(),
        revoked.clone(),
        reject_all.clone(),
        api_calls.clone(),
    );
    let addr = serve(None, move |r: Request<hyper::body::Incoming>| {
        let (f, rv, ra, a) = (f.clone(), rv.clone(), ra.clone(), a.clone());
        async move {
            if r.uri().path() == "/oauth/token" {
                let auth = r.headers().get("authorization").map(|h| h.to_str().unwrap().to_owned());
                let form = String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
                // client_secret_basic: form-urlencoded id and secret, base64 ("weir:correct+horse").
                let basic_ok = auth.as_deref() == Some("Basic d2Vpcjpjb3JyZWN0K2hvcnNl");
                if !basic_ok {
                    return reply(401, r#"{"error":"invalid_client"}"#);
                }
                assert_eq!(form, "grant_type=client_credentials&scope=read%3Aemployees");
                let n = f.fetch_add(1, Ordering::SeqCst) + 1;
                return reply(200, format!(r#"{{"access_token":"t{n}","token_type":"Bearer","expires_in":{expires_in}}}"#));
            }
            a.fetch_add(1, Ordering::SeqCst);
            let token = r.headers().get("authorization").map(|h| h.to_str().unwrap().to_owned()).unwrap_or_default();
            let number: usize = token.strip_prefix("Bearer t").and_then(|n| n.parse().ok()).unwrap_or(0);
            if number > rv.load(Ordering::SeqCst) && !ra.load(Ordering::SeqCst) {
                reply(200, format!("ok with {token}"))
            } else {
                reply(401, "expired")
            }
        }
    })
    .await;
    OAuthServer {
        addr,
        fetches,
        revoked,
        reject_all,
        api_calls,
    }
}

fn oauth_grant(server: &OAuthServer) -> HttpGrant {
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    grant("hr", &format!("{base}/api/"), |s| {
        s.auth = HttpAuth::OAuth2(OAuth2 {
            token_url: format!("{base}/oauth/token"),
            client_id: "weir".into(),
            client_secret: Secret::new("correct horse"),
            scope: Some("read:employees".into()),
            client_auth: ClientAuth::Basic,
        })
    })
}

#[tokio::test]
async fn an_oauth2_token_is_cached_until_shortly_before_it_expires() {
    let server = oauth_server(3600).await;
    let hr = oauth_grant(&server);
    let (hooks, _) = hooks_for(std::slice::from_ref(&hr));
    for _ in 0..3 {
        let response = send(&hooks, request("GET", "http://hr/employees", &[]), None)
            .await
            .unwrap();
        assert_eq!(body(response).await.unwrap(), "ok with Bearer t1");
    }
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1);
    // 3600 s tokens are refreshed 60 s early.
    let clock = hr.inner.tokens.as_ref().unwrap().clock();
    clock.advance(Duration::from_secs(3539));
    body(
        send(&hooks, request("GET", "http://hr/employees", &[]), None)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(2));
    let response = send(&hooks, request("GET", "http://hr/employees", &[]), None)
        .await
        .unwrap();
    assert_eq!(body(response).await.unwrap(), "ok with Bearer t2");
    assert_eq!(hr.counters().token_requests, 2);
}

#[tokio::test]
async fn a_401_with_a_cached_token_refreshes_it_once_and_sends_again() {
    let server = oauth_server(3600).await;
    let hr = oauth_grant(&server);
    let (hooks, _) = hooks_for(std::slice::from_ref(&hr));
    body(
        send(&hooks, request("GET", "http://hr/a", &[]), None)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    // The server revokes t1: the next request gets a 401, the host fetches t2 and retries.
    server.revoked.store(1, Ordering::SeqCst);
    let response = send(&hooks, request("GET", "http://hr/b", &[]), None)
        .await
        .unwrap();
    assert_eq!(body(response).await.unwrap(), "ok with Bearer t2");
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(hr.counters().auth_retries, 1);
    // A server that refuses every token: one refresh, then the 401 goes to the plugin.
    server.reject_all.store(true, Ordering::SeqCst);
    let before = server.api_calls.load(Ordering::SeqCst);
    let response = send(&hooks, request("GET", "http://hr/c", &[]), None)
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        server.api_calls.load(Ordering::SeqCst) - before,
        2,
        "one retry, no loop"
    );
    assert_eq!(server.fetches.load(Ordering::SeqCst), 3);
    // Every request retries at most once.
    let before = server.api_calls.load(Ordering::SeqCst);
    let response = send(&hooks, request("GET", "http://hr/d", &[]), None)
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(server.api_calls.load(Ordering::SeqCst) - before, 2);
}

#[tokio::test]
async fn a_failed_token_request_is_explained_without_the_secret() {
    let server = oauth_server(3600).await;
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    let hr = grant("hr", &format!("{base}/api/"), |s| {
        s.auth = HttpAuth::OAuth2(OAuth2 {
            token_url: format!("{base}/oauth/token"),
            client_id: "weir".into(),
            client_secret: Secret::new("wrong"),
            scope: None,
            client_auth: ClientAuth::Post,
        })
    });
    let (hooks, lines) = hooks_for(&[hr]);
    let error = send(&hooks, request("GET", "http://hr/x", &[]), None)
        .await
        .unwrap_err();
    let Error::InternalError(Some(message)) = error else {
        panic!("{error:?}")
    };
    assert!(
        message.starts_with(
            "weir: http grant \"hr\": GET http://hr/x: no credentials: token request to"
        ),
        "{message}"
    );
    assert!(
        message.contains("answered 401 Unauthorized: {\"error\":\"invalid_client\"}"),
        "{message}"
    );
    assert!(!message.contains("wrong") && !lines.lock().unwrap()[0].contains("wrong"));
}
