//! CDC: follow the binlog from the checkpoint and apply changes in batches.
//!
//! A batch collects whole transactions until `sync_interval_ms` has passed or
//! `pull_batch_size` changes are held; it is then written table by table and
//! only afterwards is the position after its last transaction made durable. A
//! transaction larger than `LARGE_TXN_FACTOR × pull_batch_size` changes is
//! written in parts before its commit (memory stays bounded); its checkpoint
//! still only moves at the commit, and a replay writes it again with higher
//! versions (`versions`).
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

use crate::retry::retry;
use crate::modify::resync_marker;
use crate::schema_change;
use crate::snapshot::copy_table;
use crate::{EngineError, PipeContext};
use futures_util::stream::{FuturesUnordered, StreamExt};
use sluice_catalog::TableRecord;
use sluice_core::state::resync_table_name;
use sluice_core::types::TableMapping;
use sluice_core::{Checkpoint, PipeAction, PipeState, RowChange, TableState};
use crate::versions::VersionClock;
use sluice_source::binlog::{self, BinlogEvent, BinlogReader, ResumeBy};
use sluice_source::{conn, SourceError};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

const LARGE_TXN_FACTOR: u64 = 4;
/// No event (not even a heartbeat, sent every 5 s when idle) for this long means the connection is dead.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

struct Batch {
    rows: Vec<Vec<RowChange>>,
    count: u64,
    /// Position after the last complete transaction in the batch.
    commit: Option<Checkpoint>,
    /// Source commit time (epoch seconds) of that transaction.
    commit_ts: u32,
    /// Rows of an uncommitted transaction are held.
    in_txn: bool,
    opened: Instant,
}

impl Batch {
    fn new(tables: usize) -> Self {
        Self { rows: vec![Vec::new(); tables], count: 0, commit: None, commit_ts: 0, in_txn: false, opened: Instant::now() }
    }
}

/// Why a stream ended without an error.
enum Ended {
    Cancelled,
    /// The tracked tables changed (a DDL): read them again and go on.
    TablesChanged,
}

/// Runs CDC until cancelled (`Ok`) or a permanent error.
pub async fn run(ctx: &PipeContext) -> Result<(), EngineError> {
    let mut delay = Duration::from_millis(250);
    loop {
        match stream_once(ctx).await {
            Ok(Ended::Cancelled) => return Ok(()),
            Ok(Ended::TablesChanged) => delay = Duration::from_millis(250),
            Err(e) if e.is_transient() => {
                let msg = format!("binlog stream interrupted: {e}; resuming from the last checkpoint in {:.1}s", delay.as_secs_f64());
                metrics::counter!("sluice_errors_total", "pipe" => ctx.name().to_string(), "kind" => "binlog_stream").increment(1);
                warn!(pipe = ctx.name(), "{msg}");
                ctx.catalog.set_error(ctx.name(), Some(&msg)).await?;
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
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
    let marker = resync_marker(rec.snapshot_version.unwrap_or_default());
    ctx.catalog.set_table_state(ctx.name(), dest, TableState::Swapping, None).await?;
    retry(ctx, "swapping in the resynced table", || async { Ok(ctx.sink.swap_in(dest, &resync_table_name(dest), &marker).await?) }).await?;
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
        Some(PipeState::Snapshot) => ctx.transition(PipeAction::SnapshotDone, PipeState::Running, "added tables copied; CDC applies them").await,
        Some(PipeState::Resync) => ctx.transition(PipeAction::Finished, PipeState::Running, "resync complete").await,
        _ => Ok(()),
    }
}

async fn stream_once(ctx: &PipeContext) -> Result<Ended, EngineError> {
    let spec = &ctx.spec;
    // A resync whose copy finished before a restart: swap it in before streaming.
    for rec in ctx.catalog.tables(ctx.name()).await? {
        if rec.state == TableState::Swapping || (rec.state == TableState::Resync && rec.snapshot_done) {
            swap_in(ctx, &rec).await?;
        }
    }
    finish_if_done(ctx).await?;
    let stored = ctx
        .catalog
        .checkpoint(ctx.name())
        .await?
        .ok_or_else(|| EngineError::Spec("CDC without a recorded start position".into()))?;
    let start = stored.checkpoint;
    let records: Vec<TableRecord> = ctx.catalog.tables(ctx.name()).await?.into_iter().filter(|t| t.state != TableState::Error).collect();
    let mut tables: Vec<Applied> = records
        .iter()
        .map(|r| Applied {
            mapping: r.mapping.clone(),
            state: r.state,
            target: if r.state == TableState::Resync { resync_table_name(&r.mapping.destination) } else { r.mapping.destination.clone() },
        })
        .collect();
    let mut c = conn::connect(&spec.source).await?;
    let info = conn::server_info(&mut c).await?;
    let by = binlog::resume_by(spec.source.replication_mechanism, &info, &start)?;
    let mut clock = VersionClock::start(ctx, &mut c).await?;
    let replica_name = format!("sluice:{}", ctx.name());
    let tracked = tables.iter().map(|t| t.mapping.clone()).collect();
    let mut reader = BinlogReader::start(c, info.flavor, spec.server_id(), &replica_name, &start, by, tracked).await?;
    let _heartbeat = crate::heartbeat::start(ctx);
    match by {
        ResumeBy::FilePos => info!(pipe = ctx.name(), "CDC reading the binlog from {}", start.position),
        ResumeBy::Gtid => info!(
            pipe = ctx.name(),
            "CDC reading the binlog after GTID set {} (checkpoint {})",
            start.gtid_set.as_deref().unwrap_or(""),
            start.position
        ),
    }
    ctx.catalog.set_error(ctx.name(), None).await?;

    // Copies of added and resynced tables, running alongside the stream.
    let mut copies = FuturesUnordered::new();
    for (i, rec) in records.iter().enumerate() {
        if rec.state.copies_alongside_cdc() && !rec.snapshot_done {
            let target = tables[i].target.clone();
            let version = rec.snapshot_version.unwrap_or(stored.snapshot_version);
            copies.push(async move { (i, copy_table(ctx, rec, &target, version).await) });
        }
    }

    let mut batch = Batch::new(tables.len());
    let mut saved = start.clone();
    let mut bytes_counted = 0u64;
    loop {
        // Settings may change while the pipe runs; they apply from the next batch on.
        let settings = ctx.current_settings();
        let interval = Duration::from_millis(settings.sync_interval_ms);
        let max_rows = settings.pull_batch_size;
        let deadline = batch.opened + interval;
        let next = tokio::select! {
            _ = ctx.cancel.cancelled() => {
                flush(ctx, &tables, &mut batch, &mut saved).await?;
                return Ok(Ended::Cancelled);
            }
            Some((i, copied)) = copies.next(), if !copies.is_empty() => {
                // Everything the stream holds goes out first, so that a swapped-in copy
                // has every change up to here.
                flush(ctx, &tables, &mut batch, &mut saved).await?;
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
                        error!(pipe = ctx.name(), "{msg}");
                        ctx.catalog.set_table_state(ctx.name(), dest, TableState::Error, Some(&msg)).await?;
                        ctx.catalog.note(ctx.name(), &msg).await?;
                        tables[i].state = TableState::Error;
                    }
                }
                finish_if_done(ctx).await?;
                continue;
            }
            r = tokio::time::timeout_at(deadline.into(), tokio::time::timeout(READ_TIMEOUT, reader.next())) => r,
        };
        match next {
            // Interval elapsed with no event: write what is complete.
            Err(_) => {
                let idle = batch.count == 0;
                flush(ctx, &tables, &mut batch, &mut saved).await?;
                if idle && !batch.in_txn {
                    ctx.status.lag_ms.store(0, Ordering::Relaxed);
                    metrics::gauge!("sluice_replication_lag_seconds", "pipe" => ctx.name().to_string()).set(0.0);
                }
                count_binlog_bytes(ctx, &reader, &mut bytes_counted);
                batch.opened = Instant::now();
            }
            Ok(Err(_)) => {
                return Err(SourceError::Mysql(mysql_async::Error::Other("no binlog event or heartbeat for 30 s".into())).into())
            }
            Ok(Ok(event)) => match event? {
                None => return Err(SourceError::Mysql(mysql_async::Error::Other("the source closed the binlog stream".into())).into()),
                Some(BinlogEvent::Rows { table, mut changes }) => {
                    if tables[table].state == TableState::Error {
                        continue;
                    }
                    clock.stamp(ctx, &mut changes).await?;
                    batch.in_txn = true;
                    batch.count += changes.len() as u64;
                    batch.rows[table].extend(changes);
                    if batch.count >= max_rows * LARGE_TXN_FACTOR {
                        // A very large transaction: write what we hold, keep the checkpoint where it is.
                        write_rows(ctx, &tables, &mut batch).await?;
                    }
                }
                Some(BinlogEvent::Commit { checkpoint, timestamp }) => {
                    batch.in_txn = false;
                    batch.commit = Some(checkpoint);
                    batch.commit_ts = timestamp;
                    if batch.count >= max_rows || batch.opened.elapsed() >= interval {
                        flush(ctx, &tables, &mut batch, &mut saved).await?;
                        batch.opened = Instant::now();
                        count_binlog_bytes(ctx, &reader, &mut bytes_counted);
                    }
                }
                Some(BinlogEvent::Ddl { schema, query, checkpoint }) => {
                    // Everything before the statement is written with the old definitions.
                    flush(ctx, &tables, &mut batch, &mut saved).await?;
                    if schema_change::follow(ctx, &schema, &query, &checkpoint).await? {
                        return Ok(Ended::TablesChanged);
                    }
                }
                Some(BinlogEvent::Heartbeat { checkpoint: Some(cp) }) => {
                    // Idle source: nothing held, so the server's position is a safe checkpoint. The
                    // stream only moves forward: another file is a later one (file numbers are not
                    // compared: after a fail-over they are the new server's).
                    let newest = &batch.commit.as_ref().unwrap_or(&saved).position;
                    let ahead = cp.position.file != newest.file || cp.position.pos > newest.pos;
                    if !batch.in_txn && batch.count == 0 && ahead {
                        batch.commit = Some(cp);
                    }
                }
                Some(BinlogEvent::Heartbeat { checkpoint: None }) => {}
                Some(BinlogEvent::TableError { .. }) => {}
            },
        }
    }
}

/// Adds the binlog bytes received since the last call to the pipe's counter.
fn count_binlog_bytes(ctx: &PipeContext, reader: &BinlogReader, counted: &mut u64) {
    let read = reader.bytes_read();
    metrics::counter!("sluice_binlog_bytes_total", "pipe" => ctx.name().to_string()).increment(read - *counted);
    *counted = read;
}

async fn write_rows(ctx: &PipeContext, tables: &[Applied], batch: &mut Batch) -> Result<(), EngineError> {
    for (i, rows) in batch.rows.iter_mut().enumerate() {
        if rows.is_empty() {
            continue;
        }
        let t = &tables[i];
        let changes: &[RowChange] = rows;
        retry(ctx, "writing changes to ClickHouse", || async { Ok(ctx.sink.write_into(&t.mapping, &t.target, changes).await?) }).await?;
        metrics::counter!("sluice_cdc_changes_total", "pipe" => ctx.name().to_string(), "table" => t.mapping.destination.clone())
            .increment(changes.len() as u64);
        rows.clear();
    }
    batch.count = 0;
    Ok(())
}

/// Writes every held change, then makes the last commit position durable.
async fn flush(ctx: &PipeContext, tables: &[Applied], batch: &mut Batch, saved: &mut Checkpoint) -> Result<(), EngineError> {
    let Some(commit) = batch.commit.take() else { return Ok(()) };
    let n = batch.count;
    let started = Instant::now();
    write_rows(ctx, tables, batch).await?;
    if n > 0 {
        let pipe = ctx.name().to_string();
        metrics::histogram!("sluice_cdc_batch_rows", "pipe" => pipe.clone()).record(n as f64);
        metrics::histogram!("sluice_cdc_batch_duration_seconds", "pipe" => pipe).record(started.elapsed().as_secs_f64());
    }
    if n > 0 {
        ctx.status.changes_applied.fetch_add(n, Ordering::Relaxed);
        ctx.status.batches.fetch_add(1, Ordering::Relaxed);
    }
    if batch.commit_ts > 0 {
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let lag_ms = (now_ms - batch.commit_ts as i64 * 1000).max(0);
        ctx.status.lag_ms.store(lag_ms, Ordering::Relaxed);
        metrics::gauge!("sluice_replication_lag_seconds", "pipe" => ctx.name().to_string()).set(lag_ms as f64 / 1000.0);
    }
    if &commit != saved {
        ctx.catalog.save_checkpoint(ctx.name(), &commit).await?;
        if n > 0 {
            tracing::debug!(pipe = ctx.name(), "applied {n} changes; checkpoint {}", commit.position);
        }
        *saved = commit;
    }
    Ok(())
}
