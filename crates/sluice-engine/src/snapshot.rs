//! Snapshot: copy tables chunk by chunk, resumable after a crash.
//!
//! `run` is the initial snapshot of a pipe (state `Snapshot`, before CDC);
//! `copy_table` is also used by CDC to copy tables added to a live pipe or
//! resynced into `<table>_resync` while changes keep flowing.

use crate::retry::retry;
use crate::{EngineError, PipeContext};
use sluice_catalog::TableRecord;
use sluice_core::{ChangeOp, PipeAction, PipeState, RowChange, TableState};
use sluice_source::conn;
use sluice_source::snapshot::TableReader;
use std::time::Instant;
use tracing::info;

pub async fn run(ctx: &PipeContext) -> Result<(), EngineError> {
    let spec = &ctx.spec;
    let stored = ctx.catalog.checkpoint(ctx.name()).await?.ok_or_else(|| EngineError::Spec("snapshot without a recorded start position".into()))?;
    for table in ctx.catalog.tables(ctx.name()).await? {
        if table.snapshot_done || !matches!(table.state, TableState::Setup | TableState::Snapshot) {
            continue;
        }
        let dest = table.mapping.destination.clone();
        copy_table(ctx, &table, &dest, stored.snapshot_version).await?;
    }
    if spec.mode.streams() {
        ctx.transition(PipeAction::SnapshotDone, PipeState::Running, "snapshot complete; CDC starts from the snapshot's start position").await
    } else {
        ctx.transition(PipeAction::SnapshotDone, PipeState::Completed, "snapshot_only pipe: snapshot complete").await
    }
}

/// Copies one source table into ClickHouse table `target` with `version`,
/// continuing after the table's last acknowledged key; records progress after
/// every chunk ClickHouse acknowledged. Returns the rows copied in total.
pub async fn copy_table(ctx: &PipeContext, table: &TableRecord, target: &str, version: i64) -> Result<u64, EngineError> {
    let dest = &table.mapping.destination;
    let reader = TableReader::new(table.mapping.source.clone())?;
    if table.rows_estimated == 0 {
        let est = retry(ctx, "estimating the table size", || async {
            let mut c = conn::connect(&ctx.spec.source).await?;
            let est = reader.estimated_rows(&mut c).await?;
            let _ = c.disconnect().await;
            Ok(est)
        })
        .await?;
        ctx.catalog.set_rows_estimated(ctx.name(), dest, est).await?;
    }
    let chunk_rows = ctx.current_settings().snapshot_rows_per_chunk;
    let mut last_key = table.last_key.clone();
    let mut copied = table.rows_copied;
    let started = Instant::now();
    info!(pipe = ctx.name(), "copying {} → {target} {}", reader.table().id, if last_key.is_some() { "resuming after the last acknowledged key" } else { "from the start" });
    loop {
        if ctx.cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let chunk = retry(ctx, "reading a snapshot chunk", || {
            let key = last_key.clone();
            let reader = &reader;
            async move {
                let mut c = conn::connect(&ctx.spec.source).await?;
                let chunk = reader.read_chunk(&mut c, key.as_ref(), chunk_rows).await?;
                let _ = c.disconnect().await;
                Ok(chunk)
            }
        })
        .await?;
        let n = chunk.rows.len() as u64;
        let changes: Vec<RowChange> = chunk.rows.into_iter().map(|cells| RowChange { op: ChangeOp::Upsert, version, cells }).collect();
        retry(ctx, "writing snapshot rows to ClickHouse", || async { Ok(ctx.sink.write_into(&table.mapping, target, &changes).await?) }).await?;
        copied += n;
        let done = n < chunk_rows;
        if chunk.last_key.is_some() {
            last_key = chunk.last_key;
        }
        ctx.catalog.record_snapshot_progress(ctx.name(), dest, last_key.as_ref(), copied, done).await?;
        if done {
            break;
        }
    }
    info!(pipe = ctx.name(), "copy of {} → {target} done: {copied} rows in {:.1}s", reader.table().id, started.elapsed().as_secs_f64());
    Ok(copied)
}
