//! Repair: re-copies the rows of a scope that differ from the source into
//! the live destination table, as snapshot chunks are written (`write_into`),
//! with versions reserved from the pipe's version clock; a row that is no
//! longer at the source gets a delete marker carrying its destination values.

use crate::range::Scope;
use crate::rows::diff;
use crate::run::{Table, Verifier};
use crate::{DiffKind, VerifyError};
use mysql_async::Conn;
use sluice_core::{ChangeOp, RowChange};

/// Repairs `scope` of `tab`; returns the rows written.
pub(crate) async fn scope(v: &Verifier, c: &mut Conn, tab: &Table, scope: &Scope) -> Result<u64, VerifyError> {
    let (src, dst) = v.rows(c, tab, scope, &tab.mapping).await?;
    let mut changes: Vec<RowChange> = diff(&tab.mapping, &src, &dst)
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
    let first = v.catalog().reserve_versions(v.pipe(), changes.len() as i64, sluice_engine::versions::floor()).await?;
    for (ch, version) in changes.iter_mut().zip(first..) {
        ch.version = version;
    }
    v.sink().write_into(&tab.mapping, &tab.mapping.destination, &changes).await?;
    Ok(changes.len() as u64)
}
