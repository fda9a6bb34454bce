//! Sluice engine: runs one pipe through its lifecycle.
//!
//! `Provisioning → Setup → Snapshot → Running` (or `Completed` for
//! snapshot-only pipes), resuming from the catalog after any restart:
//! - `setup`: validates the source, records table schemas, creates the
//!   destination tables and records the binlog position `P0` CDC starts from.
//! - `snapshot`: copies each table in keyset chunks with the snapshot version
//!   reserved at Setup, recording the last acknowledged key so a restart
//!   resumes mid-table.
//! - `cdc`: follows the binlog from the checkpoint, batches whole
//!   transactions, writes them, then makes the checkpoint durable.
//!
//! Delivery is at-least-once with idempotent effects: a checkpoint only moves
//! after ClickHouse acknowledged everything before it, and replayed changes
//! carry higher versions than their first write (see `versions`).
//!
//! The engine reaches the outside world through two seams whose contracts are
//! written on the traits: a `ChangeSource` (`sluice_source`; MySQL/MariaDB:
//! `MySqlSource`) and a `Destination` (`sluice_sink`; ClickHouse:
//! `ClickHouseSink`), and keeps its state in a `CatalogStore` (`sluice_catalog`;
//! SQLite: `Catalog`). `PipeContext::with_parts` runs it over
//! any implementations; the unit tests (`tests`) run it over in-memory ones.

mod batch;
mod cdc;
mod error;
pub mod failpoints;
mod heartbeat;
pub mod memory;
pub mod modify;
mod retry;
mod schema_change;
mod setup;
mod snapshot;
#[cfg(test)]
mod tests;
pub mod versions;

pub use error::EngineError;

use sluice_catalog::{Catalog, CatalogStore};
use sluice_core::{PipeAction, PipeSpec, PipeState, SyncSettings, TableState};
use sluice_sink::{ClickHouseSink, Destination};
use sluice_source::{ChangeSource, MySqlSource};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// What a running pipe reports about itself, read by the API without touching
/// the catalog. It outlives one engine task (a server keeps it per pipe), so
/// lag keeps growing while the pipe is paused or its stream is stalled.
#[derive(Debug, Default)]
pub struct LiveStatus {
    /// Epoch ms of the last event of any kind the binlog stream received; -1 before CDC ran.
    last_heard_ms: AtomicI64,
    /// Epoch ms of the source commit of the oldest change read but not yet written; 0 when none.
    pending_since_ms: AtomicI64,
    /// Epoch ms since when the pipe has been retrying a transient failure; 0 when it is not.
    retrying_since_ms: AtomicI64,
    /// Row changes written by CDC since the process started.
    pub changes_applied: AtomicU64,
    /// Batches written by CDC since the process started.
    pub batches: AtomicU64,
    /// Milliseconds spent writing those batches.
    pub batch_ms: AtomicU64,
    /// Row changes written by CDC per destination table since the process started: (upserts, deletes).
    table_changes: std::sync::Mutex<std::collections::HashMap<String, (u64, u64)>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// How long a retried failure lasts before it is reported as a warning (and in `sluice_pipe_retrying`).
pub const RETRY_WARNING_AFTER: std::time::Duration = std::time::Duration::from_secs(30 * 60);

impl LiveStatus {
    pub fn new() -> Arc<Self> {
        let s = Self::default();
        s.last_heard_ms.store(-1, Ordering::Relaxed);
        Arc::new(s)
    }

    /// Replication lag: the age of the oldest source change not yet written to
    /// ClickHouse. 0 only when nothing is pending and the stream is live; when
    /// nothing has been heard from the source for longer than its heartbeat
    /// period (a stalled stream, a paused or stopped pipe), at least the time
    /// since it was last heard. `None` before CDC has run.
    pub fn lag_seconds(&self) -> Option<f64> {
        let heard = self.last_heard_ms.load(Ordering::Relaxed);
        if heard < 0 {
            return None;
        }
        let now = now_ms();
        let pending = self.pending_since_ms.load(Ordering::Relaxed);
        let mut lag = if pending > 0 { now - pending } else { 0 };
        let silent = now - heard;
        if silent > cdc::SERVER_HEARTBEAT.as_millis() as i64 + 1000 {
            lag = lag.max(silent);
        }
        Some(lag.max(0) as f64 / 1000.0)
    }

    /// CDC wrote `upserts` and `deletes` row changes to the destination table `table`.
    pub(crate) fn count_table(&self, table: &str, upserts: u64, deletes: u64) {
        let mut m = self.table_changes.lock().unwrap_or_else(|e| e.into_inner());
        let c = m.entry(table.to_string()).or_default();
        c.0 += upserts;
        c.1 += deletes;
    }

    /// Row changes written by CDC per destination table since the process started: (table, upserts, deletes).
    pub fn table_changes(&self) -> Vec<(String, u64, u64)> {
        let m = self.table_changes.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(t, (u, d))| (t.clone(), *u, *d)).collect()
    }

    /// The stream received an event (a change, a commit, a heartbeat).
    pub(crate) fn heard(&self) {
        self.last_heard_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// The oldest change held but not yet written was committed at `ts` (epoch seconds); `None`: nothing held.
    pub(crate) fn pending_since(&self, ts: Option<u32>) {
        let ms = ts.map(|t| t as i64 * 1000).unwrap_or(0);
        self.pending_since_ms.store(ms, Ordering::Relaxed);
    }

    /// Whether the pipe is retrying a transient failure (the first call with `true` starts the clock).
    pub(crate) fn retrying(&self, pipe: &str, yes: bool) {
        if yes {
            let _ = self.retrying_since_ms.compare_exchange(0, now_ms(), Ordering::Relaxed, Ordering::Relaxed);
        } else {
            self.retrying_since_ms.store(0, Ordering::Relaxed);
            metrics::gauge!("sluice_pipe_retrying_seconds", "pipe" => pipe.to_string()).set(0.0);
        }
    }

    /// For how long the pipe has been retrying a transient failure, if it is.
    pub fn retrying_for(&self) -> Option<std::time::Duration> {
        let since = self.retrying_since_ms.load(Ordering::Relaxed);
        (since > 0).then(|| std::time::Duration::from_millis((now_ms() - since).max(0) as u64))
    }

    /// A warning when a failure has been retried for longer than `RETRY_WARNING_AFTER`.
    pub fn warning(&self) -> Option<String> {
        let d = self.retrying_for()?;
        (d >= RETRY_WARNING_AFTER).then(|| format!("retrying a failure for {} min; see the error", d.as_secs() / 60))
    }

    /// Sets the lag and retry gauges from the current state.
    pub(crate) fn publish_lag(&self, pipe: &str) {
        if let Some(lag) = self.lag_seconds() {
            metrics::gauge!("sluice_replication_lag_seconds", "pipe" => pipe.to_string()).set(lag);
        }
        let retrying = self.retrying_for().map(|d| d.as_secs_f64()).unwrap_or(0.0);
        metrics::gauge!("sluice_pipe_retrying_seconds", "pipe" => pipe.to_string()).set(retrying);
    }
}

/// Everything a running pipe needs. Cheap to clone (handles and `Arc`s), so
/// that parallel snapshot partitions can run as tasks of their own.
#[derive(Clone)]
pub struct PipeContext {
    pub spec: PipeSpec,
    /// Where the pipe's state is kept (`Catalog`, SQLite, for a real pipe).
    pub catalog: Arc<dyn CatalogStore>,
    /// Where changes come from (`MySqlSource` for a real pipe).
    pub source: Arc<dyn ChangeSource>,
    /// Where they go (`ClickHouseSink` for a real pipe).
    pub sink: Arc<dyn Destination>,
    pub cancel: CancellationToken,
    /// Sync settings, changeable while the pipe runs; read at every batch.
    pub settings: watch::Receiver<SyncSettings>,
    pub status: Arc<LiveStatus>,
}

impl PipeContext {
    pub fn new(spec: PipeSpec, catalog: Catalog, cancel: CancellationToken) -> Self {
        let (_tx, rx) = watch::channel(spec.settings.clone());
        Self::with_live(spec, catalog, cancel, rx, LiveStatus::new())
    }

    pub fn with_live(
        spec: PipeSpec,
        catalog: Catalog,
        cancel: CancellationToken,
        settings: watch::Receiver<SyncSettings>,
        status: Arc<LiveStatus>,
    ) -> Self {
        let source: Arc<dyn ChangeSource> = Arc::new(MySqlSource::new(&spec));
        let sink: Arc<dyn Destination> = Arc::new(ClickHouseSink::new(&spec.destination));
        Self::with_parts(spec, Arc::new(catalog), source, sink, cancel, settings, status)
    }

    /// A context over any catalog store, source and destination (the engine's unit tests use in-memory seams).
    pub fn with_parts(
        spec: PipeSpec,
        catalog: Arc<dyn CatalogStore>,
        source: Arc<dyn ChangeSource>,
        sink: Arc<dyn Destination>,
        cancel: CancellationToken,
        settings: watch::Receiver<SyncSettings>,
        status: Arc<LiveStatus>,
    ) -> Self {
        Self { spec, catalog, source, sink, cancel, settings, status }
    }

    /// The current sync settings.
    pub fn current_settings(&self) -> SyncSettings {
        self.settings.borrow().clone()
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Applies a lifecycle action (validated by the transition table), records and logs it.
    pub async fn transition(&self, action: PipeAction, to: PipeState, reason: &str) -> Result<(), EngineError> {
        let from = self.catalog.transition(self.name(), action, to, reason, None).await?;
        info!(pipe = self.name(), "state {from} → {to}: {reason}");
        Ok(())
    }

    async fn fail(&self, err: &EngineError) -> Result<(), EngineError> {
        let msg = err.to_string();
        metrics::counter!("sluice_errors_total", "pipe" => self.name().to_string(), "kind" => "fatal").increment(1);
        let from = self.catalog.transition(self.name(), PipeAction::Fail, PipeState::Failed, "unrecoverable error", Some(&msg)).await?;
        tracing::error!(pipe = self.name(), "state {from} → Failed: {msg}");
        Ok(())
    }
}

/// Registers the pipe in the catalog if new; refuses a changed spec for an existing pipe
/// except for its settings, which are updated.
pub async fn register(catalog: &dyn CatalogStore, spec: &PipeSpec) -> Result<(), EngineError> {
    match catalog.pipe(&spec.name).await? {
        None => {
            catalog.create_pipe(spec).await?;
            info!(pipe = spec.name.as_str(), "state - → Provisioning: pipe created");
        }
        Some(rec) => {
            let mut stored = rec.spec.clone();
            stored.settings = spec.settings.clone();
            if stored.source != spec.source {
                // Another server (a fail-over), other credentials or TLS: CDC resumes from the checkpoint there.
                info!(pipe = spec.name.as_str(), "source settings changed: now {}:{}", spec.source.host, spec.source.port);
                if (&stored.source.host, stored.source.port) != (&spec.source.host, spec.source.port) {
                    // Another server's binlog files are numbered independently: its first checkpoint may be anywhere.
                    let reason = format!("source moved to {}:{}", spec.source.host, spec.source.port);
                    catalog.allow_checkpoint_rebase(&spec.name, &reason).await?;
                }
                stored.source = spec.source.clone();
            }
            stored.destination.password = spec.destination.password.clone();
            if &stored != spec {
                return Err(EngineError::Spec(format!(
                    "pipe {:?} already exists in this data dir with a different destination, tables or mode; \
                     use another --data-dir or pipe name (only source, settings and passwords may change on restart)",
                    spec.name
                )));
            }
            catalog.update_spec(spec).await?;
        }
    }
    Ok(())
}

/// CDC (with any concurrent table copies) until cancelled; stopping is not a failure.
async fn stream(ctx: &PipeContext) -> Result<(), EngineError> {
    match cdc::run(ctx).await {
        Err(e) if e.is_cancelled() || ctx.cancel.is_cancelled() => Err(EngineError::Cancelled),
        Ok(()) => Err(EngineError::Cancelled),
        Err(e) => Err(e),
    }
}

/// Runs the pipe until it completes, fails, or `cancel` fires. Returns the state it stopped in.
pub async fn run(ctx: &PipeContext) -> Result<PipeState, EngineError> {
    loop {
        let rec = ctx.catalog.pipe(ctx.name()).await?.ok_or_else(|| EngineError::Spec("pipe vanished from the catalog".into()))?;
        if ctx.cancel.is_cancelled() {
            return Ok(rec.state);
        }
        let step = match rec.state {
            PipeState::Provisioning => ctx.transition(PipeAction::Provisioned, PipeState::Setup, "provisioned").await,
            PipeState::Setup => setup::run(ctx).await,
            // Tables added to a live pipe are copied alongside CDC; the initial copy precedes it.
            PipeState::Snapshot if ctx.catalog.tables(ctx.name()).await?.iter().any(|t| t.state == TableState::Adding) => stream(ctx).await,
            PipeState::Snapshot => snapshot::run(ctx).await,
            PipeState::Running | PipeState::Resync => stream(ctx).await,
            // A table change interrupted by a restart: what was recorded stands.
            PipeState::Modifying => {
                let adding = ctx.catalog.tables(ctx.name()).await?.iter().any(|t| t.state == TableState::Adding);
                let to = if adding { PipeState::Snapshot } else { PipeState::Running };
                ctx.transition(PipeAction::Finished, to, "table change interrupted by a restart; continuing with the recorded tables").await
            }
            PipeState::Failed if ctx.catalog.checkpoint(ctx.name()).await?.is_none() => {
                // Setup never finished: nothing was recorded, so trying Setup again is safe.
                ctx.transition(PipeAction::RetrySetup, PipeState::Setup, "retrying setup after a failed setup").await
            }
            state => return Ok(state),
        };
        if let Err(e) = step {
            // After a stop request, whatever broke off (including a transition that the
            // stop made illegal) is part of stopping, not a failure.
            if e.is_cancelled() || ctx.cancel.is_cancelled() {
                continue;
            }
            ctx.fail(&e).await?;
            return Err(e);
        }
    }
}
