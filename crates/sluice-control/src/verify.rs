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

/// Pauses a running pipe while a repair writes, and resumes it after.
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
    responses((status = 202, body = VerifyStarted), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub async fn start(State(st): State<AppState>, Path(name): Path<String>, body: axum::body::Bytes) -> Response {
    let req: VerifyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        VerifyRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return bad_request(format!("invalid verification request: {e}")),
        }
    };
    let catalog = st.manager.catalog().clone();
    match catalog.pipe(&name).await {
        Ok(Some(_)) => {}
        Ok(None) => return ManagerError::NotFound(name).into_response(),
        Err(e) => return ManagerError::from(e).into_response(),
    }
    let tables = match catalog.tables(&name).await {
        Ok(t) => t,
        Err(e) => return ManagerError::from(e).into_response(),
    };
    if let Err(e) = sluice_verify::select_tables(tables, &req.tables) {
        return bad_request(e.to_string());
    }
    let request = Request { tables: req.tables, repair: req.repair };
    let id = match catalog.start_verification(&name, request.repair, &serde_json::to_value(&request).unwrap_or_default()).await {
        Ok(id) => id,
        Err(e) => return ManagerError::from(e).into_response(),
    };
    let manager = st.manager.clone();
    let pipe = name.clone();
    tokio::spawn(async move {
        let gate = PauseGate { manager: manager.clone(), pipe: pipe.clone(), paused_by_us: false.into() };
        let cancel = CancellationToken::new();
        if let Err(e) = sluice_verify::verify(manager.catalog(), &pipe, id, &request, Some(&gate), &cancel).await {
            tracing::warn!(pipe = pipe.as_str(), "verification #{id} failed: {e}");
        }
    });
    (StatusCode::ACCEPTED, Json(VerifyStarted { id, pipe: name })).into_response()
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
        None => Err(ManagerError::NotFound(format!("{name}/verifications/{id}"))),
    }
}
