//! The pipe manager: the registry of pipe owners in a long-running server.
//!
//! Each pipe has one owner task (see `owner`) that holds its engine task and
//! carries out the user's actions (pause, resume, settings, source, resync,
//! add/remove tables, delete) one at a time, in order. The manager only
//! creates pipes (one at a time, so a name is checked and taken atomically),
//! hands each action to the pipe's owner and waits for its answer.
//!
//! Every state change goes through the catalog's transition table; an action
//! the current state does not allow is refused with `ManagerError::Conflict`.

use crate::owner::{real_engine, Command, EngineStarter, Owner, Reply};
use sluice_catalog::{Catalog, CatalogError};
use sluice_core::state::IllegalTransition;
use sluice_core::{PipeAction, PipeSpec, PipeState, SyncSettings, TableSpec};
use sluice_engine::LiveStatus;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("pipe {0:?} not found")]
    NotFound(String),
    /// Something inside an existing pipe (a table, a verification) is not there; the text says what.
    #[error("{0}")]
    Missing(String),
    #[error("pipe {name:?} already exists")]
    Exists { name: String },
    #[error("{message}")]
    Conflict { message: String, state: PipeState },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Internal(String),
    /// The pipe exists but no live worker runs it right now (between workers
    /// after a crash or during a hand-off, or waiting for an eligible worker):
    /// answered 503 with `Retry-After: retry_after_s`.
    #[error("{message}")]
    Unplaced { message: String, retry_after_s: u64 },
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

pub(crate) fn action_verb(a: PipeAction) -> &'static str {
    match a {
        PipeAction::Pause => "pause",
        PipeAction::Resume => "resume",
        PipeAction::Resync => "resync",
        PipeAction::ModifyTables => "change the tables of",
        _ => "change",
    }
}

/// How the manager reaches one pipe's owner.
struct Handle {
    commands: mpsc::Sender<Command>,
    status: Arc<LiveStatus>,
    /// The lease token the pipe runs under (`None`: no leases, a manager without a worker identity).
    token: Option<i64>,
    /// When the lease was last acquired or renewed by this worker.
    renewed: std::time::Instant,
    /// The pipe's placement constraint (set at creation), for the fair-share rounds.
    placement: Option<sluice_core::spec::PlacementSpec>,
}

/// Commands waiting for a busy owner (e.g. one adding tables) before senders wait too.
const QUEUE: usize = 64;

#[derive(Clone)]
pub struct Manager {
    catalog: Catalog,
    owners: Arc<std::sync::Mutex<HashMap<String, Handle>>>,
    /// Held while a pipe is created or deleted: a name is checked and taken (or freed) atomically.
    names: Arc<tokio::sync::Mutex<()>>,
    engine: EngineStarter,
    /// This server as a worker (`None`: every pipe of the catalog is run here, unleased).
    worker: Option<Arc<crate::placement::WorkerConf>>,
    /// Wakes the placement loop (a pipe was created, a lease released).
    pub(crate) wake: Arc<tokio::sync::Notify>,
    /// Held by a placement round's acquisitions (the loop's and a new pipe's
    /// do not race each other into acquiring one pipe twice).
    pub(crate) placing: Arc<tokio::sync::Mutex<()>>,
}

impl Manager {
    pub fn new(catalog: Catalog) -> Self {
        Self::with_engine(catalog, real_engine())
    }

    /// A manager whose pipes run `engine` instead of the real engine (for tests of the supervision).
    pub fn with_engine(catalog: Catalog, engine: EngineStarter) -> Self {
        Self {
            catalog,
            owners: Default::default(),
            names: Default::default(),
            engine,
            worker: None,
            wake: Default::default(),
            placing: Default::default(),
        }
    }

    /// This manager as worker `conf`: it runs only the pipes whose leases it
    /// holds (see `placement`), each with a catalog handle fenced by its token.
    pub fn with_worker(mut self, conf: crate::placement::WorkerConf) -> Self {
        self.worker = Some(Arc::new(conf));
        self
    }

    /// This server's worker identity, if it runs pipes through leases.
    pub fn worker(&self) -> Option<&crate::placement::WorkerConf> {
        self.worker.as_deref()
    }

    /// The pipes this manager runs, with their lease tokens (`None`: unleased).
    pub fn held(&self) -> Vec<(String, Option<i64>)> {
        let mut v: Vec<_> = self.owners.lock().unwrap().iter().map(|(n, h)| (n.clone(), h.token)).collect();
        v.sort();
        v
    }

    /// The leased pipes this manager runs, with their tokens and placement constraints.
    pub(crate) fn held_leases(&self) -> Vec<(String, i64, Option<sluice_core::spec::PlacementSpec>)> {
        let mut v: Vec<_> =
            self.owners.lock().unwrap().iter().filter_map(|(n, h)| h.token.map(|t| (n.clone(), t, h.placement.clone()))).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Whether this manager runs `name`.
    pub fn runs(&self, name: &str) -> bool {
        self.owners.lock().unwrap().contains_key(name)
    }

    /// Notes that `name`'s lease `token` was renewed (ignored if the pipe runs under another token by now).
    pub(crate) fn renewed(&self, name: &str, token: i64) {
        if let Some(h) = self.owners.lock().unwrap().get_mut(name) {
            if h.token == Some(token) {
                h.renewed = std::time::Instant::now();
            }
        }
    }

    /// When each leased pipe's lease was last acquired or renewed here.
    pub(crate) fn renewals(&self) -> Vec<(String, i64, std::time::Instant)> {
        self.owners.lock().unwrap().iter().filter_map(|(n, h)| h.token.map(|t| (n.clone(), t, h.renewed))).collect()
    }

    /// Starts running `name` under lease `token` (just acquired): its owner
    /// brings it back to its stored state, fenced by the token.
    pub(crate) async fn adopt(&self, name: &str, token: i64) -> Result<(), ManagerError> {
        let Some(rec) = self.catalog.pipe(name).await? else {
            return Err(ManagerError::NotFound(name.into()));
        };
        if self.owners.lock().unwrap().contains_key(name) {
            return Ok(());
        }
        self.spawn_owner(name, rec.spec.settings, Some(token));
        if let Some(h) = self.owners.lock().unwrap().get_mut(name) {
            h.placement = rec.spec.placement;
        }
        self.restore_counter(name).await;
        Ok(())
    }

    /// Stops running `name` at once because its lease `token` is no longer
    /// this worker's (`why`): the engine is cancelled without waiting for it
    /// (its last writes are fenced anyway). Returns whether it ran here.
    pub(crate) fn lose(&self, name: &str, token: i64) -> bool {
        let handle = {
            let mut owners = self.owners.lock().unwrap();
            match owners.get(name) {
                Some(h) if h.token == Some(token) => owners.remove(name),
                _ => None,
            }
        };
        let Some(h) = handle else {
            return false;
        };
        tokio::spawn(async move {
            let (reply, answer) = oneshot::channel();
            if h.commands.send(Command::Shutdown(reply)).await.is_ok() {
                let _ = answer.await;
            }
        });
        true
    }

    /// Hands `name` off for a fair share: its engine stops as at a clean stop
    /// (the batch in flight is written and checkpointed), its counters are
    /// saved, and then its lease is released, so that the least-loaded worker
    /// acquires it. Returns whether it ran here under a lease.
    pub(crate) async fn hand_off(&self, name: &str) -> bool {
        let Some(w) = self.worker.clone() else { return false };
        let handle = {
            let mut owners = self.owners.lock().unwrap();
            match owners.get(name) {
                Some(h) if h.token.is_some() => owners.remove(name),
                _ => None,
            }
        };
        let Some(h) = handle else { return false };
        let token = h.token.unwrap_or_default();
        let (reply, answer) = oneshot::channel();
        if h.commands.send(Command::Shutdown(reply)).await.is_ok() && answer.await.is_err() {
            tracing::warn!(pipe = name, "the pipe's owner ended before stopping its engine");
        }
        crate::series::save_counters(&self.catalog, &[(name.to_string(), h.status.clone())]).await;
        // Logged before the release commits, so before any other worker can acquire the pipe.
        info!(pipe = name, "handing off pipe {name} (token {token}) for a fair share: its engine has stopped");
        if let Err(e) = self.catalog.release_lease(name, &w.id, token).await {
            tracing::warn!(pipe = name, "cannot release the lease: {e}; it expires by itself");
        }
        true
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn status(&self, name: &str) -> Option<Arc<LiveStatus>> {
        self.owners.lock().unwrap().get(name).map(|h| h.status.clone())
    }

    /// Starts the owner of a pipe recorded in the catalog; it brings the pipe back to its stored state.
    fn spawn_owner(&self, name: &str, settings: SyncSettings, token: Option<i64>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let status = LiveStatus::new();
        let catalog = match token {
            Some(t) => self.catalog.fenced(name, t),
            None => self.catalog.clone(),
        };
        let owner = Owner::new(name.to_string(), catalog, rx, settings, status.clone(), self.engine.clone(), token.is_some());
        self.owners
            .lock()
            .unwrap()
            .insert(name.to_string(), Handle { commands: tx, status, token, renewed: std::time::Instant::now(), placement: None });
        tokio::spawn(owner.run());
    }

    /// The count of changes applied goes on from where the last run saved it.
    async fn restore_counter(&self, name: &str) {
        match self.catalog.pipe_counter(name, crate::series::CHANGES_APPLIED).await {
            Ok(Some(n)) => {
                if let Some(s) = self.status(name) {
                    s.changes_applied.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(pipe = name, "cannot read the saved count of changes applied: {e}"),
        }
    }

    /// Sends a command to the pipe's owner and waits for its answer.
    async fn ask<T>(&self, name: &str, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, ManagerError> {
        let tx = self.owners.lock().unwrap().get(name).map(|h| h.commands.clone());
        let Some(tx) = tx else {
            return Err(self.not_here(name).await);
        };
        let (reply, answer) = oneshot::channel();
        let gone = || ManagerError::Internal(format!("the owner task of pipe {name:?} has stopped; restart the server"));
        tx.send(command(reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Why this manager has no owner for `name`: the pipe does not exist
    /// (`NotFound`), or, on a worker, it exists but runs nowhere right now
    /// (`Unplaced`, saying why and when to retry).
    async fn not_here(&self, name: &str) -> ManagerError {
        if self.worker.is_none() {
            return ManagerError::NotFound(name.into());
        }
        match crate::placement::unplaced(self, name).await {
            Ok(Some(gap)) => ManagerError::Unplaced { message: gap.message, retry_after_s: gap.retry_after_s },
            Ok(None) => ManagerError::NotFound(name.into()),
            Err(e) => e,
        }
    }

    /// After a (re)start: every pipe gets its owner, which brings it back to
    /// what its stored state says (a pipe caught in `Pausing` becomes `Paused`).
    pub async fn resume_all(&self) -> Result<(), ManagerError> {
        let _names = self.names.lock().await;
        for name in self.catalog.pipe_names().await? {
            let Some(rec) = self.catalog.pipe(&name).await? else {
                continue;
            };
            if !self.owners.lock().unwrap().contains_key(&name) {
                self.spawn_owner(&name, rec.spec.settings, None);
                self.restore_counter(&name).await;
            }
        }
        Ok(())
    }

    /// Records a new pipe (`Provisioning`) and starts it. Only a name that is
    /// taken is `Exists`; any other catalog error is reported as it is.
    pub async fn create(&self, spec: PipeSpec) -> Result<(), ManagerError> {
        spec.validate().map_err(|e| ManagerError::Invalid(e.to_string()))?;
        let _names = self.names.lock().await;
        let exists = || ManagerError::Exists { name: spec.name.clone() };
        if self.owners.lock().unwrap().contains_key(&spec.name) {
            return Err(exists());
        }
        let recorded = self.catalog.pipe(&spec.name).await.map_err(|e| ManagerError::Internal(format!("cannot create the pipe: {e}")))?;
        if recorded.is_some() {
            return Err(exists());
        }
        if let Err(e) = self.catalog.create_pipe(&spec).await {
            return Err(match &e {
                CatalogError::Exists(_) => exists(),
                CatalogError::Db(sqlx_error) if sqlx_error.as_database_error().is_some_and(|d| d.is_unique_violation()) => exists(),
                _ => ManagerError::Internal(format!("cannot create the pipe: {e}")),
            });
        }
        info!(pipe = spec.name.as_str(), "state - → Provisioning: pipe created");
        if self.worker.is_some() {
            // Placed like any unowned pipe: here if this is the least-loaded worker, else by the one that is.
            if let Err(e) = crate::placement::place_new(self, &spec.name).await {
                tracing::warn!(pipe = spec.name.as_str(), "cannot place the new pipe now ({e}); the placement loop will");
            }
            self.wake.notify_one();
        } else {
            self.spawn_owner(&spec.name, spec.settings, None);
        }
        Ok(())
    }

    /// `Running`/`Snapshot` → `Pausing` → `Paused` once the batch in flight is flushed and checkpointed.
    pub async fn pause(&self, name: &str) -> Result<PipeState, ManagerError> {
        self.ask(name, Command::Pause).await
    }

    /// `Paused` → `Running` (or back to `Snapshot` if the copy was unfinished).
    pub async fn resume(&self, name: &str) -> Result<PipeState, ManagerError> {
        self.ask(name, Command::Resume).await
    }

    /// Changes sync settings; a running pipe applies them from its next batch.
    /// The change is recorded in the pipe's history.
    pub async fn update_settings(&self, name: &str, patch: SettingsPatch) -> Result<SyncSettings, ManagerError> {
        self.ask(name, |r| Command::Settings(patch, r)).await
    }

    /// Changes how the source is reached, on a `Paused` (or `Failed`) pipe.
    pub async fn update_source(&self, name: &str, patch: SourcePatch) -> Result<PipeSpec, ManagerError> {
        self.ask(name, |r| Command::Source(patch, r)).await
    }

    /// Re-copies tables (all when `only` is empty) into `<table>_resync` and swaps each in.
    pub async fn resync(&self, name: &str, only: &[String]) -> Result<PipeState, ManagerError> {
        let only = only.to_vec();
        self.ask(name, |r| Command::Resync(only, r)).await
    }

    /// Adds tables to a `Running` or `Paused` pipe.
    pub async fn add_tables(&self, name: &str, add: Vec<TableSpec>) -> Result<PipeState, ManagerError> {
        self.ask(name, |r| Command::AddTables(add, r)).await
    }

    /// Removes one table (by destination name or `schema.table`) from a `Running` or `Paused` pipe.
    pub async fn remove_table(&self, name: &str, table: &str, drop: bool) -> Result<PipeState, ManagerError> {
        let table = table.to_string();
        self.ask(name, |reply| Command::RemoveTable { table, drop, reply }).await
    }

    /// Stops the pipe and forgets it; drops its destination tables only if asked.
    pub async fn delete(&self, name: &str, drop_tables: bool) -> Result<(), ManagerError> {
        let _names = self.names.lock().await;
        if self.worker.is_some() && !self.runs(name) {
            // A pipe no live worker may run is deleted from here (it would wait forever otherwise).
            if crate::placement::unplaced(self, name).await?.is_some_and(|u| u.no_eligible_worker) {
                return crate::placement::delete_unplaceable(self, name, drop_tables).await;
            }
        }
        self.ask(name, |reply| Command::Delete { drop_tables, reply }).await?;
        self.owners.lock().unwrap().remove(name);
        Ok(())
    }

    /// Stops every engine task (server shutdown); states stay as stored.
    /// Stops every engine task (server shutdown); states stay as stored. A
    /// worker then releases the leases of the pipes it stopped (so that other
    /// workers take them at once) and unregisters.
    pub async fn shutdown(&self) {
        let owners: Vec<(String, Handle)> = self.owners.lock().unwrap().drain().collect();
        let mut answers = Vec::new();
        let mut statuses = Vec::new();
        let mut leases = Vec::new();
        for (name, Handle { commands: tx, status, token, .. }) in owners {
            let (reply, answer) = oneshot::channel();
            if tx.send(Command::Shutdown(reply)).await.is_ok() {
                answers.push((name.clone(), answer));
            }
            statuses.push((name.clone(), status));
            if let Some(t) = token {
                leases.push((name, t));
            }
        }
        for (name, answer) in answers {
            if answer.await.is_err() {
                tracing::warn!(pipe = name.as_str(), "the pipe's owner ended before stopping its engine");
            }
        }
        // The engines have stopped: their counters are final.
        crate::series::save_counters(&self.catalog, &statuses).await;
        if let Some(w) = &self.worker {
            for (name, token) in leases {
                // Logged before the release commits, so before any other worker can acquire the pipe.
                info!(pipe = name.as_str(), "handing off pipe {name} (token {token}): its engine has stopped");
                match self.catalog.release_lease(&name, &w.id, token).await {
                    Ok(()) => info!(pipe = name.as_str(), "released the lease of pipe {name} (token {token})"),
                    Err(e) => tracing::warn!(pipe = name.as_str(), "cannot release the lease: {e}; it expires by itself"),
                }
            }
            if let Err(e) = self.catalog.unregister_worker(&w.id).await {
                tracing::warn!("cannot unregister worker {}: {e}", w.id);
            }
        }
    }
}

/// A table of the pipe by destination name or by source `schema.table`.
pub(crate) fn find_table<'a>(tables: &'a [sluice_catalog::TableRecord], name: &str) -> Option<&'a sluice_catalog::TableRecord> {
    tables.iter().find(|t| t.mapping.destination == name || format!("{}.{}", t.mapping.source.id.schema, t.mapping.source.id.table) == name)
}

/// The error for a table name that is not among `tables` of `pipe`, listing the ones that are.
pub(crate) fn no_such_table(pipe: &str, name: &str, tables: &[sluice_catalog::TableRecord]) -> ManagerError {
    let known: Vec<&str> = tables.iter().map(|t| t.mapping.destination.as_str()).collect();
    ManagerError::Missing(format!(
        "table {name:?} is not in pipe {pipe:?} (its tables: {}; give a destination name or schema.table)",
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    ))
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
    /// Source rows a verification scans per second at most.
    pub verify_rows_per_second: Option<u64>,
    /// Hours between scheduled verifications (0: none).
    pub verify_interval_hours: Option<u64>,
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
    /// The TLS setting: `mode` replaces the stored one; `ca_cert` and
    /// `tls_host` not given stay as stored, an empty string removes them.
    pub tls: Option<sluice_core::spec::TlsSpec>,
    pub replication_mechanism: Option<sluice_core::spec::ReplicationMechanism>,
    /// `schema.table`, or an empty string to stop writing heartbeats.
    pub heartbeat_table: Option<String>,
    /// The SSH tunnel: absent leaves it as it is, `null` removes it, an object
    /// changes the fields it names (a pipe without a tunnel needs `host` and `user`,
    /// and `private_key` or `password`). Setting `private_key` clears a stored
    /// `password` and the other way round.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<SshPatch>)]
    pub ssh: Option<Option<SshPatch>>,
}

/// Fields of `source.ssh` to change (`SourcePatch::ssh`).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SshPatch {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub private_key: Option<String>,
    pub password: Option<String>,
    /// A known_hosts line of the server's key; an empty string removes it.
    pub known_host_key: Option<String>,
    pub insecure_skip_host_key_check: Option<bool>,
}

impl SshPatch {
    /// Applies the patch to the tunnel `current` (None: the pipe has none yet).
    pub fn apply(self, current: Option<sluice_core::spec::SshSpec>) -> Result<sluice_core::spec::SshSpec, String> {
        use sluice_core::spec::{Secret, SshSpec};
        let mut t = match current {
            Some(t) => t,
            None => SshSpec {
                host: self.host.clone().ok_or("source.ssh.host is required to add a tunnel")?,
                port: 22,
                user: self.user.clone().ok_or("source.ssh.user is required to add a tunnel")?,
                private_key: Secret::default(),
                password: Secret::default(),
                known_host_key: None,
                insecure_skip_host_key_check: false,
            },
        };
        if let Some(v) = self.host {
            t.host = v;
        }
        if let Some(v) = self.port {
            t.port = v;
        }
        if let Some(v) = self.user {
            t.user = v;
        }
        if let Some(v) = self.private_key {
            t.private_key = Secret(v);
            t.password = Secret::default();
        }
        if let Some(v) = self.password {
            t.password = Secret(v);
            t.private_key = Secret::default();
        }
        if let Some(v) = self.known_host_key {
            t.known_host_key = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = self.insecure_skip_host_key_check {
            t.insecure_skip_host_key_check = v;
        }
        Ok(t)
    }
}

/// Deserializes a field that is present (even as `null`) to `Some(..)`, so that
/// an absent field (`None`, by `#[serde(default)]`) and `null` (`Some(None)`) differ.
fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}
