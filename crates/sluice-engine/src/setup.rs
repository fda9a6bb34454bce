//! Setup: validate the source, record table schemas, create destination
//! tables, and record where CDC will start.

use crate::retry::retry;
use crate::{EngineError, PipeContext};
use sluice_core::{Checkpoint, PipeAction, PipeState};
use sluice_source::{checks, conn};
use tracing::info;

pub async fn run(ctx: &PipeContext) -> Result<(), EngineError> {
    let spec = &ctx.spec;
    let mut src = retry(ctx, "connecting to the source", || async { Ok(conn::connect(&spec.source).await?) }).await?;
    let info = conn::server_info(&mut src).await?;
    info!(pipe = ctx.name(), "source is {} (GTID {})", info.version, if info.gtid_mode { "on" } else { "off" });
    checks::require(&mut src, &info, spec.source.replication_mechanism).await?;

    let mappings = crate::modify::describe_tables(&mut src, &spec.tables).await?;

    retry(ctx, "connecting to ClickHouse", || async { Ok(ctx.sink.ping().await?) }).await?;
    ctx.sink.ensure_database().await?;
    for m in &mappings {
        ctx.sink.create_table(m).await?;
        info!(pipe = ctx.name(), "destination table {} ready for {}", ctx.sink.qualified(&m.destination), m.source.id);
    }

    // P0: every change after this position is replayed by CDC, so a snapshot
    // read after this point converges whatever it saw.
    let (position, gtid_set) = conn::current_position(&mut src, &info).await?;
    let snapshot_version = crate::versions::floor();
    let start = Checkpoint { position, gtid_set };
    ctx.catalog.record_setup(ctx.name(), &mappings, &start, snapshot_version).await?;
    info!(pipe = ctx.name(), "CDC will start at {} (gtid {})", start.position, start.gtid_set.as_deref().unwrap_or("-"));
    let _ = src.disconnect().await;

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
