//! CDC: follow the binlog from the checkpoint and apply changes in batches.
//!
//! **Whole transactions.** The rows of the transaction being read are held
//! apart until its commit arrives; only then do they join the batch of
//! committed transactions (`batch`). When a batch is written is adaptive
//! (`Batch::flush_at`): as soon as the stream has caught up with the source
//! (the reader has nothing more buffered to read right now), unless a table
//! the batch holds rows of was written less than `sync_interval_ms` ago (at
//! most one insert per table per interval: ClickHouse wants about one per
//! second); under load (more to read) once per `sync_interval_ms`, so that
//! batches grow with the load, or earlier when `pull_batch_size` changes or
//! the memory budget's `batch_allowance` bytes are held; also on a pause, and
//! before a DDL statement — always committed
//! transactions only, so a reader of `FINAL` never sees part of a transaction.
//! The one exception: a transaction larger than `LARGE_TXN_FACTOR ×
//! pull_batch_size` changes or `batch_allowance` bytes — or one the process's
//! memory budget (`memory`, shared by all pipes) has no room for — is written
//! in parts before its commit (memory stays bounded); this is said in the
//! pipe's history and counted in `sluice_large_transactions_split_total`.
//! The checkpoint still only moves at its commit, and a replay writes it again
//! with higher versions (`versions`).
//!
//! **Checkpoints.** The position after the last written transaction is made
//! durable only after ClickHouse acknowledged every change before it.
//!
//! **Stalls.** The server sends a heartbeat event after `SERVER_HEARTBEAT` of
//! silence (`BinlogReader::start` sets the period). The time of the last event
//! of any kind is tracked apart from batching; after `STALL_AFTER` without
//! one the connection is taken for dead (a hung server, or a network path that
//! holds bytes without a reset) and the stream reconnects from the checkpoint.
//! Meanwhile lag keeps growing (`LiveStatus::lag_seconds`).
//!
//! The stream resumes from the checkpoint by GTIDs or by file/offset as
//! `source.replication_mechanism` and the server allow (`binlog::resume_by`).
//!
//! Tables added to a live pipe (`Adding`) or resynced (`Resync`) are copied
//! here too, concurrently with the stream: the copy writes the version
//! reserved when it was set up (reading the source position `P`), while the
//! stream (started afterwards, from a checkpoint at or before `P`) applies
//! every later change with a higher version, so the hand-off neither loses nor
//! double-applies a change. A resync copies into `<table>_resync` and the
//! stream applies that table's changes there too (the current table keeps
//! serving its data unchanged meanwhile); when the copy is complete the batch
//! in hand is flushed and the two tables are exchanged atomically between
//! batches. DDL statements are followed by `schema_change`, after which the
//! stream restarts from the checkpoint just after the statement.
//!
//! **Errors.** A transient error reconnects from the checkpoint with backoff;
//! a table-level one (a row that cannot be decoded or written) puts that
//! table in `Error` with the reason while the others keep flowing; a fatal
//! one ends the stream (the pipe fails).

use crate::batch::Batch;
use crate::retry::{retry, Backoff};
use crate::schema_change;
use crate::snapshot::copy_table;
use crate::versions::VersionClock;
use crate::{failpoint, EngineError, PipeContext};
use sluice_catalog::TableRecord;
use sluice_core::types::TableMapping;
use sluice_core::{BinlogPosition, Checkpoint, PipeAction, PipeState, RowChange, Severity, TableState};
use sluice_source::binlog::{self, BinlogEvent};
use sluice_source::{ChangeStream, SourceError};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// A transaction holding more than this many times `pull_batch_size` changes is written in parts.
const LARGE_TXN_FACTOR: u64 = 4;
/// How long a batch with no room in the memory budget waits for some before
/// it writes its open transaction in parts.
const BUDGET_WAIT: Duration = Duration::from_secs(1);
/// The heartbeat period the binlog stream asks the server for (`BinlogReader::start`).
pub const SERVER_HEARTBEAT: Duration = binlog::HEARTBEAT_PERIOD;
/// No event at all (row, commit or heartbeat) for this long: the connection is stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(SERVER_HEARTBEAT.as_secs() * 2);
/// How often the apply loop looks at the clock (stall detection, the lag gauge).
const TICK: Duration = Duration::from_millis(250);

/// Why a stream ended without an error.
enum Ended {
    Cancelled,
    /// The tracked tables changed (a DDL): read them again and go on.
    TablesChanged,
    /// The checkpoint reached the position the caller asked to stop at.
    Reached,
}

/// Runs CDC until cancelled (`Ok`) or a fatal error.
pub async fn run(ctx: &PipeContext) -> Result<(), EngineError> {
    follow(ctx, None).await
}

/// Runs CDC until the checkpoint has reached `target` (a snapshot-only pipe
/// catching up to the position read when its copy ended). Returns `Ok` when it
/// has, or when cancelled (the caller checks `ctx.cancel`).
pub async fn catch_up(ctx: &PipeContext, target: &BinlogPosition) -> Result<(), EngineError> {
    follow(ctx, Some(target)).await
}

async fn follow(ctx: &PipeContext, until: Option<&BinlogPosition>) -> Result<(), EngineError> {
    let mut backoff = Backoff::new();
    loop {
        let started = Instant::now();
        match stream_once(ctx, until).await {
            Ok(Ended::Cancelled) | Ok(Ended::Reached) => return Ok(()),
            Ok(Ended::TablesChanged) => backoff.reset(),
            Err(e) if e.severity() == Severity::Transient => {
                // A stream that ran a while before breaking starts over with a short delay.
                if started.elapsed() > Duration::from_secs(60) {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                let msg = format!("binlog stream interrupted: {e}; resuming from the last checkpoint in {:.1}s", delay.as_secs_f64());
                metrics::counter!("sluice_errors_total", "pipe" => ctx.name().to_string(), "kind" => "binlog_stream").increment(1);
                warn!(pipe = ctx.name(), "{msg}");
                ctx.status.retrying(ctx.name(), true);
                crate::retry::show_error(ctx, &msg).await;
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// A tracked table as the apply loop sees it.
struct Applied {
    mapping: TableMapping,
    state: TableState,
    /// Where its changes are written: the destination, or `<table>_resync` while a resync copies into it.
    target: String,
}

/// Swaps a finished resync copy in and marks the table `Running`.
async fn swap_in(ctx: &PipeContext, rec: &TableRecord) -> Result<(), EngineError> {
    let dest = &rec.mapping.destination;
    let version = rec.snapshot_version.unwrap_or_default();
    ctx.catalog.set_table_state(ctx.name(), dest, TableState::Swapping, None).await?;
    retry(ctx, "swapping in the resynced table", || async { Ok(ctx.sink.finish_recopy(dest, version).await?) }).await?;
    failpoint!("resync-after-exchange-before-catalog");
    ctx.catalog.set_table_state(ctx.name(), dest, TableState::Running, None).await?;
    ctx.catalog.note(ctx.name(), &format!("table {dest} resynced: the new copy was swapped in with EXCHANGE TABLES")).await?;
    info!(pipe = ctx.name(), "table {dest} resynced: new copy swapped in");
    Ok(())
}

/// Once no table is being copied any more, a pipe in `Snapshot` (tables added)
/// or `Resync` goes back to `Running`.
async fn finish_if_done(ctx: &PipeContext) -> Result<(), EngineError> {
    let tables = ctx.catalog.tables(ctx.name()).await?;
    if tables.iter().any(|t| matches!(t.state, TableState::Adding | TableState::Resync | TableState::Swapping)) {
        return Ok(());
    }
    let state = ctx.catalog.pipe(ctx.name()).await?.map(|p| p.state);
    match state {
        Some(PipeState::Snapshot) if ctx.spec.mode.streams() => {
            ctx.transition(PipeAction::SnapshotDone, PipeState::Running, "added tables copied; CDC applies them").await
        }
        Some(PipeState::Resync) => ctx.transition(PipeAction::Finished, PipeState::Running, "resync complete").await,
        _ => Ok(()),
    }
}

/// Tables of the initial snapshot (or of a `cdc_only` pipe's Setup) are applied
/// by CDC from here on: `Snapshotted`/`Setup` → `Running`.
pub async fn promote_snapshotted(ctx: &PipeContext) -> Result<(), EngineError> {
    for rec in ctx.catalog.tables(ctx.name()).await? {
        if rec.state == TableState::Snapshotted || (rec.state == TableState::Setup && !ctx.spec.mode.snapshots()) {
            ctx.catalog.set_table_state(ctx.name(), &rec.mapping.destination, TableState::Running, None).await?;
        }
    }
    Ok(())
}

/// Whether the stream has reached `target` at checkpoint `at` (positions of
/// one server: the stream started on it from a checkpoint before `target`).
fn reached(at: &Checkpoint, target: Option<&BinlogPosition>) -> bool {
    target.is_some_and(|t| at.position >= *t)
}

async fn stream_once(ctx: &PipeContext, until: Option<&BinlogPosition>) -> Result<Ended, EngineError> {
    // A resync whose copy finished before a restart: swap it in before streaming.
    for rec in ctx.catalog.tables(ctx.name()).await? {
        if rec.state == TableState::Swapping || (rec.state == TableState::Resync && rec.snapshot_done) {
            swap_in(ctx, &rec).await?;
        }
    }
    finish_if_done(ctx).await?;
    if ctx.spec.mode.streams() && ctx.catalog.pipe(ctx.name()).await?.is_some_and(|p| p.state == PipeState::Running) {
        // A pipe whose initial snapshot finished before tables were promoted (older catalogs, a crash).
        promote_snapshotted(ctx).await?;
    }
    let stored =
        ctx.catalog.checkpoint(ctx.name()).await?.ok_or_else(|| EngineError::Spec("CDC without a recorded start position".into()))?;
    let start = stored.checkpoint;
    if reached(&start, until) {
        return Ok(Ended::Reached);
    }
    let all = ctx.catalog.tables(ctx.name()).await?;
    publish_tables_in_error(ctx, &all);
    let records: Vec<TableRecord> = all.into_iter().filter(|t| t.state != TableState::Error).collect();
    let mut tables: Vec<Applied> = records
        .iter()
        .map(|r| Applied {
            mapping: r.mapping.clone(),
            state: r.state,
            target: if r.state == TableState::Resync {
                ctx.sink.recopy_table(&r.mapping.destination)
            } else {
                r.mapping.destination.clone()
            },
        })
        .collect();
    let mut clock = VersionClock::start(ctx).await?;
    let tracked = tables.iter().map(|t| t.mapping.clone()).collect();
    let mut reader = ctx.source.stream(&start, tracked).await?;
    let _heartbeat = crate::heartbeat::start(ctx);
    ctx.status.heard();
    ctx.status.retrying(ctx.name(), false);
    crate::retry::show_error(ctx, "").await;

    // Copies of added and resynced tables, running alongside the stream as
    // tasks of their own (they make progress while the loop waits on a write;
    // dropping the set when the stream ends stops them).
    let mut copies = tokio::task::JoinSet::new();
    for (i, rec) in records.iter().enumerate() {
        if rec.state.copies_alongside_cdc() && !rec.snapshot_done {
            let target = tables[i].target.clone();
            let version = rec.snapshot_version.unwrap_or(stored.snapshot_version);
            let (ctx, rec) = (ctx.clone(), rec.clone());
            copies.spawn(async move { (i, copy_table(&ctx, &rec, &target, version).await) });
        }
    }

    let mut batch = Batch::new(tables.len());
    let budget = crate::memory::global();
    let max_bytes = budget.batch_allowance();
    // The bytes the batch holds, reserved from the process's budget.
    let mut held = budget.empty();
    let mut saved = start.clone();
    let mut bytes_counted = 0u64;
    let mut last_heard = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let flush_timer = tokio::time::sleep(Duration::from_millis(ctx.current_settings().sync_interval_ms));
    tokio::pin!(flush_timer);
    // The reader had nothing buffered when last asked: what is held may be written now.
    let mut caught_up = false;
    loop {
        // Settings may change while the pipe runs; they apply from the next batch on.
        let settings = ctx.current_settings();
        let interval = Duration::from_millis(settings.sync_interval_ms);
        let max_rows = settings.pull_batch_size;
        // What was written since the last turn is returned to the budget.
        held.shrink_to(batch.held_bytes());
        let flush_at = tokio::time::Instant::from_std(batch.flush_at(interval, caught_up, Instant::now()));
        if flush_timer.deadline() != flush_at {
            flush_timer.as_mut().reset(flush_at);
        }
        // Biased: the branches are polled in this order, so the last one runs
        // only when the reader has no event ready (the stream is caught up).
        let event = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => {
                // Committed transactions only: an open one is read again after the checkpoint.
                flush(ctx, &mut tables, &mut batch, &mut saved).await?;
                return Ok(Ended::Cancelled);
            }
            Some(joined) = copies.join_next(), if !copies.is_empty() => {
                let (i, copied) = joined.unwrap_or_else(|e| {
                    (usize::MAX, Err(EngineError::Spec(format!("a table copy task ended abnormally: {e}"))))
                });
                if i == usize::MAX {
                    return copied.map(|_| Ended::Cancelled);
                }
                // Everything the stream holds goes out first, so that a swapped-in copy
                // has every change up to here.
                flush(ctx, &mut tables, &mut batch, &mut saved).await?;
                let rec = &records[i];
                let dest = &rec.mapping.destination;
                match copied {
                    Ok(rows) => {
                        if rec.state == TableState::Resync {
                            swap_in(ctx, rec).await?;
                            tables[i].target = dest.clone();
                        } else {
                            ctx.catalog.set_table_state(ctx.name(), dest, TableState::Running, None).await?;
                            ctx.catalog.note(ctx.name(), &format!("table {dest} copied ({rows} rows); CDC applies it")).await?;
                        }
                        tables[i].state = TableState::Running;
                    }
                    Err(e) if e.is_cancelled() || ctx.cancel.is_cancelled() => return Ok(Ended::Cancelled),
                    Err(e) => {
                        let msg = format!("copying {} failed: {e}; resync the table", rec.mapping.source.id);
                        table_error(ctx, &mut tables[i], &msg).await?;
                    }
                }
                finish_if_done(ctx).await?;
                continue;
            }
            _ = &mut flush_timer => {
                // The interval elapsed: write the committed transactions held.
                flush(ctx, &mut tables, &mut batch, &mut saved).await?;
                batch.opened = Instant::now();
                count_binlog_bytes(ctx, reader.as_ref(), &mut bytes_counted);
                ctx.status.publish_lag(ctx.name());
                if reached(&saved, until) {
                    return Ok(Ended::Reached);
                }
                continue;
            }
            _ = tick.tick() => {
                if last_heard.elapsed() >= STALL_AFTER {
                    return Err(SourceError::Stalled(format!(
                        "no binlog event or heartbeat for {} s (the server sends a heartbeat every {} s when idle): \
                         the connection is stalled",
                        last_heard.elapsed().as_secs(),
                        SERVER_HEARTBEAT.as_secs()
                    ))
                    .into());
                }
                ctx.status.publish_lag(ctx.name());
                continue;
            }
            event = reader.next() => event,
            // Nothing to read right now (`next` is cancel-safe: dropping it loses nothing).
            _ = std::future::ready(()), if !caught_up => {
                caught_up = true;
                continue;
            }
        };
        last_heard = Instant::now();
        caught_up = false;
        ctx.status.heard();
        match event {
            // Table-level decode problems arrive as `TableError` events; an error here ends the stream.
            Err(e) => return Err(e.into()),
            Ok(None) => return Err(SourceError::Stalled("the source closed the binlog stream".into()).into()),
            Ok(Some(BinlogEvent::Rows { table, mut changes })) => {
                if tables[table].state == TableState::Error {
                    continue;
                }
                clock.stamp(ctx, &mut changes).await?;
                let outgrown = batch.add_rows(table, changes, max_rows * LARGE_TXN_FACTOR, max_bytes);
                if outgrown || !held.try_grow(batch.held_bytes()) {
                    // Larger than a batch may be, or no room left in the process's budget:
                    // the committed transactions go out first (with their checkpoint).
                    flush(ctx, &mut tables, &mut batch, &mut saved).await?;
                    held.shrink_to(batch.held_bytes());
                    // Room may come back as other holders write; waiting is bounded because
                    // they may be waiting too (then the open part goes out instead).
                    if !outgrown && tokio::time::timeout(BUDGET_WAIT, held.grow(batch.held_bytes())).await.is_ok() {
                        continue;
                    }
                    // Then this part of the open transaction, with the checkpoint still
                    // before the transaction.
                    let (mut part, n, first) = batch.take_open_part();
                    if first {
                        let msg = format!(
                            "a transaction of more than {} changes or {} MiB (or more than the process's memory \
                             budget has room for) is written in parts before its commit (readers may see part of it \
                             until its commit is applied)",
                            max_rows * LARGE_TXN_FACTOR,
                            max_bytes >> 20
                        );
                        warn!(pipe = ctx.name(), "{msg}");
                        ctx.catalog.note(ctx.name(), &msg).await?;
                        metrics::counter!("sluice_large_transactions_split_total", "pipe" => ctx.name().to_string()).increment(1);
                    }
                    write_rows(ctx, &mut tables, &mut part).await?;
                    ctx.status.changes_applied.fetch_add(n, Ordering::Relaxed);
                    failpoint!("cdc-mid-large-transaction");
                }
            }
            Ok(Some(BinlogEvent::Commit { checkpoint, timestamp })) => {
                batch.commit(checkpoint, timestamp);
                ctx.status.pending_since(batch.oldest_ts());
                if batch.flush_due(max_rows, max_bytes) {
                    flush(ctx, &mut tables, &mut batch, &mut saved).await?;
                    batch.opened = Instant::now();
                    count_binlog_bytes(ctx, reader.as_ref(), &mut bytes_counted);
                    if reached(&saved, until) {
                        return Ok(Ended::Reached);
                    }
                }
            }
            Ok(Some(BinlogEvent::Ddl { schema, query, checkpoint })) => {
                // Everything before the statement is written with the old definitions.
                flush(ctx, &mut tables, &mut batch, &mut saved).await?;
                if schema_change::follow(ctx, &schema, &query, &checkpoint).await? {
                    return Ok(Ended::TablesChanged);
                }
            }
            Ok(Some(BinlogEvent::TableError { table, message })) => {
                // The reader skips this table's rows from here on; drop what is held of it.
                batch.drop_table(table);
                table_error(ctx, &mut tables[table], &message).await?;
            }
            Ok(Some(BinlogEvent::Heartbeat { checkpoint: Some(cp) })) => batch.idle_position(cp, &saved),
            Ok(Some(BinlogEvent::Heartbeat { checkpoint: None })) => {}
        }
    }
}

/// Puts a table in `Error` with `msg` (history and log); the other tables go on.
async fn table_error(ctx: &PipeContext, table: &mut Applied, msg: &str) -> Result<(), EngineError> {
    stop_table(ctx, &table.mapping.destination, msg).await?;
    table.state = TableState::Error;
    Ok(())
}

/// Records that table `dest` stopped with `msg`: its state `Error` with the
/// reason, a history entry, the log and `sluice_errors_total{kind="table"}`.
/// The other tables of the pipe are not affected.
pub(crate) async fn stop_table(ctx: &PipeContext, dest: &str, msg: &str) -> Result<(), EngineError> {
    error!(pipe = ctx.name(), "table {dest}: {msg}");
    metrics::counter!("sluice_errors_total", "pipe" => ctx.name().to_string(), "kind" => "table").increment(1);
    retry(ctx, "recording a table error", || async {
        Ok(ctx.catalog.set_table_state(ctx.name(), dest, TableState::Error, Some(msg)).await?)
    })
    .await?;
    retry(ctx, "recording a table error", || async { Ok(ctx.catalog.note(ctx.name(), &format!("table {dest} stopped: {msg}")).await?) })
        .await?;
    if let Ok(all) = ctx.catalog.tables(ctx.name()).await {
        publish_tables_in_error(ctx, &all);
    }
    Ok(())
}

/// Sets `sluice_tables_in_error{pipe}`: how many of the pipe's tables are in
/// `Error` (a pipe that is `Running` with such a table is degraded).
fn publish_tables_in_error(ctx: &PipeContext, tables: &[TableRecord]) {
    let n = tables.iter().filter(|t| t.state == TableState::Error).count();
    metrics::gauge!("sluice_tables_in_error", "pipe" => ctx.name().to_string()).set(n as f64);
}

/// Adds the binlog bytes received since the last call to the pipe's counter.
fn count_binlog_bytes(ctx: &PipeContext, reader: &dyn ChangeStream, counted: &mut u64) {
    let read = reader.bytes_read();
    metrics::counter!("sluice_binlog_bytes_total", "pipe" => ctx.name().to_string()).increment(read - *counted);
    *counted = read;
}

/// Writes the rows held per table (emptying `rows`). A table whose write fails
/// with a table-level error goes to `Error` and its rows are dropped; the other
/// tables are written.
async fn write_rows(ctx: &PipeContext, tables: &mut [Applied], rows: &mut [Vec<RowChange>]) -> Result<(), EngineError> {
    for (i, held) in rows.iter_mut().enumerate() {
        if held.is_empty() {
            continue;
        }
        let t = &tables[i];
        if t.state == TableState::Error {
            held.clear();
            continue;
        }
        let changes: &[RowChange] = held;
        let written =
            retry(ctx, "writing changes to ClickHouse", || async { Ok(ctx.sink.write(&t.mapping, &t.target, changes).await?) }).await;
        match written {
            Ok(_) => {
                metrics::counter!("sluice_cdc_changes_total", "pipe" => ctx.name().to_string(), "table" => t.mapping.destination.clone())
                    .increment(changes.len() as u64);
                let deletes = changes.iter().filter(|c| c.op == sluice_core::ChangeOp::Delete).count() as u64;
                ctx.status.count_table(&t.mapping.destination, changes.len() as u64 - deletes, deletes);
            }
            Err(e) if e.severity() == Severity::Table => {
                let msg = format!("writing changes to ClickHouse failed: {e}; resync the table");
                table_error(ctx, &mut tables[i], &msg).await?;
            }
            Err(e) => return Err(e),
        }
        held.clear();
    }
    Ok(())
}

/// Writes every committed change held, then makes the last commit position durable.
async fn flush(ctx: &PipeContext, tables: &mut [Applied], batch: &mut Batch, saved: &mut Checkpoint) -> Result<(), EngineError> {
    let Some(mut committed) = batch.take_committed(Instant::now()) else { return Ok(()) };
    let n = committed.count;
    let started = Instant::now();
    write_rows(ctx, tables, &mut committed.rows).await?;
    if n > 0 {
        let pipe = ctx.name().to_string();
        metrics::histogram!("sluice_cdc_batch_rows", "pipe" => pipe.clone()).record(n as f64);
        metrics::histogram!("sluice_cdc_batch_duration_seconds", "pipe" => pipe).record(started.elapsed().as_secs_f64());
        ctx.status.changes_applied.fetch_add(n, Ordering::Relaxed);
        ctx.status.batches.fetch_add(1, Ordering::Relaxed);
        ctx.status.batch_ms.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    failpoint!("cdc-after-write-before-checkpoint");
    let commit = committed.checkpoint;
    if &commit != saved {
        retry(ctx, "saving the checkpoint", || async { Ok(ctx.catalog.save_checkpoint(ctx.name(), &commit).await?) }).await?;
        if n > 0 {
            tracing::debug!(pipe = ctx.name(), "applied {n} changes; checkpoint {}", commit.position);
        }
        *saved = commit;
    }
    ctx.status.pending_since(None);
    Ok(())
}
