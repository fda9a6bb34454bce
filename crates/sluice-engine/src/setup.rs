//! Setup: validate the source, record table schemas, create destination
//! tables, and record where CDC will start.

use crate::retry::retry;
use crate::{EngineError, PipeContext};
use sluice_core::types::TableMapping;
use sluice_core::{Checkpoint, PipeAction, PipeState};
use sluice_source::{checks, conn, discovery, SourceError};
use tracing::info;

pub async fn run(ctx: &PipeContext) -> Result<(), EngineError> {
    let spec = &ctx.spec;
    let mut src = retry(ctx, "connecting to the source", || async { Ok(conn::connect(&spec.source).await?) }).await?;
    let info = conn::server_info(&mut src).await?;
    info!(pipe = ctx.name(), "source is {} (GTID {})", info.version, if info.gtid_mode { "on" } else { "off" });
    checks::require(&mut src, &info).await?;

    let tables = discovery::expand(&mut src, &spec.tables).await?;
    let mut mappings = Vec::with_capacity(tables.len());
    for (id, dest) in tables {
        let table = discovery::describe(&mut src, &id).await?;
        if table.primary_key.is_empty() {
            return Err(SourceError::Config(format!(
                "table {id} has no primary key and no unique key on NOT NULL columns: ReplacingMergeTree needs a key \
                 to collapse updates and deletes; add a primary key or leave the table out of the pipe"
            ))
            .into());
        }
        mappings.push(TableMapping::new(table, dest));
    }

    retry(ctx, "connecting to ClickHouse", || async { Ok(ctx.sink.ping().await?) }).await?;
    ctx.sink.ensure_database().await?;
    for m in &mappings {
        ctx.sink.create_table(m).await?;
        info!(pipe = ctx.name(), "destination table {} ready for {}", ctx.sink.qualified(&m.destination), m.source.id);
    }

    // P0: every change after this position is replayed by CDC, so a snapshot
    // read after this point converges whatever it saw.
    let (position, gtid_set) = conn::current_position(&mut src, &info).await?;
    let snapshot_version = position.snapshot_version().map_err(|e| EngineError::Spec(e.to_string()))?;
    let start = Checkpoint { position, gtid_set };
    ctx.catalog.record_setup(ctx.name(), &mappings, &start, snapshot_version).await?;
    info!(pipe = ctx.name(), "CDC will start at {} (gtid {})", start.position, start.gtid_set.as_deref().unwrap_or("-"));
    let _ = src.disconnect().await;

    if spec.mode.snapshots() {
        ctx.transition(PipeAction::SetupDone, PipeState::Snapshot, &format!("{} table(s) set up; snapshot consistent from {}", mappings.len(), start.position)).await
    } else {
        ctx.transition(PipeAction::SetupDone, PipeState::Running, "cdc_only pipe: no snapshot").await
    }
}
