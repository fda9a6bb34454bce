//! Row sinks: where a reader puts the rows it reads, one at a time.
//!
//! A snapshot reader does not collect a chunk's rows before handing them on:
//! it gives each row, as soon as it is decoded, to a [`RowSink`]. The engine's
//! sink is the destination's encoder, so a chunk is held once, in the form it
//! is sent in (ClickHouse: RowBinary), never as decoded cells beside their
//! encoding; the verifier's is [`Rows`], which keeps the cells to compare them.

use crate::change::cells_size;
use crate::value::Cell;

/// Takes rows one at a time.
///
/// **Contract.** `push` is given one row: the cells of the mapping's columns,
/// in mapping order. The sink may take the cells' contents (move text and
/// binary values out); the caller clears the vector after the call and reuses
/// it. `held` is what the sink holds in memory now, in bytes, for the rows it
/// took: the caller's memory budget (a reader stops once a chunk holds its
/// reservation) is counted with it. An `Err` refuses the row (a value the
/// destination cannot hold, named in the message); the caller stops reading
/// and the rows taken so far must not be written as if they were the chunk.
pub trait RowSink: Send {
    fn push(&mut self, cells: &mut Vec<Cell>) -> Result<(), RowRejected>;

    /// Rows taken so far.
    fn rows(&self) -> u64;

    /// Bytes held in memory for the rows taken so far.
    fn held(&self) -> u64;
}

/// A row a sink refused, and why (the message names table and column).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct RowRejected(pub String);

/// The sink that keeps the rows as cells (the verifier compares them).
#[derive(Debug, Default)]
pub struct Rows {
    pub rows: Vec<Vec<Cell>>,
    bytes: u64,
}

impl Rows {
    pub fn into_rows(self) -> Vec<Vec<Cell>> {
        self.rows
    }
}

impl RowSink for Rows {
    fn push(&mut self, cells: &mut Vec<Cell>) -> Result<(), RowRejected> {
        let row = std::mem::take(cells);
        self.bytes += cells_size(&row);
        self.rows.push(row);
        Ok(())
    }

    fn rows(&self) -> u64 {
        self.rows.len() as u64
    }

    fn held(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keeps_cells_and_counts_their_bytes() {
        let mut sink = Rows::default();
        let mut row = vec![Cell::Int(1), Cell::Bytes(vec![0; 1000])];
        sink.push(&mut row).unwrap();
        assert!(row.is_empty(), "the cells were taken");
        assert_eq!(sink.rows(), 1);
        assert!(sink.held() >= 1000, "{}", sink.held());
        assert_eq!(sink.into_rows(), vec![vec![Cell::Int(1), Cell::Bytes(vec![0; 1000])]]);
    }
}
