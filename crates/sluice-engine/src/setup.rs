//! Setup: validate the source, record table schemas, create destination
//! tables, and record where CDC will start.

use crate::retry::retry;
use crate::{EngineError, PipeContext};
use sluice_core::{PipeAction, PipeState};
use tracing::info;

pub async fn run(ctx: &PipeContext) -> Result<(), EngineError> {
    let spec = &ctx.spec;
    let server = retry(ctx, "checking the source", || async { Ok(ctx.source.check().await?) }).await?;
    info!(pipe = ctx.name(), "source is {server}");

    let described =
        retry(ctx, "reading the source tables", || async { crate::modify::describe_tables(ctx.source.as_ref(), &spec.tables).await })
            .await?;
    // A table a wildcard matched that cannot be replicated as configured is left
    // out, and said so in the pipe's history (and the log): never a failure.
    for msg in &described.skipped {
        ctx.catalog.note(ctx.name(), msg).await?;
    }
    let mappings = described.mappings;

    retry(ctx, "connecting to ClickHouse", || async { Ok(ctx.sink.ping().await?) }).await?;
    ctx.sink.ensure_database().await?;
    for m in &mappings {
        ctx.sink.create_table(m).await?;
        info!(pipe = ctx.name(), "destination table {} ready for {}", ctx.sink.qualified(&m.destination), m.source.id);
    }

    // P0: every change after this position is replayed by CDC, so a snapshot
    // read after this point converges whatever it saw.
    let start = retry(ctx, "reading the source's binlog position", || async { Ok(ctx.source.position().await?) }).await?;
    let snapshot_version = crate::versions::floor();
    ctx.catalog.record_setup(ctx.name(), &mappings, &start, snapshot_version).await?;
    info!(pipe = ctx.name(), "CDC will start at {} (gtid {})", start.position, start.gtid_set.as_deref().unwrap_or("-"));

    if spec.mode.snapshots() {
        ctx.transition(
            PipeAction::SetupDone,
            PipeState::Snapshot,
            &format!("{} table(s) set up; snapshot consistent from {}", mappings.len(), start.position),
        )
        .await
    } else {
        ctx.transition(PipeAction::SetupDone, PipeState::Running, "cdc_only pipe: no snapshot").await
    }
}
