//! Repair: re-copies the rows of a range that differ from the source into
//! the live destination table, as snapshot chunks are written (`write_into`),
//! with versions reserved from the pipe's version clock; a row that is no
//! longer at the source gets a delete marker carrying its destination values.

use crate::rows::{dest_rows, diff, source_rows};
use crate::run::{Table as VerifiedTable, Verifier as VerifierRef};
use crate::{DiffKind, VerifyError};
use mysql_async::Conn;
use sluice_core::{ChangeOp, RowChange};
use sluice_source::snapshot::Partition;

/// Repairs `part` of `tab`; returns the rows written.
pub(crate) async fn range(v: &VerifierRef, c: &mut Conn, tab: &VerifiedTable, part: &Partition) -> Result<u64, VerifyError> {
    let ctx = v.repair_ctx(tab);
    let src = {
        let mut pace = v.pace().await;
        source_rows(c, &ctx.spec.source, ctx.mapping, part, &mut pace).await?
    };
    let dst = dest_rows(ctx.sink, ctx.mapping, ctx.key, part).await?;
    let mut changes: Vec<RowChange> = diff(ctx.mapping, &src, &dst)
        .into_iter()
        .filter_map(|d| match d.kind {
            DiffKind::Missing | DiffKind::Differs => src.get(&d.key).map(|cells| (ChangeOp::Upsert, cells.clone())),
            DiffKind::Extra => dst.get(&d.key).map(|cells| (ChangeOp::Delete, cells.clone())),
        })
        .map(|(op, cells)| RowChange { op, version: 0, cells })
        .collect();
    if changes.is_empty() {
        return Ok(0);
    }
    let first = ctx.catalog.reserve_versions(ctx.pipe, changes.len() as i64, sluice_engine::versions::floor()).await?;
    for (ch, v) in changes.iter_mut().zip(first..) {
        ch.version = v;
    }
    ctx.sink.write_into(ctx.mapping, &ctx.mapping.destination, &changes).await?;
    Ok(changes.len() as u64)
}
