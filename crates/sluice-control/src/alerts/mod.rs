//! Alerts: rules (global and per pipe) evaluated periodically by the server,
//! messages sent on channels (signed webhook, Slack, e-mail), their REST API
//! (`/v1/alerts`, `/v1/pipes/{name}/alerts`) and the `sluice alerts` CLI.
//!
//! - `config`: what users write, and its checks;
//! - `eval`: the rules' conditions and each alert's state machine;
//! - `deliver`: the messages and the outbox worker that sends them;
//! - `cli`: `sluice alerts show | set | test`.
//!
//! The evaluation runs every `SLUICE_ALERT_INTERVAL_MS` (default 10 000 ms).

pub mod cli;
pub mod config;
pub mod deliver;
pub mod eval;

use crate::api::{ApiError, AppState};
use crate::manager::{Manager, ManagerError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use config::{AlertConfig, PipeAlerts};
use deliver::AlertMessage;
use serde::Serialize;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// The default time between two evaluations of the rules.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The evaluation interval: `SLUICE_ALERT_INTERVAL_MS` (at least 100 ms), else `DEFAULT_INTERVAL`.
pub fn interval() -> Duration {
    std::env::var("SLUICE_ALERT_INTERVAL_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|ms| Duration::from_millis(ms.max(100)))
        .unwrap_or(DEFAULT_INTERVAL)
}

/// Starts the evaluator and the outbox worker as tasks of the server.
pub fn spawn(manager: Manager) {
    let every = interval();
    let catalog = manager.catalog().clone();
    tokio::spawn(deliver::run_outbox(catalog, every.min(Duration::from_secs(1))));
    tokio::spawn(async move {
        let started = Instant::now();
        // Lag and retry state restart with the process: give the pipes six evaluations (a minute by default)
        // to report before an alert on them can clear.
        let warm_up = every * 6;
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = eval::evaluate_once(&manager, started, warm_up).await {
                tracing::warn!("alerts: evaluation skipped: {e}");
            }
        }
    });
}

fn bad_request(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(ApiError { error: msg.into(), state: None })).into_response()
}

/// The global alert configuration: channels (secrets left out) and rules.
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", responses((status = 200, body = AlertConfig)))]
pub async fn get_global(State(st): State<AppState>) -> Result<Json<AlertConfig>, ManagerError> {
    let c: AlertConfig = st.manager.catalog().alert_config(None).await?.unwrap_or_default();
    Ok(Json(c.redacted()))
}

/// Replace the global alert configuration. A channel given without its
/// secret keeps the stored secret of the channel of that name.
#[utoipa::path(put, path = "/v1/alerts", tag = "alerts", request_body = AlertConfig,
    responses((status = 200, body = AlertConfig), (status = 400, body = ApiError)))]
pub async fn put_global(State(st): State<AppState>, body: axum::body::Bytes) -> Response {
    let mut config: AlertConfig = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(format!("invalid alert configuration: {e}")),
    };
    let catalog = st.manager.catalog();
    match catalog.alert_config::<AlertConfig>(None).await {
        Ok(stored) => config.keep_secrets_from(&stored.unwrap_or_default()),
        Err(e) => return ManagerError::from(e).into_response(),
    }
    if let Err(e) = config.validate() {
        return bad_request(format!("invalid alert configuration: {e}"));
    }
    // A pipe's rules may name channels: none of them may disappear.
    match pipes_rules(&st.manager).await {
        Ok(all) => {
            for (pipe, rules) in all {
                if let Err(e) = config::check_rules(&rules.rules, Some(&config.channels)) {
                    return bad_request(format!(
                        "invalid alert configuration: pipe {pipe:?}'s alert rules need a channel it removes: {e}; change them first"
                    ));
                }
            }
        }
        Err(e) => return ManagerError::from(e).into_response(),
    }
    match catalog.set_alert_config(None, &config).await {
        Ok(()) => Json(config.redacted()).into_response(),
        Err(e) => ManagerError::from(e).into_response(),
    }
}

/// The alert rules of every pipe that has some.
async fn pipes_rules(manager: &Manager) -> Result<Vec<(String, PipeAlerts)>, sluice_catalog::CatalogError> {
    let mut out = Vec::new();
    for name in manager.catalog().pipe_names().await? {
        if let Some(rules) = manager.catalog().alert_config::<PipeAlerts>(Some(&name)).await? {
            out.push((name, rules));
        }
    }
    Ok(out)
}

/// One pipe's alert rules (each replaces the global rule of its kind for this pipe).
#[utoipa::path(get, path = "/v1/pipes/{name}/alerts", tag = "alerts", params(("name" = String, Path)),
    responses((status = 200, body = PipeAlerts), (status = 404, body = ApiError)))]
pub async fn get_pipe(State(st): State<AppState>, Path(name): Path<String>) -> Result<Json<PipeAlerts>, ManagerError> {
    if st.manager.catalog().pipe(&name).await?.is_none() {
        return Err(ManagerError::NotFound(name));
    }
    Ok(Json(st.manager.catalog().alert_config(Some(&name)).await?.unwrap_or_default()))
}

/// Replace one pipe's alert rules.
#[utoipa::path(put, path = "/v1/pipes/{name}/alerts", tag = "alerts", params(("name" = String, Path)), request_body = PipeAlerts,
    responses((status = 200, body = PipeAlerts), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub async fn put_pipe(State(st): State<AppState>, Path(name): Path<String>, body: axum::body::Bytes) -> Response {
    let rules: PipeAlerts = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("invalid alert rules: {e}")),
    };
    let catalog = st.manager.catalog();
    let global: AlertConfig = match catalog.alert_config(None).await {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return ManagerError::from(e).into_response(),
    };
    if let Err(e) = config::check_rules(&rules.rules, Some(&global.channels)) {
        return bad_request(format!("invalid alert rules: {e}"));
    }
    match catalog.set_alert_config(Some(&name), &rules).await {
        Ok(()) => Json(rules).into_response(),
        Err(e) => ManagerError::from(e).into_response(),
    }
}

/// An alert whose condition holds: `firing` once sent, else pending (held for less than its rule's `for_minutes`).
#[derive(Serialize, ToSchema)]
pub struct ActiveAlert {
    pub pipe: String,
    pub rule: String,
    /// The table (destination name) of a `table_error` alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    pub firing: bool,
    /// When the condition was first seen.
    pub since: String,
    pub fired_at: Option<String>,
    pub summary: String,
}

/// The alerts whose condition holds now (firing or pending), by pipe and rule.
#[utoipa::path(get, path = "/v1/alerts/active", tag = "alerts", responses((status = 200, body = Vec<ActiveAlert>)))]
pub async fn active(State(st): State<AppState>) -> Result<Json<Vec<ActiveAlert>>, ManagerError> {
    let states = st.manager.catalog().alert_states().await?;
    Ok(Json(
        states
            .into_iter()
            .map(|s| ActiveAlert {
                table: (!s.subject.is_empty()).then_some(s.subject),
                pipe: s.pipe,
                rule: s.rule,
                firing: s.firing,
                since: s.since,
                fired_at: s.fired_at,
                summary: s.summary,
            })
            .collect(),
    ))
}

/// The outcome of a test message on one channel.
#[derive(Serialize, ToSchema)]
pub struct ChannelTest {
    pub channel: String,
    pub kind: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Send a test message to every channel now (not through the outbox: one attempt each) and say how each went.
#[utoipa::path(post, path = "/v1/alerts/test", tag = "alerts", responses((status = 200, body = Vec<ChannelTest>)))]
pub async fn test_channels(State(st): State<AppState>) -> Result<Json<Vec<ChannelTest>>, ManagerError> {
    let config: AlertConfig = st.manager.catalog().alert_config(None).await?.unwrap_or_default();
    let http = deliver::http_client();
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let msg = AlertMessage {
        status: "test".into(),
        alert: "test".into(),
        pipe: None,
        rule: None,
        table: None,
        summary: "test message from sluice: this channel works".into(),
        since: None,
        at,
    };
    let results = futures_util::future::join_all(config.channels.iter().map(|c| {
        let (http, msg) = (&http, &msg);
        async move {
            let r = deliver::send(http, c, msg).await;
            ChannelTest { channel: c.name().into(), kind: c.kind().into(), ok: r.is_ok(), error: r.err() }
        }
    }))
    .await;
    Ok(Json(results))
}
