//! The routes through `oneshot`, no socket.

use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{Shared, State, app};

fn shared(employees: i64) -> Shared {
    Arc::new(Mutex::new(State::new("t0ken", employees, 3)))
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn call(
    s: &Shared,
    method: &str,
    uri: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "fixture:1");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app(s.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(s: &Shared, uri: &str) -> Reply {
    call(s, "GET", uri, None, Some("t0ken")).await
}

fn ids(r: &Reply) -> Vec<i64> {
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_token_is_checked() {
    let s = shared(3);
    let r = call(&s, "GET", "/api/employees", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    let r = call(&s, "GET", "/api/employees", None, Some("wrong")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = get(&s, "/api/employees").await;
    assert_eq!((r.status, ids(&r)), (StatusCode::OK, vec![1, 2, 3]));
    let log = get(&s, "/admin/requests").await.body;
    let statuses: Vec<i64> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [401, 401, 200]);
}

#[tokio::test]
async fn every_paging_style_walks_the_same_records() {
    let s = shared(25);
    let pages = |r: &Reply| ids(r);
    // Page numbers and offsets.
    assert_eq!(
        pages(&get(&s, "/api/employees?page=3&per_page=10").await),
        (21..=25).collect::<Vec<_>>()
    );
    assert!(pages(&get(&s, "/api/employees?page=4&per_page=10").await).is_empty());
    assert_eq!(
        pages(&get(&s, "/api/employees?offset=5&limit=2").await),
        vec![6, 7]
    );
    // A body cursor.
    let r = get(&s, "/api/cursor/employees?limit=10").await;
    let c = r.body["meta"]["next_cursor"].as_str().unwrap().to_owned();
    let r = get(&s, &format!("/api/cursor/employees?limit=10&cursor={c}")).await;
    assert_eq!(ids(&r)[0], 11);
    let r = get(&s, "/api/cursor/employees?limit=10&cursor=co").await;
    assert_eq!(
        (ids(&r).len(), &r.body["meta"]["next_cursor"]),
        (1, &Value::Null),
        "c + base-36 24"
    );
    // A relative next URL, keeping the other parameters.
    let r = get(&s, "/api/next/employees?limit=5&org_unit=2").await;
    assert_eq!(
        r.body["links"]["next"],
        "employees?limit=5&org_unit=2&cursor=c5"
    );
    // The Link header, absolute, with the Host the request came to.
    let r = get(&s, "/api/link/employees?per_page=10&page=2").await;
    assert_eq!(
        r.headers["link"],
        "<http://fixture:1/api/link/employees?per_page=10&page=1>; rel=\"first\", <http://fixture:1/api/link/employees?per_page=10&page=3>; rel=\"next\""
    );
    let r = get(&s, "/api/link/employees?per_page=10&page=3").await;
    assert!(!r.headers["link"].to_str().unwrap().contains("next"));
    // Org units.
    assert_eq!(ids(&get(&s, "/api/org-units").await), vec![1, 2, 3]);
}

#[tokio::test]
async fn updated_since_is_inclusive_returns_tombstones_and_pages_by_keyset() {
    let s = shared(5);
    let r = call(
        &s,
        "PATCH",
        "/admin/employees/2",
        Some(json!({"title": "CTO"})),
        None,
    )
    .await;
    assert_eq!(
        r.body["updated_at"], "2026-01-01T00:00:06Z",
        "the logical clock"
    );
    call(&s, "DELETE", "/admin/employees/3", None, None).await;
    call(
        &s,
        "POST",
        "/admin/employees",
        Some(json!({"name": "New", "updated_at": "2026-01-01T00:00:01Z"})),
        None,
    )
    .await;
    // Full listing: no tombstone; the late row sorts by its own timestamp.
    assert_eq!(ids(&get(&s, "/api/employees").await), vec![1, 6, 4, 5, 2]);
    // Incremental: inclusive, tombstones included.
    let r = get(&s, "/api/employees?updated_since=2026-01-01T00:00:05Z").await;
    assert_eq!(ids(&r), vec![5, 2, 3]);
    assert_eq!(r.body["data"][2]["deleted"], true);
    assert_eq!(r.body["data"][2]["deleted_at"], "2026-01-01T00:00:07Z");
    // Keyset: strictly after (updated_at, id).
    let r = get(
        &s,
        "/api/employees?updated_since=2026-01-01T00:00:05Z&after=5&limit=1",
    )
    .await;
    assert_eq!(ids(&r), vec![2]);
    let r = get(
        &s,
        "/api/employees?updated_since=2026-01-01T01:00:00%2B01:00",
    )
    .await;
    assert_eq!(ids(&r).len(), 6, "offsets are understood (and + encoded)");
    let r = get(&s, "/api/employees?updated_since=yesterday").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn faults_are_scripted() {
    let s = shared(30);
    call(
        &s,
        "POST",
        "/admin/faults",
        Some(json!({"rate_limit_next": 1, "retry_after": 2, "fail_next": 1})),
        None,
    )
    .await;
    let r = get(&s, "/api/employees").await;
    assert_eq!(
        r.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the flaky 500 first"
    );
    let r = get(&s, "/api/employees").await;
    assert_eq!(
        (r.status, &r.headers["retry-after"]),
        (StatusCode::TOO_MANY_REQUESTS, &"2".parse().unwrap())
    );
    assert_eq!(get(&s, "/api/employees").await.status, StatusCode::OK);

    call(
        &s,
        "POST",
        "/admin/faults",
        Some(json!({"rate_limit_every": 2})),
        None,
    )
    .await;
    let statuses: Vec<u16> = futures_statuses(&s, 4).await;
    assert_eq!(
        statuses,
        [429, 200, 429, 200],
        "requests 4 to 7: every second"
    );
    call(
        &s,
        "POST",
        "/admin/faults",
        Some(json!({"rate_limit_every": null, "redirect_to": "http://127.0.0.2:9/stolen"})),
        None,
    )
    .await;
    let r = get(&s, "/api/employees").await;
    assert_eq!(
        (r.status, &r.headers["location"]),
        (
            StatusCode::FOUND,
            &"http://127.0.0.2:9/stolen".parse().unwrap()
        )
    );
    call(
        &s,
        "POST",
        "/admin/faults",
        Some(json!({"redirect_to": null, "stuck_cursor": true})),
        None,
    )
    .await;
    let a = get(&s, "/api/cursor/employees?limit=10").await;
    let b = get(&s, "/api/cursor/employees?limit=10&cursor=ca").await;
    assert_eq!(a.body["meta"]["next_cursor"], "ca");
    assert_eq!(
        b.body["meta"]["next_cursor"], "ca",
        "the same cursor forever"
    );
    let r = call(
        &s,
        "POST",
        "/admin/faults",
        Some(json!({"rate_limit_evry": 2})),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "typos are refused");
}

async fn futures_statuses(s: &Shared, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(get(s, "/api/employees").await.status.as_u16());
    }
    out
}

#[tokio::test]
async fn a_slow_page_is_slow() {
    let s = shared(30);
    call(
        &s,
        "POST",
        "/admin/faults",
        Some(json!({"slow_ms": 300, "slow_page": 2})),
        None,
    )
    .await;
    let t = std::time::Instant::now();
    get(&s, "/api/employees?page=1&per_page=10").await;
    assert!(t.elapsed().as_millis() < 250);
    let t = std::time::Instant::now();
    get(&s, "/api/employees?page=2&per_page=10").await;
    assert!(t.elapsed().as_millis() >= 300);
}

#[tokio::test]
async fn generation_is_deterministic() {
    let a = shared(0);
    call(
        &a,
        "POST",
        "/admin/generate",
        Some(json!({"employees": 1000, "org_units": 7})),
        None,
    )
    .await;
    let b = shared(1000);
    call(
        &b,
        "POST",
        "/admin/generate",
        Some(json!({"employees": 1000, "org_units": 7})),
        None,
    )
    .await;
    let pa = get(&a, "/api/employees?page=10&per_page=100").await.body;
    let pb = get(&b, "/api/employees?page=10&per_page=100").await.body;
    assert_eq!(pa, pb);
    assert_eq!(pa["data"][99]["id"], 1000);
    assert_eq!(pa["meta"]["total"], 1000);
    let e = &pa["data"][0];
    assert_eq!(e["manager"]["id"], 91);
    assert!(e["salary"].as_str().unwrap().contains('.'));
    let r = get(&a, "/api/employees?per_page=1001").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "pages of at most 1000");
}
