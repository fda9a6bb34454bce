//! The catalog-store seam: everything a pipe's engine and the control plane
//! keep durably, as one interface with its contract, so that other backends
//! (a Postgres catalog shared by several workers) can stand in for the
//! embedded SQLite one (`Catalog`).
//!
//! **Contract, whatever the backend:**
//! - every method is one transaction: it happens entirely or not at all, and
//!   a caller that stops waiting for it (a dropped future) does not stop it
//!   half-way nor block other callers;
//! - the checkpoint only moves forward in the binlog (`CheckpointBackwards`
//!   otherwise); Setup, a whole-pipe resync (`begin_resync` with a restart
//!   position) and one save after `allow_checkpoint_rebase` are the only
//!   exceptions, and a rebase is written to the pipe's history;
//! - pipe states follow `sluice_core::state::transition`, table states
//!   `TableState::next_states` (`IllegalTableTransition` otherwise), each
//!   change written with its history row;
//! - versions handed out by `reserve_versions` are never handed out again,
//!   even after a crash (the clock moves durably before it returns);
//! - errors carry their `Severity` (`CatalogError::severity`): busy, I/O and
//!   disk-full errors are transient;
//! - on a handle fenced by a pipe's lease token (`Catalog::fenced`), every
//!   write for that pipe checks the token in its own transaction and fails
//!   with `CatalogError::Fenced`, writing nothing, once another worker holds
//!   the pipe (or nobody does).

use crate::{Catalog, CatalogError, PartitionRecord, PipeEvent, PipeRecord, StoredCheckpoint, TableChange, TableRecord};
use async_trait::async_trait;
use sluice_core::types::TableMapping;
use sluice_core::{Checkpoint, PipeAction, PipeSpec, PipeState, TableState};

type Result<T> = std::result::Result<T, CatalogError>;

/// A key range of a snapshot partition: `[lo, hi)`, `None` unbounded.
pub type KeyRange = (Option<serde_json::Value>, Option<serde_json::Value>);

/// The durable state of pipes (see the module's contract).
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// A pipe as stored, `None` when there is none of that name.
    async fn pipe(&self, name: &str) -> Result<Option<PipeRecord>>;

    /// Every pipe's name.
    async fn pipe_names(&self) -> Result<Vec<String>>;

    /// Records a new pipe in `Provisioning`; a name already taken is `CatalogError::Exists`.
    async fn create_pipe(&self, spec: &PipeSpec) -> Result<()>;

    /// Replaces a pipe's spec (the caller checked what may change).
    async fn update_spec(&self, spec: &PipeSpec) -> Result<()>;

    /// Applies `action`, moving the pipe to `to` if the transition table
    /// allows it, with its history row (`reason`, `error`). Returns the state it left.
    async fn transition(&self, name: &str, action: PipeAction, to: PipeState, reason: &str, error: Option<&str>) -> Result<PipeState>;

    /// Adds `reason` to the pipe's history without changing its state.
    async fn note(&self, name: &str, reason: &str) -> Result<()>;

    /// Sets (or with `None` clears) the pipe's last error without changing its state.
    async fn set_error(&self, name: &str, error: Option<&str>) -> Result<()>;

    /// The pipe's history, oldest first.
    async fn events(&self, name: &str) -> Result<Vec<PipeEvent>>;

    /// The result of Setup: the tables (state `Setup`) and the checkpoint CDC
    /// starts from, replacing any earlier tables, partitions and checkpoint.
    async fn record_setup(&self, name: &str, tables: &[TableMapping], start: &Checkpoint, snapshot_version: i64) -> Result<()>;

    /// Where the version clock stands (every version handed out is below it);
    /// `None` for a pipe from before the clock.
    async fn next_version(&self, name: &str) -> Result<Option<i64>>;

    /// Reserves `n` versions: returns the first, `max(clock, floor)`, and
    /// durably moves the clock past the last before returning.
    async fn reserve_versions(&self, name: &str, n: i64, floor: i64) -> Result<i64>;

    /// The pipe's tables with their recorded definitions, states and copy progress.
    async fn tables(&self, name: &str) -> Result<Vec<TableRecord>>;

    /// Marks a table's copy complete and returns the rows it copied; a table
    /// of the initial snapshot becomes `Snapshotted`.
    async fn mark_copied(&self, name: &str, destination: &str) -> Result<u64>;

    /// Moves a table to `state` (with its error; `None` clears it) if the
    /// transition table allows it; `NoSuchTable` for an unknown table.
    async fn set_table_state(&self, name: &str, destination: &str, state: TableState, error: Option<&str>) -> Result<()>;

    /// Adds tables to a live pipe in `Adding` (copied with `snapshot_version`)
    /// or `Running` (CDC-only); a destination the pipe has is `TableExists`.
    async fn add_tables(&self, name: &str, tables: &[TableMapping], state: TableState, snapshot_version: i64) -> Result<()>;

    /// Forgets one table of a pipe.
    async fn remove_table(&self, name: &str, destination: &str) -> Result<()>;

    /// Starts a resync of `tables` (new definitions; state `Resync`, copied
    /// from scratch with `snapshot_version`); with `restart_at`, CDC restarts there.
    async fn begin_resync(&self, name: &str, tables: &[TableMapping], snapshot_version: i64, restart_at: Option<&Checkpoint>)
        -> Result<()>;

    /// The effect of a DDL statement together with the checkpoint just after
    /// it: after a crash the statement is entirely behind the pipe or replayed
    /// against the old definitions.
    async fn record_schema_change(&self, name: &str, changes: &[TableChange], after: &Checkpoint, note: &str) -> Result<()>;

    /// A table's snapshot partitions (empty until planned).
    async fn partitions(&self, name: &str, destination: &str) -> Result<Vec<PartitionRecord>>;

    /// A table's partition plan, replacing any earlier one.
    async fn record_partitions(&self, name: &str, destination: &str, ranges: &[KeyRange]) -> Result<()>;

    /// A partition's progress, after the destination acknowledged its rows up
    /// to `last_key`; the table's `rows_copied` is kept the sum of its partitions'.
    async fn record_partition_progress(
        &self,
        name: &str,
        destination: &str,
        idx: u32,
        last_key: Option<&serde_json::Value>,
        rows_copied: u64,
        done: bool,
    ) -> Result<()>;

    /// A table's estimated row count (for progress).
    async fn set_rows_estimated(&self, name: &str, destination: &str, rows: u64) -> Result<()>;

    /// Where CDC resumes, and the initial snapshot's version.
    async fn checkpoint(&self, name: &str) -> Result<Option<StoredCheckpoint>>;

    /// Makes a CDC checkpoint durable (only after the destination acknowledged
    /// every change before it); forward only (see the module's contract).
    async fn save_checkpoint(&self, name: &str, cp: &Checkpoint) -> Result<()>;

    /// Lets the next saved checkpoint be anywhere, once (a fail-over); `reason`
    /// goes to the history.
    async fn allow_checkpoint_rebase(&self, name: &str, reason: &str) -> Result<()>;

    /// Deletes a pipe and everything recorded about it.
    async fn delete_pipe(&self, name: &str) -> Result<()>;
}

#[async_trait]
impl CatalogStore for Catalog {
    async fn pipe(&self, name: &str) -> Result<Option<PipeRecord>> {
        Catalog::pipe(self, name).await
    }
    async fn pipe_names(&self) -> Result<Vec<String>> {
        Catalog::pipe_names(self).await
    }
    async fn create_pipe(&self, spec: &PipeSpec) -> Result<()> {
        Catalog::create_pipe(self, spec).await
    }
    async fn update_spec(&self, spec: &PipeSpec) -> Result<()> {
        Catalog::update_spec(self, spec).await
    }
    async fn transition(&self, name: &str, action: PipeAction, to: PipeState, reason: &str, error: Option<&str>) -> Result<PipeState> {
        Catalog::transition(self, name, action, to, reason, error).await
    }
    async fn note(&self, name: &str, reason: &str) -> Result<()> {
        Catalog::note(self, name, reason).await
    }
    async fn set_error(&self, name: &str, error: Option<&str>) -> Result<()> {
        Catalog::set_error(self, name, error).await
    }
    async fn events(&self, name: &str) -> Result<Vec<PipeEvent>> {
        Catalog::events(self, name).await
    }
    async fn record_setup(&self, name: &str, tables: &[TableMapping], start: &Checkpoint, snapshot_version: i64) -> Result<()> {
        Catalog::record_setup(self, name, tables, start, snapshot_version).await
    }
    async fn next_version(&self, name: &str) -> Result<Option<i64>> {
        Catalog::next_version(self, name).await
    }
    async fn reserve_versions(&self, name: &str, n: i64, floor: i64) -> Result<i64> {
        Catalog::reserve_versions(self, name, n, floor).await
    }
    async fn tables(&self, name: &str) -> Result<Vec<TableRecord>> {
        Catalog::tables(self, name).await
    }
    async fn mark_copied(&self, name: &str, destination: &str) -> Result<u64> {
        Catalog::mark_copied(self, name, destination).await
    }
    async fn set_table_state(&self, name: &str, destination: &str, state: TableState, error: Option<&str>) -> Result<()> {
        Catalog::set_table_state(self, name, destination, state, error).await
    }
    async fn add_tables(&self, name: &str, tables: &[TableMapping], state: TableState, snapshot_version: i64) -> Result<()> {
        Catalog::add_tables(self, name, tables, state, snapshot_version).await
    }
    async fn remove_table(&self, name: &str, destination: &str) -> Result<()> {
        Catalog::remove_table(self, name, destination).await
    }
    async fn begin_resync(
        &self,
        name: &str,
        tables: &[TableMapping],
        snapshot_version: i64,
        restart_at: Option<&Checkpoint>,
    ) -> Result<()> {
        Catalog::begin_resync(self, name, tables, snapshot_version, restart_at).await
    }
    async fn record_schema_change(&self, name: &str, changes: &[TableChange], after: &Checkpoint, note: &str) -> Result<()> {
        Catalog::record_schema_change(self, name, changes, after, note).await
    }
    async fn partitions(&self, name: &str, destination: &str) -> Result<Vec<PartitionRecord>> {
        Catalog::partitions(self, name, destination).await
    }
    async fn record_partitions(&self, name: &str, destination: &str, ranges: &[KeyRange]) -> Result<()> {
        Catalog::record_partitions(self, name, destination, ranges).await
    }
    async fn record_partition_progress(
        &self,
        name: &str,
        destination: &str,
        idx: u32,
        last_key: Option<&serde_json::Value>,
        rows_copied: u64,
        done: bool,
    ) -> Result<()> {
        Catalog::record_partition_progress(self, name, destination, idx, last_key, rows_copied, done).await
    }
    async fn set_rows_estimated(&self, name: &str, destination: &str, rows: u64) -> Result<()> {
        Catalog::set_rows_estimated(self, name, destination, rows).await
    }
    async fn checkpoint(&self, name: &str) -> Result<Option<StoredCheckpoint>> {
        Catalog::checkpoint(self, name).await
    }
    async fn save_checkpoint(&self, name: &str, cp: &Checkpoint) -> Result<()> {
        Catalog::save_checkpoint(self, name, cp).await
    }
    async fn allow_checkpoint_rebase(&self, name: &str, reason: &str) -> Result<()> {
        Catalog::allow_checkpoint_rebase(self, name, reason).await
    }
    async fn delete_pipe(&self, name: &str) -> Result<()> {
        Catalog::delete_pipe(self, name).await
    }
}
