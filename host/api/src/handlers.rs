//! The handlers behind `router.rs`. Each reads from the service or the store and answers
//! JSON. The store is whichever the service has (SQLite, or the cluster's PostgreSQL); SQLite
//! reads, such as the rejects of a run, run on the blocking pool.

use std::path::PathBuf;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use weir_engine::config::CatchUp;
use weir_engine::events::unix_ms;
use weir_engine::service::{PipelineEntry, Service};
use weir_runtime::CacheOutcome;
use weir_store::{RunRecord, StateStore};

use crate::AppState;
use crate::auth::{ClientAddr, Reader, Writer, session_clear_cookie, session_set_cookie};
use crate::error::ApiError;

type ApiResult<T> = Result<T, ApiError>;

/// The state store, once every event published so far is in it, so a client that has seen
/// an event (over SSE) reads records that reflect it. Bounded: a slow disk delays a read by at
/// most a second, then it answers from what is there.
async fn fresh_store(state: &AppState) -> std::sync::Arc<dyn StateStore> {
    let store = state.service().store().clone();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), store.flush()).await;
    store
}

/// Run `f` on the blocking pool (SQLite calls block).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("read task failed: {e}")))?
        .map_err(ApiError::Internal)
}

fn rfc3339_ms(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A run record with readable times.
#[derive(Serialize)]
struct RunView {
    #[serde(flatten)]
    record: RunRecord,
    started_at: Option<String>,
    ended_at: Option<String>,
    duration_seconds: Option<f64>,
}

impl From<RunRecord> for RunView {
    fn from(record: RunRecord) -> Self {
        Self {
            started_at: rfc3339_ms(record.started_ms),
            ended_at: record.ended_ms.and_then(rfc3339_ms),
            duration_seconds: record
                .ended_ms
                .map(|end| (end - record.started_ms) as f64 / 1000.0),
            record,
        }
    }
}

fn pipeline_view(service: &Service, entry: &PipelineEntry, last_run: Option<RunRecord>) -> Value {
    let now: DateTime<Utc> = SystemTime::now().into();
    let cfg = &entry.config;
    let active = service.active_run(&cfg.name);
    let plugins = service.plugins();
    let (status, error) = match (plugins.resolved(&cfg.name), &active) {
        // A run in progress keeps the plugins it started with, even if they were removed since.
        (_, Some(_)) => ("running", None),
        (Some(Err(reason)), None) => ("invalid", Some(reason.clone())),
        (Some(Ok(_)), None) => ("idle", None),
        (None, None) => ("invalid", Some("not in the configuration".to_owned())),
    };
    let upcoming: Vec<String> = entry
        .schedule
        .as_ref()
        .map(|s| s.upcoming(now, 3).into_iter().map(rfc3339).collect())
        .unwrap_or_default();
    json!({
        "name": cfg.name,
        "status": status,
        "error": error,
        "schedule": entry.schedule.as_ref().map(|s| json!({
            "expression": s.expr(),
            "timezone": s.timezone(),
            "description": s.describe(),
            "upcoming": upcoming,
        })),
        "next_fire": upcoming.first(),
        "overlap": "skip",
        "catch_up": match cfg.catch_up { CatchUp::Once => "once", CatchUp::Skip => "skip" },
        "concurrency": cfg.concurrency,
        "active_run": active.map(|a| json!({
            "run_id": a.run_id,
            "trigger": a.trigger,
            "started_at": rfc3339_ms(unix_ms(a.started)),
        })),
        "last_run": last_run.map(RunView::from),
    })
}

pub async fn health(_: Reader, State(state): State<AppState>) -> Json<Value> {
    let service = state.service();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": service.uptime().as_secs_f64(),
        "pipelines": service.pipelines().len(),
        "active_runs": service.active_count(),
        "last_event_id": service.store().newest_event_id(),
        // This host's id in its cluster (`null`: it runs alone).
        "cluster": service.cluster().map(|c| c.host_id()),
    }))
}

pub async fn pipelines(_: Reader, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let names: Vec<String> = state
        .service()
        .pipelines()
        .iter()
        .map(|p| p.config.name.clone())
        .collect();
    let last_runs = fresh_store(&state)
        .await
        .last_runs(names)
        .await
        .map_err(ApiError::Internal)?;
    let service = state.service();
    let views: Vec<Value> = service
        .pipelines()
        .iter()
        .zip(last_runs)
        .map(|(entry, last)| pipeline_view(service, entry, last))
        .collect();
    Ok(Json(json!({ "pipelines": views })))
}

pub async fn pipeline(
    _: Reader,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let service = state.service();
    let entry = service
        .pipeline(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no pipeline named \"{name}\"")))?;
    let recent = fresh_store(&state)
        .await
        .runs(Some(name.clone()), 10, 0)
        .await
        .map_err(ApiError::Internal)?;
    let mut view = pipeline_view(service, entry, recent.first().cloned());
    view["recent_runs"] = json!(recent.into_iter().map(RunView::from).collect::<Vec<_>>());
    Ok(Json(view))
}

pub async fn trigger(
    _: Writer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let run_id = state.service().trigger(&name, "manual").await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "run_id": run_id,
            "pipeline": name,
            "trigger": "manual",
            "events": format!("/api/events?run={run_id}"),
        })),
    ))
}

#[derive(Deserialize)]
pub struct RunsQuery {
    pipeline: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

pub async fn runs(
    _: Reader,
    State(state): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 500".into(),
        ));
    }
    let offset = q.offset.unwrap_or(0);
    let runs = fresh_store(&state)
        .await
        .runs(q.pipeline.clone(), limit, offset)
        .await
        .map_err(ApiError::Internal)?;
    Ok(Json(json!({
        "runs": runs.into_iter().map(RunView::from).collect::<Vec<_>>(),
        "limit": limit,
        "offset": offset,
    })))
}

async fn find_run(
    state: &AppState,
    id: &str,
) -> ApiResult<(RunRecord, Vec<weir_store::PartitionRecord>)> {
    fresh_store(state)
        .await
        .run(id.to_owned())
        .await
        .map_err(ApiError::Internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no run with id \"{id}\"")))
}

pub async fn run(
    _: Reader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (record, partitions) = find_run(&state, &id).await?;
    let mut view = json!(RunView::from(record));
    view["partition_totals"] = json!(partitions);
    Ok(Json(view))
}

pub async fn cancel(
    _: Writer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if let Some(pipeline) = state.service().cancel(&id) {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "run_id": id, "pipeline": pipeline, "status": "cancelling" })),
        ));
    }
    let (record, _) = find_run(&state, &id).await?;
    // In a cluster the run may be another host's: its heartbeat picks the request up.
    if record.status == "running"
        && state
            .service()
            .cancel_elsewhere(&record.pipeline, &id)
            .await?
    {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "run_id": id,
                "pipeline": record.pipeline,
                "status": "cancelling",
                "host": record.host,
            })),
        ));
    }
    Err(ApiError::Conflict(format!(
        "run {id} is not in progress (it is {})",
        record.status
    )))
}

/// The hosts of the cluster and the leases held or queued (`weir cluster status` as JSON).
pub async fn cluster(_: Reader, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let service = state.service();
    let Some(cluster) = service.cluster() else {
        return Err(ApiError::NotFound(
            "this weir runs alone (no engine.cluster)".into(),
        ));
    };
    let hosts = cluster
        .hosts()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let leases = cluster
        .leases()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(json!({
        "host_id": cluster.host_id(),
        "draining": service.draining(),
        "database": cluster.location(),
        "lease_seconds": cluster.lease_duration().as_secs_f64(),
        "hosts": hosts,
        "leases": leases,
    })))
}

#[derive(Deserialize)]
pub struct PageQuery {
    offset: Option<u64>,
    limit: Option<u64>,
}

pub async fn rejects(
    _: Reader,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let (record, _) = find_run(&state, &id).await?;
    let entry = state.service().pipeline(&record.pipeline).ok_or_else(|| {
        ApiError::NotFound(format!(
            "pipeline \"{}\" of run {id} is no longer configured, so its databases are unknown",
            record.pipeline
        ))
    })?;
    let databases: Vec<(String, PathBuf)> = entry
        .config
        .grants
        .databases
        .iter()
        .map(|(name, path)| (name.clone(), path.clone()))
        .collect();
    // SQLite files first, then PostgreSQL databases, each in name order.
    let postgres: Vec<_> = entry
        .config
        .grants
        .postgres
        .iter()
        .map(|(name, grant)| (name.clone(), grant.clone()))
        .collect();
    let (pipeline, offset) = (record.pipeline.clone(), q.offset.unwrap_or(0));
    let (pipeline_name, run) = (pipeline.clone(), id.clone());
    let mut page = blocking(move || {
        weir_store::rejects_page(
            &databases,
            &pipeline,
            &id,
            offset,
            limit,
            &weir_runtime::open_snapshot,
        )
    })
    .await?;
    if !postgres.is_empty() {
        // What is left of the offset after the SQLite files.
        let skip = offset.saturating_sub(page.total);
        weir_store::rejects_page_postgres(&mut page, skip, &postgres, &pipeline_name, &run)
            .await
            .map_err(|e| ApiError::Unavailable(format!("{e:#}")))?;
    }
    Ok(Json(json!(page)))
}

pub async fn checkpoints(
    _: Reader,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let entries = state.service().checkpoints(&name).await?;
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|e| json!({ "partition": e.partition, "checkpoint": e.checkpoint, "updated_at": e.updated_at }))
        .collect();
    Ok(Json(json!({ "pipeline": name, "checkpoints": entries })))
}

#[derive(Deserialize)]
pub struct ResetQuery {
    partition: Option<String>,
}

pub async fn reset_checkpoints(
    _: Writer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<ResetQuery>,
) -> ApiResult<Json<Value>> {
    let removed = state
        .service()
        .reset_checkpoints(&name, q.partition.as_deref())
        .await?;
    Ok(Json(
        json!({ "pipeline": name, "partition": q.partition, "removed": removed }),
    ))
}

pub async fn plugins(_: Reader, State(state): State<AppState>) -> Json<Value> {
    let service = state.service();
    let snapshot = service.plugins();
    let catalog = &snapshot.catalog;
    let plugins: Vec<Value> = catalog
        .plugins
        .values()
        .map(|p| {
            json!({
                "name": p.info.name,
                "version": p.info.version,
                "kind": p.kind.to_string(),
                "description": p.info.description,
                "config_schema": p.info.config_schema,
                "file": p.file.display().to_string(),
                "sha256": p.hash,
                "cached": p.cache == CacheOutcome::Hit,
                "load_ms": p.load_time.as_secs_f64() * 1e3,
                "loaded_at": rfc3339_ms(unix_ms(p.loaded_at)),
                "used_by": service.pipelines_using(&p.info.name),
            })
        })
        .collect();
    let rejected: Vec<Value> = catalog
        .rejected
        .iter()
        .map(|r| {
            // The version loaded earlier from the same file, still in service.
            let kept = catalog.by_file(&r.file).map(|p| &p.info.version);
            json!({ "file": r.file.display().to_string(), "reason": r.reason, "kept_version": kept })
        })
        .collect();
    Json(json!({ "plugins": plugins, "rejected": rejected }))
}

#[derive(Deserialize)]
pub struct Login {
    token: String,
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(body): Json<Login>,
) -> ApiResult<impl IntoResponse> {
    let session = state.auth().login(client, &body.token)?;
    let cookie = session_set_cookie(&session, state.options().behind_tls);
    Ok((
        AppendHeaders([(SET_COOKIE, cookie)]),
        Json(json!({ "authenticated": true })),
    ))
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    state.auth().logout(&headers);
    (
        AppendHeaders([(SET_COOKIE, session_clear_cookie(state.options().behind_tls))]),
        Json(json!({ "authenticated": false })),
    )
}

/// Whether this browser is logged in, and whether reads need it: what the dashboard asks first.
/// A bearer token sent here is checked (and counted when wrong) like anywhere else.
pub async fn session(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Json<Value> {
    Json(json!({
        "authenticated": state.auth().authenticate(client, &headers).is_ok(),
        "reads_open": state.auth().reads_are_open(),
    }))
}

pub async fn metrics(_: Reader, State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics().render(),
    )
}
