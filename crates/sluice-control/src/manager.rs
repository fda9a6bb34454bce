//! The pipe manager: one engine task per pipe in a long-running server, and
//! the user actions (create, pause, resume, settings, delete) that steer them.
//!
//! Every state change goes through the catalog's transition table; an action
//! the current state does not allow is refused with `ManagerError::Conflict`.

use sluice_catalog::{Catalog, CatalogError};
use sluice_core::state::{targets, IllegalTransition};
use sluice_core::{PipeAction, PipeSpec, PipeState, SyncSettings};
use sluice_engine::{LiveStatus, PipeContext};
use sluice_sink::ClickHouseSink;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("pipe {0:?} not found")]
    NotFound(String),
    #[error("pipe {name:?} already exists")]
    Exists { name: String },
    #[error("{message}")]
    Conflict { message: String, state: PipeState },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Internal(String),
}

impl From<CatalogError> for ManagerError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NoSuchPipe(n) => ManagerError::NotFound(n),
            CatalogError::Illegal(IllegalTransition { state, action }) => {
                ManagerError::Conflict { message: format!("cannot {} a pipe that is {state}", action_verb(action)), state }
            }
            other => ManagerError::Internal(other.to_string()),
        }
    }
}

fn action_verb(a: PipeAction) -> &'static str {
    match a {
        PipeAction::Pause => "pause",
        PipeAction::Resume => "resume",
        PipeAction::Resync => "resync",
        PipeAction::ModifyTables => "change the tables of",
        _ => "change",
    }
}

struct Running {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Per-pipe live parts that outlive one engine task.
struct Live {
    settings: watch::Sender<SyncSettings>,
    status: Arc<LiveStatus>,
}

#[derive(Clone)]
pub struct Manager {
    catalog: Catalog,
    running: Arc<Mutex<HashMap<String, Running>>>,
    live: Arc<std::sync::Mutex<HashMap<String, Live>>>,
}

impl Manager {
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog, running: Default::default(), live: Default::default() }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn status(&self, name: &str) -> Option<Arc<LiveStatus>> {
        self.live.lock().unwrap().get(name).map(|l| l.status.clone())
    }

    /// After a (re)start: every pipe goes back to what its stored state says.
    /// A pipe caught in `Pausing` was stopped by the restart and is now `Paused`.
    pub async fn resume_all(&self) -> Result<(), ManagerError> {
        for name in self.catalog.pipe_names().await? {
            let Some(rec) = self.catalog.pipe(&name).await? else { continue };
            match rec.state {
                PipeState::Pausing => {
                    self.catalog.transition(&name, PipeAction::Stopped, PipeState::Paused, "server restarted while pausing", None).await?;
                }
                PipeState::Paused | PipeState::Completed | PipeState::Failed => {}
                _ => self.spawn(rec.spec).await,
            }
        }
        Ok(())
    }

    pub async fn create(&self, spec: PipeSpec) -> Result<(), ManagerError> {
        spec.validate().map_err(|e| ManagerError::Invalid(e.to_string()))?;
        if self.catalog.pipe(&spec.name).await?.is_some() {
            return Err(ManagerError::Exists { name: spec.name });
        }
        self.catalog.create_pipe(&spec).await.map_err(|e| match e {
            CatalogError::Db(_) => ManagerError::Exists { name: spec.name.clone() },
            other => other.into(),
        })?;
        info!(pipe = spec.name.as_str(), "state - → Provisioning: pipe created");
        self.spawn(spec).await;
        Ok(())
    }

    async fn spawn(&self, spec: PipeSpec) {
        let name = spec.name.clone();
        let (settings_rx, status) = {
            let mut live = self.live.lock().unwrap();
            let entry = live.entry(name.clone()).or_insert_with(|| Live {
                settings: watch::channel(spec.settings.clone()).0,
                status: LiveStatus::new(),
            });
            entry.settings.send_replace(spec.settings.clone());
            (entry.settings.subscribe(), entry.status.clone())
        };
        let cancel = CancellationToken::new();
        let ctx = PipeContext::with_live(spec, self.catalog.clone(), cancel.clone(), settings_rx, status);
        let task = tokio::spawn(async move {
            match sluice_engine::run(&ctx).await {
                Ok(state) => info!(pipe = ctx.name(), "engine stopped in state {state}"),
                Err(e) => error!(pipe = ctx.name(), "engine stopped: {e}"),
            }
        });
        self.running.lock().await.insert(name, Running { cancel, task });
    }

    /// Stops a pipe's engine task (it flushes and checkpoints what it holds) and waits for it.
    async fn stop(&self, name: &str) {
        let r = self.running.lock().await.remove(name);
        if let Some(r) = r {
            r.cancel.cancel();
            let _ = r.task.await;
        }
    }

    async fn state(&self, name: &str) -> Result<PipeState, ManagerError> {
        Ok(self.catalog.pipe(name).await?.ok_or_else(|| ManagerError::NotFound(name.into()))?.state)
    }

    fn refuse(state: PipeState, action: PipeAction) -> ManagerError {
        ManagerError::Conflict { message: format!("cannot {} a pipe that is {state}", action_verb(action)), state }
    }

    /// `Running`/`Snapshot` → `Pausing` → `Paused` once the batch in flight is flushed and checkpointed.
    pub async fn pause(&self, name: &str) -> Result<PipeState, ManagerError> {
        let state = self.state(name).await?;
        if targets(state, PipeAction::Pause).is_empty() {
            return Err(Self::refuse(state, PipeAction::Pause));
        }
        // Stop the engine first so that it cannot race the transition with one of its own.
        if let Some(r) = self.running.lock().await.get(name) {
            r.cancel.cancel();
        }
        self.catalog.transition(name, PipeAction::Pause, PipeState::Pausing, "pause requested", None).await?;
        info!(pipe = name, "state {state} → Pausing: pause requested");
        let this = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            this.stop(&name).await;
            match this.catalog.transition(&name, PipeAction::Stopped, PipeState::Paused, "in-flight batch flushed and checkpointed", None).await {
                Ok(_) => info!(pipe = name.as_str(), "state Pausing → Paused: in-flight batch flushed and checkpointed"),
                Err(e) => error!(pipe = name.as_str(), "could not finish pausing: {e}"),
            }
        });
        Ok(PipeState::Pausing)
    }

    /// `Paused` → `Running` (or back to `Snapshot` if the copy was unfinished).
    pub async fn resume(&self, name: &str) -> Result<PipeState, ManagerError> {
        let rec = self.catalog.pipe(name).await?.ok_or_else(|| ManagerError::NotFound(name.into()))?;
        if targets(rec.state, PipeAction::Resume).is_empty() {
            return Err(Self::refuse(rec.state, PipeAction::Resume));
        }
        let tables = self.catalog.tables(name).await?;
        let to = if rec.spec.mode.snapshots() && tables.iter().any(|t| !t.snapshot_done) { PipeState::Snapshot } else { PipeState::Running };
        self.catalog.transition(name, PipeAction::Resume, to, "resume requested", None).await?;
        info!(pipe = name, "state Paused → {to}: resume requested");
        self.spawn(rec.spec).await;
        Ok(to)
    }

    /// Changes sync settings; a running pipe applies them from its next batch.
    pub async fn update_settings(&self, name: &str, patch: SettingsPatch) -> Result<SyncSettings, ManagerError> {
        let mut rec = self.catalog.pipe(name).await?.ok_or_else(|| ManagerError::NotFound(name.into()))?;
        if let Some(v) = patch.sync_interval_ms {
            rec.spec.settings.sync_interval_ms = v;
        }
        if let Some(v) = patch.pull_batch_size {
            rec.spec.settings.pull_batch_size = v;
        }
        if let Some(v) = patch.snapshot_rows_per_chunk {
            rec.spec.settings.snapshot_rows_per_chunk = v;
        }
        rec.spec.validate().map_err(|e| ManagerError::Invalid(e.to_string()))?;
        self.catalog.update_spec(&rec.spec).await?;
        if let Some(live) = self.live.lock().unwrap().get(name) {
            live.settings.send_replace(rec.spec.settings.clone());
        }
        info!(pipe = name, "settings changed: {:?}", rec.spec.settings);
        Ok(rec.spec.settings)
    }

    /// Stops the pipe and forgets it; drops its destination tables only if asked.
    pub async fn delete(&self, name: &str, drop_tables: bool) -> Result<(), ManagerError> {
        let rec = self.catalog.pipe(name).await?.ok_or_else(|| ManagerError::NotFound(name.into()))?;
        self.stop(name).await;
        if drop_tables {
            let sink = ClickHouseSink::new(&rec.spec.destination);
            for t in self.catalog.tables(name).await? {
                sink.execute(&format!("DROP TABLE IF EXISTS {}", sink.qualified(&t.mapping.destination)))
                    .await
                    .map_err(|e| ManagerError::Internal(format!("dropping {}: {e}", t.mapping.destination)))?;
            }
        }
        self.catalog.delete_pipe(name).await?;
        self.live.lock().unwrap().remove(name);
        info!(pipe = name, "pipe deleted{}", if drop_tables { " with its destination tables" } else { "" });
        Ok(())
    }

    /// Stops every engine task (server shutdown); states stay as stored.
    pub async fn shutdown(&self) {
        let names: Vec<String> = self.running.lock().await.keys().cloned().collect();
        for n in names {
            self.stop(&n).await;
        }
    }
}

/// A partial settings change (`PATCH /v1/pipes/{name}/settings`).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub sync_interval_ms: Option<u64>,
    pub pull_batch_size: Option<u64>,
    pub snapshot_rows_per_chunk: Option<u64>,
}
