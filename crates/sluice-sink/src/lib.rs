//! Sluice sink: writes row changes into ClickHouse over its HTTP interface.
//!
//! Tables are `ReplacingMergeTree(_peerdb_version, _peerdb_is_deleted)` ordered
//! by the source primary key, so that `FINAL` keeps the newest version of each
//! row and hides deleted ones. Writes are idempotent in effect: a retried
//! insert carries the same versions, and a replay after a crash writes the
//! changes again with higher versions together with every later change of the
//! same rows, so `FINAL` ends the same — which is what makes at-least-once
//! delivery safe.
//! Inserts use RowBinary, compressed with LZ4 by the `clickhouse` crate
//! (unless `destination.compression` is `none`).
//!
//! Every request is bounded by `destination.request_timeout_ms`: a query or
//! statement as a whole, an insert step by step (each chunk of its body, then
//! its acknowledgement), so that a hung server becomes a transient
//! [`SinkError::Timeout`] instead of a silent stall. Errors say how far they
//! reach ([`SinkError::severity`], see [`error`]).
//!
//! Every statement comes from [`topology::Topology`], detected once per sink
//! (one server, a cluster with `ON CLUSTER` DDL and `Distributed` tables, or
//! ClickHouse Cloud): see [`topology`].

pub mod alter;
pub mod destination;
pub mod encoder;
pub mod error;
pub mod rowbinary;
pub mod topology;
pub mod transport;

use sluice_core::spec::DestinationSpec;
use sluice_core::types::{TableEngine, TableMapping};
use sluice_core::{ChangeOp, RowChange};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use topology::{Cluster, Kind, Topology};

pub use destination::Destination;
pub use encoder::{Encoded, RowEncoder};
pub use error::SinkError;
pub use rowbinary::EncodeError;

/// Quotes a ClickHouse identifier with backticks.
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// A connection (pool) to one ClickHouse database.
#[derive(Clone)]
pub struct ClickHouseSink {
    /// The client, or why none could be built (an unreadable `destination.ca_cert`).
    client: Result<clickhouse::Client, String>,
    database: String,
    /// `destination.request_timeout_ms`: the longest wait for one step of a request.
    timeout: Duration,
    /// The destination's settings, for the topology's detection.
    spec: Arc<DestinationSpec>,
    /// The topology, detected on first use and kept for the sink's life (its clones share it).
    topology: Arc<tokio::sync::OnceCell<Topology>>,
}

/// Bytes handed to the client per `send` call while streaming an insert.
const SEND_CHUNK: usize = 1 << 20;

impl ClickHouseSink {
    /// A sink for `dest`; connects lazily (nothing is sent before the first request).
    pub fn new(dest: &DestinationSpec) -> Self {
        let timeout = Duration::from_millis(dest.request_timeout_ms.max(1));
        let client = transport::client(timeout.min(transport::MAX_CONNECT_TIMEOUT), dest.ca_cert.as_deref()).map(|c| {
            c.with_url(dest.url.trim_end_matches('/')).with_user(&dest.user).with_password(&dest.password.0).with_compression(
                match dest.compression {
                    sluice_core::spec::Compression::Lz4 => clickhouse::Compression::Lz4,
                    sluice_core::spec::Compression::None => clickhouse::Compression::None,
                },
            )
        });
        let spec = Arc::new(dest.clone());
        Self { client, database: dest.database.clone(), timeout, spec, topology: Arc::new(tokio::sync::OnceCell::new()) }
    }

    fn client(&self) -> Result<&clickhouse::Client, SinkError> {
        self.client.as_ref().map_err(|e| SinkError::Config(e.clone()))
    }

    /// The destination's topology: detected on the first call (one or two
    /// queries when `destination.cluster` is set, none otherwise), then kept.
    pub async fn topology(&self) -> Result<&Topology, SinkError> {
        self.topology.get_or_try_init(|| self.detect()).await
    }

    async fn detect(&self) -> Result<Topology, SinkError> {
        let Some(name) = self.spec.cluster.clone() else {
            return Ok(Topology::single(&self.database));
        };
        if self.is_cloud().await? {
            tracing::warn!("destination.cluster {name:?} is ignored: the destination is ClickHouse Cloud (plain tables, no ON CLUSTER)");
            return Ok(Topology { database: self.database.clone(), kind: Kind::Cloud });
        }
        let (shards, hosts) = self.cluster_size(&name).await?;
        if hosts == 0 {
            return Err(SinkError::Config(format!(
                "the server does not know cluster {name:?} (destination.cluster): it is not in system.clusters"
            )));
        }
        Ok(Topology { database: self.database.clone(), kind: Kind::Cluster(Cluster::from_spec(&self.spec, shards, hosts)) })
    }

    /// Whether the server is ClickHouse Cloud: its `cloud_mode` setting is on,
    /// or it has the `SharedMergeTree` engine (Cloud's only).
    pub async fn is_cloud(&self) -> Result<bool, SinkError> {
        let n = self
            .query_tsv(
                "SELECT (SELECT count() FROM system.settings WHERE name = 'cloud_mode' AND value IN ('1', 'true')) \
                 + (SELECT count() FROM system.table_engines WHERE name = 'SharedMergeTree')",
            )
            .await?;
        Ok(n.trim() != "0")
    }

    /// Shards and hosts of cluster `name` in `system.clusters` (0, 0 when unknown).
    pub async fn cluster_size(&self, name: &str) -> Result<(u32, u32), SinkError> {
        let sql = format!("SELECT uniqExact(shard_num), count() FROM system.clusters WHERE cluster = '{}'", escape_literal(name));
        let out = self.query_tsv(&sql).await?;
        let f: Vec<u32> = out.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        match f[..] {
            [shards, hosts] => Ok((shards, hosts)),
            _ => Err(SinkError::Config(format!("unexpected answer from system.clusters: {out:?}"))),
        }
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
        self.bounded(&operation(sql), self.client()?.query(sql).execute()).await
    }

    /// Runs a statement of the topology's: as `execute` without a cluster; on
    /// a cluster (`ON CLUSTER`) with `distributed_ddl_task_timeout`, and reads
    /// the per-host answer: a host that failed or did not finish is an error
    /// ([`SinkError::Cluster`], transient: every statement is idempotent and
    /// is retried; a host's own error keeps its code's severity).
    pub async fn run_ddl(&self, sql: &str) -> Result<(), SinkError> {
        let topo = self.topology().await?;
        if topo.cluster().is_none() {
            return self.execute(sql).await;
        }
        tracing::info!("{sql}");
        let op = operation(sql);
        let mut query = self.client()?.query(sql);
        for (name, value) in topo.ddl_settings() {
            query = query.with_setting(name, value);
        }
        let mut cursor = query.fetch_bytes("TabSeparatedWithNames").map_err(|e| SinkError::from_ch(e, self.timeout_ms(), &op))?;
        let mut bytes = Vec::new();
        while let Some(chunk) = self.bounded(&op, cursor.next()).await? {
            bytes.extend_from_slice(&chunk);
        }
        check_ddl_answer(&op, &String::from_utf8_lossy(&bytes))
    }

    /// Runs `statements` in order with `run_ddl`.
    async fn run_all(&self, statements: &[String]) -> Result<(), SinkError> {
        for sql in statements {
            self.run_ddl(sql).await?;
        }
        Ok(())
    }

    /// Runs a query and returns its result as TabSeparated text (for checks and
    /// tests). Each chunk of the answer (the first one: the query's execution)
    /// is bounded by the request timeout.
    pub async fn query_tsv(&self, sql: &str) -> Result<String, SinkError> {
        let op = operation(sql);
        let mut cursor =
            self.client()?.query(sql).fetch_bytes("TabSeparated").map_err(|e| SinkError::from_ch(e, self.timeout_ms(), &op))?;
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
        let sql = self.topology().await?.create_database();
        self.run_ddl(&sql).await
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

    /// The statements creating table `name` for a mapping (see `Topology::create_table`).
    async fn create_statements(&self, mapping: &TableMapping, name: &str, comment: Option<&str>) -> Result<Vec<String>, SinkError> {
        self.topology()
            .await?
            .create_table(mapping, name, comment)
            .map_err(|message| SinkError::Topology { table: mapping.destination.clone(), message })
    }

    /// Creates the destination table if it does not exist yet.
    pub async fn create_table(&self, mapping: &TableMapping) -> Result<(), SinkError> {
        let statements = self.create_statements(mapping, &mapping.destination, None).await?;
        self.run_all(&statements).await
    }

    pub async fn drop_table(&self, table: &str) -> Result<(), SinkError> {
        let statements = self.topology().await?.drop_table(table);
        self.run_all(&statements).await
    }

    /// Removes every row of `table`; nothing if it is missing.
    pub async fn truncate(&self, table: &str) -> Result<(), SinkError> {
        let sql = self.topology().await?.truncate(table);
        self.run_ddl(&sql).await
    }

    /// Follows a source schema change on `table` (see `Topology::alter`).
    pub async fn alter(
        &self,
        table: &str,
        old: &TableMapping,
        new: &TableMapping,
        ops: &[sluice_core::schema::AlterOp],
    ) -> Result<(), SinkError> {
        let statements = self
            .topology()
            .await?
            .alter(table, old, new, ops)
            .map_err(|message| SinkError::Topology { table: table.to_string(), message })?;
        for sql in statements {
            tracing::info!("{sql}");
            self.run_ddl(&sql).await?;
        }
        Ok(())
    }

    /// Deletes the rows of `table` written with `version` (see
    /// `Destination::discard_copy`): a synchronous `ALTER TABLE ... DELETE`
    /// (`mutations_sync = 2`), run only when there are such rows.
    pub async fn discard_version(&self, mapping: &TableMapping, table: &str, version: i64) -> Result<(), SinkError> {
        if mapping.options.engine == TableEngine::Null || !self.table_exists(table).await? {
            return Ok(());
        }
        let topo = self.topology().await?;
        let n = self.query_tsv(&topo.count_version(table, version)).await?;
        if n.trim() == "0" {
            return Ok(());
        }
        tracing::info!("discarding the {} row(s) an interrupted copy wrote into {} (version {version})", n.trim(), self.qualified(table));
        self.run_ddl(&topo.delete_version(table, version)).await
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
        let statements = self.create_statements(mapping, resync, Some(marker)).await?;
        self.drop_table(resync).await?;
        self.run_all(&statements).await
    }

    /// Puts the finished copy `resync` in place of `table` atomically
    /// (`EXCHANGE TABLES`: readers see the old table or the new one, never
    /// neither; needs the Atomic database engine, ClickHouse's default) and
    /// drops the old data. Idempotent: when `table` already carries `marker`,
    /// the exchange happened before and only the drop is left.
    ///
    /// On a cluster the local tables are exchanged `ON CLUSTER` and the
    /// `Distributed` table re-created over them (see `Topology::swap`, which
    /// also says what readers may see meanwhile). The marker is counted on
    /// every host: all marked → done; none → exchange; some → the exchange is
    /// still queued on the others (an `ON CLUSTER` task outlives its timeout),
    /// so it is not sent again (that would swap back the hosts that did it):
    /// a transient error, retried until every host has it.
    pub async fn swap_in(&self, table: &str, resync: &str, marker: &str) -> Result<(), SinkError> {
        let topo = self.topology().await?;
        let key = if topo.distributed() && self.table_exists(resync).await? { Some(self.table_comment(resync).await?) } else { None };
        let swap = topo.swap(table, resync, key.as_deref());
        let (marked, present, hosts) = match topo.cluster() {
            None => {
                let marked = self.table_comment(&swap.marked).await? == marker;
                (u32::from(marked), u32::from(self.table_exists(&swap.marked).await?), 1)
            }
            Some(c) => {
                let out = self.query_tsv(&topo.marker_census(&swap.marked, marker)).await?;
                let f: Vec<u32> = out.split_whitespace().filter_map(|v| v.parse().ok()).collect();
                let [marked, present] = f[..] else {
                    return Err(SinkError::Config(format!("unexpected answer counting the resync marker: {out:?}")));
                };
                (marked, present, c.hosts)
            }
        };
        if marked == 0 {
            self.run_ddl(if present > 0 { &swap.exchange } else { &swap.rename }).await?;
        } else if marked < hosts {
            return Err(SinkError::Cluster {
                operation: operation(&swap.exchange),
                detail: format!(
                    "{marked} of {hosts} hosts have swapped in the copy; the others have not yet (their ON CLUSTER task is queued): \
                     waiting for them, not sending it again"
                ),
            });
        }
        self.run_all(&swap.after).await?;
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
        encoder::encode_row(mapping, &change.cells, change.op == ChangeOp::Delete, change.version, synced_at, out)
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
        let mut block = encoder::new_block();
        let mut rows = changes.iter();
        let Some(first) = rows.next() else { return Ok(0) };
        Self::encode_row(mapping, first, synced_at, &mut block)?;
        let target = self.topology().await?.insert(mapping, table);
        let op = format!("INSERT INTO {}", self.qualified(&target.table));
        let ch = |e| SinkError::from_ch(e, self.timeout_ms(), &op);
        let mut insert = self.client()?.insert_formatted_with(target.sql).with_timeouts(Some(self.timeout), Some(self.timeout));
        let mut len = 0;
        for change in rows {
            if block.len() >= SEND_CHUNK {
                len += block.len();
                let full = std::mem::replace(&mut block, encoder::new_block());
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
        let blocks = (0..data.len()).step_by(SEND_CHUNK).map(|at| data.slice(at..(at + SEND_CHUNK).min(data.len())));
        self.send_blocks(mapping, table, blocks).await
    }

    /// Sends RowBinary `blocks` in order as the body of one INSERT into
    /// `table` (which has `mapping`'s columns); returns the bytes sent.
    pub(crate) async fn send_blocks(
        &self,
        mapping: &TableMapping,
        table: &str,
        blocks: impl IntoIterator<Item = bytes::Bytes>,
    ) -> Result<usize, SinkError> {
        let target = self.topology().await?.insert(mapping, table);
        let op = format!("INSERT INTO {}", self.qualified(&target.table));
        let ch = |e| SinkError::from_ch(e, self.timeout_ms(), &op);
        let mut insert = self.client()?.insert_formatted_with(target.sql).with_timeouts(Some(self.timeout), Some(self.timeout));
        let mut len = 0;
        for block in blocks {
            len += block.len();
            insert.send(block).await.map_err(ch)?;
        }
        insert.end().await.map_err(ch)?;
        Ok(len)
    }
}

/// Nanoseconds since the epoch (`_peerdb_synced_at`).
fn now_nanos() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_nanos() as i64
}

/// The answer of an `ON CLUSTER` statement (`TabSeparatedWithNames`: one row
/// per host with `host`, `port`, `status`, `error`, `num_hosts_remaining`,
/// `num_hosts_active`) checked: every host reported status 0 and none is left.
/// A host's error is returned with its code (its severity is the code's);
/// hosts still working are a [`SinkError::Cluster`].
pub fn check_ddl_answer(operation: &str, answer: &str) -> Result<(), SinkError> {
    let mut lines = answer.lines().filter(|l| !l.is_empty());
    let Some(header) = lines.next() else { return Ok(()) };
    let names: Vec<&str> = header.split('\t').collect();
    let col = |name: &str| names.iter().position(|n| *n == name);
    let (Some(host), Some(status), Some(error), Some(remaining)) = (col("host"), col("status"), col("error"), col("num_hosts_remaining"))
    else {
        return Ok(()); // Not a per-host answer (ClickHouse answered for itself alone).
    };
    let mut left = None;
    let mut failed = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or_default();
        let code: u32 = get(status).parse().unwrap_or(0);
        if code != 0 {
            failed.push((code, format!("{}: {}", get(host), get(error).replace("\\n", " "))));
        }
        left = get(remaining).parse::<u64>().ok();
    }
    if let Some((code, _)) = failed.first() {
        let message = failed.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ");
        let code = *code;
        if error::TRANSIENT_CODES.contains(&code) {
            return Err(SinkError::Cluster { operation: operation.into(), detail: message });
        }
        return Err(SinkError::Server { code, message: format!("{operation} failed on host {message}") });
    }
    if let Some(n) = left.filter(|n| *n > 0) {
        return Err(SinkError::Cluster {
            operation: operation.into(),
            detail: format!("{n} host(s) did not finish within destination.ddl_timeout_s; retried (the statement is idempotent)"),
        });
    }
    Ok(())
}

/// The `ENGINE = ...` clause's text (engine, PARTITION BY, ORDER BY, SETTINGS) of a single-node table.
pub fn engine_sql(mapping: &TableMapping) -> String {
    topology::engine_sql_for(mapping, None)
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
