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

impl RowChange {
    /// Bytes this change holds in memory (its cells and its own fixed size):
    /// what the process's memory budget counts for it.
    pub fn heap_size(&self) -> u64 {
        std::mem::size_of::<RowChange>() as u64 + cells_size(&self.cells)
    }
}

/// Bytes a decoded row holds in memory: each cell's fixed size plus the
/// heap bytes of text, binary and decimal values.
pub fn cells_size(cells: &[Cell]) -> u64 {
    let heap: usize = cells
        .iter()
        .map(|c| match c {
            Cell::Bytes(b) => b.capacity(),
            Cell::Decimal(s) => s.capacity(),
            _ => 0,
        })
        .sum();
    (std::mem::size_of_val(cells) + heap) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_size_counts_values() {
        let small = RowChange { op: ChangeOp::Upsert, version: 1, cells: vec![Cell::Int(1), Cell::Null] };
        let big = RowChange { op: ChangeOp::Upsert, version: 1, cells: vec![Cell::Int(1), Cell::Bytes(vec![7; 1 << 20])] };
        assert!(small.heap_size() < 200, "{}", small.heap_size());
        assert!(big.heap_size() >= 1 << 20 && big.heap_size() < (1 << 20) + 200, "{}", big.heap_size());
    }
}
