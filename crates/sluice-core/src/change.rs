//! Row changes: the unit the source hands to the sink.

use crate::value::Cell;

/// What a row change does to its destination row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    /// The row now has these values (inserts, updates, snapshot rows).
    Upsert,
    /// The row with this key no longer exists (`_peerdb_is_deleted = 1`).
    Delete,
}

/// One row change for one table, with its `_peerdb_version`.
///
/// `cells` are in the table's mapped column order (see `types::ColumnMapping`).
/// An update that changes the primary key arrives as a `Delete` of the old key
/// followed by an `Upsert` of the new one, with increasing versions.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    pub op: ChangeOp,
    pub version: i64,
    pub cells: Vec<Cell>,
}
