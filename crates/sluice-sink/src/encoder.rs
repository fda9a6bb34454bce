//! Rows encoded as they are read. A snapshot chunk goes from the source
//! reader straight into its destination's encoding (ClickHouse: RowBinary
//! blocks of about `SEND_CHUNK` bytes: the mapped columns, then
//! `_peerdb_synced_at`, `_peerdb_is_deleted`, `_peerdb_version`), so the chunk
//! is held once, as it is sent, and a retried insert sends the same blocks
//! without encoding them again.

use crate::{rowbinary, SinkError, SEND_CHUNK};
use bytes::Bytes;
use sluice_core::change::cells_size;
use sluice_core::types::TableMapping;
use sluice_core::{Cell, ChangeOp, RowChange, RowRejected, RowSink};

/// Rows a destination's encoder made, for `Destination::write_rows`.
pub struct Encoded {
    rows: u64,
    held: u64,
    pub(crate) body: Body,
}

pub(crate) enum Body {
    /// RowBinary blocks, sent in order as one INSERT's body.
    Blocks(Vec<Bytes>),
    /// Upserts kept as changes (the trait's default encoder).
    Changes(Vec<RowChange>),
}

impl Encoded {
    /// Rows encoded.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes held in memory for them.
    pub fn held(&self) -> u64 {
        self.held
    }
}

/// An encoder of one table's rows as upserts with one version (see
/// `Destination::encoder`); `finish` hands over what it made.
pub trait RowEncoder: RowSink {
    fn finish(self: Box<Self>) -> Encoded;
}

/// The default encoder: keeps each row as an upsert change, for destinations
/// that take changes as they are (`Destination::write`).
pub struct ChangesEncoder {
    version: i64,
    changes: Vec<RowChange>,
    held: u64,
}

impl ChangesEncoder {
    pub fn new(version: i64) -> Self {
        Self { version, changes: Vec::new(), held: 0 }
    }
}

impl RowSink for ChangesEncoder {
    fn push(&mut self, cells: &mut Vec<Cell>) -> Result<(), RowRejected> {
        let cells = std::mem::take(cells);
        self.held += std::mem::size_of::<RowChange>() as u64 + cells_size(&cells);
        self.changes.push(RowChange { op: ChangeOp::Upsert, version: self.version, cells });
        Ok(())
    }

    fn rows(&self) -> u64 {
        self.changes.len() as u64
    }

    fn held(&self) -> u64 {
        self.held
    }
}

impl RowEncoder for ChangesEncoder {
    fn finish(self: Box<Self>) -> Encoded {
        Encoded { rows: self.changes.len() as u64, held: self.held, body: Body::Changes(self.changes) }
    }
}

/// ClickHouse's encoder: RowBinary blocks. `_peerdb_synced_at` is the moment
/// the encoder was made (when the chunk's read began).
pub struct RowBinaryEncoder {
    mapping: TableMapping,
    version: i64,
    synced_at: i64,
    blocks: Vec<Bytes>,
    block: Vec<u8>,
    /// Memory of the finished blocks (their capacity).
    full: u64,
    rows: u64,
}

impl RowBinaryEncoder {
    pub fn new(mapping: &TableMapping, version: i64) -> Self {
        Self { mapping: mapping.clone(), version, synced_at: crate::now_nanos(), blocks: Vec::new(), block: new_block(), full: 0, rows: 0 }
    }
}

/// A block with room for `SEND_CHUNK` bytes and the row that overflows it.
pub(crate) fn new_block() -> Vec<u8> {
    Vec::with_capacity(SEND_CHUNK + SEND_CHUNK / 4)
}

impl RowSink for RowBinaryEncoder {
    fn push(&mut self, cells: &mut Vec<Cell>) -> Result<(), RowRejected> {
        if self.block.len() >= SEND_CHUNK {
            let full = std::mem::replace(&mut self.block, new_block());
            self.full += full.capacity() as u64;
            self.blocks.push(Bytes::from(full));
        }
        let start = self.block.len();
        encode_row(&self.mapping, cells, false, self.version, self.synced_at, &mut self.block).map_err(|e| {
            self.block.truncate(start);
            RowRejected(e.to_string())
        })?;
        self.rows += 1;
        Ok(())
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    /// The finished blocks' memory and the bytes encoded into the open one:
    /// the open block's unused room (at most `SEND_CHUNK` and a quarter) is
    /// a fixed overhead of each chunk being read, as an insert's block is, so
    /// that an empty chunk holds nothing and a small one little.
    fn held(&self) -> u64 {
        self.full + self.block.len() as u64
    }
}

impl RowEncoder for RowBinaryEncoder {
    fn finish(mut self: Box<Self>) -> Encoded {
        let held = self.held();
        if !self.block.is_empty() {
            let last = std::mem::take(&mut self.block);
            self.blocks.push(Bytes::from(last));
        }
        Encoded { rows: self.rows, held, body: Body::Blocks(std::mem::take(&mut self.blocks)) }
    }
}

/// Appends one row as RowBinary: `cells` (of `mapping`'s columns, in order),
/// then `_peerdb_synced_at`, `_peerdb_is_deleted`, `_peerdb_version`.
pub(crate) fn encode_row(
    mapping: &TableMapping,
    cells: &[Cell],
    delete: bool,
    version: i64,
    synced_at: i64,
    out: &mut Vec<u8>,
) -> Result<(), SinkError> {
    for (col, cell) in mapping.columns.iter().zip(cells) {
        rowbinary::encode(out, &col.ch_type, cell).map_err(|source| SinkError::Encode {
            table: mapping.destination.clone(),
            column: col.name.clone(),
            source,
        })?;
    }
    out.extend_from_slice(&synced_at.to_le_bytes());
    out.push(u8::from(delete));
    out.extend_from_slice(&version.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClickHouseSink;
    use sluice_core::schema::{SourceColumn, SourceTable, TableId};

    fn mapping() -> TableMapping {
        let cols = vec![SourceColumn::new("id", "bigint", "bigint", false), SourceColumn::new("v", "longblob", "longblob", false)];
        let t = SourceTable { id: TableId::new("s", "t"), columns: cols, primary_key: vec!["id".into()], charset: None };
        TableMapping::new(t, "t".into())
    }

    fn row(id: i64, len: usize) -> Vec<Cell> {
        vec![Cell::Int(id), Cell::Bytes(vec![id as u8; len])]
    }

    /// The encoding with its `_peerdb_synced_at` bytes (8 before the last 9 of each row) zeroed.
    fn without_synced_at(mut body: Vec<u8>, row_lens: &[usize]) -> Vec<u8> {
        let mut end = 0;
        for len in row_lens {
            end += len;
            body[end - 17..end - 9].fill(0);
        }
        body
    }

    #[test]
    fn rowbinary_encoder_matches_encode_in_blocks() {
        let m = mapping();
        let rows: Vec<Vec<Cell>> = (0..40).map(|i| row(i, 100_000)).collect();
        let mut enc = Box::new(RowBinaryEncoder::new(&m, 7));
        for r in &rows {
            enc.push(&mut r.clone()).unwrap();
        }
        assert_eq!(enc.rows(), 40);
        let held = enc.held();
        let out = enc.finish();
        assert_eq!((out.rows(), out.held()), (40, held));
        let Body::Blocks(blocks) = &out.body else { panic!("RowBinary blocks") };
        // 4 MB of values: blocks of about SEND_CHUNK, each a whole number of rows.
        assert!(blocks.len() >= 3, "{} blocks", blocks.len());
        assert!(blocks[..blocks.len() - 1].iter().all(|b| b.len() >= SEND_CHUNK && b.len() < SEND_CHUNK + 200_000));
        let sent: Vec<u8> = blocks.iter().flat_map(|b| b.iter().copied()).collect();
        assert!(held >= sent.len() as u64, "held {held} < {} encoded", sent.len());
        let changes: Vec<RowChange> = rows.into_iter().map(|cells| RowChange { op: ChangeOp::Upsert, version: 7, cells }).collect();
        let mut expected = Vec::new();
        ClickHouseSink::encode(&m, &changes, &mut expected).unwrap();
        let lens = vec![expected.len() / 40; 40];
        assert_eq!(without_synced_at(sent, &lens), without_synced_at(expected, &lens));
    }

    #[test]
    fn a_small_chunk_holds_little() {
        // A reader stops once the sink holds its reservation: an empty encoder must hold nothing
        // (a chunk of a table without a key reads while the sink holds less than the reservation).
        let mut enc = Box::new(RowBinaryEncoder::new(&mapping(), 1));
        assert_eq!(enc.held(), 0);
        enc.push(&mut row(1, 100)).unwrap();
        assert_eq!(enc.held(), 8 + 1 + 100 + 8 + 1 + 8);
    }

    #[test]
    fn a_value_the_column_cannot_hold_is_refused_naming_it() {
        let mut enc = Box::new(RowBinaryEncoder::new(&mapping(), 1));
        enc.push(&mut row(1, 3)).unwrap();
        let err = enc.push(&mut vec![Cell::Int(2), Cell::Null]).unwrap_err();
        assert_eq!(err.0, "cannot encode a row for t.v: NULL for non-nullable column of type String");
        assert_eq!(enc.rows(), 1);
        let Body::Blocks(blocks) = enc.finish().body else { panic!("RowBinary blocks") };
        let one_row: usize = blocks.iter().map(|b| b.len()).sum();
        assert_eq!(one_row, 8 + 1 + 3 + 8 + 1 + 8, "the refused row left nothing behind");
    }

    #[test]
    fn the_default_encoder_keeps_upserts() {
        let mut enc = Box::new(ChangesEncoder::new(3));
        enc.push(&mut row(1, 10)).unwrap();
        let out = enc.finish();
        assert_eq!(out.rows(), 1);
        assert!(out.held() > 10);
        let Body::Changes(c) = out.body else { panic!("changes") };
        assert_eq!(c, vec![RowChange { op: ChangeOp::Upsert, version: 3, cells: row(1, 10) }]);
    }
}
