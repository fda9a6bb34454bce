//! Sluice sink: writes row changes into ClickHouse over its HTTP interface.
//!
//! Tables are `ReplacingMergeTree(_peerdb_version, _peerdb_is_deleted)` ordered
//! by the source primary key, so that `FINAL` keeps the newest version of each
//! row and hides deleted ones. Writes are idempotent in effect: a retried
//! insert carries the same versions, and a replay after a crash writes the
//! changes again with higher versions together with every later change of the
//! same rows, so `FINAL` ends the same — which is what makes at-least-once
//! delivery safe.
//! Inserts use RowBinary, compressed with LZ4 by the `clickhouse` crate.
//!
//! Every request is bounded by `destination.request_timeout_ms`: a query or
//! statement as a whole, an insert step by step (each chunk of its body, then
//! its acknowledgement), so that a hung server becomes a transient
//! [`SinkError::Timeout`] instead of a silent stall. Errors say how far they
//! reach ([`SinkError::severity`], see [`error`]).

pub mod alter;
pub mod destination;
pub mod error;
pub mod rowbinary;
pub mod transport;

use sluice_core::spec::DestinationSpec;
use sluice_core::types::{TableEngine, TableMapping, IS_DELETED, SYNCED_AT, VERSION};
use sluice_core::{ChangeOp, RowChange};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use destination::Destination;
pub use error::SinkError;
pub use rowbinary::EncodeError;

/// Quotes a ClickHouse identifier with backticks.
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// A connection (pool) to one ClickHouse database.
#[derive(Clone)]
pub struct ClickHouseSink {
    client: clickhouse::Client,
    database: String,
    /// `destination.request_timeout_ms`: the longest wait for one step of a request.
    timeout: Duration,
}

/// Bytes handed to the client per `send` call while streaming an insert.
const SEND_CHUNK: usize = 1 << 20;

impl ClickHouseSink {
    /// A sink for `dest`; connects lazily (nothing is sent before the first request).
    pub fn new(dest: &DestinationSpec) -> Self {
        let timeout = Duration::from_millis(dest.request_timeout_ms.max(1));
        let client = transport::client(timeout.min(transport::MAX_CONNECT_TIMEOUT))
            .with_url(dest.url.trim_end_matches('/'))
            .with_user(&dest.user)
            .with_password(&dest.password.0)
            .with_compression(clickhouse::Compression::Lz4);
        Self { client, database: dest.database.clone(), timeout }
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// The longest wait for one step of a request (`destination.request_timeout_ms`).
    pub fn request_timeout(&self) -> Duration {
        self.timeout
    }

    fn timeout_ms(&self) -> u64 {
        self.timeout.as_millis() as u64
    }

    /// Awaits one step of a request for at most the request timeout. On timeout
    /// the step's future is dropped, which closes its connection (see `transport`).
    async fn bounded<T>(&self, operation: &str, step: impl Future<Output = clickhouse::error::Result<T>>) -> Result<T, SinkError> {
        match tokio::time::timeout(self.timeout, step).await {
            Ok(result) => result.map_err(|e| SinkError::from_ch(e, self.timeout_ms(), operation)),
            Err(_) => Err(SinkError::Timeout { timeout_ms: self.timeout_ms(), operation: operation.to_string() }),
        }
    }

    /// Runs a statement that returns nothing (DDL), bounded by the request timeout.
    pub async fn execute(&self, sql: &str) -> Result<(), SinkError> {
        self.bounded(&operation(sql), self.client.query(sql).execute()).await
    }

    /// Runs a query and returns its result as TabSeparated text (for checks and
    /// tests). Each chunk of the answer (the first one: the query's execution)
    /// is bounded by the request timeout.
    pub async fn query_tsv(&self, sql: &str) -> Result<String, SinkError> {
        let op = operation(sql);
        let mut cursor = self.client.query(sql).fetch_bytes("TabSeparated").map_err(|e| SinkError::from_ch(e, self.timeout_ms(), &op))?;
        let mut bytes = Vec::new();
        while let Some(chunk) = self.bounded(&op, cursor.next()).await? {
            bytes.extend_from_slice(&chunk);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Checks the server answers; the error says why not.
    pub async fn ping(&self) -> Result<(), SinkError> {
        self.query_tsv("SELECT 1").await.map(|_| ())
    }

    pub async fn ensure_database(&self) -> Result<(), SinkError> {
        self.execute(&format!("CREATE DATABASE IF NOT EXISTS {}", quote(&self.database))).await
    }

    pub fn qualified(&self, table: &str) -> String {
        format!("{}.{}", quote(&self.database), quote(table))
    }

    pub async fn table_exists(&self, table: &str) -> Result<bool, SinkError> {
        let sql = format!(
            "SELECT count() FROM system.tables WHERE database = '{}' AND name = '{}'",
            escape_literal(&self.database),
            escape_literal(table)
        );
        Ok(self.query_tsv(&sql).await?.trim() != "0")
    }

    /// The `CREATE TABLE` statement for a mapping, into table `name`.
    pub fn create_table_sql(&self, mapping: &TableMapping, name: &str) -> String {
        let mut cols: Vec<String> = mapping.columns.iter().map(|c| format!("{} {}", quote(&c.name), c.ch_type.sql())).collect();
        cols.push(format!("{} DateTime64(9) DEFAULT now64(9)", quote(SYNCED_AT)));
        cols.push(format!("{} UInt8 DEFAULT 0", quote(IS_DELETED)));
        cols.push(format!("{} Int64 DEFAULT 0", quote(VERSION)));
        format!("CREATE TABLE IF NOT EXISTS {} ({}) ENGINE = {}", self.qualified(name), cols.join(", "), engine_sql(mapping))
    }

    /// Creates the destination table if it does not exist yet.
    pub async fn create_table(&self, mapping: &TableMapping) -> Result<(), SinkError> {
        self.execute(&self.create_table_sql(mapping, &mapping.destination)).await
    }

    pub async fn drop_table(&self, table: &str) -> Result<(), SinkError> {
        self.execute(&format!("DROP TABLE IF EXISTS {}", self.qualified(table))).await
    }

    /// Deletes the rows of `table` written with `version` (see
    /// `Destination::discard_copy`): a synchronous `ALTER TABLE ... DELETE`
    /// (`mutations_sync = 2`), run only when there are such rows.
    pub async fn discard_version(&self, mapping: &TableMapping, table: &str, version: i64) -> Result<(), SinkError> {
        if mapping.options.engine == TableEngine::Null || !self.table_exists(table).await? {
            return Ok(());
        }
        let q = self.qualified(table);
        let n = self.query_tsv(&format!("SELECT count() FROM {q} WHERE {} = {version}", quote(VERSION))).await?;
        if n.trim() == "0" {
            return Ok(());
        }
        tracing::info!("discarding the {} row(s) an interrupted copy wrote into {q} (version {version})", n.trim());
        self.execute(&format!("ALTER TABLE {q} DELETE WHERE {} = {version} SETTINGS mutations_sync = 2", quote(VERSION))).await
    }

    /// The comment of a table (empty when it has none or does not exist).
    async fn table_comment(&self, table: &str) -> Result<String, SinkError> {
        let sql = format!(
            "SELECT comment FROM system.tables WHERE database = '{}' AND name = '{}'",
            escape_literal(&self.database),
            escape_literal(table)
        );
        Ok(self.query_tsv(&sql).await?.trim_end_matches('\n').to_string())
    }

    /// Creates `resync` afresh for a resync of `mapping`'s table, marked with
    /// `marker` (a table comment) so that `swap_in` can tell, after a crash,
    /// whether the swap already happened.
    pub async fn create_resync_table(&self, mapping: &TableMapping, resync: &str, marker: &str) -> Result<(), SinkError> {
        self.drop_table(resync).await?;
        let sql = format!("{} COMMENT '{}'", self.create_table_sql(mapping, resync), escape_literal(marker));
        self.execute(&sql).await
    }

    /// Puts the finished copy `resync` in place of `table` atomically
    /// (`EXCHANGE TABLES`: readers see the old table or the new one, never
    /// neither) and drops the old data. Idempotent: when `table` already carries
    /// `marker`, the exchange happened before and only the drop is left.
    pub async fn swap_in(&self, table: &str, resync: &str, marker: &str) -> Result<(), SinkError> {
        if self.table_comment(table).await? != marker {
            if self.table_exists(table).await? {
                self.execute(&format!("EXCHANGE TABLES {} AND {}", self.qualified(table), self.qualified(resync))).await?;
            } else {
                self.execute(&format!("RENAME TABLE {} TO {}", self.qualified(resync), self.qualified(table))).await?;
            }
        }
        self.drop_table(resync).await
    }

    /// Encodes `changes` as RowBinary (mapped columns + metadata columns).
    pub fn encode(mapping: &TableMapping, changes: &[RowChange], out: &mut Vec<u8>) -> Result<(), SinkError> {
        let synced_at = now_nanos();
        for change in changes {
            Self::encode_row(mapping, change, synced_at, out)?;
        }
        Ok(())
    }

    /// Encodes one change (see `encode`) with `_peerdb_synced_at = synced_at`.
    fn encode_row(mapping: &TableMapping, change: &RowChange, synced_at: i64, out: &mut Vec<u8>) -> Result<(), SinkError> {
        for (col, cell) in mapping.columns.iter().zip(&change.cells) {
            rowbinary::encode(out, &col.ch_type, cell).map_err(|source| SinkError::Encode {
                table: mapping.destination.clone(),
                column: col.name.clone(),
                source,
            })?;
        }
        out.extend_from_slice(&synced_at.to_le_bytes());
        out.push(u8::from(change.op == ChangeOp::Delete));
        out.extend_from_slice(&change.version.to_le_bytes());
        Ok(())
    }

    /// The INSERT statement for a mapping's columns into table `name`.
    pub fn insert_sql(&self, mapping: &TableMapping, name: &str) -> String {
        let mut cols: Vec<String> = mapping.columns.iter().map(|c| quote(&c.name)).collect();
        cols.extend([quote(SYNCED_AT), quote(IS_DELETED), quote(VERSION)]);
        format!("INSERT INTO {} ({}) FORMAT RowBinary", self.qualified(name), cols.join(", "))
    }

    /// Writes row changes into the mapping's destination table in one INSERT.
    ///
    /// Returns when ClickHouse has acknowledged the whole insert (HTTP 200), so
    /// the caller may then make its checkpoint durable. Safe to repeat.
    pub async fn write(&self, mapping: &TableMapping, changes: &[RowChange]) -> Result<usize, SinkError> {
        self.write_into(mapping, &mapping.destination, changes).await
    }

    /// Like `write`, into another table with the same columns (e.g. `<table>_resync`).
    ///
    /// The body is encoded as it is sent, `SEND_CHUNK` bytes at a time, so an
    /// insert holds its rows plus one block of their encoding, never the whole
    /// encoding beside them. Every step is bounded as in `write_encoded`.
    pub async fn write_into(&self, mapping: &TableMapping, table: &str, changes: &[RowChange]) -> Result<usize, SinkError> {
        if changes.is_empty() {
            return Ok(0);
        }
        // A row that cannot be encoded ends the insert unfinished (an error;
        // blocks ClickHouse already took may stay, as the `Destination` contract allows).
        let synced_at = now_nanos();
        let mut block = Vec::with_capacity(SEND_CHUNK + SEND_CHUNK / 4);
        let mut rows = changes.iter();
        let Some(first) = rows.next() else { return Ok(0) };
        Self::encode_row(mapping, first, synced_at, &mut block)?;
        let op = format!("INSERT INTO {}", self.qualified(table));
        let ch = |e| SinkError::from_ch(e, self.timeout_ms(), &op);
        let mut insert =
            self.client.insert_formatted_with(self.insert_sql(mapping, table)).with_timeouts(Some(self.timeout), Some(self.timeout));
        let mut len = 0;
        for change in rows {
            if block.len() >= SEND_CHUNK {
                len += block.len();
                let full = std::mem::replace(&mut block, Vec::with_capacity(SEND_CHUNK + SEND_CHUNK / 4));
                insert.send(bytes::Bytes::from(full)).await.map_err(ch)?;
            }
            Self::encode_row(mapping, change, synced_at, &mut block)?;
        }
        len += block.len();
        insert.send(bytes::Bytes::from(block)).await.map_err(ch)?;
        insert.end().await.map_err(ch)?;
        Ok(len)
    }

    /// Sends rows already encoded by `encode` in one INSERT (the benchmark's
    /// destination-only ceiling uses it to leave encoding out).
    ///
    /// Each step is bounded by the request timeout, not the whole insert: each
    /// `SEND_CHUNK` of the body handed to the connection, then the server's
    /// acknowledgement after the last byte. The crate's own per-step timeouts do
    /// it (an expired one aborts the request, closing its connection).
    pub async fn write_encoded(&self, mapping: &TableMapping, table: &str, data: bytes::Bytes) -> Result<usize, SinkError> {
        let len = data.len();
        let op = format!("INSERT INTO {}", self.qualified(table));
        let ch = |e| SinkError::from_ch(e, self.timeout_ms(), &op);
        let mut insert =
            self.client.insert_formatted_with(self.insert_sql(mapping, table)).with_timeouts(Some(self.timeout), Some(self.timeout));
        let mut offset = 0;
        while offset < len {
            let end = (offset + SEND_CHUNK).min(len);
            insert.send(data.slice(offset..end)).await.map_err(ch)?;
            offset = end;
        }
        insert.end().await.map_err(ch)?;
        Ok(len)
    }
}

/// Nanoseconds since the epoch (`_peerdb_synced_at`).
fn now_nanos() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_nanos() as i64
}

/// The `ENGINE = ...` clause's text (engine, PARTITION BY, ORDER BY, SETTINGS) for a mapping.
pub fn engine_sql(mapping: &TableMapping) -> String {
    let o = &mapping.options;
    let mut key: Vec<String> = mapping.sorting_key().iter().map(|k| quote(k)).collect();
    let engine = match o.engine {
        TableEngine::Null => return "Null".into(),
        TableEngine::Replacing => format!("ReplacingMergeTree({}, {})", quote(VERSION), quote(IS_DELETED)),
        TableEngine::MergeTree => {
            key.push(quote(VERSION));
            "MergeTree".into()
        }
    };
    let mut s = engine;
    if let Some(p) = &o.partition_by {
        s.push_str(&format!(" PARTITION BY {p}"));
    }
    s.push_str(&format!(" ORDER BY ({})", key.join(", ")));
    let mut settings = Vec::new();
    if o.hard_deletes && o.engine == TableEngine::Replacing {
        settings.push("allow_experimental_replacing_merge_with_cleanup = 1");
    }
    if o.partition_by.is_some() {
        // DATE/DATETIME columns are Nullable (lossy dates → NULL): let the
        // partition expression use them (NULL rows get a partition of their own).
        settings.push("allow_nullable_key = 1");
    }
    if !settings.is_empty() {
        s.push_str(&format!(" SETTINGS {}", settings.join(", ")));
    }
    s
}

/// A statement's beginning, on one line, to name it in a timeout message.
fn operation(sql: &str) -> String {
    let line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 120 {
        line.chars().take(120).collect::<String>() + "…"
    } else {
        line
    }
}

/// Escapes a string for a single-quoted ClickHouse literal.
pub fn escape_literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_operation_names() {
        assert_eq!(quote("a`b"), "`a\\`b`");
        assert_eq!(operation("SELECT 1\n  FROM t"), "SELECT 1 FROM t");
        assert!(operation(&"x ".repeat(200)).ends_with('…'));
    }

    #[test]
    fn engines() {
        use sluice_core::schema::{SourceColumn, SourceTable, TableId};
        let col = |name: &str, nullable: bool| SourceColumn { ordinal: 1, ..SourceColumn::new(name, "int", "int", nullable) };
        let t = SourceTable {
            id: TableId::new("s", "t"),
            columns: vec![col("id", false), col("a", false), col("secret", true)],
            primary_key: vec!["id".into()],
            charset: None,
        };
        let mut o = sluice_core::types::TableOptions { exclude_columns: vec!["secret".into()], ..Default::default() };
        let m = TableMapping::with_options(t.clone(), "t".into(), o.clone());
        assert_eq!(m.columns.iter().map(|c| c.source_index).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(engine_sql(&m), "ReplacingMergeTree(`_peerdb_version`, `_peerdb_is_deleted`) ORDER BY (`id`)");
        o.sorting_key = Some(vec!["a".into(), "id".into()]);
        o.partition_by = Some("a % 4".into());
        o.hard_deletes = true;
        let m = TableMapping::with_options(t.clone(), "t".into(), o.clone());
        assert_eq!(
            engine_sql(&m),
            "ReplacingMergeTree(`_peerdb_version`, `_peerdb_is_deleted`) PARTITION BY a % 4 ORDER BY (`a`, `id`) SETTINGS allow_experimental_replacing_merge_with_cleanup = 1, allow_nullable_key = 1"
        );
        o.hard_deletes = false;
        o.engine = TableEngine::MergeTree;
        let m = TableMapping::with_options(t.clone(), "t".into(), o.clone());
        assert_eq!(engine_sql(&m), "MergeTree PARTITION BY a % 4 ORDER BY (`a`, `id`, `_peerdb_version`) SETTINGS allow_nullable_key = 1");
        o.engine = TableEngine::Null;
        assert_eq!(engine_sql(&TableMapping::with_options(t, "t".into(), o)), "Null");
    }
}
