//! Snapshot: copy tables in parallel partitions, resumable after a crash.
//!
//! `run` is the initial snapshot of a pipe (state `Snapshot`, before CDC),
//! `parallel_tables` tables at a time; `copy_table` is also used by CDC to
//! copy tables added to a live pipe or resynced into `<table>_resync` while
//! changes keep flowing. A table is split into partitions of about
//! `rows_per_partition` rows (ranges of its first primary-key column when it
//! is an integer; otherwise one partition read by one reader), recorded in the
//! catalog; `parallel_partitions` of them are read at once, each as a task of
//! its own with its own source connection, in keyset-paged chunks. Each
//! partition records its last acknowledged key, so a failed partition is
//! retried alone and a restart resumes the unfinished partitions only.
//! Memory is bounded in bytes: each chunk reserves its size from the
//! process's budget (`memory`) before it is read — `ChunkSizer` turns the
//! rows read so far into a row limit and a byte reservation, at most the
//! budget's `chunk_allowance` — and the reader stops at that many bytes; the
//! reservation is returned once the chunk is written. The reader hands each
//! row, as it is decoded, to the destination's encoder, so a chunk is held
//! once, encoded as it is sent (and resent, after a failed insert).
//!
//! A table without a key (stored by `merge_tree` or `null`) is one partition
//! read as one stream, which cannot resume: an interrupted copy (an error, a
//! restart) discards the rows it wrote (by its version) and starts over.

use crate::retry::retry;
use crate::{failpoint, EngineError, PipeContext};
use futures_util::stream::{self, TryStreamExt};
use sluice_catalog::{PartitionRecord, TableRecord};
use sluice_core::types::TableMapping;
use sluice_core::{PipeAction, PipeState, Severity, TableState};
use sluice_sink::Encoded;
use sluice_source::snapshot::Partition;
use sluice_source::CopyReader;
use std::time::Instant;
use tokio::task::JoinSet;
use tracing::info;

pub async fn run(ctx: &PipeContext) -> Result<(), EngineError> {
    let spec = &ctx.spec;
    let stored =
        ctx.catalog.checkpoint(ctx.name()).await?.ok_or_else(|| EngineError::Spec("snapshot without a recorded start position".into()))?;
    let todo: Vec<TableRecord> = ctx
        .catalog
        .tables(ctx.name())
        .await?
        .into_iter()
        .filter(|t| !t.snapshot_done && matches!(t.state, TableState::Setup | TableState::Snapshot))
        .collect();
    let parallel = ctx.current_settings().parallel_tables.max(1) as usize;
    stream::iter(todo.iter().map(Ok))
        .try_for_each_concurrent(parallel, |table| async move {
            match copy_table(ctx, table, &table.mapping.destination, stored.snapshot_version).await {
                // One table's rows cannot be read or written: that table stops, the others are copied.
                Err(e) if e.severity() == Severity::Table => {
                    let msg = format!("copying {} failed: {e}; resync the table", table.mapping.source.id);
                    crate::cdc::stop_table(ctx, &table.mapping.destination, &msg).await
                }
                other => other.map(|_| ()),
            }
        })
        .await?;
    if spec.mode.streams() {
        crate::cdc::promote_snapshotted(ctx).await?;
        return ctx
            .transition(PipeAction::SnapshotDone, PipeState::Running, "snapshot complete; CDC starts from the snapshot's start position")
            .await;
    }
    // Chunks were read at different moments: the copy equals the source as of
    // one position only once the changes made while it ran are applied. Catch
    // up from the start position to where the source stands now.
    let target = retry(ctx, "reading the source's binlog position", || async { Ok(ctx.source.position().await?.position) }).await?;
    info!(pipe = ctx.name(), "snapshot_only pipe: copy done; applying the changes made during the copy, up to {target}");
    crate::cdc::catch_up(ctx, &target).await?;
    if ctx.cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    ctx.transition(
        PipeAction::SnapshotDone,
        PipeState::Completed,
        &format!("snapshot_only pipe: snapshot complete, consistent as of {target}"),
    )
    .await
}

/// Copies one source table into ClickHouse table `target` with `version`,
/// continuing its unfinished partitions; marks the table copied at the end.
/// Returns the rows copied in total.
pub async fn copy_table(ctx: &PipeContext, table: &TableRecord, target: &str, version: i64) -> Result<u64, EngineError> {
    let dest = table.mapping.destination.clone();
    let id = &table.mapping.source.id;
    let settings = ctx.current_settings();
    let mut parts = ctx.catalog.partitions(ctx.name(), &dest).await?;
    if parts.is_empty() {
        let (est, plan) = retry(ctx, "planning snapshot partitions", || async {
            Ok(ctx.source.plan_copy(&table.mapping, settings.rows_per_partition).await?)
        })
        .await?;
        ctx.catalog.set_rows_estimated(ctx.name(), &dest, est).await?;
        let ranges = plan.unwrap_or_else(|| {
            if table.mapping.keyless() {
                info!(pipe = ctx.name(), "{}: no key; copied by one reader as one stream", id);
            } else {
                info!(pipe = ctx.name(), "{}: the first paging column is not an integer, date/datetime/timestamp or whole-value-indexed string column; copied by one reader", id);
            }
            vec![Partition::WHOLE]
        });
        let ranges: Vec<_> = ranges.into_iter().map(|p| (p.lo, p.hi)).collect();
        ctx.catalog.record_partitions(ctx.name(), &dest, &ranges).await?;
        parts = ctx.catalog.partitions(ctx.name(), &dest).await?;
    }
    let total = parts.len() as u32;
    let done = parts.iter().filter(|p| p.done).count();
    let parallel = settings.parallel_partitions.max(1) as usize;
    let started = Instant::now();
    info!(
        pipe = ctx.name(),
        "copying {} → {target}: {total} partition(s), {done} done{}, {parallel} at a time",
        id,
        if done > 0 || parts.iter().any(|p| p.last_key.is_some()) { ", resuming after the last acknowledged keys" } else { "" }
    );
    let mut pending = parts.into_iter().filter(|p| !p.done);
    let mut running = JoinSet::new();
    loop {
        while running.len() < parallel {
            let Some(part) = pending.next() else { break };
            let job = PartitionJob {
                ctx: ctx.clone(),
                reader: tokio::sync::Mutex::new(ctx.source.copy_reader(&table.mapping)?),
                mapping: table.mapping.clone(),
                target: target.to_string(),
                version,
                total,
            };
            running.spawn(job.run(part));
        }
        match running.join_next().await {
            None => break,
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(e))) => return Err(e),
            Some(Err(e)) => return Err(EngineError::Spec(format!("a snapshot partition task of {dest} ended abnormally: {e}"))),
        }
    }
    let copied = ctx.catalog.mark_copied(ctx.name(), &dest).await?;
    info!(pipe = ctx.name(), "copy of {id} → {target} done: {copied} rows in {:.1}s", started.elapsed().as_secs_f64());
    Ok(copied)
}

/// One partition's copy, run as a task of its own.
///
/// A keyless table's copy (`copy_keyless`) is one attempt from the first row;
/// its progress records rows copied, never a key to resume after.
struct PartitionJob {
    ctx: PipeContext,
    /// Behind a lock only so that the retried read can borrow it; one task uses it.
    reader: tokio::sync::Mutex<Box<dyn CopyReader>>,
    mapping: TableMapping,
    target: String,
    version: i64,
    total: u32,
}

impl PartitionJob {
    async fn run(self, part: PartitionRecord) -> Result<(), EngineError> {
        if self.mapping.keyless() && self.mapping.partition_key.is_none() {
            let ctx = &self.ctx;
            retry(ctx, "copying a table without a key (from its first row)", || self.copy_keyless(&part)).await?;
            self.reader.lock().await.close().await;
            return Ok(());
        }
        let ctx = &self.ctx;
        let dest = &self.mapping.destination;
        let range = Partition { lo: part.lo.clone(), hi: part.hi.clone() };
        let budget = crate::memory::global();
        let mut sizer = ChunkSizer::new(budget.chunk_allowance());
        let (mut last_key, mut copied) = (part.last_key.clone(), part.rows_copied);
        info!(pipe = ctx.name(), "copying partition {}/{} of {dest}", part.idx + 1, self.total);
        loop {
            if ctx.cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            let (limit, bytes) = sizer.next(ctx.current_settings().snapshot_rows_per_chunk);
            let mut held = budget.reserve(bytes).await;
            let max_bytes = held.bytes();
            let (end, rows) = retry(ctx, "reading a snapshot chunk", || {
                let (key, range, reader, mapping) = (last_key.clone(), &range, &self.reader, &self.mapping);
                async move {
                    // A fresh encoder each attempt: a failed read leaves an unknown part of the chunk in it.
                    let mut encoder = ctx.sink.encoder(mapping, self.version);
                    let end = reader.lock().await.read_chunk(range, key.as_ref(), limit, max_bytes, encoder.as_mut()).await?;
                    Ok((end, encoder.finish()))
                }
            })
            .await?;
            sizer.observe(rows.rows(), rows.held());
            held.settle(rows.held());
            let done = end.done;
            let n = self.write_chunk(&rows).await?;
            drop(held);
            copied += n;
            if end.last_key.is_some() {
                last_key = end.last_key;
            }
            failpoint!("snapshot-after-chunk-before-progress");
            ctx.catalog.record_partition_progress(ctx.name(), dest, part.idx, last_key.as_ref(), copied, done).await?;
            if done {
                info!(pipe = ctx.name(), "partition {}/{} of {dest} done ({copied} rows)", part.idx + 1, self.total);
                self.reader.lock().await.close().await;
                return Ok(());
            }
        }
    }
}

impl PartitionJob {
    /// Writes one chunk's rows, encoded as upserts with this copy's version
    /// (retrying transient failures), and counts them; returns how many rows it held.
    async fn write_chunk(&self, rows: &Encoded) -> Result<u64, EngineError> {
        let ctx = &self.ctx;
        let n = rows.rows();
        if n == 0 {
            return Ok(0);
        }
        retry(ctx, "writing snapshot rows to ClickHouse", || async { Ok(ctx.sink.write_rows(&self.mapping, &self.target, rows).await?) })
            .await?;
        let labels = [("pipe", ctx.name().to_string()), ("table", self.mapping.destination.clone())];
        metrics::counter!("sluice_snapshot_rows_total", &labels).increment(n);
        Ok(n)
    }

    /// One attempt at copying a table without a key: the rows an earlier,
    /// interrupted attempt wrote with this copy's version are discarded, then
    /// the table is read as one stream from its first row. Any error ends the
    /// attempt (the stream cannot be continued); the caller starts another.
    async fn copy_keyless(&self, part: &PartitionRecord) -> Result<(), EngineError> {
        let ctx = &self.ctx;
        let dest = &self.mapping.destination;
        retry(ctx, "discarding the rows of an interrupted copy", || async {
            Ok(ctx.sink.discard_copy(&self.mapping, &self.target, self.version).await?)
        })
        .await?;
        ctx.catalog.record_partition_progress(ctx.name(), dest, part.idx, None, 0, false).await?;
        let budget = crate::memory::global();
        let mut sizer = ChunkSizer::new(budget.chunk_allowance());
        info!(pipe = ctx.name(), "copying {dest} (no key: one stream, from its first row)");
        let (mut after, mut copied) = (None, 0u64);
        loop {
            if ctx.cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            let (limit, bytes) = sizer.next(ctx.current_settings().snapshot_rows_per_chunk);
            let mut held = budget.reserve(bytes).await;
            let mut encoder = ctx.sink.encoder(&self.mapping, self.version);
            let end = self.reader.lock().await.read_chunk(&Partition::WHOLE, after.as_ref(), limit, held.bytes(), encoder.as_mut()).await?;
            let rows = encoder.finish();
            sizer.observe(rows.rows(), rows.held());
            held.settle(rows.held());
            let done = end.done;
            let n = self.write_chunk(&rows).await?;
            drop(held);
            copied += n;
            after = end.last_key;
            failpoint!("snapshot-after-chunk-before-progress");
            ctx.catalog.record_partition_progress(ctx.name(), dest, part.idx, None, copied, done).await?;
            if done {
                info!(pipe = ctx.name(), "copy of {dest} done ({copied} rows)");
                return Ok(());
            }
        }
    }
}

/// Sizes a reader's next chunk from the rows it read so far: a row limit (at
/// most `snapshot_rows_per_chunk`) and the bytes to reserve for it (at most
/// the budget's chunk allowance). The first chunk of a reader is small
/// (`FIRST_CHUNK_ROWS`) and reserves the whole allowance, since nothing is
/// known of the rows yet; later ones expect rows a quarter larger than the
/// average seen, so that a chunk is rarely cut short by the reservation.
pub(crate) struct ChunkSizer {
    allowance: u64,
    /// Bytes per row expected (`None`: nothing read yet).
    row_bytes: Option<u64>,
}

/// Rows of a reader's first chunk, before anything is known of their size.
const FIRST_CHUNK_ROWS: u64 = 64;

impl ChunkSizer {
    pub(crate) fn new(allowance: u64) -> Self {
        Self { allowance: allowance.max(1), row_bytes: None }
    }

    /// `(row limit, bytes to reserve)` for the next chunk.
    pub(crate) fn next(&self, max_rows: u64) -> (u64, u64) {
        let max_rows = max_rows.max(1);
        match self.row_bytes {
            None => (max_rows.min(FIRST_CHUNK_ROWS), self.allowance),
            Some(b) => {
                let rows = (self.allowance / b).clamp(1, max_rows);
                (rows, (rows * b).min(self.allowance).max(b.min(self.allowance)))
            }
        }
    }

    /// Learns from a chunk of `n` rows that held `bytes`.
    pub(crate) fn observe(&mut self, n: u64, bytes: u64) {
        if n > 0 {
            let avg = bytes.div_ceil(n);
            self.row_bytes = Some((avg + avg / 4).max(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shows `s` a chunk of `rows` rows of one `row_bytes` value each.
    fn observe(s: &mut ChunkSizer, rows: u64, row_bytes: u64) {
        s.observe(rows, rows * (row_bytes + 32));
    }

    #[test]
    fn chunk_sizer_bounds_chunks_in_bytes() {
        let mut s = ChunkSizer::new(16 << 20);
        // Nothing known: a small first chunk, the whole allowance reserved.
        assert_eq!(s.next(25_000), (FIRST_CHUNK_ROWS, 16 << 20));
        // Small rows: the row setting decides, the reservation covers them with a margin.
        observe(&mut s, 64, 100);
        let (rows, bytes) = s.next(25_000);
        assert_eq!(rows, 25_000);
        assert!((25_000 * 132..=25_000 * 200).contains(&bytes), "{bytes}");
        // 2 MiB rows: a handful per chunk, within the allowance.
        observe(&mut s, 3, 2 << 20);
        let (rows, bytes) = s.next(25_000);
        assert_eq!(rows, 6);
        assert!((6 * (2 << 20)..=16 << 20).contains(&bytes), "{bytes}");
        // A row larger than the allowance: one row at a time, reserving the allowance.
        observe(&mut s, 1, 40 << 20);
        assert_eq!(s.next(25_000), (1, 16 << 20));
        // An empty chunk teaches nothing.
        observe(&mut s, 0, 0);
        assert_eq!(s.next(25_000), (1, 16 << 20));
    }
}
