//! The API across workers: `GET /v1/workers`, and commands for a pipe another
//! worker runs forwarded to that worker.
//!
//! Forwarding: a request that changes a pipe (any method but GET on
//! `/v1/pipes/{name}/...`), or a GET of the pipe itself (`/v1/pipes/{name}`:
//! its live status is only on its worker), reaching a worker that does not run the pipe, while
//! another live worker holds its lease, is sent on to that worker's advertised
//! URL with the same token and body, and its answer (status, JSON) is returned
//! as it is: today's semantics (202 with the state, 409 on an illegal
//! transition) come from the owner itself. A forwarded request carries
//! `x-sluice-forwarded` and is never forwarded again (no loops while a lease
//! moves). A command for a pipe nobody holds a live lease on (between
//! workers) reaches the receiving worker's manager, which answers 503 with
//! `Retry-After` and says why (`placement::unplaced`); 404 is only for pipes
//! that do not exist.

use crate::api::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// Marks a request forwarded by another worker.
const FORWARDED: &str = "x-sluice-forwarded";

/// A pipe's lease as `GET /v1/workers` shows it.
#[derive(Serialize, ToSchema)]
pub struct LeaseView {
    pub pipe: String,
    /// Fencing token: grows by one on every acquisition.
    pub token: i64,
    /// Milliseconds until the lease expires unless renewed.
    pub expires_in_ms: i64,
}

/// A registered worker.
#[derive(Serialize, ToSchema)]
pub struct WorkerView {
    pub id: String,
    /// Its advertised API URL.
    pub address: String,
    /// Milliseconds since its last heartbeat (catalog clock).
    pub heartbeat_age_ms: i64,
    /// Milliseconds since it registered.
    pub uptime_ms: i64,
    /// Whether this is the worker answering.
    pub this: bool,
    /// Its labels (`--labels`): it runs only pipes whose placement constraint they satisfy.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The pipes it holds live leases on.
    pub pipes: Vec<LeaseView>,
}

/// Every registered worker with its pipes (a worker killed without stopping stays listed, its heartbeat ageing).
#[utoipa::path(get, path = "/v1/workers", tag = "server", responses((status = 200, body = [WorkerView])))]
pub async fn list(State(st): State<AppState>) -> Response {
    let cat = st.manager.catalog();
    let (now, leases) = match cat.pipe_leases().await {
        Ok(x) => x,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, Json(ApiError { error: e.to_string(), state: None })).into_response(),
    };
    let workers = match cat.workers().await {
        Ok(w) => w,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, Json(ApiError { error: e.to_string(), state: None })).into_response(),
    };
    let me = st.manager.worker().map(|w| w.id.clone());
    let views: Vec<WorkerView> = workers
        .into_iter()
        .map(|w| WorkerView {
            pipes: leases
                .iter()
                .filter(|l| l.held_at(now) == Some(w.id.as_str()))
                .map(|l| LeaseView { pipe: l.pipe.clone(), token: l.token, expires_in_ms: l.expires_ms - now })
                .collect(),
            this: me.as_deref() == Some(w.id.as_str()),
            heartbeat_age_ms: now - w.heartbeat_ms,
            uptime_ms: now - w.started_ms,
            address: w.api_address,
            labels: w.labels,
            id: w.id,
        })
        .collect();
    Json(views).into_response()
}

/// Fills in the live figures (lag, changes applied, warning: only the running
/// worker has them) of the pipes in `views` that other workers run, asking
/// each of those workers once for its own pipes (`GET /v1/pipes?local=true`,
/// forwarded, with the client's `auth`), concurrently, 2 s at most; a worker
/// that does not answer leaves its pipes' figures as they are (empty).
pub async fn fill_live_figures(st: &AppState, views: &mut [crate::api::PipeView], auth: Option<&header::HeaderValue>) {
    let Some(me) = st.manager.worker().map(|w| w.id.clone()) else { return };
    let mut by_worker: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for (i, v) in views.iter().enumerate() {
        if let Some(w) = v.worker.as_ref().filter(|w| **w != me) {
            by_worker.entry(w.clone()).or_default().push(i);
        }
    }
    if by_worker.is_empty() {
        return;
    }
    let Ok(workers) = st.manager.catalog().workers().await else { return };
    // The TLS crypto provider, should the process not have installed it yet (a client cannot be built without it).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let asks = by_worker.keys().filter_map(|id| workers.iter().find(|w| w.id == *id)).map(|w| {
        let mut req = client
            .get(format!("{}/v1/pipes?local=true", w.api_address.trim_end_matches('/')))
            .header(FORWARDED, "1")
            .timeout(std::time::Duration::from_secs(2));
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a.clone());
        }
        let id = w.id.clone();
        async move {
            let answer = async { req.send().await.ok()?.error_for_status().ok()?.json::<Vec<serde_json::Value>>().await.ok() }.await;
            if answer.is_none() {
                tracing::debug!("worker {id} did not give its pipes' live figures; they stay empty in the list");
            }
            (id, answer.unwrap_or_default())
        }
    });
    for (id, remote) in futures_util::future::join_all(asks).await {
        for i in by_worker.get(&id).into_iter().flatten() {
            let v = &mut views[*i];
            let Some(r) = remote.iter().find(|r| r["name"] == v.name.as_str()) else { continue };
            v.lag_seconds = r["lag_seconds"].as_f64();
            v.warning = r["warning"].as_str().map(str::to_owned);
            v.changes_applied = r["changes_applied"].as_u64().unwrap_or(v.changes_applied);
        }
    }
}

/// The worker holding `pipe`'s lease when it is not this one: its id and advertised URL.
async fn owner_elsewhere(st: &AppState, pipe: &str) -> Option<(String, String)> {
    let me = st.manager.worker()?;
    if st.manager.runs(pipe) {
        return None;
    }
    let (holder, _) = st.manager.catalog().lease_holder(pipe).await.ok()??;
    if holder == me.id {
        return None;
    }
    let addr = st.manager.catalog().workers().await.ok()?.into_iter().find(|w| w.id == holder)?.api_address;
    Some((holder, addr))
}

/// Middleware: forwards a command for a pipe run by another worker to it (see the module's doc).
pub async fn forward(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if req.headers().contains_key(FORWARDED) || st.manager.worker().is_none() {
        return next.run(req).await;
    }
    let rest = req.uri().path().strip_prefix("/v1/pipes/").map(str::to_owned);
    let Some(pipe) = rest.as_deref().and_then(|r| r.split('/').next()).map(str::to_owned) else {
        return next.run(req).await;
    };
    // A GET of the pipe itself goes to its worker too: only that one has its live status (lag, rates).
    if req.method() == Method::GET && rest.as_deref() != Some(pipe.as_str()) {
        return next.run(req).await;
    }
    if pipe.is_empty() || pipe.contains('%') {
        return next.run(req).await;
    }
    let Some((holder, addr)) = owner_elsewhere(&st, &pipe).await else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, Json(ApiError { error: format!("cannot read the request: {e}"), state: None }))
                .into_response()
        }
    };
    let url = format!("{}{}", addr.trim_end_matches('/'), parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or(parts.uri.path()));
    let mut out = reqwest::Client::new().request(parts.method.clone(), &url).header(FORWARDED, "1").body(body.to_vec());
    for h in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(v) = parts.headers.get(&h) {
            out = out.header(h, v.clone());
        }
    }
    match out.timeout(std::time::Duration::from_secs(120)).send().await {
        Ok(resp) => {
            let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let ctype = resp.headers().get(header::CONTENT_TYPE).cloned();
            let bytes = resp.bytes().await.unwrap_or_default();
            let mut r = (status, bytes).into_response();
            if let Some(c) = ctype {
                r.headers_mut().insert(header::CONTENT_TYPE, c);
            }
            r
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(ApiError { error: format!("pipe {pipe:?} runs on worker {holder} ({addr}), which did not answer: {e}"), state: None }),
        )
            .into_response(),
    }
}
