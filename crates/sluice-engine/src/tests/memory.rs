//! In-memory implementations of the engine's seams, keeping their written
//! contracts (`ChangeSource`, `Destination`), so that the engine's hard cases
//! run on synthetic event sequences in milliseconds. Both can be told to fail
//! or to hold at chosen points.
//!
//! `MemorySource` keeps tables (definition + rows) and a change log of
//! committed transactions and DDL statements; a position is the number of
//! log entries before it. Rows are kept by column name, so a stream decodes
//! each change with the definitions it was opened with, like a binlog reader
//! with its recorded schemas. Integer single-column keys only.
//!
//! `MemoryDestination` keeps every row version written and answers `final_rows`
//! the way ClickHouse's `FINAL` does for the destination tables.

use async_trait::async_trait;
use serde_json::json;
use sluice_core::schema::{AlterOp, SourceColumn, SourceTable, TableId};
use sluice_core::types::TableMapping;
use sluice_core::{BinlogPosition, Cell, ChangeOp, Checkpoint, RowChange, RowSink, TableSpec};
use sluice_sink::{Destination, SinkError};
use sluice_source::binlog::BinlogEvent;
use sluice_source::ddl::{self, SchemaChange};
use sluice_source::snapshot::{ChunkEnd, Partition};
use sluice_source::{ChangeSource, ChangeStream, CopyReader, DescribedTable, HeartbeatWriter, SourceError};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// A row by column name.
pub type Row = BTreeMap<String, Cell>;

/// One committed entry of the source's change log.
#[derive(Clone)]
enum Entry {
    Txn { changes: Vec<(TableId, ChangeOp, Row)>, ts: u32 },
    Ddl { schema: String, query: String },
}

#[derive(Default)]
struct SourceState {
    tables: BTreeMap<TableId, (SourceTable, BTreeMap<i64, Row>)>,
    log: Vec<Entry>,
    /// Copy chunks handed out so far, and how many may be before the copy holds.
    chunks_read: usize,
    hold_after: Option<usize>,
    /// Events a stream hands on before it fails (a broken connection), once.
    fail_stream_after: Option<usize>,
    streams_opened: usize,
    /// A pause before each rows event a stream hands on (a slow network mid-transaction).
    row_gap: Option<Duration>,
}

/// A source database in memory (see the module doc).
#[derive(Clone, Default)]
pub struct MemorySource {
    state: Arc<Mutex<SourceState>>,
    /// Woken when the log grows or a held copy is released.
    changed: Arc<Notify>,
    /// Woken when a copy is held.
    held: Arc<Notify>,
}

fn position(n: usize) -> Checkpoint {
    Checkpoint { position: BinlogPosition::new("mem-bin.000001", 4 + n as u64), gtid_set: None }
}

fn entries_before(cp: &Checkpoint) -> usize {
    (cp.position.pos.saturating_sub(4)) as usize
}

fn key_of(table: &SourceTable, row: &Row) -> i64 {
    match row.get(&table.primary_key[0]) {
        Some(Cell::Int(k)) => *k,
        other => panic!("memory source: key of {} must be an Int, got {other:?}", table.id),
    }
}

/// The cells of `row` in `mapping`'s column order, decoded with `mapping`'s
/// definition; `None` when the row's columns are not the definition's (a
/// stream opened with an outdated definition would mis-decode it).
fn cells(mapping: &TableMapping, row: &Row) -> Option<Vec<Cell>> {
    let known = &mapping.source.columns;
    if row.len() != known.len() || known.iter().any(|c| !row.contains_key(&c.name)) {
        return None;
    }
    Some(mapping.columns.iter().map(|c| row[&known[c.source_index].name].clone()).collect())
}

impl MemorySource {
    /// Creates table `schema.name` with `columns` (`(name, mysql type)`; the
    /// first one is the integer key) and no rows. Not in the change log.
    pub fn create_table(&self, schema: &str, name: &str, columns: &[(&str, &str)]) {
        let id = TableId::new(schema, name);
        let cols = columns
            .iter()
            .enumerate()
            .map(|(i, (n, t))| {
                let data_type = t.split(['(', ' ']).next().unwrap_or(t).to_string();
                let mut c = SourceColumn::new(n, &data_type, t, i > 0);
                c.ordinal = i as u32 + 1;
                if data_type.contains("char") || data_type.contains("text") {
                    c.charset = Some("utf8mb4".into());
                }
                c
            })
            .collect();
        let table =
            SourceTable { id: id.clone(), columns: cols, primary_key: vec![columns[0].0.to_string()], charset: Some("utf8mb4".into()) };
        self.state.lock().unwrap().tables.insert(id, (table, BTreeMap::new()));
    }

    /// Commits one transaction of `changes` (`Upsert`: the row is now this;
    /// `Delete`: the row with this key is gone) and logs it.
    pub fn commit(&self, changes: Vec<(TableId, ChangeOp, Row)>) {
        let mut s = self.state.lock().unwrap();
        for (id, op, row) in &changes {
            let (def, rows) = s.tables.get_mut(id).unwrap_or_else(|| panic!("no table {id}"));
            let k = key_of(def, row);
            match op {
                ChangeOp::Upsert => rows.insert(k, row.clone()),
                ChangeOp::Delete => rows.remove(&k),
            };
        }
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as u32;
        s.log.push(Entry::Txn { changes, ts });
        drop(s);
        self.changed.notify_waiters();
    }

    /// The current row of `key`, if any.
    pub fn row(&self, id: &TableId, key: i64) -> Option<Row> {
        self.state.lock().unwrap().tables[id].1.get(&key).cloned()
    }

    /// Runs a DDL statement: the tables change as `ddl::apply` derives it
    /// (columns added are NULL in existing rows), and the statement is logged.
    pub fn ddl(&self, schema: &str, query: &str) {
        let mut s = self.state.lock().unwrap();
        let defs: Vec<SourceTable> = s.tables.values().map(|(t, _)| t.clone()).collect();
        let changes = ddl::apply(schema, query, &defs, &|_: &TableId| None).expect("memory source: DDL not understood");
        for change in changes {
            match change.expect("memory source: DDL cannot be followed") {
                SchemaChange::Altered { table, new, ops } => {
                    let (def, rows) = s.tables.get_mut(&table).expect("altered table exists");
                    for row in rows.values_mut() {
                        for op in &ops {
                            match op {
                                AlterOp::AddColumn { name, .. } => {
                                    row.insert(name.clone(), Cell::Null);
                                }
                                AlterOp::DropColumn { name } => {
                                    row.remove(name);
                                }
                                AlterOp::RenameColumn { from, to } | AlterOp::ModifyColumn { old_name: from, new_name: to } => {
                                    if let Some(v) = row.remove(from) {
                                        row.insert(to.clone(), v);
                                    }
                                }
                            }
                        }
                    }
                    *def = new;
                }
                SchemaChange::Truncated { table } => s.tables.get_mut(&table).expect("truncated table exists").1.clear(),
                other => panic!("memory source: {other:?} not supported"),
            }
        }
        s.log.push(Entry::Ddl { schema: schema.into(), query: query.into() });
        drop(s);
        self.changed.notify_waiters();
    }

    /// Every current row of a table, cells in `mapping`'s column order, by
    /// key; `None` while `mapping` is not the table's current definition.
    pub fn rows(&self, mapping: &TableMapping) -> Option<BTreeMap<i64, Vec<Cell>>> {
        let s = self.state.lock().unwrap();
        let (def, rows) = &s.tables[&mapping.source.id];
        if def != &mapping.source {
            return None;
        }
        rows.iter().map(|(k, r)| Some((*k, cells(mapping, r)?))).collect()
    }

    /// Copies hold after `chunks` more chunks have been read (until `release_copy`).
    pub fn hold_copy_after(&self, chunks: usize) {
        let mut s = self.state.lock().unwrap();
        s.hold_after = Some(s.chunks_read + chunks);
    }

    /// Waits until a copy is held.
    pub async fn copy_held(&self) {
        loop {
            let held = self.held.notified();
            {
                let s = self.state.lock().unwrap();
                if s.hold_after.is_some_and(|h| s.chunks_read >= h) {
                    return;
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), held).await;
        }
    }

    /// Lets held copies go on.
    pub fn release_copy(&self) {
        self.state.lock().unwrap().hold_after = None;
        self.changed.notify_waiters();
    }

    /// The stream being read (or else the next one opened) breaks, a transient error, after handing on `events` more events.
    pub fn fail_stream_after(&self, events: usize) {
        self.state.lock().unwrap().fail_stream_after = Some(events);
    }

    /// Streams pause `gap` before each rows event, so that timers fire in the middle of transactions.
    pub fn set_row_gap(&self, gap: Duration) {
        self.state.lock().unwrap().row_gap = Some(gap);
    }

    /// How many streams have been opened.
    pub fn streams_opened(&self) -> usize {
        self.state.lock().unwrap().streams_opened
    }
}

#[async_trait]
impl ChangeSource for MemorySource {
    async fn check(&self) -> Result<String, SourceError> {
        Ok("memory source".into())
    }

    async fn describe_tables(&self, specs: &[TableSpec]) -> Result<Vec<DescribedTable>, SourceError> {
        let s = self.state.lock().unwrap();
        let mut out = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            let (schema, name) = spec.source.split_once('.').ok_or_else(|| SourceError::Config(format!("bad table {}", spec.source)))?;
            let named = name != "*";
            let found: Vec<&SourceTable> =
                s.tables.values().map(|(t, _)| t).filter(|t| t.id.schema == schema && (!named || t.id.table == name)).collect();
            if named && found.is_empty() {
                return Err(SourceError::Config(format!("source table {} does not exist", spec.source)));
            }
            for t in found {
                let destination = spec.destination.clone().unwrap_or_else(|| t.id.table.clone());
                out.push(DescribedTable { index, named, destination, table: t.clone() });
            }
        }
        Ok(out)
    }

    async fn describe(&self, id: &TableId) -> Result<SourceTable, SourceError> {
        let s = self.state.lock().unwrap();
        s.tables.get(id).map(|(t, _)| t.clone()).ok_or_else(|| SourceError::Config(format!("source table {id} does not exist")))
    }

    async fn table_charset(&self, _id: &TableId) -> Result<Option<String>, SourceError> {
        Ok(Some("utf8mb4".into()))
    }

    async fn position(&self) -> Result<Checkpoint, SourceError> {
        Ok(position(self.state.lock().unwrap().log.len()))
    }

    async fn plan_copy(&self, table: &TableMapping, rows_per_partition: u64) -> Result<(u64, Option<Vec<Partition>>), SourceError> {
        let s = self.state.lock().unwrap();
        let rows = &s.tables[&table.source.id].1;
        let (Some(lo), Some(hi)) = (rows.keys().next(), rows.keys().last()) else { return Ok((0, None)) };
        let n = (rows.len() as u64).div_ceil(rows_per_partition.max(1)).max(1) as i64;
        let width = ((hi - lo) / n).max(1);
        let bounds: Vec<i64> = (1..n).map(|i| lo + i * width).collect();
        let mut parts = Vec::new();
        let mut prev = None;
        for b in bounds.into_iter().map(Some).chain([None]) {
            parts.push(Partition { lo: prev.map(|v: i64| json!(v)), hi: b.map(|v| json!(v)) });
            prev = b;
        }
        Ok((rows.len() as u64, Some(parts)))
    }

    fn copy_reader(&self, table: &TableMapping) -> Result<Box<dyn CopyReader>, SourceError> {
        Ok(Box::new(MemoryCopy { source: self.clone(), mapping: table.clone() }))
    }

    async fn stream(&self, from: &Checkpoint, tables: Vec<TableMapping>) -> Result<Box<dyn ChangeStream>, SourceError> {
        let mut s = self.state.lock().unwrap();
        s.streams_opened += 1;
        let fail_after = s.fail_stream_after.take();
        Ok(Box::new(MemoryStream {
            source: self.clone(),
            next_entry: entries_before(from),
            tables,
            queue: VecDeque::new(),
            failed: HashMap::new(),
            fail_after,
        }))
    }

    fn heartbeat_writer(&self, _table: TableId) -> Box<dyn HeartbeatWriter> {
        Box::new(NoHeartbeat)
    }
}

struct NoHeartbeat;

#[async_trait]
impl HeartbeatWriter for NoHeartbeat {
    async fn beat(&mut self, _pipe: &str) -> Result<(), SourceError> {
        Ok(())
    }
}

struct MemoryCopy {
    source: MemorySource,
    mapping: TableMapping,
}

fn bound(v: &Option<serde_json::Value>) -> Option<i64> {
    v.as_ref().and_then(|v| v.as_i64().or_else(|| v.get(0).and_then(|x| x.as_i64())))
}

#[async_trait]
impl CopyReader for MemoryCopy {
    async fn read_chunk(
        &mut self,
        range: &Partition,
        after: Option<&serde_json::Value>,
        limit: u64,
        max_bytes: u64,
        sink: &mut dyn RowSink,
    ) -> Result<ChunkEnd, SourceError> {
        loop {
            let held = self.source.changed.notified();
            {
                let mut s = self.source.state.lock().unwrap();
                if s.hold_after.is_none_or(|h| s.chunks_read < h) {
                    s.chunks_read += 1;
                    let rows = &s.tables[&self.mapping.source.id].1;
                    let (lo, hi, after) = (bound(&range.lo), bound(&range.hi), after.and_then(|a| bound(&Some(a.clone()))));
                    let mut left = rows
                        .iter()
                        .filter(|(k, _)| lo.is_none_or(|l| **k >= l) && hi.is_none_or(|h| **k < h) && after.is_none_or(|a| **k > a))
                        .peekable();
                    let (mut n, mut last) = (0u64, None);
                    while n < limit && (n == 0 || sink.held() < max_bytes) {
                        let Some((k, r)) = left.next() else { break };
                        let mut c = cells(&self.mapping, r).expect("copy reads the current definition");
                        sink.push(&mut c).map_err(|e| SourceError::Decode(e.0))?;
                        (n, last) = (n + 1, Some(*k));
                    }
                    let done = left.peek().is_none();
                    return Ok(ChunkEnd { last_key: last.map(|k| json!([k])), done, cut: false });
                }
            }
            self.source.held.notify_waiters();
            held.await;
        }
    }

    async fn close(&mut self) {}
}

struct MemoryStream {
    source: MemorySource,
    next_entry: usize,
    tables: Vec<TableMapping>,
    queue: VecDeque<BinlogEvent>,
    /// Tables reported undecodable (skipped from then on).
    failed: HashMap<usize, ()>,
    fail_after: Option<usize>,
}

impl MemoryStream {
    /// Turns the next log entry into events; false when the log has no more.
    fn expand(&mut self) -> bool {
        let s = self.source.state.lock().unwrap();
        let Some(entry) = s.log.get(self.next_entry).cloned() else { return false };
        drop(s);
        self.next_entry += 1;
        let after = position(self.next_entry);
        match entry {
            Entry::Txn { changes, ts } => {
                for (id, op, row) in changes {
                    let Some(i) = self.tables.iter().position(|t| t.source.id == id) else { continue };
                    if self.failed.contains_key(&i) {
                        continue;
                    }
                    match cells(&self.tables[i], &row) {
                        Some(cells) => {
                            // One rows event per change: a binlog splits a transaction's rows into
                            // several events, and the engine must hold them all until the commit.
                            let change = RowChange { op, version: 0, cells };
                            self.queue.push_back(BinlogEvent::Rows { table: i, changes: vec![change] });
                        }
                        None => {
                            self.failed.insert(i, ());
                            let message =
                                format!("the row of {id} at {} does not match its recorded definition; resync the table", after.position);
                            self.queue.push_back(BinlogEvent::TableError { table: i, message });
                        }
                    }
                }
                self.queue.push_back(BinlogEvent::Commit { checkpoint: after, timestamp: ts });
            }
            Entry::Ddl { schema, query } => {
                if self.tables.iter().any(|t| t.source.id.schema == schema) {
                    self.queue.push_back(BinlogEvent::Ddl { schema, query, checkpoint: after.clone() });
                }
                self.queue.push_back(BinlogEvent::Commit { checkpoint: after, timestamp: 0 });
            }
        }
        true
    }
}

#[async_trait]
impl ChangeStream for MemoryStream {
    async fn next(&mut self) -> Result<Option<BinlogEvent>, SourceError> {
        loop {
            if self.fail_after.is_none() {
                // A break asked for after this stream was opened applies to it (not only to the next one).
                self.fail_after = self.source.state.lock().unwrap().fail_stream_after.take();
            }
            if let Some(n) = self.fail_after.as_mut() {
                if *n == 0 {
                    self.fail_after = None;
                    return Err(SourceError::Stalled("memory source: the stream broke (injected)".into()));
                }
            }
            if matches!(self.queue.front(), Some(BinlogEvent::Rows { .. })) {
                let gap = self.source.state.lock().unwrap().row_gap;
                if let Some(gap) = gap {
                    // Cancel-safe: nothing was taken from the queue yet.
                    tokio::time::sleep(gap).await;
                }
            }
            if let Some(e) = self.queue.pop_front() {
                if let Some(n) = self.fail_after.as_mut() {
                    *n -= 1;
                }
                return Ok(Some(e));
            }
            let notify = self.source.changed.clone();
            let changed = notify.notified();
            if self.expand() {
                continue;
            }
            // Idle: a heartbeat at the current position, as a server sends one.
            if tokio::time::timeout(Duration::from_millis(200), changed).await.is_err() {
                return Ok(Some(BinlogEvent::Heartbeat { checkpoint: Some(position(self.next_entry)) }));
            }
        }
    }

    fn bytes_read(&self) -> u64 {
        0
    }
}

/// One destination table: its columns and every row version written to it.
#[derive(Clone, Default)]
struct DestTable {
    columns: Vec<String>,
    /// Positions in `columns` of the key (the mapping's source key).
    key: Vec<usize>,
    rows: Vec<(Vec<Cell>, i64, bool)>,
    marker: Option<i64>,
}

/// What the next write calls do instead of succeeding.
#[derive(Clone, Copy, Debug)]
pub enum WriteFault {
    /// Fails with a transient error, nothing written.
    Transient,
    /// Writes the first half of the call's rows, then fails with a transient error.
    HalfThenTransient,
    /// Fails with a table-level error (the table cannot take these rows).
    TableLevel,
    /// Writes and acknowledges the rows (they are durable), then never
    /// returns: the caller is stuck between the acknowledgement and whatever
    /// it does next (a test then crashes it there).
    AckThenHang,
}

#[derive(Default)]
struct DestState {
    tables: BTreeMap<String, DestTable>,
    /// Faults for the next write calls to a table (by name), in order.
    faults: HashMap<String, VecDeque<WriteFault>>,
    /// Every acknowledged write: table and changes.
    writes: Vec<(String, Vec<RowChange>)>,
    /// A write is hanging after its acknowledgement (`WriteFault::AckThenHang`).
    hanging: bool,
}

/// A destination database in memory (see the module doc).
#[derive(Clone, Default)]
pub struct MemoryDestination {
    state: Arc<Mutex<DestState>>,
}

impl MemoryDestination {
    /// The next write calls to `table` fail as `faults` say, in order.
    pub fn fail_writes(&self, table: &str, faults: &[WriteFault]) {
        self.state.lock().unwrap().faults.entry(table.into()).or_default().extend(faults.iter().copied());
    }

    /// The rows of `table` as `FINAL` with `_peerdb_is_deleted = 0` reads
    /// them: per key, the highest version, unless it is a delete.
    pub fn final_rows(&self, table: &str) -> BTreeMap<i64, Vec<Cell>> {
        let s = self.state.lock().unwrap();
        let Some(t) = s.tables.get(table) else { return BTreeMap::new() };
        final_of(t)
    }

    /// The column names of `table`.
    pub fn columns(&self, table: &str) -> Vec<String> {
        self.state.lock().unwrap().tables.get(table).map(|t| t.columns.clone()).unwrap_or_default()
    }

    /// Every acknowledged write so far, in order.
    pub fn writes(&self) -> Vec<(String, Vec<RowChange>)> {
        self.state.lock().unwrap().writes.clone()
    }

    /// Waits until a write hangs after its acknowledgement.
    pub async fn wait_hanging(&self) {
        while !self.state.lock().unwrap().hanging {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Whether `table` exists.
    pub fn has_table(&self, table: &str) -> bool {
        self.state.lock().unwrap().tables.contains_key(table)
    }
}

impl MemoryDestination {
    /// `write` with the state locked: the rows the fault lets through, then the acknowledgement.
    fn write_locked(
        &self,
        s: &mut DestState,
        mapping: &TableMapping,
        table: &str,
        changes: &[RowChange],
        fault: Option<WriteFault>,
    ) -> Result<(), SinkError> {
        let Some(t) = s.tables.get_mut(table) else {
            return Err(SinkError::Server { code: 60, message: format!("Table {table} does not exist. (UNKNOWN_TABLE)") });
        };
        let expected: Vec<&String> = mapping.columns.iter().map(|c| &c.name).collect();
        if t.columns.iter().collect::<Vec<_>>() != expected {
            return Err(SinkError::Server { code: 16, message: format!("No such column in table {table} (NO_SUCH_COLUMN_IN_TABLE)") });
        }
        let keep = match fault {
            None | Some(WriteFault::AckThenHang) => changes.len(),
            Some(WriteFault::Transient) => return Err(transient("write refused")),
            Some(WriteFault::HalfThenTransient) => changes.len() / 2,
            Some(WriteFault::TableLevel) => {
                return Err(SinkError::Server { code: 53, message: format!("Type mismatch writing {table} (TYPE_MISMATCH, injected)") })
            }
        };
        for c in &changes[..keep] {
            t.rows.push((c.cells.clone(), c.version, c.op == ChangeOp::Delete));
        }
        if keep < changes.len() {
            return Err(transient("connection reset halfway through an insert"));
        }
        s.writes.push((table.to_string(), changes.to_vec()));
        s.hanging |= matches!(fault, Some(WriteFault::AckThenHang));
        Ok(())
    }
}

fn final_of(t: &DestTable) -> BTreeMap<i64, Vec<Cell>> {
    let mut best: BTreeMap<i64, &(Vec<Cell>, i64, bool)> = BTreeMap::new();
    for r in &t.rows {
        let Cell::Int(k) = r.0[t.key[0]] else { panic!("memory destination: integer keys only") };
        if best.get(&k).is_none_or(|b| r.1 >= b.1) {
            best.insert(k, r);
        }
    }
    best.into_iter().filter(|(_, r)| !r.2).map(|(k, r)| (k, r.0.clone())).collect()
}

fn table_of(mapping: &TableMapping) -> DestTable {
    let columns: Vec<String> = mapping.columns.iter().map(|c| c.name.clone()).collect();
    let key = mapping.source.primary_key.iter().filter_map(|k| columns.iter().position(|c| c == k)).collect();
    DestTable { columns, key, rows: Vec::new(), marker: None }
}

fn transient(what: &str) -> SinkError {
    SinkError::Http { status: Some(503), message: format!("memory destination: {what} (injected)") }
}

#[async_trait]
impl Destination for MemoryDestination {
    async fn ping(&self) -> Result<(), SinkError> {
        Ok(())
    }

    async fn ensure_database(&self) -> Result<(), SinkError> {
        Ok(())
    }

    async fn table_exists(&self, table: &str) -> Result<bool, SinkError> {
        Ok(self.has_table(table))
    }

    async fn create_table(&self, mapping: &TableMapping) -> Result<(), SinkError> {
        self.state.lock().unwrap().tables.entry(mapping.destination.clone()).or_insert_with(|| table_of(mapping));
        Ok(())
    }

    async fn drop_table(&self, table: &str) -> Result<(), SinkError> {
        self.state.lock().unwrap().tables.remove(table);
        Ok(())
    }

    async fn write(&self, mapping: &TableMapping, table: &str, changes: &[RowChange]) -> Result<usize, SinkError> {
        let hang = {
            let mut s = self.state.lock().unwrap();
            let fault = s.faults.get_mut(table).and_then(|f| f.pop_front());
            self.write_locked(&mut s, mapping, table, changes, fault)?;
            fault.is_some_and(|f| matches!(f, WriteFault::AckThenHang))
        };
        if hang {
            std::future::pending::<()>().await;
        }
        Ok(changes.len())
    }

    async fn discard_copy(&self, _mapping: &TableMapping, table: &str, version: i64) -> Result<(), SinkError> {
        if let Some(t) = self.state.lock().unwrap().tables.get_mut(table) {
            t.rows.retain(|r| r.1 != version);
        }
        Ok(())
    }

    async fn alter(&self, table: &str, old: &TableMapping, new: &TableMapping, ops: &[AlterOp]) -> Result<(), SinkError> {
        let mut s = self.state.lock().unwrap();
        let Some(t) = s.tables.get_mut(table) else { return Err(transient("no such table")) };
        let new_cols: Vec<String> = new.columns.iter().map(|c| c.name.clone()).collect();
        if t.columns == new_cols {
            return Ok(()); // a replay finds it done
        }
        // Where each new column's values come from: its old name after the renames.
        let mut origin: HashMap<String, String> = old.columns.iter().map(|c| (c.name.clone(), c.name.clone())).collect();
        for op in ops {
            match op {
                AlterOp::RenameColumn { from, to } | AlterOp::ModifyColumn { old_name: from, new_name: to } => {
                    if let Some(o) = origin.remove(from) {
                        origin.insert(to.clone(), o);
                    }
                }
                AlterOp::DropColumn { name } => {
                    origin.remove(name);
                }
                AlterOp::AddColumn { name, .. } => {
                    origin.remove(name);
                }
            }
        }
        let old_cols = t.columns.clone();
        for row in &mut t.rows {
            row.0 = new_cols
                .iter()
                .map(|c| origin.get(c).and_then(|o| old_cols.iter().position(|x| x == o)).map(|i| row.0[i].clone()).unwrap_or(Cell::Null))
                .collect();
        }
        *t = DestTable { rows: std::mem::take(&mut t.rows), marker: t.marker, ..table_of(new) };
        Ok(())
    }

    async fn truncate(&self, table: &str) -> Result<(), SinkError> {
        if let Some(t) = self.state.lock().unwrap().tables.get_mut(table) {
            t.rows.clear();
        }
        Ok(())
    }

    fn recopy_table(&self, destination: &str) -> String {
        format!("{destination}_recopy")
    }

    async fn begin_recopy(&self, mapping: &TableMapping, version: i64) -> Result<(), SinkError> {
        let t = DestTable { marker: Some(version), ..table_of(mapping) };
        self.state.lock().unwrap().tables.insert(self.recopy_table(&mapping.destination), t);
        Ok(())
    }

    async fn finish_recopy(&self, destination: &str, version: i64) -> Result<(), SinkError> {
        let mut s = self.state.lock().unwrap();
        let recopy = self.recopy_table(destination);
        if s.tables.get(destination).and_then(|t| t.marker) != Some(version) {
            let Some(new) = s.tables.remove(&recopy) else { return Err(transient("no re-copy table")) };
            s.tables.insert(destination.to_string(), new);
        }
        s.tables.remove(&recopy);
        Ok(())
    }

    fn qualified(&self, table: &str) -> String {
        format!("mem.{table}")
    }
}
