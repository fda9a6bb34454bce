//! The owner of one pipe: a task that holds the pipe's engine task and carries
//! out the user's commands for the pipe (pause, resume, settings, source,
//! resync, add/remove tables, delete) one at a time, in arrival order.
//!
//! Contract:
//! - Commands arrive over a channel, each with a oneshot reply. The owner runs
//!   them strictly in order, so two requests never interleave their steps and
//!   every read-modify-write of the pipe's spec happens here, nowhere else:
//!   concurrent `PATCH`es serialise instead of overwriting each other.
//! - A multi-step command that fails after stopping the engine puts the pipe
//!   back as it was (state, spec, tables) and restarts the engine when the pipe
//!   was live; the error goes back to the caller and into the pipe's history.
//! - The owner supervises its engine task: a panic turns the pipe `Failed` (the
//!   catalog transition `PipeAction::Fail`) with the panic text as its error;
//!   an engine error leaves the state the engine recorded. An engine that
//!   stopped with an error it could not record (the catalog still says the pipe
//!   is live, e.g. the disk was full) is restarted with a growing delay, and
//!   the error is shown on the pipe meanwhile, so that a pipe never reads
//!   `Running` with no engine behind it.

use crate::manager::{find_table, no_such_table, ManagerError, SettingsPatch, SourcePatch};
use sluice_catalog::{Catalog, PipeRecord};
use sluice_core::state::{resync_table_name, targets};
use sluice_core::{PipeAction, PipeSpec, PipeState, SyncSettings, TableSpec, TableState};
use sluice_engine::{EngineError, LiveStatus, PipeContext};
use sluice_sink::ClickHouseSink;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// What an engine task ends with: the state it stopped in, or its error.
pub type EngineResult = Result<PipeState, EngineError>;

/// Runs a pipe's engine for a context until it stops. The server runs
/// `sluice_engine::run`; tests inject engines that panic or fail on purpose.
pub type EngineStarter = Arc<dyn Fn(PipeContext) -> EngineFuture + Send + Sync>;

/// An engine run, as an `EngineStarter` returns it.
pub type EngineFuture = Pin<Box<dyn Future<Output = EngineResult> + Send>>;

/// The real engine.
pub fn real_engine() -> EngineStarter {
    Arc::new(|ctx: PipeContext| -> EngineFuture { Box::pin(async move { sluice_engine::run(&ctx).await }) })
}

/// The answer to one command.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, ManagerError>>;

/// A request to a pipe's owner.
pub(crate) enum Command {
    Pause(Reply<PipeState>),
    Resume(Reply<PipeState>),
    Settings(SettingsPatch, Reply<SyncSettings>),
    Source(SourcePatch, Reply<PipeSpec>),
    Resync(Vec<String>, Reply<PipeState>),
    AddTables(Vec<TableSpec>, Reply<PipeState>),
    RemoveTable {
        table: String,
        drop: bool,
        reply: Reply<PipeState>,
    },
    /// Stops the engine and forgets the pipe; the owner ends when this succeeds.
    Delete {
        drop_tables: bool,
        reply: Reply<()>,
    },
    /// Stops the engine (server shutdown); states stay as stored; the owner ends.
    Shutdown(Reply<()>),
}

/// The running engine task of the pipe.
struct Engine {
    cancel: CancellationToken,
    task: JoinHandle<EngineResult>,
    started: Instant,
}

impl Drop for Engine {
    /// An owner that goes away (even by a bug's panic) never leaves its engine running unowned.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// What the owner does next, besides waiting for commands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Timer {
    /// Start the engine again (it stopped with an error it could not record).
    Restart,
    /// The restarted engine has kept running: clear the error shown meanwhile.
    ClearError,
}

/// How long a restarted engine must keep running before its earlier error is cleared
/// and the restart delay starts again from its minimum.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// Longest delay before an engine that stopped with an unrecorded error is started again.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);

/// One pipe's owner. Created by the manager, which keeps the sending side of its channel.
pub(crate) struct Owner {
    name: String,
    catalog: Catalog,
    rx: mpsc::Receiver<Command>,
    settings: watch::Sender<SyncSettings>,
    status: Arc<LiveStatus>,
    start: EngineStarter,
    engine: Option<Engine>,
    timer: Option<(Instant, Timer)>,
    /// Restarts after unrecorded engine errors since the engine last ran healthily.
    restarts: u32,
    /// Runs under a lease (its catalog handle is fenced): an engine stopped by
    /// `CatalogError::Fenced` lost the pipe to another worker and is not restarted.
    leased: bool,
}

enum Wake {
    Command(Option<Command>),
    EngineExit(Result<EngineResult, JoinError>),
    Timer(Timer),
}

/// Whether the owner keeps running after a command.
enum Flow {
    Continue,
    Exit,
}

/// States in which the pipe has an engine task.
fn is_live(state: PipeState) -> bool {
    matches!(
        state,
        PipeState::Provisioning | PipeState::Setup | PipeState::Snapshot | PipeState::Running | PipeState::Modifying | PipeState::Resync
    )
}

fn refuse(state: PipeState, action: PipeAction) -> ManagerError {
    ManagerError::Conflict { message: format!("cannot {} a pipe that is {state}", crate::manager::action_verb(action)), state }
}

fn send<T>(reply: Reply<T>, r: Result<T, ManagerError>) {
    // The caller may have gone (an HTTP client that hung up): the command ran anyway.
    let _ = reply.send(r);
}

/// The text of a panic payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

/// The fields that differ between two settings, as `field old → new`, comma-separated, in declaration order.
fn settings_diff(before: &SyncSettings, after: &SyncSettings) -> String {
    let mut out = Vec::new();
    macro_rules! field {
        ($($f:ident),*) => {$(
            if before.$f != after.$f {
                out.push(format!("{} {} → {}", stringify!($f), before.$f, after.$f));
            }
        )*};
    }
    // Every field of `SyncSettings`: destructured so that a new field cannot be forgotten here.
    let SyncSettings {
        sync_interval_ms: _,
        pull_batch_size: _,
        snapshot_rows_per_chunk: _,
        rows_per_partition: _,
        parallel_partitions: _,
        parallel_tables: _,
        heartbeat_interval_ms: _,
        verify_rows_per_second: _,
        verify_interval_hours: _,
    } = after;
    field!(
        sync_interval_ms,
        pull_batch_size,
        snapshot_rows_per_chunk,
        rows_per_partition,
        parallel_partitions,
        parallel_tables,
        heartbeat_interval_ms,
        verify_rows_per_second,
        verify_interval_hours
    );
    out.join(", ")
}

/// Test-only failure injection: (pipe, step) pairs at which a command fails on purpose.
#[cfg(test)]
pub(crate) static FAIL_AT: std::sync::Mutex<Vec<(String, &'static str)>> = std::sync::Mutex::new(Vec::new());

impl Owner {
    /// Fails at `step` when a test asked for it (see `FAIL_AT`); nothing otherwise.
    fn injected(&self, step: &'static str) -> Result<(), sluice_catalog::CatalogError> {
        #[cfg(test)]
        if FAIL_AT.lock().unwrap().iter().any(|(p, s)| *p == self.name && *s == step) {
            return Err(sluice_catalog::CatalogError::Corrupt(format!("injected failure at {step}")));
        }
        let _ = step;
        Ok(())
    }

    pub(crate) fn new(
        name: String,
        catalog: Catalog,
        rx: mpsc::Receiver<Command>,
        settings: SyncSettings,
        status: Arc<LiveStatus>,
        start: EngineStarter,
        leased: bool,
    ) -> Self {
        Self { name, catalog, rx, settings: watch::channel(settings).0, status, start, engine: None, timer: None, restarts: 0, leased }
    }

    /// Runs the owner until the pipe is deleted, the server shuts down, or the manager goes away.
    pub(crate) async fn run(mut self) {
        self.start_up().await;
        loop {
            let wake = {
                let timer = self.timer;
                let sleep = async move {
                    match timer {
                        Some((at, t)) => {
                            tokio::time::sleep_until(at).await;
                            t
                        }
                        None => std::future::pending().await,
                    }
                };
                match &mut self.engine {
                    Some(e) => tokio::select! {
                        c = self.rx.recv() => Wake::Command(c),
                        r = &mut e.task => Wake::EngineExit(r),
                        t = sleep => Wake::Timer(t),
                    },
                    None => tokio::select! {
                        c = self.rx.recv() => Wake::Command(c),
                        t = sleep => Wake::Timer(t),
                    },
                }
            };
            match wake {
                Wake::Command(None) => {
                    self.stop_engine().await;
                    return;
                }
                Wake::Command(Some(cmd)) => {
                    if let Flow::Exit = self.handle(cmd).await {
                        return;
                    }
                }
                Wake::EngineExit(r) => {
                    let started = self.engine.take().map(|e| e.started);
                    self.on_engine_exit(r, false, started).await;
                }
                Wake::Timer(t) => {
                    self.timer = None;
                    self.on_timer(t).await;
                }
            }
        }
    }

    /// After a (re)start: the pipe goes back to what its stored state says. A
    /// pipe caught in `Pausing` was stopped by the restart and is now `Paused`.
    async fn start_up(&mut self) {
        let rec = match self.catalog.pipe(&self.name).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                error!(pipe = self.name.as_str(), "cannot read the pipe to start it: {e}; retrying");
                self.timer = Some((Instant::now() + Duration::from_secs(1), Timer::Restart));
                return;
            }
        };
        self.settings.send_replace(rec.spec.settings.clone());
        match rec.state {
            PipeState::Pausing => {
                self.finish_pause("server restarted while pausing").await;
            }
            s if is_live(s) => self.start_engine(rec.spec),
            _ => {}
        }
    }

    async fn handle(&mut self, cmd: Command) -> Flow {
        match cmd {
            Command::Pause(reply) => self.pause(reply).await,
            Command::Resume(reply) => send(reply, self.resume().await),
            Command::Settings(patch, reply) => send(reply, self.update_settings(patch).await),
            Command::Source(patch, reply) => send(reply, self.update_source(patch).await),
            Command::Resync(only, reply) => send(reply, self.resync(&only).await),
            Command::AddTables(add, reply) => send(reply, self.add_tables(add).await),
            Command::RemoveTable { table, drop, reply } => send(reply, self.remove_table(&table, drop).await),
            Command::Delete { drop_tables, reply } => {
                let r = self.delete(drop_tables).await;
                let done = r.is_ok();
                send(reply, r);
                if done {
                    return Flow::Exit;
                }
            }
            Command::Shutdown(reply) => {
                self.stop_engine().await;
                send(reply, Ok(()));
                return Flow::Exit;
            }
        }
        Flow::Continue
    }

    // ---- the engine task ----

    fn start_engine(&mut self, spec: PipeSpec) {
        if self.engine.is_some() {
            return;
        }
        self.settings.send_replace(spec.settings.clone());
        let cancel = CancellationToken::new();
        let ctx = PipeContext::with_live(spec, self.catalog.clone(), cancel.clone(), self.settings.subscribe(), self.status.clone());
        let task = tokio::spawn((self.start)(ctx));
        self.engine = Some(Engine { cancel, task, started: Instant::now() });
    }

    /// Starts the engine if the stored state says the pipe is live.
    async fn start_if_live(&mut self) {
        match self.catalog.pipe(&self.name).await {
            Ok(Some(rec)) if is_live(rec.state) => self.start_engine(rec.spec),
            Ok(_) => {}
            Err(e) => {
                error!(pipe = self.name.as_str(), "cannot read the pipe to restart its engine: {e}; retrying");
                self.schedule_restart();
            }
        }
    }

    /// Asks the engine to stop (it flushes and checkpoints what it holds) without waiting.
    fn cancel_engine(&self) {
        if let Some(e) = &self.engine {
            e.cancel.cancel();
        }
    }

    /// Stops the engine task and waits for it; a panic on the way is handled like any other.
    async fn stop_engine(&mut self) {
        if let Some(mut e) = self.engine.take() {
            e.cancel.cancel();
            let r = (&mut e.task).await;
            let started = e.started;
            drop(e);
            self.on_engine_exit(r, true, Some(started)).await;
        }
    }

    /// The engine task ended: by a stop request (`requested`), by finishing, by an error or by a panic.
    async fn on_engine_exit(&mut self, r: Result<EngineResult, JoinError>, requested: bool, started: Option<Instant>) {
        let name = self.name.clone();
        if started.is_some_and(|s| s.elapsed() >= HEALTHY_AFTER) {
            self.restarts = 0;
        }
        match r {
            Ok(Ok(state)) => info!(pipe = name.as_str(), "engine stopped in state {state}"),
            Ok(Err(e)) if e.is_cancelled() => info!(pipe = name.as_str(), "engine stopped"),
            Ok(Err(sluice_engine::EngineError::Catalog(e @ sluice_catalog::CatalogError::Fenced { .. }))) if self.leased => {
                // Another worker holds the pipe now: nothing more is written for it here (not even
                // an error: the pipe is the other worker's); the placement loop drops this owner.
                self.timer = None;
                error!(pipe = name.as_str(), "lost the lease of pipe {name}: {e}; stopped it");
            }
            Ok(Err(e)) => {
                error!(pipe = name.as_str(), "engine stopped: {e}");
                if requested {
                    return;
                }
                // The engine records its own failures; if the catalog still says the
                // pipe is live, it could not (e.g. the catalog itself failed).
                match self.catalog.pipe(&name).await {
                    Ok(Some(rec)) if is_live(rec.state) => {
                        let delay = self.schedule_restart();
                        let msg = format!("engine stopped: {e}; restarting it in {}s", delay.as_secs());
                        warn!(pipe = name.as_str(), "{msg}");
                        if let Err(e2) = self.catalog.set_error(&name, Some(&msg)).await {
                            warn!(pipe = name.as_str(), "cannot record the engine's error either: {e2}");
                        }
                    }
                    Ok(_) => {}
                    Err(e2) => {
                        let delay = self.schedule_restart();
                        warn!(
                            pipe = name.as_str(),
                            "cannot read the pipe after its engine stopped ({e2}); trying again in {}s",
                            delay.as_secs()
                        );
                    }
                }
            }
            Err(j) if j.is_panic() => {
                let text = panic_text(j.into_panic().as_ref());
                let msg = format!("the engine task panicked: {text}");
                error!(pipe = name.as_str(), "{msg}");
                metrics::counter!("sluice_errors_total", "pipe" => name.clone(), "kind" => "panic").increment(1);
                self.timer = None;
                match self.catalog.transition(&name, PipeAction::Fail, PipeState::Failed, "engine task panicked", Some(&msg)).await {
                    Ok(from) => error!(pipe = name.as_str(), "state {from} → Failed: {msg}"),
                    Err(e) => {
                        // Not a state that can fail (e.g. Paused): keep the state, show the error.
                        warn!(pipe = name.as_str(), "cannot record the panic as Failed: {e}");
                        let _ = self.catalog.set_error(&name, Some(&msg)).await;
                    }
                }
            }
            Err(j) => warn!(pipe = name.as_str(), "engine task ended: {j}"),
        }
    }

    /// Plans a restart after an unrecorded engine error; returns the delay (1 s, doubling, at most 60 s).
    fn schedule_restart(&mut self) -> Duration {
        let delay = Duration::from_secs(1u64 << self.restarts.min(6)).min(MAX_RESTART_DELAY);
        self.restarts = self.restarts.saturating_add(1);
        self.timer = Some((Instant::now() + delay, Timer::Restart));
        delay
    }

    async fn on_timer(&mut self, t: Timer) {
        match t {
            Timer::Restart => {
                if self.engine.is_none() {
                    info!(pipe = self.name.as_str(), "starting the engine again");
                    self.start_if_live().await;
                    if self.engine.is_some() {
                        self.timer = Some((Instant::now() + HEALTHY_AFTER, Timer::ClearError));
                    }
                }
            }
            Timer::ClearError => {
                if self.engine.is_some() {
                    self.restarts = 0;
                    if let Err(e) = self.catalog.set_error(&self.name, None).await {
                        warn!(pipe = self.name.as_str(), "cannot clear the pipe's error: {e}");
                    }
                }
            }
        }
    }

    // ---- helpers ----

    async fn record(&self) -> Result<PipeRecord, ManagerError> {
        self.catalog.pipe(&self.name).await?.ok_or_else(|| ManagerError::NotFound(self.name.clone()))
    }

    /// Records `msg` in the pipe's history; a history that cannot be written is logged, not fatal.
    async fn note(&self, msg: &str) {
        if let Err(e) = self.catalog.note(&self.name, msg).await {
            warn!(pipe = self.name.as_str(), "cannot record in the history ({msg}): {e}");
        }
    }

    /// A catalog transition, tried a few times: used where leaving the pipe
    /// half-way (e.g. `Pausing` or `Modifying` with no engine) is worse than waiting.
    async fn transition_retried(&self, action: PipeAction, to: PipeState, reason: &str) -> Result<PipeState, ManagerError> {
        let mut delay = Duration::from_millis(200);
        let mut tries = 0;
        loop {
            match self.catalog.transition(&self.name, action, to, reason, None).await {
                Ok(from) => {
                    info!(pipe = self.name.as_str(), "state {from} → {to}: {reason}");
                    return Ok(from);
                }
                Err(e @ sluice_catalog::CatalogError::Db(_)) if tries < 4 => {
                    warn!(pipe = self.name.as_str(), "recording {to} failed ({e}); trying again");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    tries += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    // ---- commands ----

    /// `Running`/`Snapshot` → `Pausing` (answered at once) → `Paused` once the
    /// engine has flushed and checkpointed the batch in flight. Commands that
    /// arrive meanwhile wait until the pipe is `Paused`.
    async fn pause(&mut self, reply: Reply<PipeState>) {
        let rec = match self.record().await {
            Ok(r) => r,
            Err(e) => return send(reply, Err(e)),
        };
        if targets(rec.state, PipeAction::Pause).is_empty() {
            return send(reply, Err(refuse(rec.state, PipeAction::Pause)));
        }
        // Stop the engine first so that it cannot race the transition with one of its own.
        self.cancel_engine();
        match self.catalog.transition(&self.name, PipeAction::Pause, PipeState::Pausing, "pause requested", None).await {
            Ok(from) => info!(pipe = self.name.as_str(), "state {from} → Pausing: pause requested"),
            Err(e) => {
                // Nothing changed: the engine goes on as before.
                self.stop_engine().await;
                self.start_if_live().await;
                return send(reply, Err(e.into()));
            }
        }
        send(reply, Ok(PipeState::Pausing));
        self.stop_engine().await;
        self.finish_pause("in-flight batch flushed and checkpointed").await;
    }

    async fn finish_pause(&mut self, reason: &str) {
        match self.record().await {
            Ok(rec) if rec.state != PipeState::Pausing => return, // e.g. Failed by a panic while stopping
            _ => {}
        }
        if let Err(e) = self.transition_retried(PipeAction::Stopped, PipeState::Paused, reason).await {
            error!(pipe = self.name.as_str(), "could not finish pausing: {e} (a restart of the server finishes it)");
        }
    }

    /// `Paused` → `Running` (or back to `Snapshot` if the copy was unfinished).
    async fn resume(&mut self) -> Result<PipeState, ManagerError> {
        let rec = self.record().await?;
        if rec.state == PipeState::Failed && self.catalog.checkpoint(&self.name).await?.is_none() {
            // Setup never finished (e.g. a wrong password, since corrected with PATCH /source):
            // nothing was recorded, so Setup runs again from the start.
            let why = "retry requested after a failed setup";
            self.catalog.transition(&self.name, PipeAction::RetrySetup, PipeState::Setup, why, None).await?;
            info!(pipe = self.name.as_str(), "state Failed → Setup: {why}");
            self.start_engine(rec.spec);
            return Ok(PipeState::Setup);
        }
        if targets(rec.state, PipeAction::Resume).is_empty() {
            return Err(refuse(rec.state, PipeAction::Resume));
        }
        let tables = self.catalog.tables(&self.name).await?;
        let to =
            if rec.spec.mode.snapshots() && tables.iter().any(|t| !t.snapshot_done) { PipeState::Snapshot } else { PipeState::Running };
        self.catalog.transition(&self.name, PipeAction::Resume, to, "resume requested", None).await?;
        info!(pipe = self.name.as_str(), "state Paused → {to}: resume requested");
        self.start_engine(rec.spec);
        Ok(to)
    }

    /// Changes sync settings; a running pipe applies them from its next batch.
    async fn update_settings(&mut self, patch: SettingsPatch) -> Result<SyncSettings, ManagerError> {
        let mut rec = self.record().await?;
        let before = rec.spec.settings.clone();
        let s = &mut rec.spec.settings;
        if let Some(v) = patch.sync_interval_ms {
            s.sync_interval_ms = v;
        }
        if let Some(v) = patch.pull_batch_size {
            s.pull_batch_size = v;
        }
        if let Some(v) = patch.snapshot_rows_per_chunk {
            s.snapshot_rows_per_chunk = v;
        }
        if let Some(v) = patch.rows_per_partition {
            s.rows_per_partition = v;
        }
        if let Some(v) = patch.parallel_partitions {
            s.parallel_partitions = v;
        }
        if let Some(v) = patch.parallel_tables {
            s.parallel_tables = v;
        }
        if let Some(v) = patch.heartbeat_interval_ms {
            s.heartbeat_interval_ms = v;
        }
        if let Some(v) = patch.verify_rows_per_second {
            s.verify_rows_per_second = v;
        }
        if let Some(v) = patch.verify_interval_hours {
            s.verify_interval_hours = v;
        }
        rec.spec.validate().map_err(|e| ManagerError::Invalid(e.to_string()))?;
        let changed = settings_diff(&before, &rec.spec.settings);
        if changed.is_empty() {
            return Ok(rec.spec.settings);
        }
        self.catalog.update_spec(&rec.spec).await?;
        self.settings.send_replace(rec.spec.settings.clone());
        let msg = format!("settings changed: {changed}");
        info!(pipe = self.name.as_str(), "{msg}");
        self.note(&msg).await;
        Ok(rec.spec.settings)
    }

    /// Changes how the source is reached, on a `Paused` (or `Failed`) pipe: on
    /// resume, CDC continues from its checkpoint on the server the new settings
    /// name. Moving to another server of the replication topology (a fail-over)
    /// needs GTIDs (`replication_mechanism` auto or gtid): a file/offset means
    /// nothing on another server.
    async fn update_source(&mut self, patch: SourcePatch) -> Result<PipeSpec, ManagerError> {
        let mut rec = self.record().await?;
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
            src.tls = v.patched_over(&src.tls);
        }
        if let Some(v) = patch.replication_mechanism {
            src.replication_mechanism = v;
        }
        if let Some(v) = patch.heartbeat_table {
            src.heartbeat_table = (!v.is_empty()).then_some(v);
        }
        let ssh_before = src.ssh.as_ref().map(|t| format!("{}@{}:{}", t.user, t.host, t.port));
        match patch.ssh {
            None => {}
            Some(None) => src.ssh = None,
            Some(Some(p)) => src.ssh = Some(p.apply(src.ssh.take()).map_err(ManagerError::Invalid)?),
        }
        let ssh_after = src.ssh.as_ref().map(|t| format!("{}@{}:{}", t.user, t.host, t.port));
        rec.spec.validate().map_err(|e| ManagerError::Invalid(e.to_string()))?;
        self.catalog.update_spec(&rec.spec).await?;
        let src = &rec.spec.source;
        let after = format!("{}:{}", src.host, src.port);
        if after != before {
            // Another server numbers its binlog files independently: its first checkpoint may be anywhere.
            self.catalog.allow_checkpoint_rebase(&self.name, &format!("source moved from {before} to {after}")).await?;
        }
        let tunnel = match (&ssh_before, &ssh_after) {
            (None, None) => String::new(),
            (b, a) if b == a => format!(", SSH tunnel via {}", a.as_deref().unwrap_or_default()),
            (b, a) => format!(", SSH tunnel {} → {}", b.as_deref().unwrap_or("none"), a.as_deref().unwrap_or("none (direct connection)")),
        };
        let msg = format!(
            "source changed: {before} → {}:{} (user {}, replication_mechanism {:?}{tunnel}); CDC resumes from the checkpoint there",
            src.host, src.port, src.user, src.replication_mechanism
        );
        info!(pipe = self.name.as_str(), "{msg}");
        self.note(&msg).await;
        Ok(rec.spec)
    }

    /// Re-copies tables (all when `only` is empty) into `<table>_resync` and swaps
    /// each in when its copy is complete, while CDC keeps the current tables
    /// (and the copies) up to date. A whole-pipe resync restarts CDC from the new
    /// copies' position: the recovery for a `Failed` pipe (purged binlog).
    async fn resync(&mut self, only: &[String]) -> Result<PipeState, ManagerError> {
        let name = self.name.clone();
        let rec = self.record().await?;
        if targets(rec.state, PipeAction::Resync).is_empty() {
            return Err(refuse(rec.state, PipeAction::Resync));
        }
        if !rec.spec.mode.streams() {
            return Err(ManagerError::Invalid("a snapshot_only pipe has nothing to resync into; create a new pipe".into()));
        }
        if self.catalog.checkpoint(&name).await?.is_none() {
            return Err(ManagerError::Invalid(
                "the pipe never finished Setup, so there is nothing to resync: correct it (PATCH /source) and resume it to run Setup again"
                    .into(),
            ));
        }
        let all = self.catalog.tables(&name).await?;
        let chosen: Vec<_> = if only.is_empty() {
            all.iter().collect()
        } else {
            only.iter().map(|t| find_table(&all, t).ok_or_else(|| no_such_table(&name, t, &all))).collect::<Result<_, _>>()?
        };
        let whole = chosen.len() == all.len();
        if rec.state == PipeState::Failed && !whole {
            return Err(ManagerError::Invalid(
                "a Failed pipe is resynced whole (its binlog position may be gone): leave out the table list".into(),
            ));
        }
        let mappings: Vec<_> = chosen.iter().map(|t| t.mapping.clone()).collect();
        // From here the engine is stopped: every failure restarts it as it was.
        self.stop_engine().await;
        let sink = ClickHouseSink::new(&rec.spec.destination);
        let prepared = match sluice_engine::modify::prepare_resync(&self.catalog, &rec.spec, &mappings, &sink).await {
            Ok(p) => p,
            Err(e) => {
                self.start_if_live().await;
                let msg = format!("cannot start the resync: {e}");
                self.note(&msg).await;
                return Err(if matches!(e, EngineError::Spec(_)) { ManagerError::Invalid(msg) } else { ManagerError::Internal(msg) });
            }
        };
        let dests: Vec<String> = mappings.iter().map(|m| m.destination.clone()).collect();
        let start = &prepared.start;
        let reason = format!(
            "resync of {} requested; copying into {} from {}",
            if whole { "every table".to_string() } else { dests.join(", ") },
            dests.iter().map(|d| resync_table_name(d)).collect::<Vec<_>>().join(", "),
            start.position
        );
        let recorded = async {
            self.catalog.begin_resync(&name, &prepared.mappings, prepared.snapshot_version, whole.then_some(start)).await?;
            self.transition_retried(PipeAction::Resync, PipeState::Resync, &reason).await
        }
        .await;
        if let Err(e) = recorded {
            self.start_if_live().await;
            let msg = format!("cannot start the resync: {e}");
            self.note(&msg).await;
            return Err(ManagerError::Internal(msg));
        }
        self.start_engine(rec.spec);
        Ok(PipeState::Resync)
    }

    /// Adds tables to a `Running` or `Paused` pipe: `Modifying` while they are
    /// set up, then `Snapshot` while they are copied alongside CDC (or back to
    /// `Paused`; the copy starts on resume). CDC-only pipes copy nothing.
    async fn add_tables(&mut self, add: Vec<TableSpec>) -> Result<PipeState, ManagerError> {
        let name = self.name.clone();
        if add.is_empty() {
            return Err(ManagerError::Invalid("tables: give at least one table".into()));
        }
        // The checks a pipe's spec gets at creation (options, destination name), by the request's index.
        for (i, t) in add.iter().enumerate() {
            t.validate(i).map_err(|e| ManagerError::Invalid(format!("cannot add the tables: {}: {}", e.field, e.message)))?;
        }
        let what = add.iter().map(|t| t.source.as_str()).collect::<Vec<_>>().join(", ");
        // Set the tables up while the pipe keeps running; CDC stops only to pick them up.
        // (The copy position is read now: CDC restarts from its checkpoint, before or after
        // it, and the copy is read after that restart, so either way it converges.)
        let current = self.record().await?;
        if targets(current.state, PipeAction::ModifyTables).is_empty() {
            return Err(refuse(current.state, PipeAction::ModifyTables));
        }
        let existing: Vec<_> = self.catalog.tables(&name).await?.into_iter().map(|t| t.mapping).collect();
        let sink = ClickHouseSink::new(&current.spec.destination);
        let added = match sluice_engine::modify::prepare_added_tables(&self.catalog, &current.spec, &existing, &add, &sink).await {
            Ok(a) => a,
            Err(e) => {
                let msg = format!("cannot add the tables: {e}");
                self.note(&format!("adding {what} failed: {e}")).await;
                return Err(ManagerError::Invalid(msg));
            }
        };
        let (rec, from) = match self.begin_modify(&format!("adding {what}")).await {
            Ok(v) => v,
            Err(e) => {
                sluice_engine::modify::drop_created(&sink, &added.created, &e).await;
                return Err(e);
            }
        };
        let copy = rec.spec.mode.snapshots();
        let state = if copy { TableState::Adding } else { TableState::Running };
        let mut spec = rec.spec.clone();
        spec.tables.extend(add);
        let recorded = async {
            self.catalog.update_spec(&spec).await?;
            let tables = async {
                self.injected("add_tables")?;
                self.catalog.add_tables(&name, &added.mappings, state, added.snapshot_version).await
            };
            if let Err(e) = tables.await {
                // One transaction: nothing of it was written. Put the spec back.
                if let Err(e2) = self.catalog.update_spec(&rec.spec).await {
                    warn!(pipe = name.as_str(), "cannot restore the pipe's spec: {e2}");
                }
                return Err(e);
            }
            Ok::<_, sluice_catalog::CatalogError>(())
        }
        .await;
        if let Err(e) = recorded {
            let msg = format!("adding {what} failed: {e}");
            // Nothing of the addition was recorded: the tables it created go too.
            sluice_engine::modify::drop_created(&sink, &added.created, &e).await;
            self.abort_modify(from, &msg).await;
            return Err(ManagerError::Internal(msg));
        }
        let names: Vec<String> = added.mappings.iter().map(|m| format!("{} → {}", m.source.id, m.destination)).collect();
        self.note(&format!("tables added: {}", names.join(", "))).await;
        self.end_modify(spec, from, copy, "tables added").await
    }

    /// Removes one table (by destination name or `schema.table`) from a
    /// `Running` or `Paused` pipe; its destination table is dropped only if asked.
    async fn remove_table(&mut self, table: &str, drop: bool) -> Result<PipeState, ManagerError> {
        let name = self.name.clone();
        self.record().await?;
        let all = self.catalog.tables(&name).await?;
        let t = find_table(&all, table).ok_or_else(|| no_such_table(&name, table, &all))?.clone();
        if all.len() == 1 {
            return Err(ManagerError::Invalid(format!("{table} is the pipe's only table; delete the pipe instead")));
        }
        let dest = t.mapping.destination.clone();
        let (rec, from) = self.begin_modify(&format!("removing {dest}")).await?;
        let mut spec = rec.spec.clone();
        let source = format!("{}.{}", t.mapping.source.id.schema, t.mapping.source.id.table);
        spec.tables.retain(|s| s.source != source);
        let recorded = async {
            self.catalog.update_spec(&spec).await?;
            let tables = async {
                self.injected("remove_table")?;
                self.catalog.remove_table(&name, &dest).await
            };
            if let Err(e) = tables.await {
                if let Err(e2) = self.catalog.update_spec(&rec.spec).await {
                    warn!(pipe = name.as_str(), "cannot restore the pipe's spec: {e2}");
                }
                return Err(e);
            }
            Ok::<_, sluice_catalog::CatalogError>(())
        }
        .await;
        if let Err(e) = recorded {
            let msg = format!("removing {source} failed: {e}");
            self.abort_modify(from, &msg).await;
            return Err(ManagerError::Internal(msg));
        }
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
            (None, true) => {
                format!("table {source} → {dest} removed and its destination table dropped")
            }
            (None, false) => format!("table {source} → {dest} removed"),
        };
        self.note(&what).await;
        let adding = match self.catalog.tables(&name).await {
            Ok(ts) => ts.iter().any(|t| t.state == TableState::Adding),
            Err(_) => false,
        };
        let state = self.end_modify(spec, from, adding, "table removed").await?;
        match drop_error {
            Some(e) => Err(ManagerError::Internal(e)),
            None => Ok(state),
        }
    }

    /// Stops the engine and moves the pipe to `Modifying`. Returns the pipe as
    /// it was and the state it left. On failure the engine runs again.
    async fn begin_modify(&mut self, reason: &str) -> Result<(PipeRecord, PipeState), ManagerError> {
        let rec = self.record().await?;
        if targets(rec.state, PipeAction::ModifyTables).is_empty() {
            return Err(refuse(rec.state, PipeAction::ModifyTables));
        }
        self.stop_engine().await;
        match self.catalog.transition(&self.name, PipeAction::ModifyTables, PipeState::Modifying, reason, None).await {
            Ok(from) => {
                info!(pipe = self.name.as_str(), "state {from} → Modifying: {reason}");
                Ok((rec, from))
            }
            Err(e) => {
                self.start_if_live().await;
                Err(e.into())
            }
        }
    }

    /// Leaves `Modifying` for the state the pipe had before a table change
    /// that failed, records why, and restarts the engine if the pipe was live.
    async fn abort_modify(&mut self, before: PipeState, msg: &str) {
        error!(pipe = self.name.as_str(), "{msg}; putting the pipe back as it was");
        let reason = format!("{msg}; the pipe is back as it was");
        if let Err(e) = self.transition_retried(PipeAction::Finished, before, &reason).await {
            error!(pipe = self.name.as_str(), "cannot leave Modifying: {e}");
        }
        if before == PipeState::Paused {
            return;
        }
        // Left in Modifying (the catalog refused everything), the engine finishes
        // the change itself with the tables recorded, which are the old ones.
        match self.catalog.pipe(&self.name).await {
            Ok(Some(rec)) => self.start_engine(rec.spec),
            _ => {
                self.schedule_restart();
            }
        }
    }

    /// Leaves `Modifying`: back to `Paused` for a paused pipe, else `Snapshot`
    /// when tables are to be copied, else `Running`; restarts the engine.
    async fn end_modify(&mut self, spec: PipeSpec, before: PipeState, copying: bool, reason: &str) -> Result<PipeState, ManagerError> {
        let to = match (before, copying) {
            (PipeState::Paused, _) => PipeState::Paused,
            (_, true) => PipeState::Snapshot,
            _ => PipeState::Running,
        };
        let done = self.transition_retried(PipeAction::Finished, to, reason).await;
        if to != PipeState::Paused {
            // Even when the transition could not be written: the engine finishes
            // an interrupted table change itself, with the tables recorded.
            self.start_engine(spec);
        }
        match done {
            Ok(_) => Ok(to),
            Err(e) => Err(ManagerError::Internal(format!("{reason}, but the pipe could not leave Modifying: {e}"))),
        }
    }

    /// Stops the pipe and forgets it; drops its destination tables only if asked.
    /// On failure the pipe stays, with its engine running again if it was live.
    async fn delete(&mut self, drop_tables: bool) -> Result<(), ManagerError> {
        let name = self.name.clone();
        let rec = self.record().await?;
        self.stop_engine().await;
        let result = async {
            if drop_tables {
                let sink = ClickHouseSink::new(&rec.spec.destination);
                for t in self.catalog.tables(&name).await? {
                    for d in [t.mapping.destination.clone(), resync_table_name(&t.mapping.destination)] {
                        sink.drop_table(&d).await.map_err(|e| ManagerError::Internal(format!("dropping {d}: {e}")))?;
                    }
                }
            }
            self.catalog.delete_pipe(&name).await?;
            Ok::<_, ManagerError>(())
        }
        .await;
        match result {
            Ok(()) => {
                info!(pipe = name.as_str(), "pipe deleted{}", if drop_tables { " with its destination tables" } else { "" });
                self.timer = None;
                Ok(())
            }
            Err(e) => {
                self.note(&format!("deleting the pipe failed: {e}")).await;
                self.start_if_live().await;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The owner against a real catalog (SQLite in a temporary dir) with
    //! injected engines: no source or ClickHouse is contacted.
    use super::*;
    use crate::manager::Manager;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn spec(name: &str) -> PipeSpec {
        PipeSpec::from_json(&format!(
            r#"{{"name": "{name}", "source": {{"host": "127.0.0.1", "port": 1, "user": "u", "password": "p"}},
                "destination": {{"url": "http://127.0.0.1:1", "user": "default", "password": "", "database": "d"}},
                "tables": [{{"source": "db.t"}}], "mode": "snapshot_and_cdc"}}"#
        ))
        .unwrap()
    }

    /// Brings a fresh pipe to `Running` the way the engine does.
    async fn to_running(ctx: &PipeContext) {
        ctx.transition(PipeAction::Provisioned, PipeState::Setup, "provisioned").await.unwrap();
        ctx.transition(PipeAction::SetupDone, PipeState::Running, "setup done").await.unwrap();
    }

    /// An engine that reaches `Running` (if new) and streams until it is stopped; counts its starts.
    fn streaming_engine(starts: Arc<AtomicU32>) -> EngineStarter {
        Arc::new(move |ctx: PipeContext| -> EngineFuture {
            let starts = starts.clone();
            Box::pin(async move {
                starts.fetch_add(1, Ordering::SeqCst);
                if ctx.catalog.pipe(ctx.name()).await?.unwrap().state == PipeState::Provisioning {
                    to_running(&ctx).await;
                }
                ctx.cancel.cancelled().await;
                Ok(ctx.catalog.pipe(ctx.name()).await?.unwrap().state)
            })
        })
    }

    async fn state_of(catalog: &Catalog, name: &str) -> (PipeState, Option<String>) {
        let rec = catalog.pipe(name).await.unwrap().unwrap();
        (rec.state, rec.error)
    }

    /// Polls until `want` holds, for at most 20 s.
    async fn until<F: Fn((PipeState, Option<String>)) -> bool>(catalog: &Catalog, name: &str, want: F) -> (PipeState, Option<String>) {
        let start = std::time::Instant::now();
        loop {
            let s = state_of(catalog, name).await;
            if want(s.clone()) {
                return s;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "pipe {name} stuck at {s:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn manager(engine: EngineStarter) -> (tempfile::TempDir, Catalog, Manager) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).await.unwrap();
        let m = Manager::with_engine(catalog.clone(), engine);
        (dir, catalog, m)
    }

    fn engine_bug() -> EngineResult {
        panic!("injected engine bug at batch 7")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_panicking_engine_turns_the_pipe_failed_with_the_panic_text() {
        let engine: EngineStarter = Arc::new(|ctx: PipeContext| -> EngineFuture {
            Box::pin(async move {
                to_running(&ctx).await;
                engine_bug()
            })
        });
        let (_dir, catalog, m) = manager(engine).await;
        m.create(spec("p")).await.unwrap();
        let (state, error) = until(&catalog, "p", |(s, _)| s == PipeState::Failed).await;
        assert_eq!(state, PipeState::Failed);
        let error = error.unwrap_or_default();
        assert!(error.contains("panicked") && error.contains("injected engine bug at batch 7"), "{error}");
        let ev = catalog.events("p").await.unwrap();
        assert!(ev.iter().any(|e| e.to_state == "Failed" && e.reason.contains("panicked")), "{ev:?}");
        // The owner lives on: the pipe still answers commands (a Failed pipe cannot be paused).
        assert!(matches!(m.pause("p").await, Err(ManagerError::Conflict { state: PipeState::Failed, .. })));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_engine_error_it_could_not_record_restarts_the_engine_and_shows_the_error() {
        let starts = Arc::new(AtomicU32::new(0));
        let s2 = starts.clone();
        let streaming = streaming_engine(Arc::new(AtomicU32::new(0)));
        let engine: EngineStarter = Arc::new(move |ctx: PipeContext| -> EngineFuture {
            let n = s2.fetch_add(1, Ordering::SeqCst);
            if n > 0 {
                return streaming(ctx);
            }
            Box::pin(async move {
                to_running(&ctx).await;
                // As if the catalog had refused the engine's own `Fail` (e.g. a full disk).
                Err(EngineError::Spec("injected: catalog database error: database or disk is full".into()))
            })
        });
        let (_dir, catalog, m) = manager(engine).await;
        m.create(spec("p")).await.unwrap();
        let (state, error) = until(&catalog, "p", |(_, e)| e.is_some()).await;
        assert_eq!(state, PipeState::Running);
        assert!(error.unwrap().contains("disk is full"));
        let start = std::time::Instant::now();
        while starts.load(Ordering::SeqCst) < 2 {
            assert!(start.elapsed() < Duration::from_secs(20), "the engine was not restarted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(state_of(&catalog, "p").await.0, PipeState::Running);
        m.shutdown().await;
    }

    /// Many concurrent settings changes, each of another field: every one is applied
    /// (none overwrites another's read-modify-write), and each is in the history.
    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_settings_changes_are_all_applied() {
        let (_dir, catalog, m) = manager(streaming_engine(Arc::new(AtomicU32::new(0)))).await;
        m.create(spec("p")).await.unwrap();
        until(&catalog, "p", |(s, _)| s == PipeState::Running).await;
        let patches = [
            SettingsPatch { sync_interval_ms: Some(4321), ..Default::default() },
            SettingsPatch { pull_batch_size: Some(777), ..Default::default() },
            SettingsPatch { snapshot_rows_per_chunk: Some(555), ..Default::default() },
            SettingsPatch { rows_per_partition: Some(9999), ..Default::default() },
            SettingsPatch { parallel_partitions: Some(3), ..Default::default() },
            SettingsPatch { parallel_tables: Some(2), ..Default::default() },
            SettingsPatch { heartbeat_interval_ms: Some(12345), ..Default::default() },
        ];
        let tasks: Vec<_> = patches
            .into_iter()
            .map(|p| {
                let m = m.clone();
                tokio::spawn(async move { m.update_settings("p", p).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let s = catalog.pipe("p").await.unwrap().unwrap().spec.settings;
        assert_eq!(
            (
                s.sync_interval_ms,
                s.pull_batch_size,
                s.snapshot_rows_per_chunk,
                s.rows_per_partition,
                s.parallel_partitions,
                s.parallel_tables,
                s.heartbeat_interval_ms
            ),
            (4321, 777, 555, 9999, 3, 2, 12345)
        );
        let ev = catalog.events("p").await.unwrap();
        let changes: Vec<_> = ev.iter().filter(|e| e.reason.starts_with("settings changed: ")).collect();
        assert_eq!(changes.len(), 7, "{ev:?}");
        assert!(ev.iter().any(|e| e.reason == "settings changed: sync_interval_ms 1000 → 4321"), "{ev:?}");
        m.shutdown().await;
    }

    /// A resume sent right behind a pause waits for `Paused` instead of being refused
    /// as `Pausing`; the engine is stopped before the pipe reads `Paused`, and started again.
    #[tokio::test(flavor = "multi_thread")]
    async fn commands_run_in_order_pause_then_resume() {
        let starts = Arc::new(AtomicU32::new(0));
        let (_dir, catalog, m) = manager(streaming_engine(starts.clone())).await;
        m.create(spec("p")).await.unwrap();
        until(&catalog, "p", |(s, _)| s == PipeState::Running).await;
        assert_eq!(m.pause("p").await.unwrap(), PipeState::Pausing);
        assert_eq!(m.resume("p").await.unwrap(), PipeState::Running);
        let states: Vec<String> = catalog.events("p").await.unwrap().into_iter().map(|e| e.to_state).collect();
        assert_eq!(states, ["Provisioning", "Setup", "Running", "Pausing", "Paused", "Running"]);
        // The engine task is spawned by the resume; it counts its start once it first runs.
        for _ in 0..400 {
            if starts.load(Ordering::SeqCst) == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        m.delete("p", false).await.unwrap();
        assert!(catalog.pipe("p").await.unwrap().is_none());
        let after = m.pause("p").await;
        assert!(matches!(after, Err(ManagerError::NotFound(_))), "{after:?}");
    }

    /// `PATCH /source` adds, changes (keeping what it does not name) and removes the SSH
    /// tunnel of a paused pipe; a new tunnel without a host is refused; the history says so.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_ssh_tunnel_of_a_paused_pipe_can_change() {
        let (_dir, catalog, m) = manager(streaming_engine(Arc::new(AtomicU32::new(0)))).await;
        m.create(spec("p")).await.unwrap();
        until(&catalog, "p", |(s, _)| s == PipeState::Running).await;
        m.pause("p").await.unwrap();
        until(&catalog, "p", |(s, _)| s == PipeState::Paused).await;
        let patch = |v: serde_json::Value| serde_json::from_value::<SourcePatch>(v).unwrap();
        let refused = m.update_source("p", patch(serde_json::json!({"ssh": {"user": "u", "password": "pw"}}))).await;
        assert!(matches!(&refused, Err(ManagerError::Invalid(e)) if e.contains("source.ssh.host")), "{refused:?}");
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----";
        let added =
            serde_json::json!({"ssh": {"host": "bastion", "user": "tunnel", "private_key": key, "known_host_key": "ssh-ed25519 AAAA"}});
        m.update_source("p", patch(added)).await.unwrap();
        let t = catalog.pipe("p").await.unwrap().unwrap().spec.source.ssh.unwrap();
        assert_eq!((t.host.as_str(), t.port, t.user.as_str(), t.private_key.0.as_str()), ("bastion", 22, "tunnel", key));
        // Only the port changes; the stored key stays.
        m.update_source("p", patch(serde_json::json!({"ssh": {"port": 2222}}))).await.unwrap();
        let t = catalog.pipe("p").await.unwrap().unwrap().spec.source.ssh.unwrap();
        assert_eq!((t.host.as_str(), t.port, t.private_key.0.as_str()), ("bastion", 2222, key));
        // Fields other than ssh leave the tunnel alone; `null` removes it.
        m.update_source("p", patch(serde_json::json!({"port": 3307}))).await.unwrap();
        assert!(catalog.pipe("p").await.unwrap().unwrap().spec.source.ssh.is_some());
        m.update_source("p", patch(serde_json::json!({"ssh": null}))).await.unwrap();
        assert!(catalog.pipe("p").await.unwrap().unwrap().spec.source.ssh.is_none());
        let ev: Vec<String> = catalog.events("p").await.unwrap().into_iter().map(|e| e.reason).collect();
        assert!(ev.iter().any(|e| e.contains("SSH tunnel none → tunnel@bastion:22")), "{ev:?}");
        assert!(ev.iter().any(|e| e.contains("SSH tunnel tunnel@bastion:2222 → none (direct connection)")), "{ev:?}");
        m.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_taken_name_is_exists_and_nothing_else_is() {
        let (_dir, _catalog, m) = manager(streaming_engine(Arc::new(AtomicU32::new(0)))).await;
        m.create(spec("p")).await.unwrap();
        assert!(matches!(m.create(spec("p")).await, Err(ManagerError::Exists { .. })));
        m.shutdown().await;
    }

    /// A table change that fails after the engine was stopped puts the pipe back
    /// as it was: state, spec and tables, the engine running again; the error is
    /// returned and recorded in the history.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_table_change_failing_half_way_restores_the_pipe_and_restarts_the_engine() {
        use sluice_core::schema::{SourceTable, TableId};
        use sluice_core::types::TableMapping;
        let starts = Arc::new(AtomicU32::new(0));
        let (_dir, catalog, m) = manager(streaming_engine(starts.clone())).await;
        let mut sp = spec("half");
        sp.tables.push(serde_json::from_value(serde_json::json!({"source": "db.u"})).unwrap());
        m.create(sp.clone()).await.unwrap();
        until(&catalog, "half", |(s, _)| s == PipeState::Running).await;
        let mapping = |t: &str| {
            TableMapping::new(
                SourceTable { id: TableId::new("db", t), columns: vec![], primary_key: vec!["id".into()], charset: None },
                t.into(),
            )
        };
        catalog.add_tables("half", &[mapping("t"), mapping("u")], TableState::Running, 1).await.unwrap();
        FAIL_AT.lock().unwrap().push(("half".into(), "remove_table"));

        let r = m.remove_table("half", "u", false).await;
        let Err(ManagerError::Internal(msg)) = r else { panic!("{r:?}") };
        assert!(msg.contains("removing db.u failed") && msg.contains("injected failure"), "{msg}");
        assert_eq!(state_of(&catalog, "half").await.0, PipeState::Running);
        assert_eq!(catalog.pipe("half").await.unwrap().unwrap().spec.tables.len(), 2, "the spec was not restored");
        assert_eq!(catalog.tables("half").await.unwrap().len(), 2);
        assert_eq!(starts.load(Ordering::SeqCst), 2, "the engine was not started again");
        let ev = catalog.events("half").await.unwrap();
        let i = ev.iter().position(|e| e.to_state == "Modifying" && e.reason == "removing u").unwrap_or_else(|| panic!("{ev:?}"));
        assert_eq!(ev[i + 1].to_state, "Running", "{ev:?}");
        assert!(ev[i + 1].reason.contains("injected failure") && ev[i + 1].reason.ends_with("the pipe is back as it was"), "{ev:?}");
        FAIL_AT.lock().unwrap().clear();
        m.shutdown().await;
    }

    #[test]
    fn settings_diff_names_each_changed_field() {
        let a = SyncSettings::default();
        let mut b = a.clone();
        b.sync_interval_ms = 5000;
        b.parallel_tables = 3;
        assert_eq!(settings_diff(&a, &b), "sync_interval_ms 1000 → 5000, parallel_tables 1 → 3");
        assert_eq!(settings_diff(&a, &a), "");
    }
}
