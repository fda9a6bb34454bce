//! Verification runs over the REST API: `POST /v1/pipes/{name}/verify` starts
//! one as a background task of the server (see `sluice_verify::verify`),
//! `GET /v1/pipes/{name}/verifications[/{id}]` shows progress and results.
//! A repair on a running pipe pauses it while the repair writes and resumes
//! it after (the stream then reserves versions above the repair's).

use crate::api::{ApiError, AppState};
use crate::manager::{Manager, ManagerError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sluice_catalog::VerificationRecord;
use sluice_core::PipeState;
use sluice_verify::{RepairGate, Request, TableResult};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

/// What to verify: destination names (or `schema.table`), all tables when
/// empty or absent; `repair` re-copies the rows found differing.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub repair: bool,
}

/// A started run.
#[derive(Serialize, ToSchema)]
pub struct VerifyStarted {
    pub id: i64,
    pub pipe: String,
}

/// A verification run: progress (tables `pending`/`running`/`done`) and results.
#[derive(Serialize, ToSchema)]
pub struct VerificationView {
    pub id: i64,
    pub pipe: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub repair: bool,
    /// True when the run is done and no table has a differing row or an error.
    pub clean: bool,
    pub tables: Vec<TableResult>,
    pub error: Option<String>,
}

impl VerificationView {
    fn of(r: VerificationRecord) -> Self {
        let tables: Vec<TableResult> = serde_json::from_value(r.tables).unwrap_or_default();
        let clean = r.state == sluice_catalog::VERIFY_DONE && tables.iter().all(|t| t.rows_differing == 0 && t.error.is_none());
        Self {
            id: r.id,
            pipe: r.pipe,
            started_at: r.started_at,
            finished_at: r.finished_at,
            state: r.state,
            repair: r.repair,
            clean,
            tables,
            error: r.error,
        }
    }
}

fn bad_request(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(ApiError { error: msg, state: None })).into_response()
}

/// Pauses a running pipe while a repair writes, and resumes it after (only
/// if it paused it: a pipe the user had paused stays paused).
struct PauseGate {
    manager: Manager,
    pipe: String,
    paused_by_us: std::sync::atomic::AtomicBool,
}

impl RepairGate for PauseGate {
    fn hold(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let state = self.manager.catalog().pipe(&self.pipe).await.map_err(|e| e.to_string())?.map(|p| p.state);
            match state {
                Some(PipeState::Running | PipeState::Snapshot) => {
                    self.manager.pause(&self.pipe).await.map_err(|e| format!("cannot pause the pipe for the repair: {e}"))?;
                    self.paused_by_us.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Some(PipeState::Paused | PipeState::Completed | PipeState::Failed) => return Ok(()),
                Some(other) => return Err(format!("cannot repair while the pipe is {other}; try again when it is Running or Paused")),
                None => return Err(format!("pipe {:?} not found", self.pipe)),
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
            loop {
                let s = self.manager.catalog().pipe(&self.pipe).await.map_err(|e| e.to_string())?.map(|p| p.state);
                if s == Some(PipeState::Paused) {
                    return Ok(());
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(format!("the pipe did not pause within 300 s for the repair (state {s:?})"));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }

    fn release(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if self.paused_by_us.swap(false, std::sync::atomic::Ordering::SeqCst) {
                self.manager.resume(&self.pipe).await.map_err(|e| format!("cannot resume the pipe after the repair: {e}"))?;
            }
            Ok(())
        })
    }
}

/// Start a verification run of the pipe's tables (all unless `tables`); it runs in the background.
#[utoipa::path(post, path = "/v1/pipes/{name}/verify", tag = "verify", params(("name" = String, Path)), request_body(content = VerifyRequest, description = "optional"),
    responses((status = 202, body = VerifyStarted), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub async fn start(State(st): State<AppState>, Path(name): Path<String>, body: axum::body::Bytes) -> Response {
    let req: VerifyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        VerifyRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return bad_request(format!("invalid verification request: {e}")),
        }
    };
    match start_run(&st.manager, &name, Request { tables: req.tables, repair: req.repair }).await {
        Ok(id) => (StatusCode::ACCEPTED, Json(VerifyStarted { id, pipe: name })).into_response(),
        Err(StartError::UnknownTable(msg)) => bad_request(msg),
        Err(StartError::Manager(e)) => e.into_response(),
    }
}

/// Why a run could not start.
pub enum StartError {
    UnknownTable(String),
    Manager(ManagerError),
}

impl From<sluice_catalog::CatalogError> for StartError {
    fn from(e: sluice_catalog::CatalogError) -> Self {
        StartError::Manager(e.into())
    }
}

/// Records a run of `pipe` and starts it as a background task; returns its id.
pub async fn start_run(manager: &Manager, pipe: &str, request: Request) -> Result<i64, StartError> {
    let catalog = manager.catalog().clone();
    let Some(rec) = catalog.pipe(pipe).await? else {
        return Err(StartError::Manager(ManagerError::NotFound(pipe.into())));
    };
    // One run per pipe at a time: a repair pauses and resumes the pipe, which another run would see change under it.
    if let Some(running) = catalog.verifications(pipe, 50).await?.into_iter().find(|r| r.state == sluice_catalog::VERIFY_RUNNING) {
        return Err(StartError::Manager(ManagerError::Conflict {
            message: format!("verification #{} of pipe {pipe:?} is still running; wait for it to end", running.id),
            state: rec.state,
        }));
    }
    let tables = catalog.tables(pipe).await?;
    if let Err(e) = sluice_verify::select_tables(tables, &request.tables) {
        return Err(StartError::UnknownTable(e.to_string()));
    }
    let id = catalog.start_verification(pipe, request.repair, &serde_json::to_value(&request).unwrap_or_default()).await?;
    let manager = manager.clone();
    let pipe = pipe.to_string();
    tokio::spawn(async move {
        let gate = PauseGate { manager: manager.clone(), pipe: pipe.clone(), paused_by_us: false.into() };
        let cancel = CancellationToken::new();
        if let Err(e) = sluice_verify::verify(manager.catalog(), &pipe, id, &request, Some(&gate), &cancel).await {
            tracing::warn!(pipe = pipe.as_str(), "verification #{id} failed: {e}");
        }
    });
    Ok(id)
}

/// Whether a scheduled run is due: `interval_hours` > 0 and the last run
/// started at least that long before `now` (or there was none).
pub fn due(interval_hours: u64, last_started: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> bool {
    if interval_hours == 0 {
        return false;
    }
    match last_started.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        None => true,
        Some(at) => now - at.with_timezone(&chrono::Utc) >= chrono::Duration::hours(interval_hours as i64),
    }
}

/// Starts scheduled verifications (`settings.verify_interval_hours`) of
/// `Running` and `Completed` pipes, checking a few seconds after the server
/// starts (so a run that fell due while it was down starts promptly) and then
/// once a minute; never two runs of a pipe at once.
pub fn spawn_scheduler(manager: Manager) {
    tokio::spawn(async move {
        let mut wait = Duration::from_secs(5);
        loop {
            tokio::time::sleep(wait).await;
            wait = Duration::from_secs(60);
            let Ok(names) = manager.catalog().pipe_names().await else { continue };
            for name in names {
                // Scheduled on the worker that runs the pipe, once.
                if !manager.runs(&name) {
                    continue;
                }
                let Ok(Some(rec)) = manager.catalog().pipe(&name).await else { continue };
                if !matches!(rec.state, PipeState::Running | PipeState::Completed) {
                    continue;
                }
                let Ok(last) = manager.catalog().verifications(&name, 1).await else { continue };
                if last.first().is_some_and(|r| r.state == sluice_catalog::VERIFY_RUNNING) {
                    continue;
                }
                if due(rec.spec.settings.verify_interval_hours, last.first().map(|r| r.started_at.as_str()), chrono::Utc::now()) {
                    match start_run(&manager, &name, Request::default()).await {
                        Ok(id) => tracing::info!(pipe = name.as_str(), "scheduled verification #{id} started"),
                        Err(_) => tracing::warn!(pipe = name.as_str(), "cannot start the scheduled verification"),
                    }
                }
            }
        }
    });
}

/// The pipe's verification runs, newest first (the last 50).
#[utoipa::path(get, path = "/v1/pipes/{name}/verifications", tag = "verify", params(("name" = String, Path)),
    responses((status = 200, body = Vec<VerificationView>), (status = 404, body = ApiError)))]
pub async fn list(State(st): State<AppState>, Path(name): Path<String>) -> Result<Json<Vec<VerificationView>>, ManagerError> {
    if st.manager.catalog().pipe(&name).await?.is_none() {
        return Err(ManagerError::NotFound(name));
    }
    Ok(Json(st.manager.catalog().verifications(&name, 50).await?.into_iter().map(VerificationView::of).collect()))
}

/// One verification run: progress and per-table results, with the differing keys.
#[utoipa::path(get, path = "/v1/pipes/{name}/verifications/{id}", tag = "verify", params(("name" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = VerificationView), (status = 404, body = ApiError)))]
pub async fn get_one(State(st): State<AppState>, Path((name, id)): Path<(String, i64)>) -> Result<Json<VerificationView>, ManagerError> {
    match st.manager.catalog().verification(&name, id).await? {
        Some(r) => Ok(Json(VerificationView::of(r))),
        None => Err(ManagerError::Missing(format!("pipe {name:?} has no verification #{id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_runs_are_due_after_the_interval() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-02T12:00:00Z").unwrap().with_timezone(&chrono::Utc);
        assert!(!due(0, None, now));
        assert!(due(1, None, now));
        assert!(due(1, Some("2026-01-02T11:00:00.000Z"), now));
        assert!(!due(1, Some("2026-01-02T11:30:00.000Z"), now));
        assert!(!due(24, Some("2026-01-01T13:00:00Z"), now));
        assert!(due(24, Some("garbage"), now));
    }
}
