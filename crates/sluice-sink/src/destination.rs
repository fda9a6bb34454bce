//! The destination seam: what the engine needs from the database it copies
//! into, with its contract, and its ClickHouse implementation.
//!
//! The engine only ever talks to a `Destination`; ClickHouse-only notions
//! (the `_peerdb_version`/`_peerdb_is_deleted` columns, `ReplacingMergeTree`,
//! the `<table>_resync` copy and its `EXCHANGE TABLES` swap) stay behind
//! `ClickHouseSink`. Tests run the engine against an in-memory destination
//! that keeps the same contract.

use crate::encoder::{Body, ChangesEncoder, Encoded, RowBinaryEncoder, RowEncoder};
use crate::{ClickHouseSink, SinkError};
use async_trait::async_trait;
use sluice_core::schema::AlterOp;
use sluice_core::types::TableMapping;
use sluice_core::RowChange;

/// A destination database, as the engine uses it.
///
/// **Rows.** A destination table holds, per key of its mapping, the change
/// with the highest version written to it: an `Upsert` is the row, a `Delete`
/// means no row. Readers of the final view (ClickHouse: `FINAL` with
/// `_peerdb_is_deleted = 0`) see exactly that. So writes are idempotent and
/// commutative per key: writing a change again, or an older one after a newer
/// one, changes nothing. This is what makes at-least-once delivery safe: the
/// engine replays after a crash with higher versions.
///
/// **Acknowledged.** `write` returning `Ok` means every change of the call is
/// durable and visible to readers. An `Err` means nothing about the call's
/// rows: any subset may have been written (a later replay repairs it). Calls
/// are not atomic with each other; the engine only makes a checkpoint durable
/// after every write before it was acknowledged.
///
/// **Errors** carry their `Severity` (`SinkError::severity`): transient ones
/// are retried by the engine, table-level ones stop that table only.
///
/// **Schema.** Every statement is idempotent: a crash may repeat it.
#[async_trait]
pub trait Destination: Send + Sync {
    /// Checks the destination answers and the credentials work.
    async fn ping(&self) -> Result<(), SinkError>;

    /// Creates the database the tables live in, if missing.
    async fn ensure_database(&self) -> Result<(), SinkError>;

    /// Whether `table` exists.
    async fn table_exists(&self, table: &str) -> Result<bool, SinkError>;

    /// Creates `mapping.destination` with the mapping's columns if it does not
    /// exist; an existing table is kept as it is (with its rows).
    async fn create_table(&self, mapping: &TableMapping) -> Result<(), SinkError>;

    /// Drops `table` if it exists.
    async fn drop_table(&self, table: &str) -> Result<(), SinkError>;

    /// Writes `changes` (each with its version) into `table`, which has
    /// `mapping`'s columns: the mapping's destination or its re-copy table.
    /// `Ok` is the acknowledgement (see the trait's contract); returns a
    /// size written (bytes or rows) for metrics.
    async fn write(&self, mapping: &TableMapping, table: &str, changes: &[RowChange]) -> Result<usize, SinkError>;

    /// An encoder of `mapping`'s rows as upserts with `version`, for
    /// `write_rows`: a reader gives it each row as it is read, so the rows are
    /// held once, in the destination's own form. The default keeps them as
    /// changes, for `write`.
    fn encoder(&self, mapping: &TableMapping, version: i64) -> Box<dyn RowEncoder> {
        let _ = mapping;
        Box::new(ChangesEncoder::new(version))
    }

    /// Writes the rows one of this destination's encoders made into `table`
    /// (which has `mapping`'s columns), as `write` does, with the same
    /// acknowledgement; after an error the same rows may be written again.
    async fn write_rows(&self, mapping: &TableMapping, table: &str, rows: &Encoded) -> Result<usize, SinkError> {
        match &rows.body {
            Body::Changes(changes) => self.write(mapping, table, changes).await,
            Body::Blocks(_) => Err(SinkError::Config("rows encoded by another destination's encoder".into())),
        }
    }

    /// Follows a source schema change: `table` has `old`'s columns and gets
    /// `new`'s by replaying `ops`. A replay after a crash finds it done.
    async fn alter(&self, table: &str, old: &TableMapping, new: &TableMapping, ops: &[AlterOp]) -> Result<(), SinkError>;

    /// Removes every row of `table` (a source `TRUNCATE`); nothing if it is missing.
    async fn truncate(&self, table: &str) -> Result<(), SinkError>;

    /// Removes from `table` (which has `mapping`'s columns) every row written
    /// with `version`, a copy's snapshot version: what an interrupted copy of a
    /// table without a key wrote, since such a copy starts again from its first
    /// row. When it returns, readers no longer see those rows. Nothing to do
    /// when there are none (or the table stores nothing).
    async fn discard_copy(&self, mapping: &TableMapping, table: &str, version: i64) -> Result<(), SinkError>;

    /// The table a re-copy of `destination` is written into while
    /// `destination` keeps serving its rows (ClickHouse: `<table>_resync`).
    fn recopy_table(&self, destination: &str) -> String;

    /// Starts a re-copy of `mapping`'s table: `recopy_table` created afresh
    /// (empty, with `mapping`'s columns) and marked with `version`, the copy's
    /// snapshot version.
    async fn begin_recopy(&self, mapping: &TableMapping, version: i64) -> Result<(), SinkError>;

    /// Puts the finished re-copy marked `version` in place of `destination`
    /// atomically (readers see the old rows or the new ones, never neither
    /// nor a mix) and drops the old rows. Idempotent: after a crash, a second
    /// call finds the swap done (by the mark) and only cleans up.
    async fn finish_recopy(&self, destination: &str, version: i64) -> Result<(), SinkError>;

    /// `table` as statements and logs name it (e.g. `` `db`.`t` ``).
    fn qualified(&self, table: &str) -> String;
}

/// The table comment that marks a re-copy made with `version` (see `finish_recopy`).
pub fn recopy_marker(version: i64) -> String {
    format!("sluice resync {version}")
}

#[async_trait]
impl Destination for ClickHouseSink {
    async fn ping(&self) -> Result<(), SinkError> {
        ClickHouseSink::ping(self).await
    }

    async fn ensure_database(&self) -> Result<(), SinkError> {
        ClickHouseSink::ensure_database(self).await
    }

    async fn table_exists(&self, table: &str) -> Result<bool, SinkError> {
        ClickHouseSink::table_exists(self, table).await
    }

    async fn create_table(&self, mapping: &TableMapping) -> Result<(), SinkError> {
        ClickHouseSink::create_table(self, mapping).await
    }

    async fn drop_table(&self, table: &str) -> Result<(), SinkError> {
        ClickHouseSink::drop_table(self, table).await
    }

    async fn write(&self, mapping: &TableMapping, table: &str, changes: &[RowChange]) -> Result<usize, SinkError> {
        self.write_into(mapping, table, changes).await
    }

    fn encoder(&self, mapping: &TableMapping, version: i64) -> Box<dyn RowEncoder> {
        Box::new(RowBinaryEncoder::new(mapping, version))
    }

    async fn write_rows(&self, mapping: &TableMapping, table: &str, rows: &Encoded) -> Result<usize, SinkError> {
        match &rows.body {
            Body::Blocks(blocks) if blocks.is_empty() => Ok(0),
            Body::Blocks(blocks) => self.send_blocks(mapping, table, blocks.iter().cloned()).await,
            Body::Changes(changes) => self.write_into(mapping, table, changes).await,
        }
    }

    async fn alter(&self, table: &str, old: &TableMapping, new: &TableMapping, ops: &[AlterOp]) -> Result<(), SinkError> {
        ClickHouseSink::alter(self, table, old, new, ops).await
    }

    async fn truncate(&self, table: &str) -> Result<(), SinkError> {
        ClickHouseSink::truncate(self, table).await
    }

    async fn discard_copy(&self, mapping: &TableMapping, table: &str, version: i64) -> Result<(), SinkError> {
        ClickHouseSink::discard_version(self, mapping, table, version).await
    }

    fn recopy_table(&self, destination: &str) -> String {
        sluice_core::state::resync_table_name(destination)
    }

    async fn begin_recopy(&self, mapping: &TableMapping, version: i64) -> Result<(), SinkError> {
        self.create_resync_table(mapping, &self.recopy_table(&mapping.destination), &recopy_marker(version)).await
    }

    async fn finish_recopy(&self, destination: &str, version: i64) -> Result<(), SinkError> {
        self.swap_in(destination, &self.recopy_table(destination), &recopy_marker(version)).await
    }

    fn qualified(&self, table: &str) -> String {
        ClickHouseSink::qualified(self, table)
    }
}
