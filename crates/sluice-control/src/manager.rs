//! The pipe manager: one engine task per pipe in a long-running server, and
//! the user actions (create, pause, resume, settings, resync, add/remove
//! tables, delete) that steer them. Actions that change a pipe's tables stop
//! its engine, record the change, and start the engine again.
//!
//! Every state change goes through the catalog's transition table; an action
//! the current state does not allow is refused with `ManagerError::Conflict`.

use sluice_catalog::{Catalog, CatalogError};
use sluice_core::state::{targets, IllegalTransition};
use sluice_core::state::resync_table_name;
use sluice_core::{PipeAction, PipeSpec, PipeState, SyncSettings, TableSpec, TableState};
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
        if let Some(v) = patch.rows_per_partition {
            rec.spec.settings.rows_per_partition = v;
        }
        if let Some(v) = patch.parallel_partitions {
            rec.spec.settings.parallel_partitions = v;
        }
        if let Some(v) = patch.parallel_tables {
            rec.spec.settings.parallel_tables = v;
        }
        if let Some(v) = patch.heartbeat_interval_ms {
            rec.spec.settings.heartbeat_interval_ms = v;
        }
        rec.spec.validate().map_err(|e| ManagerError::Invalid(e.to_string()))?;
        self.catalog.update_spec(&rec.spec).await?;
        if let Some(live) = self.live.lock().unwrap().get(name) {
            live.settings.send_replace(rec.spec.settings.clone());
        }
        info!(pipe = name, "settings changed: {:?}", rec.spec.settings);
        Ok(rec.spec.settings)
    }

    /// Changes how the source is reached, on a `Paused` (or `Failed`) pipe: on
    /// resume, CDC continues from its checkpoint on the server the new settings
    /// name. Moving to another server of the replication topology (a fail-over)
    /// needs GTIDs (`replication_mechanism` auto or gtid): a file/offset means
    /// nothing on another server.
    pub async fn update_source(&self, name: &str, patch: SourcePatch) -> Result<PipeSpec, ManagerError> {
        let mut rec = self.catalog.pipe(name).await?.ok_or_else(|| ManagerError::NotFound(name.into()))?;
        if !matches!(rec.state, PipeState::Paused | PipeState::Failed) {
            return Err(ManagerError::Conflict {
                message: format!("the source of a pipe that is {} cannot change; pause it first", rec.state),
                state: rec.state,
            });
        }
        let before = format!("{}:{}", rec.spec.source.host, rec.spec.source.port);
        let src = &mut rec.spec.source;
        if let Some(v) = patch.host {
            src.host = v;
        }
        if let Some(v) = patch.port {
            src.port = v;
        }
        if let Some(v) = patch.user {
            src.user = v;
        }
        if let Some(v) = patch.password {
            src.password = sluice_core::spec::Secret(v);
        }
        if let Some(v) = patch.server_id {
            src.server_id = Some(v);
        }
        if let Some(v) = patch.tls {
            src.tls = v;
        }
        if let Some(v) = patch.replication_mechanism {
            src.replication_mechanism = v;
        }
        if let Some(v) = patch.heartbeat_table {
            src.heartbeat_table = (!v.is_empty()).then_some(v);
        }
        rec.spec.validate().map_err(|e| ManagerError::Invalid(e.to_string()))?;
        self.catalog.update_spec(&rec.spec).await?;
        let src = &rec.spec.source;
        let msg = format!(
            "source changed: {before} → {}:{} (user {}, replication_mechanism {:?}); CDC resumes from the checkpoint there",
            src.host, src.port, src.user, src.replication_mechanism
        );
        self.catalog.note(name, &msg).await?;
        info!(pipe = name, "{msg}");
        Ok(rec.spec)
    }

    /// Re-copies tables (all when `only` is empty) into `<table>_resync` and swaps
    /// each in when its copy is complete, while CDC keeps the current tables
    /// (and the copies) up to date. A whole-pipe resync restarts CDC from the new
    /// copies' position: the recovery for a `Failed` pipe (purged binlog).
    pub async fn resync(&self, name: &str, only: &[String]) -> Result<PipeState, ManagerError> {
        let rec = self.catalog.pipe(name).await?.ok_or_else(|| ManagerError::NotFound(name.into()))?;
        if targets(rec.state, PipeAction::Resync).is_empty() {
            return Err(Self::refuse(rec.state, PipeAction::Resync));
        }
        if !rec.spec.mode.streams() {
            return Err(ManagerError::Invalid("a snapshot_only pipe has nothing to resync into; create a new pipe".into()));
        }
        if self.catalog.checkpoint(name).await?.is_none() {
            return Err(ManagerError::Invalid("the pipe never finished Setup; delete it and create it again".into()));
        }
        let all = self.catalog.tables(name).await?;
        let chosen: Vec<_> = if only.is_empty() {
            all.iter().collect()
        } else {
            only.iter().map(|t| find_table(&all, t).ok_or_else(|| ManagerError::NotFound(format!("{name}: table {t}")))).collect::<Result<_, _>>()?
        };
        let whole = chosen.len() == all.len();
        if rec.state == PipeState::Failed && !whole {
            return Err(ManagerError::Invalid(
                "a Failed pipe is resynced whole (its binlog position may be gone): leave out the table list".into(),
            ));
        }
        let mappings: Vec<_> = chosen.iter().map(|t| t.mapping.clone()).collect();
        self.stop(name).await;
        let sink = ClickHouseSink::new(&rec.spec.destination);
        let prepared = sluice_engine::modify::prepare_resync(&self.catalog, &rec.spec, &mappings, &sink).await;
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                self.restart_if_live(&rec.spec, rec.state).await;
                let msg = format!("cannot start the resync: {e}");
                return Err(if matches!(e, sluice_engine::EngineError::Spec(_)) { ManagerError::Invalid(msg) } else { ManagerError::Internal(msg) });
            }
        };
        let dests: Vec<String> = mappings.iter().map(|m| m.destination.clone()).collect();
        let start = &prepared.start;
        self.catalog.begin_resync(name, &prepared.mappings, prepared.snapshot_version, whole.then_some(start)).await?;
        let reason = format!(
            "resync of {} requested; copying into {} from {}",
            if whole { "every table".to_string() } else { dests.join(", ") },
            dests.iter().map(|d| resync_table_name(d)).collect::<Vec<_>>().join(", "),
            start.position
        );
        self.catalog.transition(name, PipeAction::Resync, PipeState::Resync, &reason, None).await?;
        info!(pipe = name, "state {} → Resync: {reason}", rec.state);
        self.spawn(rec.spec).await;
        Ok(PipeState::Resync)
    }

    /// Adds tables to a `Running` or `Paused` pipe: `Modifying` while they are
    /// set up, then `Snapshot` while they are copied alongside CDC (or back to
    /// `Paused`; the copy starts on resume). CDC-only pipes copy nothing.
    pub async fn add_tables(&self, name: &str, add: Vec<TableSpec>) -> Result<PipeState, ManagerError> {
        if add.is_empty() {
            return Err(ManagerError::Invalid("tables: give at least one table".into()));
        }
        // The checks a pipe's spec gets at creation (options, destination name), by the request's index.
        for (i, t) in add.iter().enumerate() {
            t.validate(i).map_err(|e| ManagerError::Invalid(format!("cannot add the tables: {}: {}", e.field, e.message)))?;
        }
        // Set the tables up while the pipe keeps running; CDC stops only to pick them up.
        // (The copy position is read now: CDC restarts from its checkpoint, before or after
        // it, and the copy is read after that restart, so either way it converges.)
        let current = self.catalog.pipe(name).await?.ok_or_else(|| ManagerError::NotFound(name.into()))?;
        if targets(current.state, PipeAction::ModifyTables).is_empty() {
            return Err(Self::refuse(current.state, PipeAction::ModifyTables));
        }
        let existing: Vec<_> = self.catalog.tables(name).await?.into_iter().map(|t| t.mapping).collect();
        let sink = ClickHouseSink::new(&current.spec.destination);
        let added = sluice_engine::modify::prepare_added_tables(&self.catalog, &current.spec, &existing, &add, &sink)
            .await
            .map_err(|e| ManagerError::Invalid(format!("cannot add the tables: {e}")))?;
        let rec = self.begin_modify(name, &format!("adding {}", add.iter().map(|t| t.source.as_str()).collect::<Vec<_>>().join(", "))).await?;
        let copy = rec.spec.mode.snapshots();
        let state = if copy { TableState::Adding } else { TableState::Running };
        self.catalog.add_tables(name, &added.mappings, state, added.snapshot_version).await?;
        let mut spec = rec.spec.clone();
        spec.tables.extend(add);
        self.catalog.update_spec(&spec).await?;
        let names: Vec<String> = added.mappings.iter().map(|m| format!("{} → {}", m.source.id, m.destination)).collect();
        self.catalog.note(name, &format!("tables added: {}", names.join(", "))).await?;
        let rec = PipeRecordParts { spec, state: rec.state };
        self.end_modify(&rec, copy, "tables added").await
    }

    /// Removes one table (by destination name or `schema.table`) from a
    /// `Running` or `Paused` pipe; its destination table is dropped only if asked.
    pub async fn remove_table(&self, name: &str, table: &str, drop: bool) -> Result<PipeState, ManagerError> {
        let all = self.catalog.tables(name).await?;
        if self.catalog.pipe(name).await?.is_none() {
            return Err(ManagerError::NotFound(name.into()));
        }
        let t = find_table(&all, table).ok_or_else(|| ManagerError::NotFound(format!("{name}: table {table}")))?.clone();
        if all.len() == 1 {
            return Err(ManagerError::Invalid(format!("{table} is the pipe's only table; delete the pipe instead")));
        }
        let dest = t.mapping.destination.clone();
        let rec = self.begin_modify(name, &format!("removing {dest}")).await?;
        self.catalog.remove_table(name, &dest).await?;
        let mut spec = rec.spec.clone();
        let source = format!("{}.{}", t.mapping.source.id.schema, t.mapping.source.id.table);
        spec.tables.retain(|s| s.source != source);
        self.catalog.update_spec(&spec).await?;
        // A resync copy in progress is Sluice's scratch table: it goes either way.
        let sink = ClickHouseSink::new(&spec.destination);
        let scratch = resync_table_name(&dest);
        let mut drop_error = None;
        for d in if drop { vec![dest.clone(), scratch] } else { vec![scratch] } {
            if let Err(e) = sink.drop_table(&d).await {
                drop_error.get_or_insert(format!("table {source} was removed from the pipe, but dropping {d} failed: {e}"));
            }
        }
        let what = match (&drop_error, drop) {
            (Some(e), _) => e.clone(),
            (None, true) => format!("table {source} → {dest} removed and its destination table dropped"),
            (None, false) => format!("table {source} → {dest} removed"),
        };
        self.catalog.note(name, &what).await?;
        let adding = self.catalog.tables(name).await?.iter().any(|t| t.state == TableState::Adding);
        let state = self.end_modify(&PipeRecordParts { spec, state: rec.state }, adding, "table removed").await?;
        match drop_error {
            Some(e) => Err(ManagerError::Internal(e)),
            None => Ok(state),
        }
    }

    /// Stops the engine and moves the pipe to `Modifying`.
    async fn begin_modify(&self, name: &str, reason: &str) -> Result<PipeRecordParts, ManagerError> {
        let rec = self.catalog.pipe(name).await?.ok_or_else(|| ManagerError::NotFound(name.into()))?;
        if targets(rec.state, PipeAction::ModifyTables).is_empty() {
            return Err(Self::refuse(rec.state, PipeAction::ModifyTables));
        }
        self.stop(name).await;
        self.catalog.transition(name, PipeAction::ModifyTables, PipeState::Modifying, reason, None).await?;
        info!(pipe = name, "state {} → Modifying: {reason}", rec.state);
        Ok(PipeRecordParts { spec: rec.spec, state: rec.state })
    }

    /// Leaves `Modifying`: back to `Paused` for a paused pipe, else `Snapshot`
    /// when tables are to be copied, else `Running`; restarts the engine.
    async fn end_modify(&self, before: &PipeRecordParts, copying: bool, reason: &str) -> Result<PipeState, ManagerError> {
        let name = &before.spec.name;
        let to = match (before.state, copying) {
            (PipeState::Paused, _) => PipeState::Paused,
            (_, true) => PipeState::Snapshot,
            _ => PipeState::Running,
        };
        self.catalog.transition(name, PipeAction::Finished, to, reason, None).await?;
        info!(pipe = name.as_str(), "state Modifying → {to}: {reason}");
        if to != PipeState::Paused {
            self.spawn(before.spec.clone()).await;
        }
        Ok(to)
    }

    async fn restart_if_live(&self, spec: &PipeSpec, state: PipeState) {
        if !matches!(state, PipeState::Paused | PipeState::Failed | PipeState::Completed) {
            self.spawn(spec.clone()).await;
        }
    }

    /// Stops the pipe and forgets it; drops its destination tables only if asked.
    pub async fn delete(&self, name: &str, drop_tables: bool) -> Result<(), ManagerError> {
        let rec = self.catalog.pipe(name).await?.ok_or_else(|| ManagerError::NotFound(name.into()))?;
        self.stop(name).await;
        if drop_tables {
            let sink = ClickHouseSink::new(&rec.spec.destination);
            for t in self.catalog.tables(name).await? {
                for d in [t.mapping.destination.clone(), resync_table_name(&t.mapping.destination)] {
                    sink.drop_table(&d).await.map_err(|e| ManagerError::Internal(format!("dropping {d}: {e}")))?;
                }
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

/// What `begin_modify` keeps of the pipe: its spec and the state it left.
struct PipeRecordParts {
    spec: PipeSpec,
    state: PipeState,
}

/// A table of the pipe by destination name or by source `schema.table`.
fn find_table<'a>(tables: &'a [sluice_catalog::TableRecord], name: &str) -> Option<&'a sluice_catalog::TableRecord> {
    tables.iter().find(|t| {
        t.mapping.destination == name || format!("{}.{}", t.mapping.source.id.schema, t.mapping.source.id.table) == name
    })
}

/// A partial settings change (`PATCH /v1/pipes/{name}/settings`).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub sync_interval_ms: Option<u64>,
    pub pull_batch_size: Option<u64>,
    pub snapshot_rows_per_chunk: Option<u64>,
    /// Applies to tables whose partitions are not planned yet.
    pub rows_per_partition: Option<u64>,
    pub parallel_partitions: Option<u32>,
    pub parallel_tables: Option<u32>,
    pub heartbeat_interval_ms: Option<u64>,
}

/// A partial change of how the source is reached (`PATCH /v1/pipes/{name}/source`),
/// e.g. after a fail-over: the pipe resumes from its checkpoint on the new server.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourcePatch {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub server_id: Option<u32>,
    pub tls: Option<sluice_core::spec::TlsSpec>,
    pub replication_mechanism: Option<sluice_core::spec::ReplicationMechanism>,
    /// `schema.table`, or an empty string to stop writing heartbeats.
    pub heartbeat_table: Option<String>,
}
