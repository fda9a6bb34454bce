//! The change-source seam: what the engine needs from a source database,
//! with its contract, and its MySQL/MariaDB implementation (`MySqlSource`).
//!
//! The engine only ever talks to a `ChangeSource`; connections, server
//! flavours, binlog positioning, request timeouts and the replica
//! registration stay behind `MySqlSource`. Tests run the engine against an
//! in-memory source that keeps the same contract.

use crate::binlog::{self, BinlogEvent, BinlogReader, ResumeBy};
use crate::conn::{self, SourceError};
use crate::snapshot::{ChunkEnd, Partition, TableReader};
use crate::{checks, discovery};
use async_trait::async_trait;
use mysql_async::prelude::*;
use mysql_async::Conn;
use sluice_core::schema::{SourceTable, TableId};
use sluice_core::types::TableMapping;
use sluice_core::{Checkpoint, PipeSpec, RowSink, TableSpec};

/// One table a pipe's table list names, described as it is now.
#[derive(Debug, Clone)]
pub struct DescribedTable {
    /// The entry of the list it came from (an index into the specs).
    pub index: usize,
    /// The entry names this table (not a `schema.*` pattern).
    pub named: bool,
    /// Its destination table name.
    pub destination: String,
    pub table: SourceTable,
}

/// A source database, as the engine uses it.
///
/// **Positions.** A `Checkpoint` names a point in the source's change log.
/// `position()` read at instant T is at or after every transaction committed
/// before T and before every transaction committed after T.
///
/// **Copies.** A copy reads the rows as they are while it runs (different
/// chunks at different moments). That is enough because every change after
/// the position read before the copy started is applied by the stream
/// afterwards, with higher versions.
///
/// **Stream.** `stream(from, tables)` hands on, in commit order, every change
/// to `tables` committed after `from`: the row changes of a transaction
/// (`Rows`, `table` = index into `tables`), then its `Commit` with the
/// checkpoint just after it. Statements on the tracked schemas arrive as `Ddl`
/// (followed by the `Commit` of their position). An idle source sends a
/// `Heartbeat` at least every `binlog::HEARTBEAT_PERIOD`; a stream that sends
/// nothing for longer is stalled. A table whose rows cannot be decoded is
/// reported once as `TableError` and skipped from then on; the others go on.
/// Delivery is at-least-once: a stream opened again from an older checkpoint
/// hands the same changes on again. `next` is cancel-safe (the engine
/// `select!`s on it).
///
/// **Errors** carry their `Severity` (`SourceError::severity`).
#[async_trait]
pub trait ChangeSource: Send + Sync {
    /// Pre-flight: the server can serve CDC to this pipe (binlog on, row
    /// format, full row images, GTIDs when asked for, privileges); an error
    /// names what to change. Returns a one-line description for the log.
    async fn check(&self) -> Result<String, SourceError>;

    /// The tables `specs` name (patterns expanded), each described as it is
    /// now and its options checked against its definition, in list order.
    async fn describe_tables(&self, specs: &[TableSpec]) -> Result<Vec<DescribedTable>, SourceError>;

    /// One table's definition as it is now.
    async fn describe(&self, id: &TableId) -> Result<SourceTable, SourceError>;

    /// A table's default character set as it is now (`None`: unknown). Only
    /// for definitions whose recorded one is unknown: recorded before table
    /// charsets were, or set to the database's (`CHARACTER SET DEFAULT`).
    async fn table_charset(&self, id: &TableId) -> Result<Option<String>, SourceError>;

    /// Where the change log stands now (see the trait's contract).
    async fn position(&self) -> Result<Checkpoint, SourceError>;

    /// Plans a copy of `table`: its estimated rows, and ranges of its key of
    /// about `rows_per_partition` rows (`None`: it is read as one range).
    async fn plan_copy(&self, table: &TableMapping, rows_per_partition: u64) -> Result<(u64, Option<Vec<Partition>>), SourceError>;

    /// A reader of one range of `table` at a time (its own connection).
    fn copy_reader(&self, table: &TableMapping) -> Result<Box<dyn CopyReader>, SourceError>;

    /// Opens the change stream just after `from` for `tables`.
    async fn stream(&self, from: &Checkpoint, tables: Vec<TableMapping>) -> Result<Box<dyn ChangeStream>, SourceError>;

    /// A writer of heartbeat rows into `table` (see `source.heartbeat_table`).
    fn heartbeat_writer(&self, table: TableId) -> Box<dyn HeartbeatWriter>;
}

/// Reads a copy's rows in chunks, in key order.
///
/// A table without a key (`TableMapping::keyless`) is read as one stream:
/// `after = None` starts it from the first row (dropping a stream already
/// open), and each later call continues it with the `last_key` the previous
/// chunk returned (a count of rows, not a key). After an error the stream is
/// gone: continuing it fails again (transient) until the copy starts over
/// from the first row (`after = None`).
/// Rows a keyless table's stream reads ahead of the copy.
const STREAM_AHEAD: usize = 64;

#[async_trait]
pub trait CopyReader: Send {
    /// Gives `sink` up to `limit` rows of `range` after key `after` (from the
    /// range's start when `None`), in key order, cells in the mapping's column
    /// order, and no more rows once the sink holds `max_bytes` (at least one
    /// row is read whatever its size). `ChunkEnd::done` says the range has no
    /// rows after the chunk's last one. After an error the sink holds an
    /// unknown part of the chunk (the caller starts it again on a fresh sink)
    /// and the reader can be used again (it reconnects).
    async fn read_chunk(
        &mut self,
        range: &Partition,
        after: Option<&serde_json::Value>,
        limit: u64,
        max_bytes: u64,
        sink: &mut dyn RowSink,
    ) -> Result<ChunkEnd, SourceError>;

    /// Releases the reader's connection.
    async fn close(&mut self);
}

/// A change stream (see `ChangeSource`'s contract).
#[async_trait]
pub trait ChangeStream: Send {
    /// The next event; `Ok(None)` when the source ended the stream. Cancel-safe.
    async fn next(&mut self) -> Result<Option<BinlogEvent>, SourceError>;

    /// Bytes received so far (metrics).
    fn bytes_read(&self) -> u64;
}

/// Writes heartbeat rows (see `source.heartbeat_table`).
#[async_trait]
pub trait HeartbeatWriter: Send {
    /// Upserts `(pipe, now)` into the table, creating it first if missing.
    async fn beat(&mut self, pipe: &str) -> Result<(), SourceError>;
}

/// A MySQL or MariaDB server, reached with a pipe's source settings. Every
/// request is bounded by `source.query_timeout_ms`.
#[derive(Clone)]
pub struct MySqlSource {
    spec: PipeSpec,
}

impl MySqlSource {
    pub fn new(spec: &PipeSpec) -> Self {
        Self { spec: spec.clone() }
    }

    async fn connect(&self) -> Result<Conn, SourceError> {
        conn::connect(&self.spec.source).await
    }

    async fn bounded<T>(&self, what: &str, fut: impl std::future::Future<Output = Result<T, SourceError>>) -> Result<T, SourceError> {
        conn::bounded(&self.spec.source, what, fut).await
    }
}

#[async_trait]
impl ChangeSource for MySqlSource {
    async fn check(&self) -> Result<String, SourceError> {
        let mut c = self.connect().await?;
        let checked = self
            .bounded("pre-flight checks", async {
                let info = conn::server_info(&mut c).await?;
                checks::require(&mut c, &info, self.spec.source.replication_mechanism).await?;
                Ok(format!("{} (GTID {})", info.version, if info.gtid_mode { "on" } else { "off" }))
            })
            .await;
        let _ = c.disconnect().await;
        checked
    }

    async fn describe_tables(&self, specs: &[TableSpec]) -> Result<Vec<DescribedTable>, SourceError> {
        let mut c = self.connect().await?;
        let mut out = Vec::new();
        for e in discovery::expand(&mut c, specs).await? {
            let id = e.id.clone();
            let table = discovery::describe(&mut c, &id).await.map_err(|err| err.in_table(&id))?;
            discovery::check_table_spec(&mut c, &table, &specs[e.index], &e).await.map_err(|err| err.in_table(&id))?;
            out.push(DescribedTable { index: e.index, named: e.named, destination: e.destination, table });
        }
        let _ = c.disconnect().await;
        Ok(out)
    }

    async fn describe(&self, id: &TableId) -> Result<SourceTable, SourceError> {
        let mut c = self.connect().await?;
        let t = self.bounded("describing a table", discovery::describe(&mut c, id)).await;
        let _ = c.disconnect().await;
        t
    }

    async fn table_charset(&self, id: &TableId) -> Result<Option<String>, SourceError> {
        let mut c = self.connect().await?;
        let cs = self.bounded("reading a table's charset", discovery::table_charset(&mut c, id)).await;
        let _ = c.disconnect().await;
        cs
    }

    async fn position(&self) -> Result<Checkpoint, SourceError> {
        let mut c = self.connect().await?;
        let read = self
            .bounded("reading the binlog position", async {
                let info = conn::server_info(&mut c).await?;
                conn::current_position(&mut c, &info).await
            })
            .await;
        let _ = c.disconnect().await;
        let (position, gtid_set) = read?;
        Ok(Checkpoint { position, gtid_set })
    }

    async fn plan_copy(&self, table: &TableMapping, rows_per_partition: u64) -> Result<(u64, Option<Vec<Partition>>), SourceError> {
        let reader = TableReader::new(table)?;
        let mut c = self.connect().await?;
        let est = self.bounded("the row estimate", reader.estimated_rows(&mut c)).await?;
        let plan = self.bounded("planning partitions", reader.plan_partitions(&mut c, est, rows_per_partition)).await?;
        let _ = c.disconnect().await;
        Ok((est, plan))
    }

    fn copy_reader(&self, table: &TableMapping) -> Result<Box<dyn CopyReader>, SourceError> {
        Ok(Box::new(MySqlCopyReader { source: self.clone(), reader: TableReader::new(table)?, conn: None, stream: None }))
    }

    async fn stream(&self, from: &Checkpoint, tables: Vec<TableMapping>) -> Result<Box<dyn ChangeStream>, SourceError> {
        let spec = &self.spec;
        let mut c = self.connect().await?;
        let info = self.bounded("reading the server's version", conn::server_info(&mut c)).await?;
        let by = binlog::resume_by(spec.source.replication_mechanism, &info, from)?;
        let replica_name = format!("sluice:{}", spec.name);
        let reader = self
            .bounded("opening the binlog stream", BinlogReader::start(c, info.flavor, spec.server_id(), &replica_name, from, by, tables))
            .await?;
        match by {
            ResumeBy::FilePos => tracing::info!(pipe = spec.name.as_str(), "CDC reading the binlog from {}", from.position),
            ResumeBy::Gtid => tracing::info!(
                pipe = spec.name.as_str(),
                "CDC reading the binlog after GTID set {} (checkpoint {})",
                from.gtid_set.as_deref().unwrap_or(""),
                from.position
            ),
        }
        Ok(Box::new(reader))
    }

    fn heartbeat_writer(&self, table: TableId) -> Box<dyn HeartbeatWriter> {
        let target = table.to_string();
        Box::new(MySqlHeartbeat { source: self.clone(), target, conn: None })
    }
}

/// `CopyReader` over one connection, opened on first use and again after a failure.
struct MySqlCopyReader {
    source: MySqlSource,
    reader: TableReader,
    conn: Option<Conn>,
    /// The open stream of a keyless table's copy.
    stream: Option<RowStream>,
}

/// The rows of one `SELECT`, read by a task of their own on their own
/// connection (a result being read borrows its connection, so it cannot wait
/// between two chunks in the reader), at most one chunk ahead of the copy.
struct RowStream {
    rows: tokio::sync::mpsc::Receiver<Result<mysql_async::Row, SourceError>>,
    task: tokio::task::JoinHandle<()>,
    /// Rows handed out so far.
    delivered: u64,
}

impl Drop for RowStream {
    fn drop(&mut self) {
        // Closes the connection, and with it the server's half-sent result.
        self.task.abort();
    }
}

impl MySqlCopyReader {
    /// The next chunk of a keyless table's stream (see `CopyReader`).
    async fn stream_chunk(
        &mut self,
        after: Option<&serde_json::Value>,
        limit: u64,
        max_bytes: u64,
        sink: &mut dyn RowSink,
    ) -> Result<ChunkEnd, SourceError> {
        let id = self.reader.table().id.clone();
        match after {
            None => {
                self.stream = None;
                let mut c = self.source.connect().await?;
                // The server waits for the copy to take each chunk while it writes the previous one.
                c.query_drop("SET SESSION net_write_timeout = 86400").await?;
                // A few rows ahead only: the rows in flight count against no budget.
                let (tx, rx) = tokio::sync::mpsc::channel(STREAM_AHEAD);
                let sql = self.reader.stream_sql();
                let task = tokio::spawn(async move {
                    let read = async {
                        let mut result = c.exec_iter(sql, ()).await?;
                        while let Some(row) = result.next().await? {
                            if tx.send(Ok(row)).await.is_err() {
                                return Ok(());
                            }
                        }
                        Ok::<_, SourceError>(())
                    };
                    if let Err(e) = read.await {
                        let _ = tx.send(Err(e)).await;
                    }
                });
                self.stream = Some(RowStream { rows: rx, task, delivered: 0 });
            }
            Some(k) => {
                let at = k.get("rows").and_then(|n| n.as_u64());
                if self.stream.as_ref().map(|s| s.delivered) != at || at.is_none() {
                    self.stream = None;
                    return Err(SourceError::Stalled(format!(
                        "the copy of {id} (a table without a key, read as one stream) was interrupted; it starts again from its first row"
                    )));
                }
            }
        }
        let spec = &self.source.spec.source;
        let stream = self.stream.as_mut().expect("opened or checked above");
        let (mut n, mut ended, mut cells) = (0u64, false, Vec::new());
        let read = conn::bounded(spec, "a snapshot chunk of a table without a key", async {
            while n < limit && sink.held() < max_bytes {
                match stream.rows.recv().await {
                    Some(Ok(row)) => {
                        self.reader.push_row(row, &mut cells, sink)?;
                        n += 1;
                    }
                    Some(Err(e)) => return Err(e),
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            Ok(())
        })
        .await;
        if let Err(e) = read {
            self.stream = None;
            return Err(e);
        }
        stream.delivered += n;
        let last_key = Some(serde_json::json!({"rows": stream.delivered}));
        if ended {
            self.stream = None;
        }
        Ok(ChunkEnd { last_key, done: ended, cut: false })
    }
}

#[async_trait]
impl CopyReader for MySqlCopyReader {
    async fn read_chunk(
        &mut self,
        range: &Partition,
        after: Option<&serde_json::Value>,
        limit: u64,
        max_bytes: u64,
        sink: &mut dyn RowSink,
    ) -> Result<ChunkEnd, SourceError> {
        if self.reader.keyless() {
            return self.stream_chunk(after, limit, max_bytes, sink).await;
        }
        if self.conn.is_none() {
            self.conn = Some(self.source.connect().await?);
        }
        let c = self.conn.as_mut().expect("connected above");
        let read = conn::bounded(
            &self.source.spec.source,
            "a snapshot chunk query",
            self.reader.read_partition_into(c, range, after, limit, max_bytes, sink),
        )
        .await;
        match &read {
            // Never reuse a connection a failed (or timed-out, half-read) request left
            // behind, nor one whose answer was cut short at `max_bytes` (its rest is
            // unread: dropping the connection discards it without holding it).
            Err(_) => self.conn = None,
            Ok(end) if end.cut => self.conn = None,
            Ok(_) => {}
        }
        read
    }

    async fn close(&mut self) {
        self.stream = None;
        if let Some(c) = self.conn.take() {
            let _ = c.disconnect().await;
        }
    }
}

#[async_trait]
impl ChangeStream for BinlogReader {
    async fn next(&mut self) -> Result<Option<BinlogEvent>, SourceError> {
        BinlogReader::next(self).await
    }

    fn bytes_read(&self) -> u64 {
        BinlogReader::bytes_read(self)
    }
}

/// Heartbeats over one connection, opened (and the table created) on first use and again after a failure.
struct MySqlHeartbeat {
    source: MySqlSource,
    target: String,
    conn: Option<Conn>,
}

#[async_trait]
impl HeartbeatWriter for MySqlHeartbeat {
    async fn beat(&mut self, pipe: &str) -> Result<(), SourceError> {
        // Disjoint borrows of the fields: nothing is copied per beat.
        let (spec, target, slot) = (&self.source.spec.source, &self.target, &mut self.conn);
        let written = conn::bounded(spec, "writing a heartbeat", async {
            if slot.is_none() {
                let mut c = conn::connect(spec).await?;
                c.query_drop(format!(
                    "CREATE TABLE IF NOT EXISTS {target} (pipe VARCHAR(255) NOT NULL PRIMARY KEY, beat_at TIMESTAMP(6) NOT NULL)"
                ))
                .await?;
                *slot = Some(c);
            }
            let c = slot.as_mut().expect("connected above");
            c.exec_drop(
                format!(
                    "INSERT INTO {target} (pipe, beat_at) VALUES (?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE beat_at = VALUES(beat_at)"
                ),
                (pipe,),
            )
            .await?;
            Ok(())
        })
        .await;
        if written.is_err() {
            // Never reuse a connection a failed (or timed-out) request left behind.
            *slot = None;
        }
        written
    }
}
