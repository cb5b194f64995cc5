//! Every route of the fixture, in one place.
//!
//! `/api/…` is the HR API a pipeline's grant points at (bearer token checked, faults
//! applied, every request logged); `/admin/…` is how tests and people script it, outside the
//! `/api/` base so a plugin granted the API cannot reach it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, Query as QueryParams, State as AxumState};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::{Faults, Listing, Logged, Query, State, Style, encode_cursor};

/// The state shared by the handlers. A plain mutex: no handler awaits while holding it.
pub type Shared = Arc<Mutex<State>>;

/// The fixture's routes.
pub fn app(shared: Shared) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/api/{*rest}", get(api))
        .route("/admin/employees", get(all_employees).post(add_employee))
        .route(
            "/admin/employees/{id}",
            patch(change_employee).delete(delete_employee),
        )
        .route("/admin/generate", axum::routing::post(generate))
        .route("/admin/faults", get(faults).post(set_faults))
        .route("/admin/requests", get(requests).delete(clear_requests))
        .with_state(shared)
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panicking handler cannot leave the state half-changed in a way tests would miss.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

async fn api(
    AxumState(shared): AxumState<Shared>,
    Path(rest): Path<String>,
    QueryParams(params): QueryParams<BTreeMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (response, delay) = {
        let mut state = lock(&shared);
        state.count += 1;
        let n = state.count;
        let (response, records, delay) = answer(&mut state, n, &rest, params, &headers);
        state.log.push(Logged {
            n,
            uri: uri.to_string(),
            status: response.status().as_u16(),
            records,
        });
        (response, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

fn answer(
    state: &mut State,
    n: u64,
    rest: &str,
    params: BTreeMap<String, String>,
    headers: &HeaderMap,
) -> (Response, usize, Option<Duration>) {
    let expected = format!("Bearer {}", state.token);
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorized {
        let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("valid"));
        return (r, 0, None);
    }
    let faults = &mut state.faults;
    if let Some(to) = &faults.redirect_to {
        let r = (StatusCode::FOUND, [(header::LOCATION, to.clone())]).into_response();
        return (r, 0, None);
    }
    if faults.fail_next > 0 {
        faults.fail_next -= 1;
        return (error(StatusCode::INTERNAL_SERVER_ERROR, "flaky"), 0, None);
    }
    let limited_every = faults
        .rate_limit_every
        .is_some_and(|every| every > 0 && n.is_multiple_of(every));
    if faults.rate_limit_next > 0 || limited_every {
        faults.rate_limit_next = faults.rate_limit_next.saturating_sub(1);
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "slow down");
        r.headers_mut().insert(
            header::RETRY_AFTER,
            faults.retry_after.to_string().parse().expect("digits"),
        );
        return (r, 0, None);
    }
    let (style, resource) = match rest.split_once('/') {
        Some(("cursor", r)) => (Style::Cursor, r),
        Some(("next", r)) => (Style::Next, r),
        Some(("link", r)) => (Style::Link, r),
        Some(_) => {
            return (
                error(StatusCode::NOT_FOUND, format!("no resource {rest:?}")),
                0,
                None,
            );
        }
        None => (Style::Plain, rest),
    };
    let query = Query { params };
    let listing = match state.list(resource, &query, style) {
        Ok(l) => l,
        Err(m) if m.starts_with("no resource") => {
            return (error(StatusCode::NOT_FOUND, m), 0, None);
        }
        Err(m) => return (error(StatusCode::BAD_REQUEST, m), 0, None),
    };
    let faults = &state.faults;
    let page_number = (listing.start / listing.size.max(1)) as u64 + 1;
    let delay = (faults.slow_ms > 0 && faults.slow_page.is_none_or(|p| p == page_number))
        .then(|| Duration::from_millis(faults.slow_ms));
    let count = listing.records.len();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let response = body(style, resource, &query, listing, faults.stuck_cursor, &host);
    (response, count, delay)
}

fn body(
    style: Style,
    resource: &str,
    query: &Query,
    listing: Listing,
    stuck: bool,
    host: &str,
) -> Response {
    let next_start = if stuck {
        listing.size
    } else {
        listing.start + listing.records.len()
    };
    let others = |drop: &[&str]| -> String {
        query
            .params
            .iter()
            .filter(|(k, _)| !drop.contains(&k.as_str()))
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let more = listing.more || (stuck && !listing.records.is_empty());
    let mut meta = json!({"total": listing.total});
    let mut links = json!({});
    let mut link_header = None;
    match style {
        Style::Plain => {}
        Style::Cursor => {
            meta["next_cursor"] = json!(more.then(|| encode_cursor(next_start)));
        }
        Style::Next => {
            // Relative to the page's own URL, so it stays inside whatever base was granted.
            let rest = others(&["cursor"]);
            let sep = if rest.is_empty() { "" } else { "&" };
            links["next"] = json!(more.then(|| {
                format!("{resource}?{rest}{sep}cursor={}", encode_cursor(next_start))
            }));
        }
        Style::Link => {
            let rest = others(&["page"]);
            let sep = if rest.is_empty() { "" } else { "&" };
            let url =
                |page: usize| format!("http://{host}/api/link/{resource}?{rest}{sep}page={page}");
            let size = listing.size.max(1);
            let this = listing.start / size + 1;
            let mut parts = vec![format!("<{}>; rel=\"first\"", url(1))];
            if more {
                let next = if stuck { 2 } else { this + 1 };
                parts.push(format!("<{}>; rel=\"next\"", url(next)));
            }
            link_header = Some(parts.join(", "));
        }
    }
    let body = json!({"data": listing.records, "meta": meta, "links": links});
    let mut response = Json(body).into_response();
    if let Some(link) = link_header
        && let Ok(value) = link.parse()
    {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn all_employees(AxumState(shared): AxumState<Shared>) -> Json<Vec<Value>> {
    Json(lock(&shared).employees.values().cloned().collect())
}

async fn add_employee(AxumState(shared): AxumState<Shared>, Json(record): Json<Value>) -> Response {
    match lock(&shared).add(record) {
        Ok(e) => (StatusCode::CREATED, Json(e)).into_response(),
        Err(m) => error(StatusCode::BAD_REQUEST, m),
    }
}

async fn change_employee(
    AxumState(shared): AxumState<Shared>,
    Path(id): Path<i64>,
    Json(patch): Json<Value>,
) -> Response {
    match lock(&shared).change(id, patch) {
        Ok(e) => Json(e).into_response(),
        Err(m) if m.starts_with("no employee") => error(StatusCode::NOT_FOUND, m),
        Err(m) => error(StatusCode::BAD_REQUEST, m),
    }
}

async fn delete_employee(AxumState(shared): AxumState<Shared>, Path(id): Path<i64>) -> Response {
    match lock(&shared).delete(id) {
        Ok(e) => Json(e).into_response(),
        Err(m) => error(StatusCode::NOT_FOUND, m),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Generate {
    employees: i64,
    #[serde(default = "default_units")]
    org_units: i64,
}

fn default_units() -> i64 {
    10
}

async fn generate(AxumState(shared): AxumState<Shared>, Json(g): Json<Generate>) -> Response {
    if !(0..=10_000_000).contains(&g.employees) || !(1..=100_000).contains(&g.org_units) {
        return error(
            StatusCode::BAD_REQUEST,
            "employees 0..=10000000, org_units 1..=100000",
        );
    }
    lock(&shared).generate(g.employees, g.org_units);
    Json(json!({"employees": g.employees, "org_units": g.org_units})).into_response()
}

async fn faults(AxumState(shared): AxumState<Shared>) -> Json<Faults> {
    Json(lock(&shared).faults.clone())
}

/// Merge the named fields into the current faults (`{}` changes nothing; `{"reset": true}`
/// is not a field: POST the defaults you want instead).
async fn set_faults(AxumState(shared): AxumState<Shared>, Json(change): Json<Value>) -> Response {
    let mut state = lock(&shared);
    let mut current = serde_json::to_value(&state.faults).expect("faults serialize");
    let Value::Object(fields) = change else {
        return error(StatusCode::BAD_REQUEST, "faults: a JSON object");
    };
    for (k, v) in fields {
        current[k] = v;
    }
    match serde_json::from_value::<Faults>(current) {
        Ok(f) => {
            state.faults = f.clone();
            Json(f).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, format!("faults: {e}")),
    }
}

async fn requests(AxumState(shared): AxumState<Shared>) -> Json<Vec<Logged>> {
    Json(lock(&shared).log.clone())
}

async fn clear_requests(AxumState(shared): AxumState<Shared>) -> StatusCode {
    lock(&shared).log.clear();
    StatusCode::NO_CONTENT
}
