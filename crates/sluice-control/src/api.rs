//! The REST API (`/v1/pipes...`), its OpenAPI document and bearer-token auth.

use crate::manager::{Manager, ManagerError, SettingsPatch, SourcePatch};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_core::spec::{ReplicationMechanism, TlsMode};
use sluice_core::{PipeMode, PipeSpec, PipeState, SyncSettings, TableSpec, TableState};
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

#[derive(Clone)]
pub struct AppState {
    pub manager: Manager,
    pub token: Arc<String>,
    /// Renders the process's metrics (Prometheus text format).
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

/// An error answer: what went wrong and, for conflicts, the pipe's current state.
#[derive(Serialize, ToSchema)]
pub struct ApiError {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<PipeState>,
}

impl IntoResponse for ManagerError {
    fn into_response(self) -> Response {
        let (code, state) = match &self {
            ManagerError::NotFound(_) | ManagerError::Missing(_) => (StatusCode::NOT_FOUND, None),
            ManagerError::Exists { .. } => (StatusCode::CONFLICT, None),
            ManagerError::Conflict { state, .. } => (StatusCode::CONFLICT, Some(*state)),
            ManagerError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, None),
            ManagerError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
            ManagerError::Unplaced { retry_after_s, .. } => {
                let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(ApiError { error: self.to_string(), state: None })).into_response();
                r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(*retry_after_s));
                return r;
            }
        };
        (code, Json(ApiError { error: self.to_string(), state })).into_response()
    }
}

fn bad_request(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(ApiError { error: msg.into(), state: None })).into_response()
}

#[derive(Serialize, ToSchema)]
pub struct TableView {
    pub source: String,
    pub destination: String,
    pub state: TableState,
    pub snapshot_done: bool,
    pub rows_copied: u64,
    pub rows_estimated: u64,
    /// Snapshot partitions copied / planned (0/0 before the copy is planned).
    pub partitions_done: u32,
    pub partitions_total: u32,
    /// Copy throughput since the copy started; null when not copying.
    pub rows_per_second: Option<f64>,
    /// Estimated seconds until the copy is done; null when not copying or unknown.
    pub eta_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointView {
    pub binlog_file: String,
    pub binlog_pos: u64,
    pub gtid_set: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SourceView {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub server_id: u32,
    pub tls_mode: TlsMode,
    pub replication_mechanism: ReplicationMechanism,
    pub heartbeat_table: Option<String>,
    /// The SSH tunnel the source is reached through, if any (its key or password is never shown).
    pub ssh: Option<SshView>,
}

#[derive(Serialize, ToSchema)]
pub struct SshView {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// `private_key` or `password`.
    pub auth: String,
    pub known_host_key: Option<String>,
    pub insecure_skip_host_key_check: bool,
}

impl SourceView {
    fn of(spec: &PipeSpec) -> Self {
        let s = &spec.source;
        Self {
            host: s.host.clone(),
            port: s.port,
            user: s.user.clone(),
            server_id: spec.server_id(),
            tls_mode: s.tls.mode,
            replication_mechanism: s.replication_mechanism,
            heartbeat_table: s.heartbeat_table.clone(),
            ssh: s.ssh.as_ref().map(|t| SshView {
                host: t.host.clone(),
                port: t.port,
                user: t.user.clone(),
                auth: if t.private_key.is_empty() { "password" } else { "private_key" }.into(),
                known_host_key: t.known_host_key.clone(),
                insecure_skip_host_key_check: t.insecure_skip_host_key_check,
            }),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DestinationView {
    pub url: String,
    pub user: String,
    pub database: String,
}

/// A pipe as the API shows it. Passwords are never included.
#[derive(Serialize, ToSchema)]
pub struct PipeView {
    pub name: String,
    pub state: PipeState,
    pub mode: PipeMode,
    pub error: Option<String>,
    /// Set when the pipe has been retrying a failure for more than 30 minutes (see `error`).
    pub warning: Option<String>,
    pub source: SourceView,
    pub destination: DestinationView,
    pub tables: Vec<TableView>,
    pub checkpoint: Option<CheckpointView>,
    /// Age in seconds of the oldest source change not yet written to ClickHouse; 0 only when nothing is
    /// pending and the stream is live; grows while the stream is stalled or the pipe paused; null before CDC ran.
    pub lag_seconds: Option<f64>,
    /// Row changes written by CDC since the pipe was created (saved every sample; a crash loses at most one interval's count).
    pub changes_applied: u64,
    pub settings: SyncSettings,
    pub created_at: String,
    pub updated_at: String,
    /// The worker holding the pipe's lease (running it); null when none holds a live one
    /// (a server without leases, or between workers).
    pub worker: Option<String>,
    /// Why no worker runs the pipe right now (between workers, or waiting for a
    /// live worker with the labels of its placement constraint); null when one does
    /// and on a server without leases.
    pub placement: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StateView {
    pub name: String,
    pub state: PipeState,
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    pub at: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub reason: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct DeleteParams {
    /// Also drop the destination tables (default false: they are kept).
    #[serde(default)]
    pub drop_tables: bool,
}

async fn view(m: &Manager, name: &str) -> Result<PipeView, ManagerError> {
    let rec = m.catalog().pipe(name).await?.ok_or_else(|| ManagerError::NotFound(name.into()))?;
    let tables = m.catalog().tables(name).await?;
    let cp = m.catalog().checkpoint(name).await?;
    let status = m.status(name);
    let worker = m.catalog().lease_holder(name).await?.map(|(w, _)| w);
    let s = &rec.spec;
    let mut table_views = Vec::with_capacity(tables.len());
    for t in tables {
        let (partitions_done, partitions_total) = m.catalog().partition_counts(name, &t.mapping.destination).await?;
        let copying = !t.snapshot_done && partitions_total > 0;
        let elapsed = t
            .copy_started_at
            .as_deref()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map(|at| (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0);
        let rate = elapsed.filter(|e| copying && *e > 0.0).map(|e| t.rows_copied as f64 / e);
        let eta = rate.filter(|r| *r > 0.0).map(|r| t.rows_estimated.saturating_sub(t.rows_copied) as f64 / r);
        table_views.push(TableView {
            source: format!("{}.{}", t.mapping.source.id.schema, t.mapping.source.id.table),
            destination: t.mapping.destination,
            state: t.state,
            snapshot_done: t.snapshot_done,
            rows_copied: t.rows_copied,
            rows_estimated: t.rows_estimated,
            partitions_done,
            partitions_total,
            rows_per_second: rate,
            eta_seconds: eta,
            error: t.error,
        });
    }
    Ok(PipeView {
        name: s.name.clone(),
        state: rec.state,
        mode: s.mode,
        error: rec.error,
        source: SourceView::of(s),
        destination: DestinationView {
            url: s.destination.url.clone(),
            user: s.destination.user.clone(),
            database: s.destination.database.clone(),
        },
        tables: table_views,
        checkpoint: cp.map(|c| CheckpointView {
            binlog_file: c.checkpoint.position.file,
            binlog_pos: c.checkpoint.position.pos,
            gtid_set: c.checkpoint.gtid_set,
        }),
        warning: status.as_ref().and_then(|s| s.warning()),
        lag_seconds: status.as_ref().and_then(|s| s.lag_seconds()),
        changes_applied: status.map(|s| s.changes_applied.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or(0),
        settings: s.settings.clone(),
        created_at: rec.created_at,
        updated_at: rec.updated_at,
        placement: match (m.worker(), &worker) {
            (Some(_), None) => crate::placement::unplaced(m, name).await?.map(|g| g.message),
            _ => None,
        },
        worker,
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct CreateParams {
    /// Store and start the pipe without running the pre-flight checks first.
    #[serde(default)]
    pub skip_checks: bool,
}

/// A pipe refused by its pre-flight checks: what failed, and every check.
#[derive(Serialize, ToSchema)]
pub struct ChecksFailed {
    pub error: String,
    pub checks: crate::preflight::Preflight,
}

/// Create a pipe from its spec; it starts at once (Provisioning). The
/// pre-flight checks (`POST /v1/checks`) run first: when one fails, nothing is
/// stored and the answer (422) lists the checks, unless `skip_checks=true`.
#[utoipa::path(post, path = "/v1/pipes", request_body = PipeSpec, tag = "pipes", params(CreateParams),
    responses((status = 201, body = PipeView), (status = 400, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ChecksFailed)))]
async fn create_pipe(State(st): State<AppState>, Query(params): Query<CreateParams>, body: axum::body::Bytes) -> Response {
    let spec: PipeSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_request(format!("invalid pipe spec: {e}")),
    };
    if let Err(e) = spec.validate() {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(ApiError { error: e.to_string(), state: None })).into_response();
    }
    if st.manager.catalog().pipe(&spec.name).await.ok().flatten().is_some() {
        return ManagerError::Exists { name: spec.name.clone() }.into_response();
    }
    if !params.skip_checks {
        let checks = crate::preflight::run(&spec).await;
        if !checks.ok {
            let error = format!("pre-flight checks failed, nothing was created: {}", checks.failures());
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(ChecksFailed { error, checks })).into_response();
        }
    }
    let name = spec.name.clone();
    if let Err(e) = st.manager.create(spec).await {
        return e.into_response();
    }
    match view(&st.manager, &name).await {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Run the pre-flight checks of a pipe spec without storing anything ("Test
/// connection"): source reachable and configured for CDC, tables replicable,
/// destination answering. Always 200 when the spec is valid; `ok` says whether all passed.
#[utoipa::path(post, path = "/v1/checks", request_body = PipeSpec, tag = "pipes",
    responses((status = 200, body = crate::preflight::Preflight), (status = 400, body = ApiError), (status = 422, body = ApiError)))]
async fn run_checks(body: axum::body::Bytes) -> Response {
    let spec: PipeSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_request(format!("invalid pipe spec: {e}")),
    };
    if let Err(e) = spec.validate() {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(ApiError { error: e.to_string(), state: None })).into_response();
    }
    Json(crate::preflight::run(&spec).await).into_response()
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Only the pipes this worker runs (what another worker asks for to fill in their live figures).
    #[serde(default)]
    pub local: bool,
}

/// List every pipe. With several workers, the live figures (lag, changes
/// applied, warning) of the pipes other workers run are asked of those workers
/// (one request each, 2 s at most; a worker that does not answer leaves its
/// pipes' figures empty).
#[utoipa::path(get, path = "/v1/pipes", tag = "pipes", params(ListParams), responses((status = 200, body = Vec<PipeView>)))]
async fn list_pipes(
    State(st): State<AppState>,
    Query(q): Query<ListParams>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Vec<PipeView>>, ManagerError> {
    let mut out = Vec::new();
    for n in st.manager.catalog().pipe_names().await? {
        if q.local && !st.manager.runs(&n) {
            continue;
        }
        out.push(view(&st.manager, &n).await?);
    }
    if !q.local {
        crate::workers_api::fill_live_figures(&st, &mut out, headers.get(header::AUTHORIZATION)).await;
    }
    Ok(Json(out))
}

/// One pipe: state, tables and their progress, checkpoint, lag, settings.
#[utoipa::path(get, path = "/v1/pipes/{name}", tag = "pipes", params(("name" = String, Path)),
    responses((status = 200, body = PipeView), (status = 404, body = ApiError)))]
async fn get_pipe(State(st): State<AppState>, Path(name): Path<String>) -> Result<Json<PipeView>, ManagerError> {
    Ok(Json(view(&st.manager, &name).await?))
}

/// Pause: `Pausing`, then `Paused` after the in-flight batch is flushed and checkpointed.
#[utoipa::path(post, path = "/v1/pipes/{name}/pause", tag = "pipes", params(("name" = String, Path)),
    responses((status = 202, body = StateView), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 503, body = ApiError)))]
async fn pause_pipe(State(st): State<AppState>, Path(name): Path<String>) -> Result<(StatusCode, Json<StateView>), ManagerError> {
    let state = st.manager.pause(&name).await?;
    Ok((StatusCode::ACCEPTED, Json(StateView { name, state })))
}

/// Resume a paused pipe.
#[utoipa::path(post, path = "/v1/pipes/{name}/resume", tag = "pipes", params(("name" = String, Path)),
    responses((status = 200, body = StateView), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 503, body = ApiError)))]
async fn resume_pipe(State(st): State<AppState>, Path(name): Path<String>) -> Result<Json<StateView>, ManagerError> {
    let state = st.manager.resume(&name).await?;
    Ok(Json(StateView { name, state }))
}

/// Change sync settings of a live pipe; applied from its next batch.
#[utoipa::path(patch, path = "/v1/pipes/{name}/settings", tag = "pipes", params(("name" = String, Path)), request_body = SettingsPatch,
    responses((status = 200, body = SyncSettings), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 422, body = ApiError), (status = 503, body = ApiError)))]
async fn patch_settings(State(st): State<AppState>, Path(name): Path<String>, body: axum::body::Bytes) -> Response {
    let patch: SettingsPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad_request(format!("invalid settings: {e}")),
    };
    match st.manager.update_settings(&name, patch).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Change how a paused (or failed) pipe reaches its source — e.g. move it to
/// another server after a fail-over; CDC resumes from the checkpoint there
/// (by GTIDs). Fields left out keep their value.
#[utoipa::path(patch, path = "/v1/pipes/{name}/source", tag = "pipes", params(("name" = String, Path)), request_body = SourcePatch,
    responses((status = 200, body = SourceView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError), (status = 503, body = ApiError)))]
async fn patch_source(State(st): State<AppState>, Path(name): Path<String>, body: axum::body::Bytes) -> Response {
    let patch: SourcePatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad_request(format!("invalid source change: {e}")),
    };
    match st.manager.update_source(&name, patch).await {
        Ok(spec) => Json(SourceView::of(&spec)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Stop and remove a pipe; destination tables stay unless `drop_tables=true`.
#[utoipa::path(delete, path = "/v1/pipes/{name}", tag = "pipes", params(("name" = String, Path), DeleteParams),
    responses((status = 204), (status = 404, body = ApiError), (status = 503, body = ApiError)))]
async fn delete_pipe(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<DeleteParams>,
) -> Result<StatusCode, ManagerError> {
    st.manager.delete(&name, q.drop_tables).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct EventsParams {
    /// Only events with an id below this one (the page before the one shown).
    #[serde(default)]
    pub before: Option<i64>,
    /// At most this many events: the newest of those selected.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The pipe's history (state transitions and notes), oldest first, with time
/// and reason; all of it, or a page: the newest `limit` events before the id `before`.
#[utoipa::path(get, path = "/v1/pipes/{name}/events", tag = "pipes", params(("name" = String, Path), EventsParams),
    responses((status = 200, body = Vec<EventView>), (status = 404, body = ApiError)))]
async fn pipe_events(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<EventsParams>,
) -> Result<Json<Vec<EventView>>, ManagerError> {
    if st.manager.catalog().pipe(&name).await?.is_none() {
        return Err(ManagerError::NotFound(name));
    }
    let mut ev = st.manager.catalog().events(&name).await?;
    if let Some(before) = q.before {
        ev.retain(|e| e.id < before);
    }
    if let Some(limit) = q.limit {
        ev = ev.split_off(ev.len().saturating_sub(limit));
    }
    Ok(Json(
        ev.into_iter()
            .map(|e| EventView { id: e.id, at: e.at, from_state: e.from_state, to_state: e.to_state, reason: e.reason })
            .collect(),
    ))
}

/// Which tables to resync; all when absent or empty.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResyncRequest {
    /// Destination names or source `schema.table` names.
    #[serde(default)]
    pub tables: Vec<String>,
}

/// Tables to add to a live pipe (entries as in the pipe spec).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTablesRequest {
    pub tables: Vec<TableSpec>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct RemoveTableParams {
    /// Also drop the destination table (default false: it is kept).
    #[serde(default)]
    pub drop: bool,
}

/// Resync: copy the tables again into `<table>_resync` and swap each in atomically
/// (`EXCHANGE TABLES`) when complete; the recovery for a `Failed` pipe.
#[utoipa::path(post, path = "/v1/pipes/{name}/resync", tag = "pipes", params(("name" = String, Path)), request_body(content = ResyncRequest, description = "optional"),
    responses((status = 202, body = StateView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError), (status = 503, body = ApiError)))]
async fn resync_pipe(State(st): State<AppState>, Path(name): Path<String>, body: axum::body::Bytes) -> Response {
    let req: ResyncRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ResyncRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return bad_request(format!("invalid resync request: {e}")),
        }
    };
    match st.manager.resync(&name, &req.tables).await {
        Ok(state) => (StatusCode::ACCEPTED, Json(StateView { name, state })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Add tables to a `Running` or `Paused` pipe: `Modifying` while they are set
/// up, then `Snapshot` while they are copied alongside CDC.
#[utoipa::path(post, path = "/v1/pipes/{name}/tables", tag = "pipes", params(("name" = String, Path)), request_body = AddTablesRequest,
    responses((status = 202, body = StateView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError), (status = 503, body = ApiError)))]
async fn add_tables(State(st): State<AppState>, Path(name): Path<String>, body: axum::body::Bytes) -> Response {
    let req: AddTablesRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("invalid table list: {e}")),
    };
    match st.manager.add_tables(&name, req.tables).await {
        Ok(state) => (StatusCode::ACCEPTED, Json(StateView { name, state })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Remove a table (destination name or source `schema.table`) from a pipe; its
/// destination table stays unless `drop=true`.
#[utoipa::path(delete, path = "/v1/pipes/{name}/tables/{table}", tag = "pipes", params(("name" = String, Path), ("table" = String, Path), RemoveTableParams),
    responses((status = 200, body = StateView), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError), (status = 503, body = ApiError)))]
async fn remove_table(
    State(st): State<AppState>,
    Path((name, table)): Path<(String, String)>,
    Query(q): Query<RemoveTableParams>,
) -> Result<Json<StateView>, ManagerError> {
    let state = st.manager.remove_table(&name, &table, q.drop).await?;
    Ok(Json(StateView { name, state }))
}

/// Metrics in Prometheus text format: rows snapshotted and changes applied per
/// pipe and table, batch size and duration histograms, replication lag, binlog
/// bytes read, errors and retries, and each pipe's state as a labelled gauge.
#[utoipa::path(get, path = "/metrics", tag = "server", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics_text(State(st): State<AppState>) -> Result<Response, ManagerError> {
    for name in st.manager.catalog().pipe_names().await? {
        if let Some(rec) = st.manager.catalog().pipe(&name).await? {
            for state in PipeState::ALL {
                metrics::gauge!("sluice_pipe_state", "pipe" => name.clone(), "state" => state.as_str()).set(if state == rec.state {
                    1.0
                } else {
                    0.0
                });
            }
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], st.metrics.render()).into_response())
}

/// Liveness: answers without a token.
#[utoipa::path(get, path = "/healthz", tag = "server", responses((status = 200, description = "ok")))]
async fn healthz() -> &'static str {
    "ok\n"
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Sluice API", description = "Manage MySQL/MariaDB → ClickHouse CDC pipes. Every endpoint but /healthz needs `Authorization: Bearer <token>`."),
    paths(create_pipe, run_checks, crate::sources::list_tables, list_pipes, get_pipe, pause_pipe, resume_pipe, patch_settings, patch_source, resync_pipe, add_tables, remove_table, delete_pipe, pipe_events, crate::verify::start, crate::verify::list, crate::verify::get_one, crate::alerts::get_global, crate::alerts::put_global, crate::alerts::get_pipe, crate::alerts::put_pipe, crate::alerts::test_channels, crate::alerts::active, crate::series::get_series, crate::workers_api::list, metrics_text, healthz, openapi_json),
    components(schemas(PipeSpec, crate::sources::SourceTablesRequest, crate::sources::SourceTables, crate::sources::SchemaTables, crate::sources::SourceTableView, crate::sources::SourceColumnView, crate::sources::TableNote, sluice_core::spec::SourceSpec, sluice_core::spec::TlsSpec, sluice_core::spec::SshSpec, sluice_core::spec::PlacementSpec, PipeView, TableView, CheckpointView, SourceView, DestinationView, StateView, EventView, ApiError, ChecksFailed, crate::preflight::Preflight, SettingsPatch, SourcePatch, crate::manager::SshPatch, SyncSettings, TlsMode, ReplicationMechanism, PipeState, PipeMode, TableState, ResyncRequest, AddTablesRequest, TableSpec, crate::verify::VerifyRequest, crate::verify::VerifyStarted, crate::verify::VerificationView, sluice_verify::TableResult, sluice_verify::KeyDiff, sluice_verify::DiffKind, crate::alerts::config::AlertConfig, crate::alerts::config::PipeAlerts, crate::alerts::config::Channel, crate::alerts::config::SmtpSecurity, crate::alerts::config::Rule, crate::alerts::config::RuleKind, crate::alerts::deliver::AlertMessage, crate::alerts::ChannelTest, crate::alerts::ActiveAlert, crate::series::SeriesView, crate::workers_api::WorkerView, crate::workers_api::LeaseView)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        openapi.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

/// The OpenAPI 3 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "server", responses((status = 200, description = "OpenAPI 3 document")))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same(t.trim().as_bytes(), st.token.as_bytes()));
    if ok {
        next.run(req).await
    } else {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            Json(ApiError { error: "missing or wrong bearer token (see SLUICE_API_TOKEN or <data-dir>/api-token)".into(), state: None }),
        )
            .into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, "Bearer".parse().unwrap());
        r
    }
}

pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/v1/pipes", post(create_pipe).get(list_pipes))
        .route("/v1/checks", post(run_checks))
        .route("/v1/sources/tables", post(crate::sources::list_tables))
        .route("/v1/pipes/{name}", get(get_pipe).delete(delete_pipe))
        .route("/v1/pipes/{name}/pause", post(pause_pipe))
        .route("/v1/pipes/{name}/resume", post(resume_pipe))
        .route("/v1/pipes/{name}/settings", patch(patch_settings))
        .route("/v1/pipes/{name}/source", patch(patch_source))
        .route("/v1/pipes/{name}/resync", post(resync_pipe))
        .route("/v1/pipes/{name}/tables", post(add_tables))
        .route("/v1/pipes/{name}/tables/{table}", axum::routing::delete(remove_table))
        .route("/v1/pipes/{name}/events", get(pipe_events))
        .route("/v1/pipes/{name}/series", get(crate::series::get_series))
        .route("/v1/pipes/{name}/verify", post(crate::verify::start))
        .route("/v1/pipes/{name}/verifications", get(crate::verify::list))
        .route("/v1/pipes/{name}/verifications/{id}", get(crate::verify::get_one))
        .route("/v1/pipes/{name}/alerts", get(crate::alerts::get_pipe).put(crate::alerts::put_pipe))
        .route("/v1/alerts", get(crate::alerts::get_global).put(crate::alerts::put_global))
        .route("/v1/alerts/test", post(crate::alerts::test_channels))
        .route("/v1/alerts/active", get(crate::alerts::active))
        .route("/openapi.json", get(openapi_json))
        .route("/metrics", get(metrics_text))
        .route("/v1/workers", get(crate::workers_api::list))
        // Inside the token check: only authenticated commands are forwarded to the pipe's worker.
        .route_layer(middleware::from_fn_with_state(state.clone(), crate::workers_api::forward))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new().route("/healthz", get(healthz)).merge(crate::ui::routes()).merge(protected).with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::WorkerConf;
    use std::time::Duration;

    /// A SQLite catalog in a temporary dir (kept alive by the returned guard)
    /// and the spec of pipe `p`, not yet created.
    async fn catalog_with_pipe_p() -> (tempfile::TempDir, sluice_catalog::Catalog, PipeSpec) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = sluice_catalog::Catalog::open(dir.path()).await.unwrap();
        let spec = PipeSpec::from_json(
            r#"{"name": "p", "source": {"host": "127.0.0.1", "port": 1, "user": "u", "password": "p"},
                "destination": {"url": "http://127.0.0.1:1", "database": "d"}, "tables": [{"source": "db.t"}]}"#,
        )
        .unwrap();
        (dir, catalog, spec)
    }

    /// This test's worker: `w1`, TTL 15 s, no labels.
    fn worker_w1() -> WorkerConf {
        WorkerConf { id: "w1".into(), advertise_url: "http://x".into(), lease_ttl: Duration::from_secs(15), labels: Default::default() }
    }

    /// A pipe in the catalog that no worker holds (never placed, then
    /// released): its commands are answered 503 with `Retry-After` and a body
    /// naming the pipe and why, its view says so; an unknown pipe stays 404.
    #[tokio::test]
    async fn a_pipe_between_workers_is_503_with_retry_after_not_404() {
        let (_dir, catalog, spec) = catalog_with_pipe_p().await;
        // Recorded by another worker; no placement loop runs here, so nobody takes it.
        catalog.create_pipe(&spec).await.unwrap();
        let conf = worker_w1();
        let m = Manager::new(catalog.clone()).with_worker(conf);

        let answer = |e: ManagerError| async move {
            let r = e.into_response();
            let retry = r.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_string());
            let status = r.status();
            let body: serde_json::Value = serde_json::from_slice(&axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap()).unwrap();
            (status, retry, body["error"].as_str().unwrap_or_default().to_string())
        };
        let (status, retry, error) = answer(m.pause("p").await.unwrap_err()).await;
        assert_eq!((status, retry.as_deref()), (StatusCode::SERVICE_UNAVAILABLE, Some("5")));
        assert!(error.starts_with("pipe p is between workers: no worker has taken it yet;") && error.ends_with("retry"), "{error}");
        let v = view(&m, "p").await.unwrap();
        assert_eq!((v.worker, v.placement.as_deref()), (None, Some(error.as_str())));

        // Held by another worker, then released by it (a hand-off): the gap is named as such.
        let lease = catalog.acquire_lease("p", "w2", Duration::from_secs(15)).await.unwrap().unwrap();
        catalog.release_lease("p", "w2", lease.token).await.unwrap();
        let (status, _, error) = answer(m.delete("p", false).await.unwrap_err()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(error.contains("its lease (token 1) was released"), "{error}");

        let (status, retry, _) = answer(m.pause("nope").await.unwrap_err()).await;
        assert_eq!((status, retry), (StatusCode::NOT_FOUND, None));
    }

    /// The list asks the worker running a pipe for its live figures; one that
    /// does not answer leaves them empty, and the list is answered all the same.
    #[tokio::test]
    async fn the_list_keeps_empty_figures_when_the_running_worker_does_not_answer() {
        let (_dir, catalog, spec) = catalog_with_pipe_p().await;
        catalog.create_pipe(&spec).await.unwrap();
        // Worker w2 runs it, at an address where nothing listens.
        catalog.register_worker("w2", "http://127.0.0.1:1", &Default::default()).await.unwrap();
        catalog.acquire_lease("p", "w2", Duration::from_secs(60)).await.unwrap().unwrap();
        let conf = worker_w1();
        let st = AppState {
            manager: Manager::new(catalog).with_worker(conf),
            token: Arc::new("t".into()),
            metrics: metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle(),
        };
        let Json(list) = list_pipes(State(st.clone()), Query(ListParams { local: false }), Default::default()).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].worker.as_deref(), list[0].lag_seconds, &list[0].placement), (Some("w2"), None, &None));
        let Json(local) = list_pipes(State(st), Query(ListParams { local: true }), Default::default()).await.unwrap();
        assert!(local.is_empty(), "this worker runs no pipe");
    }
}
