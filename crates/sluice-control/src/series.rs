//! Time-series history of the pipes: the sampler that records every pipe's
//! and every table's metrics in the catalog every `SLUICE_SERIES_INTERVAL_MS`
//! (default 10 000 ms), and `GET /v1/pipes/{name}/series`.
//!
//! What is sampled comes from the counters the server already keeps (the
//! pipe's `LiveStatus`, the tables' snapshot progress in the catalog):
//! - per pipe: `lag_seconds`, `changes_per_second`, `upserts_per_second`,
//!   `deletes_per_second`, `batch_seconds` (mean duration of the CDC batches
//!   written since the last sample; none when no batch was written),
//!   `snapshot_rows_per_second`;
//! - per table: `upserts_per_second`, `deletes_per_second`,
//!   `snapshot_rows_per_second`, stored only when not 0 (an idle table costs
//!   nothing; a missing point of a per-table rate is 0).
//!
//! Inserts and updates are both upserts: the change stream carries them alike.
//! Rates need two samples: a pipe's first sample after a start has only its lag.
//! The sampler also saves the pipe's `changes_applied` counter, which the
//! manager adds back when the server starts again (up to one interval of
//! counts is lost by a crash; none by a clean stop, see `save_counters`).

use crate::api::{ApiError, AppState};
use crate::manager::{Manager, ManagerError};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sluice_catalog::series::{COARSE, FINE};
use sluice_catalog::{CatalogError, SeriesSample};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// The default time between two samples.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// The name of the persisted counter of row changes applied.
pub const CHANGES_APPLIED: &str = "changes_applied";

/// Metrics of a pipe.
pub const PIPE_METRICS: [&str; 6] =
    ["lag_seconds", "changes_per_second", "upserts_per_second", "deletes_per_second", "batch_seconds", "snapshot_rows_per_second"];
/// Metrics of a table.
pub const TABLE_METRICS: [&str; 3] = ["upserts_per_second", "deletes_per_second", "snapshot_rows_per_second"];

/// The sampling interval: `SLUICE_SERIES_INTERVAL_MS` (at least 100 ms), else `DEFAULT_INTERVAL`.
pub fn interval() -> Duration {
    std::env::var("SLUICE_SERIES_INTERVAL_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|ms| Duration::from_millis(ms.max(100)))
        .unwrap_or(DEFAULT_INTERVAL)
}

/// The counters of one pipe at its previous sample.
struct Prev {
    at: Instant,
    changes: u64,
    batches: u64,
    batch_ms: u64,
    /// Per destination table: (upserts, deletes) written by CDC.
    tables: HashMap<String, (u64, u64)>,
    /// Per destination table: rows copied by its snapshot.
    copied: HashMap<String, u64>,
}

/// Takes samples; remembers each pipe's counters between two samples.
#[derive(Default)]
pub struct Sampler {
    prev: HashMap<String, Prev>,
    ticks: u64,
}

fn epoch_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn per_second(now: u64, before: u64, secs: f64) -> f64 {
    now.saturating_sub(before) as f64 / secs
}

impl Sampler {
    /// Samples every pipe that has an owner, and prunes old points every 30 samples.
    pub async fn sample_all(&mut self, manager: &Manager) -> Result<(), CatalogError> {
        let names = manager.catalog().pipe_names().await?;
        self.prev.retain(|n, _| names.contains(n));
        for name in &names {
            match self.sample(manager, name).await {
                Ok(()) | Err(CatalogError::NoSuchPipe(_)) => {}
                Err(e) => tracing::warn!(pipe = name.as_str(), "series: sample skipped: {e}"),
            }
        }
        if self.ticks.is_multiple_of(30) {
            manager.catalog().prune_series(epoch_now()).await?;
        }
        self.ticks += 1;
        Ok(())
    }

    async fn sample(&mut self, manager: &Manager, name: &str) -> Result<(), CatalogError> {
        let Some(status) = manager.status(name) else { return Ok(()) };
        let tables = manager.catalog().tables(name).await?;
        let now = Instant::now();
        let cur = Prev {
            at: now,
            changes: status.changes_applied.load(Ordering::Relaxed),
            batches: status.batches.load(Ordering::Relaxed),
            batch_ms: status.batch_ms.load(Ordering::Relaxed),
            tables: status.table_changes().into_iter().map(|(t, u, d)| (t, (u, d))).collect(),
            copied: tables.iter().map(|t| (t.mapping.destination.clone(), t.rows_copied)).collect(),
        };
        let mut samples = Vec::new();
        if let Some(lag) = status.lag_seconds() {
            samples.push(SeriesSample::new("", "lag_seconds", lag));
        }
        if let Some(p) = self.prev.get(name) {
            let secs = now.duration_since(p.at).as_secs_f64().max(0.001);
            samples.push(SeriesSample::new("", "changes_per_second", per_second(cur.changes, p.changes, secs)));
            let batches = cur.batches.saturating_sub(p.batches);
            if batches > 0 {
                samples.push(SeriesSample::new(
                    "",
                    "batch_seconds",
                    cur.batch_ms.saturating_sub(p.batch_ms) as f64 / 1000.0 / batches as f64,
                ));
            }
            let (mut ups, mut dels, mut rows) = (0.0, 0.0, 0.0);
            for (t, (u, d)) in &cur.tables {
                let (pu, pd) = p.tables.get(t).copied().unwrap_or((0, 0));
                let (u, d) = (per_second(*u, pu, secs), per_second(*d, pd, secs));
                ups += u;
                dels += d;
                if u > 0.0 {
                    samples.push(SeriesSample::new(t.as_str(), "upserts_per_second", u));
                }
                if d > 0.0 {
                    samples.push(SeriesSample::new(t.as_str(), "deletes_per_second", d));
                }
            }
            for (t, c) in &cur.copied {
                // A table copied again starts from 0: no rate for that interval.
                let r = p.copied.get(t).map(|pc| per_second(*c, *pc, secs)).unwrap_or(0.0);
                rows += r;
                if r > 0.0 {
                    samples.push(SeriesSample::new(t.as_str(), "snapshot_rows_per_second", r));
                }
            }
            samples.push(SeriesSample::new("", "upserts_per_second", ups));
            samples.push(SeriesSample::new("", "deletes_per_second", dels));
            samples.push(SeriesSample::new("", "snapshot_rows_per_second", rows));
        }
        let counters = vec![(CHANGES_APPLIED.to_string(), cur.changes)];
        self.prev.insert(name.to_string(), cur);
        manager.catalog().record_series(name, epoch_now(), samples, counters).await
    }
}

/// Saves the persistent counters of these pipes now (at a clean stop, after
/// their engines stopped, so the counts are final).
pub async fn save_counters(catalog: &sluice_catalog::Catalog, statuses: &[(String, std::sync::Arc<sluice_engine::LiveStatus>)]) {
    for (name, status) in statuses {
        let counters = vec![(CHANGES_APPLIED.to_string(), status.changes_applied.load(Ordering::Relaxed))];
        if let Err(e) = catalog.record_series(name, epoch_now(), vec![], counters).await {
            tracing::warn!(pipe = name.as_str(), "series: cannot save the counters: {e}");
        }
    }
}

/// Starts the sampler as a task of the server.
pub fn spawn(manager: Manager) {
    let every = interval();
    tokio::spawn(async move {
        let mut sampler = Sampler::default();
        loop {
            if let Err(e) = sampler.sample_all(&manager).await {
                tracing::warn!("series: sample skipped: {e}");
            }
            tokio::time::sleep(every).await;
        }
    });
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct SeriesParams {
    /// One of `lag_seconds`, `changes_per_second`, `upserts_per_second`, `deletes_per_second`,
    /// `batch_seconds`, `snapshot_rows_per_second` (with `table`: the last three but `batch_seconds`).
    pub metric: String,
    /// `1h` (10 s points), `6h` (10 s), `1d` (5 min), `7d` (5 min) or `30d` (5 min); default `1h`.
    #[serde(default)]
    pub range: Option<String>,
    /// A table of the pipe (destination name or source `schema.table`): that table's series instead of the pipe's.
    #[serde(default)]
    pub table: Option<String>,
}

/// A series: its points `[epoch seconds, value]`, oldest first, each covering `resolution` seconds from its time.
#[derive(Serialize, ToSchema)]
pub struct SeriesView {
    pub metric: String,
    /// The table's destination name, or null for the pipe.
    pub table: Option<String>,
    pub range: String,
    /// Seconds per point.
    pub resolution: i64,
    /// Whether a missing point means 0 (per-table rates, stored only when not 0) rather than no data.
    pub missing_is_zero: bool,
    #[schema(value_type = Vec<Vec<f64>>)]
    pub points: Vec<(i64, f64)>,
}

/// (seconds covered, resolution) of a range name.
fn range_of(r: &str) -> Option<(i64, i64)> {
    Some(match r {
        "1h" => (3600, FINE),
        "6h" => (6 * 3600, FINE),
        "1d" => (86400, COARSE),
        "7d" => (7 * 86400, COARSE),
        "30d" => (30 * 86400, COARSE),
        _ => return None,
    })
}

fn bad_request(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(ApiError { error: msg.into(), state: None })).into_response()
}

/// The time series of one metric of a pipe or of one of its tables over the
/// last hour, 6 hours, day, week or 30 days. Sampled every 10 s; 10 s points
/// are kept for a day, 5 min points (mean; maximum for lag) for 30 days.
#[utoipa::path(get, path = "/v1/pipes/{name}/series", tag = "pipes", params(("name" = String, Path), SeriesParams),
    responses((status = 200, body = SeriesView), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub async fn get_series(State(st): State<AppState>, Path(name): Path<String>, Query(q): Query<SeriesParams>) -> Response {
    let range = q.range.unwrap_or_else(|| "1h".into());
    let Some((secs, resolution)) = range_of(&range) else {
        return bad_request(format!("unknown range {range:?}: use 1h, 6h, 1d, 7d or 30d"));
    };
    let known: &[&str] = if q.table.is_some() { &TABLE_METRICS } else { &PIPE_METRICS };
    if !known.contains(&q.metric.as_str()) {
        let of = if q.table.is_some() { "a table" } else { "a pipe" };
        return bad_request(format!("unknown metric {:?} of {of}: use one of {}", q.metric, known.join(", ")));
    }
    let catalog = st.manager.catalog();
    match catalog.pipe(&name).await {
        Ok(Some(_)) => {}
        Ok(None) => return ManagerError::NotFound(name).into_response(),
        Err(e) => return ManagerError::from(e).into_response(),
    }
    let table = match &q.table {
        None => None,
        Some(t) => match catalog.tables(&name).await {
            Ok(tables) => match tables
                .iter()
                .find(|r| r.mapping.destination == *t || format!("{}.{}", r.mapping.source.id.schema, r.mapping.source.id.table) == *t)
            {
                Some(r) => Some(r.mapping.destination.clone()),
                None => return ManagerError::Missing(format!("pipe {name:?} has no table {t:?}")).into_response(),
            },
            Err(e) => return ManagerError::from(e).into_response(),
        },
    };
    let since = epoch_now() - secs;
    match catalog.series(&name, table.as_deref().unwrap_or(""), &q.metric, resolution, since).await {
        Ok(points) => {
            Json(SeriesView { metric: q.metric, missing_is_zero: table.is_some(), table, range, resolution, points }).into_response()
        }
        Err(e) => ManagerError::from(e).into_response(),
    }
}
