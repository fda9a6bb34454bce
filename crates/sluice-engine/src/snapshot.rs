//! Snapshot: copy every table chunk by chunk, resumable after a crash.

use crate::retry::retry;
use crate::{EngineError, PipeContext};
use sluice_core::{ChangeOp, PipeAction, PipeState, RowChange};
use sluice_source::conn;
use sluice_source::snapshot::TableReader;
use std::time::Instant;
use tracing::info;

pub async fn run(ctx: &PipeContext) -> Result<(), EngineError> {
    let spec = &ctx.spec;
    let stored = ctx.catalog.checkpoint(ctx.name()).await?.ok_or_else(|| EngineError::Spec("snapshot without a recorded start position".into()))?;
    let version = stored.snapshot_version;
    let chunk_rows = spec.settings.snapshot_rows_per_chunk;
    for table in ctx.catalog.tables(ctx.name()).await? {
        if table.snapshot_done {
            continue;
        }
        let dest = table.mapping.destination.clone();
        let reader = TableReader::new(table.mapping.source.clone())?;
        let mut src = retry(ctx, "connecting to the source", || async { Ok(conn::connect(&spec.source).await?) }).await?;
        if table.rows_estimated == 0 {
            let est = reader.estimated_rows(&mut src).await?;
            ctx.catalog.set_rows_estimated(ctx.name(), &dest, est).await?;
        }
        let mut last_key = table.last_key.clone();
        let mut copied = table.rows_copied;
        let started = Instant::now();
        info!(pipe = ctx.name(), "snapshot of {} → {} {}", reader.table().id, dest, if last_key.is_some() { "resuming after the last acknowledged key" } else { "starting" });
        loop {
            if ctx.cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            let chunk = retry(ctx, "reading a snapshot chunk", || {
                let key = last_key.clone();
                let reader = &reader;
                let spec = &ctx.spec;
                async move {
                    let mut c = conn::connect(&spec.source).await?;
                    let chunk = reader.read_chunk(&mut c, key.as_ref(), chunk_rows).await?;
                    let _ = c.disconnect().await;
                    Ok(chunk)
                }
            })
            .await?;
            let n = chunk.rows.len() as u64;
            let changes: Vec<RowChange> =
                chunk.rows.into_iter().map(|cells| RowChange { op: ChangeOp::Upsert, version, cells }).collect();
            retry(ctx, "writing snapshot rows to ClickHouse", || async { Ok(ctx.sink.write(&table.mapping, &changes).await?) }).await?;
            copied += n;
            let done = n < chunk_rows;
            if chunk.last_key.is_some() {
                last_key = chunk.last_key;
            }
            ctx.catalog.record_snapshot_progress(ctx.name(), &dest, last_key.as_ref(), copied, done).await?;
            if done {
                break;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        info!(pipe = ctx.name(), "snapshot of {} done: {copied} rows in {secs:.1}s", dest);
        let _ = src.disconnect().await;
    }
    if spec.mode.streams() {
        ctx.transition(PipeAction::SnapshotDone, PipeState::Running, "snapshot complete; CDC starts from the snapshot's start position").await
    } else {
        ctx.transition(PipeAction::SnapshotDone, PipeState::Completed, "snapshot_only pipe: snapshot complete").await
    }
}
