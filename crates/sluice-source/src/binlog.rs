//! The binlog reader: a replication connection turned into row changes and commits.
//!
//! Uses `mysql_async`'s binlog stream and
//! `mysql_common`'s event and value decoders. MariaDB's own events (GTID,
//! GTID list, annotate rows, binlog checkpoint) are not decoded by
//! `mysql_common`, so the MariaDB GTID event's fixed 13-byte body is parsed here.
//!
//! Positioning (`ResumeBy`): from a file/offset (COM_BINLOG_DUMP), or from
//! the checkpoint's GTIDs — MySQL's COM_BINLOG_DUMP_GTID with the executed set
//! (tagged GTIDs included), MariaDB's COM_BINLOG_DUMP after
//! `SET @slave_connect_state` — which works on any server of the replication
//! topology. Either way the server first sends a rotate event naming the file
//! it starts in, and checkpoints carry both the file/offset and the GTIDs.
//!
//! MariaDB specifics: `COMPRESSED` columns arrive as the types 140 (BLOB) and 141 (VARCHAR), which
//! `mysql_common` does not know; their table map is rewritten to plain VARCHAR
//! and BLOB (same metadata) and their values are uncompressed here (zlib or raw
//! deflate, see [`mariadb_uncompress`]). MariaDB 11.x leaves generated columns
//! out of UPDATE and DELETE row images even with `binlog_row_image=FULL`: a
//! table whose tracked generated column is missing from an image goes to Error
//! naming the column and the fix (`exclude_columns`); excluded columns may be
//! missing from any image. UUID, INET4 and INET6 columns are `STRING` of 16/4
//! bytes in the table map, MariaDB's VECTOR(n) a binary VARCHAR of 4·n bytes.
//!
//! TIME(n) columns: `mysql_common` 0.37 mis-decodes negative TIME(1)/TIME(2)
//! values with a fraction (an unsigned underflow: a panic in debug builds, a
//! wrong value in release builds). Every table map is therefore rewritten so
//! that TIME2 columns read as raw bytes (as a BIT column of the same width),
//! and `convert` decodes them itself.
//!
//! The table map is the authority for decoding rows. With
//! `binlog_row_metadata=FULL` it names the columns of the row images, their
//! types, signedness, charsets and ENUM/SET labels as they were when the rows
//! were written. Binlog columns are mapped by name onto the recorded definition
//! (which follows the DDL statements of the stream, see `ddl`); text is decoded
//! in the charset the table map gives, ENUM/SET with its labels. When the two
//! disagree in a way that would mis-decode (a column on one side only, another
//! type family, signedness or DECIMAL scale), the table's rows cannot be
//! decoded faithfully: the reader hands on one [`BinlogEvent::TableError`] for
//! that table, naming the column and the position, and skips the table from
//! then on; the other tables keep flowing. So does a row image that cannot be
//! decoded.
//!
//! Transaction boundaries: a transaction starts with `BEGIN` (MySQL) or a
//! MariaDB GTID event without the standalone flag, and ends with an XID event or
//! a `COMMIT` query; any other query event outside a transaction (DDL) is a
//! transaction of its own. Only the position after a commit is ever offered as
//! a checkpoint, so a resume never starts in the middle of a transaction.

use crate::conn::{Flavor, ServerInfo, SourceError};
use crate::convert::{from_binlog, ColKind};
use crate::gtid::{GtidSet, MariaGtidPos};
use futures_util::StreamExt;
use mysql_async::prelude::*;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};
use mysql_common::binlog::events::{EventData, OptionalMetadataField, RowsEventData, TableMapEvent};
use mysql_common::constants::ColumnType;
use sluice_core::schema::TableId;
use sluice_core::spec::ReplicationMechanism;
use sluice_core::types::TableMapping;
use sluice_core::{BinlogPosition, Cell, ChangeOp, Checkpoint, RowChange};
use std::collections::HashMap;
use std::sync::Arc;

/// What the reader hands to the apply loop.
#[derive(Debug)]
pub enum BinlogEvent {
    /// Row changes of one rows event, for the tracked table at `table` (index into the reader's tables).
    Rows { table: usize, changes: Vec<RowChange> },
    /// A transaction ended; a checkpoint at `checkpoint` is safe once everything before it is written.
    Commit { checkpoint: Checkpoint, timestamp: u32 },
    /// A statement (DDL) on a schema that holds tracked tables (`schema`: the
    /// statement's default database). A `Commit` at `checkpoint` follows it.
    Ddl { schema: String, query: String, checkpoint: Checkpoint },
    /// The server is idle (heartbeat). With no transaction open, `checkpoint`
    /// is where the server's binlog stands (the file the heartbeat names, at
    /// its offset): a quiet pipe can move its checkpoint there, e.g. into a
    /// new binlog file after the server restarted, before the old one is purged.
    Heartbeat { checkpoint: Option<Checkpoint> },
    /// The rows of tracked table `table` cannot be decoded (its table map
    /// disagrees with the recorded definition, or a row image is undecodable);
    /// `message` names the table, the column and the binlog position, and says
    /// to resync the table. Handed on once: the reader skips the table's row
    /// events from here on, until `replace_table` or `untrack`. Rows of the
    /// failing event are not handed on; other tables are not affected.
    TableError { table: usize, message: String },
}

/// How often an idle server sends a heartbeat event on the stream.
pub const HEARTBEAT_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// How a table-map id maps onto a tracked table's columns.
struct MappedTable {
    table: usize,
    /// For each binlog column, its position in the mapping's columns (if tracked).
    positions: Vec<Option<usize>>,
    /// Decoders per source column; ENUM/SET labels taken from the table map when it carries them.
    kinds: Vec<ColKind>,
    /// For each binlog column, whether it is a MariaDB `COMPRESSED` column (values to uncompress).
    compressed: Vec<bool>,
    tme: Arc<TableMapEvent<'static>>,
}

enum Gtids {
    None,
    MySql(GtidSet),
    MariaDb(MariaGtidPos),
}

pub struct BinlogReader {
    stream: BinlogStream,
    flavor: Flavor,
    file: String,
    tables: Vec<TableMapping>,
    kinds: Vec<Vec<ColKind>>,
    /// Tables whose rows could not be decoded (a `TableError` was handed on): skipped.
    failed: Vec<bool>,
    /// The server's collations: id → character set name (table maps carry collation ids).
    collations: HashMap<u16, String>,
    by_id: HashMap<TableId, usize>,
    maps: HashMap<u64, Option<MappedTable>>,
    in_txn: bool,
    gtids: Gtids,
    /// The GTID of the transaction being read, applied to `gtids` at its commit.
    pending_gtid: Option<(String, u64, u32, u32)>,
    /// A commit held back while its DDL statement is handed on first.
    pending_commit: Option<BinlogEvent>,
    /// Where this stream started, and how (named in purge errors).
    started_at: Checkpoint,
    resumed_by: ResumeBy,
    /// Bytes of binlog events received so far.
    bytes_read: u64,
    /// The end position of the MySQL TRANSACTION_PAYLOAD event (a compressed
    /// transaction, `binlog_transaction_compression=ON`) whose events are being
    /// read: they carry no position of their own (0), so they take this one.
    payload_end: Option<u32>,
    /// The end offset (in `file`) of the last positioned event read, for messages.
    /// MariaDB 11.x (`binlog_legacy_event_pos=OFF`) writes the events inside a
    /// transaction with position 0; messages about them name this position instead.
    last_pos: u64,
}

/// How a binlog stream is positioned on the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeBy {
    /// The checkpoint's binlog file and offset.
    FilePos,
    /// The checkpoint's GTID set (MySQL) or GTID position (MariaDB).
    Gtid,
}

/// Chooses how to resume from `from` on this server for the pipe's
/// `mechanism`. `auto` takes GTIDs when the server writes them and the
/// checkpoint has some (a checkpoint taken before any GTID existed, or with
/// GTIDs off, can only be resumed by file/offset); `gtid` refuses a server or
/// checkpoint without them, naming the fix.
pub fn resume_by(mechanism: ReplicationMechanism, info: &ServerInfo, from: &Checkpoint) -> Result<ResumeBy, SourceError> {
    let has_gtids = from.gtid_set.as_deref().is_some_and(|g| !g.trim().is_empty());
    match mechanism {
        ReplicationMechanism::FilePos => Ok(ResumeBy::FilePos),
        ReplicationMechanism::Auto => Ok(if info.gtid_mode && has_gtids { ResumeBy::Gtid } else { ResumeBy::FilePos }),
        ReplicationMechanism::Gtid if !info.gtid_mode => Err(SourceError::Config(
            "source.replication_mechanism is gtid but the source has gtid_mode OFF: turn GTIDs on (SET PERSIST \
             enforce_gtid_consistency = ON; then SET PERSIST gtid_mode = OFF_PERMISSIVE, ON_PERMISSIVE, ON in turn) \
             or use replication_mechanism auto or file_pos"
                .into(),
        )),
        ReplicationMechanism::Gtid if from.gtid_set.is_none() => Err(SourceError::Config(format!(
            "source.replication_mechanism is gtid but the checkpoint ({}) was taken without GTIDs (they were off on the \
             source then); use replication_mechanism file_pos, or resync the pipe",
            from.position
        ))),
        // A MariaDB server that never wrote a GTID: the position is the only reference there is.
        ReplicationMechanism::Gtid => Ok(if has_gtids || info.flavor == Flavor::MySql { ResumeBy::Gtid } else { ResumeBy::FilePos }),
    }
}

const MARIADB_GTID_EVENT: u8 = 0xa2;
/// MySQL's compressed transaction (`binlog_transaction_compression=ON`).
const TRANSACTION_PAYLOAD_EVENT: u8 = 40;
const MARIADB_FL_STANDALONE: u8 = 1;
/// MariaDB's compressed events (`log_bin_compress`): QUERY_COMPRESSED and the
/// WRITE/UPDATE/DELETE_ROWS_COMPRESSED events, v1 and v2 (165–171).
const MARIADB_COMPRESSED_EVENTS: std::ops::RangeInclusive<u8> = 0xa5..=0xab;

impl BinlogReader {
    /// Opens a replication stream at `from`, positioned `by` its file/offset or
    /// its GTIDs. `tables` are the tracked tables; changes to any other table are skipped.
    /// `replica_name` is what the source shows for this replica (`SHOW REPLICAS`
    /// Host column), so that `check_server_id` can tell this pipe's own stale
    /// registration from another replica's.
    pub async fn start(
        mut conn: Conn,
        flavor: Flavor,
        server_id: u32,
        replica_name: &str,
        from: &Checkpoint,
        by: ResumeBy,
        tables: Vec<TableMapping>,
    ) -> Result<Self, SourceError> {
        check_server_id(&mut conn, flavor, server_id, replica_name).await?;
        // MySQL 8.4+ reads @source_*, older servers and MariaDB @master_*; setting both is harmless.
        let period_ns = HEARTBEAT_PERIOD.as_nanos();
        conn.query_drop(format!(
            "SET @master_binlog_checksum = 'CRC32', @source_binlog_checksum = 'CRC32', \
             @master_heartbeat_period = {period_ns}, @source_heartbeat_period = {period_ns}"
        ))
        .await?;
        if flavor == Flavor::MariaDb {
            // Without capability 4 MariaDB replaces its GTID events by dummy queries.
            conn.query_drop("SET @mariadb_slave_capability = 4").await?;
        }
        // The checkpoint's GTIDs, parsed once: the stream is positioned from them, and they are advanced per commit.
        let gtids = match (flavor, &from.gtid_set) {
            (Flavor::MySql, Some(s)) => Gtids::MySql(GtidSet::parse(s).map_err(SourceError::Decode)?),
            (Flavor::MariaDb, Some(s)) => Gtids::MariaDb(MariaGtidPos::parse(s).map_err(SourceError::Decode)?),
            (Flavor::MariaDb, None) => Gtids::MariaDb(MariaGtidPos::default()),
            _ => Gtids::None,
        };
        let mut request = BinlogStreamRequest::new(server_id).with_hostname(replica_name.as_bytes());
        match (by, &gtids) {
            (ResumeBy::FilePos, _) => request = request.with_filename(from.position.file.as_bytes()).with_pos(from.position.pos),
            (ResumeBy::Gtid, Gtids::MySql(set)) => {
                request = request.with_gtid().with_gtid_set(set.sids().map_err(SourceError::Decode)?).with_pos(4);
            }
            (ResumeBy::Gtid, Gtids::MariaDb(pos)) => {
                // Non-strict: a GTID missing from this server's binlog (filtered, or a
                // lost transaction) is an error the server reports, not a silent skip.
                conn.exec_drop(
                    "SET @slave_connect_state = ?, @slave_gtid_strict_mode = 0, @slave_gtid_ignore_duplicates = 0",
                    (pos.to_string(),),
                )
                .await?;
                request = request.with_pos(4);
            }
            (ResumeBy::Gtid, Gtids::None) => {
                return Err(SourceError::Config(format!("cannot resume by GTIDs: the checkpoint ({}) has none", from.position)))
            }
        }
        let collations = collations(&mut conn).await;
        let stream = conn.get_binlog_stream(request).await.map_err(|e| stream_error(e, from, by, &from.position.to_string()))?;
        let kinds = tables.iter().map(|t| t.source.columns.iter().map(ColKind::of).collect()).collect();
        let by_id = tables.iter().enumerate().map(|(i, t)| (t.source.id.clone(), i)).collect();
        Ok(Self {
            stream,
            flavor,
            failed: vec![false; tables.len()],
            collations,
            // Positioned by GTIDs, the file is known from the server's first (rotate) event.
            file: if by == ResumeBy::FilePos { from.position.file.clone() } else { String::new() },
            tables,
            kinds,
            by_id,
            maps: HashMap::new(),
            in_txn: false,
            gtids,
            pending_gtid: None,
            pending_commit: None,
            started_at: from.clone(),
            resumed_by: by,
            bytes_read: 0,
            payload_end: None,
            last_pos: if by == ResumeBy::FilePos { from.position.pos } else { 4 },
        })
    }

    pub fn tables(&self) -> &[TableMapping] {
        &self.tables
    }

    /// Bytes of binlog events received since the stream started.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Follows a schema change of tracked table `i` (or its rename): row events
    /// from here on are decoded with `mapping`. Events before the change were
    /// decoded with the old one; MySQL and MariaDB send a fresh table map after
    /// a DDL, which is mapped by column name against the new definition.
    pub fn replace_table(&mut self, i: usize, mapping: TableMapping) {
        let old_id = self.tables[i].source.id.clone();
        self.by_id.remove(&old_id);
        self.by_id.insert(mapping.source.id.clone(), i);
        self.kinds[i] = mapping.source.columns.iter().map(ColKind::of).collect();
        self.tables[i] = mapping;
        self.failed[i] = false;
        self.forget_maps(i);
    }

    /// Stops decoding table `i` (its changes are skipped from here on).
    pub fn untrack(&mut self, i: usize) {
        let id = self.tables[i].source.id.clone();
        if self.by_id.get(&id) == Some(&i) {
            self.by_id.remove(&id);
        }
        self.failed[i] = false;
        self.forget_maps(i);
    }

    /// Marks table `i` undecodable and makes the event that says so.
    fn table_error(&mut self, i: usize, message: String) -> BinlogEvent {
        tracing::warn!("{message}");
        self.failed[i] = true;
        self.maps.retain(|_, m| m.as_ref().is_none_or(|m| m.table != i));
        BinlogEvent::TableError { table: i, message }
    }

    fn forget_maps(&mut self, i: usize) {
        self.maps.retain(|_, m| m.as_ref().is_none_or(|m| m.table != i));
        // Table ids not mapped to a tracked table may now be (a renamed table): look again.
        self.maps.retain(|_, m| m.is_some());
    }

    /// Where the stream stands, for messages: the last file and offset read.
    fn where_now(&self) -> String {
        if self.file.is_empty() {
            format!("the stream's start ({})", self.started_at.position)
        } else {
            format!("{}:{} (the end of the event read last)", self.file, self.last_pos)
        }
    }

    fn gtid_text(&self) -> Option<String> {
        match &self.gtids {
            Gtids::None => None,
            Gtids::MySql(s) => Some(s.to_string()),
            Gtids::MariaDb(p) => Some(p.to_string()),
        }
    }

    fn commit(&mut self, next_pos: u32, timestamp: u32) -> BinlogEvent {
        self.in_txn = false;
        if let Some((key, gno, domain, server)) = self.pending_gtid.take() {
            match &mut self.gtids {
                Gtids::MySql(s) => s.add(&key, gno),
                Gtids::MariaDb(p) => p.set(domain, server, gno),
                Gtids::None => {}
            }
        }
        BinlogEvent::Commit {
            checkpoint: Checkpoint { position: BinlogPosition::new(self.file.clone(), next_pos as u64), gtid_set: self.gtid_text() },
            timestamp,
        }
    }

    /// The next event worth handing on; `Ok(None)` when the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<BinlogEvent>, SourceError> {
        if let Some(c) = self.pending_commit.take() {
            return Ok(Some(c));
        }
        loop {
            let Some(event) = self.stream.next().await else { return Ok(None) };
            let event = event.map_err(|e| stream_error(e, &self.started_at, self.resumed_by, &self.where_now()))?;
            let header = event.header();
            self.bytes_read += header.event_size() as u64;
            let raw_type = header.event_type_raw();
            if raw_type == TRANSACTION_PAYLOAD_EVENT {
                // Its decompressed events follow, each with log_pos 0.
                self.payload_end = Some(header.log_pos());
                continue;
            }
            let log_pos = match (header.log_pos(), self.payload_end) {
                (0, Some(end)) => end,
                (pos, _) => {
                    self.payload_end = None;
                    pos
                }
            };
            // Where the event starts, for messages (see `last_pos`).
            let event_start = if log_pos == 0 { self.last_pos } else { u64::from(log_pos.saturating_sub(header.event_size())) };
            if log_pos > 0 {
                self.last_pos = u64::from(log_pos);
            }
            if raw_type == MARIADB_GTID_EVENT {
                let data = event.data();
                if data.len() >= 13 {
                    let seq = u64::from_le_bytes(data[0..8].try_into().unwrap());
                    let domain = u32::from_le_bytes(data[8..12].try_into().unwrap());
                    self.pending_gtid = Some((String::new(), seq, domain, header.server_id()));
                    self.in_txn = data[12] & MARIADB_FL_STANDALONE == 0;
                }
                continue;
            }
            if MARIADB_COMPRESSED_EVENTS.contains(&raw_type) {
                // Skipping it would lose its rows: refuse instead.
                return Err(SourceError::Config(format!(
                    "the source wrote a compressed binlog event (MariaDB log_bin_compress=ON) at {}:{log_pos}, which Sluice cannot \
                     read; SET GLOBAL log_bin_compress = OFF (and remove it from my.cnf), then resync the pipe",
                    self.file
                )));
            }
            let data = match event.read_data() {
                Ok(Some(d)) => d,
                Ok(None) => continue, // other MariaDB-specific events
                Err(e) => return Err(SourceError::Decode(format!("undecodable binlog event at {}:{}: {e}", self.file, log_pos))),
            };
            match data {
                EventData::RotateEvent(r) => {
                    self.file = rotate_file_name(r.name_raw());
                    // A real rotation (not the stream's initial fake one) is a safe checkpoint.
                    if header.timestamp() != 0 && !self.in_txn {
                        let pos = r.position() as u32;
                        return Ok(Some(self.commit(pos, header.timestamp())));
                    }
                }
                EventData::AnonymousGtidEvent(_) if self.resumed_by == ResumeBy::Gtid => {
                    let at = format!("{}:{}", self.file, log_pos.saturating_sub(header.event_size()));
                    return Err(anonymous_in_gtid_stream(&at));
                }
                EventData::AnonymousGtidEvent(_) if matches!(self.gtids, Gtids::MySql(_)) => {
                    // Read by file/offset, the position stays exact; but the GTID set no longer
                    // says what was read (this transaction has no GTID). Checkpoints stop
                    // carrying it, so that no later restart resumes by a stale set.
                    tracing::warn!(
                        "the source wrote a transaction without a GTID at {}:{} (gtid_mode is no longer ON); checkpoints \
                         from here on carry only the binlog file and offset (a move to another server needs a resync)",
                        self.file,
                        log_pos.saturating_sub(header.event_size())
                    );
                    self.gtids = Gtids::None;
                }
                EventData::GtidEvent(g) => {
                    let uuid = format_uuid(&g.sid());
                    let key = match g.tag() {
                        Some(tag) => format!("{uuid}:{}", tag.as_str().to_ascii_lowercase()),
                        None => uuid,
                    };
                    self.pending_gtid = Some((key, g.gno(), 0, 0));
                }
                EventData::QueryEvent(q) => {
                    let query = q.query();
                    let trimmed = query.trim();
                    if trimmed.eq_ignore_ascii_case("BEGIN") {
                        self.in_txn = true;
                    } else if trimmed.eq_ignore_ascii_case("COMMIT") {
                        return Ok(Some(self.commit(log_pos, header.timestamp())));
                    } else if !self.in_txn {
                        let schema = q.schema().into_owned();
                        let touches = self.tables.iter().any(|t| t.source.id.schema == schema)
                            || self.tables.iter().any(|t| trimmed.contains(&t.source.id.table));
                        let commit = self.commit(log_pos, header.timestamp());
                        if touches {
                            // Hand the DDL on first; the apply loop sees the commit on the next call.
                            let checkpoint = match &commit {
                                BinlogEvent::Commit { checkpoint, .. } => checkpoint.clone(),
                                _ => unreachable!("commit() returns a Commit"),
                            };
                            self.pending_commit = Some(commit);
                            return Ok(Some(BinlogEvent::Ddl { schema, query: trimmed.to_string(), checkpoint }));
                        }
                        return Ok(Some(commit));
                    }
                }
                EventData::XidEvent(_) => return Ok(Some(self.commit(log_pos, header.timestamp()))),
                EventData::TableMapEvent(tme) => {
                    let id = tme.table_id();
                    let name = TableId::new(tme.database_name(), tme.table_name());
                    let Some(table) = self.by_id.get(&name).copied().filter(|t| !self.failed[*t]) else {
                        self.maps.insert(id, None);
                        continue;
                    };
                    let at = BinlogPosition::new(self.file.clone(), event_start);
                    match self.map_table(table, tme.into_owned(), &at) {
                        Ok(mapped) => {
                            self.maps.insert(id, Some(mapped));
                        }
                        Err(message) => {
                            self.maps.insert(id, None);
                            return Ok(Some(self.table_error(table, message)));
                        }
                    }
                }
                EventData::RowsEvent(rows) => {
                    let base = BinlogPosition::new(self.file.clone(), event_start);
                    match self.decode_rows(&rows, &base) {
                        Ok(Some(out)) => return Ok(Some(out)),
                        Ok(None) => {}
                        Err((table, message)) => return Ok(Some(self.table_error(table, message))),
                    }
                }
                EventData::HeartbeatEvent => {
                    // The body names the file the server is reading (possibly followed by a checksum).
                    let named = rotate_file_name(event.data());
                    let checkpoint =
                        (!self.in_txn && self.pending_gtid.is_none() && !self.file.is_empty() && named == self.file && log_pos > 4).then(
                            || Checkpoint { position: BinlogPosition::new(self.file.clone(), log_pos as u64), gtid_set: self.gtid_text() },
                        );
                    return Ok(Some(BinlogEvent::Heartbeat { checkpoint }));
                }
                _ => {}
            }
        }
    }

    /// Maps a table map of tracked table `table` onto its recorded definition
    /// (see the module comment); `Err` says why its rows cannot be decoded.
    fn map_table(&self, table: usize, tme: TableMapEvent<'static>, at: &BinlogPosition) -> Result<MappedTable, String> {
        let mapping = &self.tables[table];
        let src = &mapping.source;
        let id = &src.id;
        let resync = "; resync the table";
        let (tme, compressed) = compressed_as_plain(tme).map_err(|e| format!("table map of {id} at {at} cannot be read: {e}{resync}"))?;
        let meta = TableMeta::read(&tme, self.flavor).map_err(|e| format!("table map of {id} at {at} cannot be read: {e}{resync}"))?;
        let count = tme.columns_count() as usize;
        // For each binlog column, the recorded source column it is.
        let source_of: Vec<usize> = if meta.names.len() == count {
            let mut v = Vec::with_capacity(count);
            for (i, n) in meta.names.iter().enumerate() {
                // Exact name first; MySQL column names are case-insensitive.
                let found = src.columns.iter().position(|c| &c.name == n);
                let found = found.or_else(|| src.columns.iter().position(|c| c.name.eq_ignore_ascii_case(n)));
                match found {
                    Some(s) => v.push(s),
                    None => {
                        return Err(format!(
                            "column {n} (number {} in the row images) of table {id} at {at} is not in the table's recorded \
                             definition (a schema change was not followed){resync}",
                            i + 1
                        ))
                    }
                }
            }
            v
        } else if meta.names.is_empty() && count == src.columns.len() {
            // No names: binlog columns are the recorded source columns, in order.
            (0..count).collect()
        } else if meta.names.is_empty() {
            return Err(format!(
                "table {id} has {count} columns in the binlog at {at} but {} were recorded, and the binlog carries no column names \
                 (set binlog_row_metadata=FULL){resync}",
                src.columns.len()
            ));
        } else {
            return Err(format!("the table map of {id} at {at} names {} of its {count} columns{resync}", meta.names.len()));
        };
        for c in &mapping.columns {
            if !source_of.contains(&c.source_index) {
                return Err(format!(
                    "column {} of table {id} is in the table's recorded definition but not in the binlog's row images at {at} \
                     (the table changed shape without a schema change Sluice followed){resync}",
                    c.name
                ));
            }
        }
        // A primary key the table map states must be the recorded key (a table keyed by a
        // unique index has none in the table map).
        if !meta.primary_key.is_empty() && !src.primary_key.is_empty() {
            let binlog_key: Vec<&str> =
                meta.primary_key.iter().filter_map(|i| source_of.get(*i)).map(|s| src.columns[*s].name.as_str()).collect();
            let same = binlog_key.len() == src.primary_key.len()
                && binlog_key.iter().zip(&src.primary_key).all(|(a, b)| a.eq_ignore_ascii_case(b));
            if !same {
                return Err(format!(
                    "the primary key of table {id} is ({}) in the binlog at {at} but ({}) in the table's recorded definition \
                     (a schema change was not followed){resync}",
                    binlog_key.join(", "),
                    src.primary_key.join(", ")
                ));
            }
        }
        let positions: Vec<Option<usize>> = source_of.iter().map(|s| mapping.columns.iter().position(|c| c.source_index == *s)).collect();
        let mut kinds = self.kinds[table].clone();
        for (i, pos) in positions.iter().enumerate() {
            let Some(j) = *pos else { continue };
            let s = source_of[i];
            let col = &src.columns[s];
            let ty = tme.get_column_type(i).map_err(|e| format!("column {} of table {id} at {at}: {e}{resync}", col.name))?;
            let Some(ty) = ty else { continue };
            let differs = |what: String| {
                format!(
                    "column {} of table {id} is {what} in the binlog at {at} but {} in the table's recorded definition \
                     (a schema change was not followed){resync}",
                    mapping.columns[j].name, col.column_type
                )
            };
            if !type_matches(&col.data_type, ty) {
                return Err(differs(format!("{ty:?}").trim_start_matches("MYSQL_TYPE_").to_ascii_lowercase()));
            }
            // MariaDB's UUID / INET6 / INET4 are fixed-size binary strings in the table map.
            let fixed = match col.data_type.as_str() {
                "uuid" | "inet6" => Some(16u8),
                "inet4" => Some(4),
                _ => None,
            };
            if let Some(len) = fixed {
                let stored = tme.get_column_metadata(i).and_then(|m| m.get(1)).copied();
                if stored.is_some_and(|l| l != len) {
                    return Err(differs(format!("a binary string of {} bytes", stored.unwrap_or_default())));
                }
            }
            if let Some(unsigned) = meta.unsigned.get(i).copied().flatten() {
                if is_integer(ty) && unsigned != col.unsigned() {
                    return Err(differs(if unsigned { "unsigned".into() } else { "signed".into() }));
                }
            }
            if ty == ColumnType::MYSQL_TYPE_NEWDECIMAL {
                let scale = tme.get_column_metadata(i).and_then(|m| m.get(1)).map(|s| *s as u32);
                if scale.is_some() && col.numeric_scale.is_some() && scale != col.numeric_scale {
                    return Err(differs(format!("decimal with scale {}", scale.unwrap_or_default())));
                }
            }
            // Text in the charset the row was written in; ENUM/SET labels as the table map stores them.
            let charset = meta.charsets.get(i).copied().flatten().and_then(|c| self.collations.get(&c));
            let enc = match charset.map(|cs| crate::convert::charset_encoding(cs)) {
                Some(Ok(enc)) => Some(enc),
                Some(Err(e)) => return Err(format!("column {} of table {id} at {at}: {e}", col.name)),
                None => None,
            };
            match &mut kinds[s] {
                ColKind::Bytes { enc: e, .. } => {
                    if let Some(enc) = enc {
                        *e = enc;
                    }
                }
                ColKind::Enum(values, e) | ColKind::Set(values, e) => {
                    if let Some(enc) = enc {
                        *e = enc;
                    }
                    if let Some(labels) = meta.labels.get(i).cloned().flatten() {
                        *values = labels.into_iter().map(|l| crate::convert::text_to_utf8(*e, l)).collect();
                    }
                }
                _ => {}
            }
        }
        let tme = time2_as_raw_bytes(tme).map_err(|e| format!("table map of {id} at {at}: {e}{resync}"))?;
        Ok(MappedTable { table, positions, kinds, compressed, tme: Arc::new(tme) })
    }

    /// The row changes of a rows event of a tracked table; `Err((table, message))`
    /// when a row image cannot be decoded.
    fn decode_rows(&self, rows: &RowsEventData<'_>, base: &BinlogPosition) -> Result<Option<BinlogEvent>, (usize, String)> {
        let Some(Some(mapped)) = self.maps.get(&rows.table_id()) else { return Ok(None) };
        if self.failed[mapped.table] {
            return Ok(None);
        }
        let mapping = &self.tables[mapped.table];
        let kinds = &mapped.kinds;
        let key = mapping.identity_positions();
        let ncols = mapping.columns.len();
        let fail = |msg: String| (mapped.table, format!("table {} at {base}: {msg}; resync the table", mapping.source.id));
        // Rows must hold every tracked column: a session (or server) with binlog_row_image
        // MINIMAL/NOBLOB leaves columns out, and so does MariaDB 11.x with generated
        // columns in UPDATE/DELETE images. Values of an image are those of its present
        // columns, in order (`image_index`); columns the pipe excludes may be missing.
        let count = mapped.positions.len();
        let before_has: Vec<bool> = match rows.columns_before_image() {
            Some(b) => (0..count).map(|i| b.get(i).is_some_and(|x| *x)).collect(),
            None => vec![true; count],
        };
        let after_has: Vec<bool> = match rows.columns_after_image() {
            Some(b) => (0..count).map(|i| b.get(i).is_some_and(|x| *x)).collect(),
            None => vec![true; count],
        };
        let missing: Vec<usize> = (0..count).filter(|i| mapped.positions[*i].is_some() && !(before_has[*i] && after_has[*i])).collect();
        if let Some(first) = missing.first() {
            let generated: Vec<&str> = missing
                .iter()
                .filter_map(|i| mapped.positions[*i])
                .map(|j| &mapping.source.columns[mapping.columns[j].source_index])
                .filter(|c| c.extra.to_ascii_uppercase().contains("GENERATED"))
                .map(|c| c.name.as_str())
                .collect();
            if generated.len() == missing.len() && self.flavor == Flavor::MariaDb {
                return Err(fail(format!(
                    "MariaDB leaves the generated column(s) {} out of UPDATE and DELETE row images (MariaDB 11.x does so even with \
                     binlog_row_image=FULL), so their new values never reach the binlog; add them to the table's exclude_columns \
                     (compute them in ClickHouse instead)",
                    generated.join(", ")
                )));
            }
            let name = mapped.positions[*first].map(|j| mapping.columns[j].name.clone()).unwrap_or_default();
            return Err(fail(format!(
                "a row image lacks column {name}: it was written with binlog_row_image MINIMAL or NOBLOB (a global or session setting); \
                 SET PERSIST binlog_row_image = 'FULL' (MariaDB: SET GLOBAL and my.cnf) and make sure no session sets it otherwise"
            )));
        }
        let image_index = |has: &[bool]| -> Vec<Option<usize>> {
            let mut next = 0;
            has.iter()
                .map(|h| {
                    h.then(|| {
                        next += 1;
                        next - 1
                    })
                })
                .collect()
        };
        let (before_at, after_at) = (image_index(&before_has), image_index(&after_has));
        if matches!(rows, RowsEventData::PartialUpdateRowsEvent(_)) {
            return Err(fail(
                "a partial JSON update (binlog_row_value_options=PARTIAL_JSON) cannot be applied without the old document; \
                 SET PERSIST binlog_row_value_options = ''"
                    .into(),
            ));
        }
        let to_cells = |mut row: mysql_common::binlog::row::BinlogRow, at: &[Option<usize>]| -> Result<Vec<Cell>, (usize, String)> {
            let mut cells = vec![Cell::Null; ncols];
            for (i, pos) in mapped.positions.iter().enumerate() {
                if let (Some(j), Some(k)) = (*pos, at[i]) {
                    let col = &mapping.source.columns[mapping.columns[j].source_index];
                    let mut value = row.take(k);
                    if mapped.compressed[i] {
                        if let Some(mysql_common::binlog::value::BinlogValue::Value(mysql_async::Value::Bytes(b))) = &value {
                            let plain = mariadb_uncompress(b).map_err(|e| fail(format!("column {}: {e}", col.name)))?;
                            value = Some(mysql_common::binlog::value::BinlogValue::Value(mysql_async::Value::Bytes(plain)));
                        }
                    }
                    cells[j] = from_binlog(col, &kinds[mapping.columns[j].source_index], value).map_err(|e| fail(e.to_string()))?;
                }
            }
            Ok(cells)
        };
        let is_update = matches!(
            rows,
            RowsEventData::UpdateRowsEvent(_) | RowsEventData::UpdateRowsEventV1(_) | RowsEventData::PartialUpdateRowsEvent(_)
        );
        let mut changes = Vec::new();
        // Versions are stamped by the engine's version clock.
        let mut push = |op, cells| -> Result<(), (usize, String)> {
            changes.push(RowChange { op, version: 0, cells });
            Ok(())
        };
        for row in rows.rows(&mapped.tme) {
            let (before, after) = row.map_err(|e| fail(format!("a row image cannot be decoded: {e}")))?;
            let before = before.map(|r| to_cells(r, &before_at)).transpose()?;
            let after = after.map(|r| to_cells(r, &after_at)).transpose()?;
            match (before, after) {
                (Some(b), Some(a)) if is_update => {
                    if key.iter().any(|k| b[*k] != a[*k]) {
                        push(ChangeOp::Delete, b)?;
                    }
                    push(ChangeOp::Upsert, a)?;
                }
                (Some(b), None) => push(ChangeOp::Delete, b)?,
                (None, Some(a)) => push(ChangeOp::Upsert, a)?,
                (Some(_), Some(a)) => push(ChangeOp::Upsert, a)?,
                (None, None) => {}
            }
        }
        Ok(Some(BinlogEvent::Rows { table: mapped.table, changes }))
    }
}

/// The labels of one ENUM or SET column, as stored.
type Labels = Vec<Vec<u8>>;

/// What a table map's optional metadata (`binlog_row_metadata=FULL`) says, per binlog column.
struct TableMeta {
    /// Column names; empty without FULL metadata.
    names: Vec<String>,
    /// Integer and other numeric columns: whether unsigned (`None`: not numeric, or not said).
    unsigned: Vec<Option<bool>>,
    /// Character, ENUM and SET columns: their collation id (`None`: not said).
    charsets: Vec<Option<u16>>,
    /// ENUM and SET columns: their labels as stored.
    labels: Vec<Option<Labels>>,
    /// Binlog column numbers of the primary key, in key order; empty when not said (or no primary key).
    primary_key: Vec<usize>,
}

impl TableMeta {
    fn read(tme: &TableMapEvent<'_>, flavor: Flavor) -> Result<TableMeta, String> {
        let count = tme.columns_count() as usize;
        let mut names = Vec::new();
        let mut signedness: Vec<bool> = Vec::new();
        let mut primary_key: Vec<usize> = Vec::new();
        // ENUM (SET) labels as stored, one list per ENUM (SET) column in column order.
        let (mut enum_labels, mut set_labels): (Vec<Labels>, Vec<Labels>) = (Vec::new(), Vec::new());
        let (mut text_cs, mut enum_cs) = (Charsets::None, Charsets::None);
        for field in tme.iter_optional_meta() {
            match field.map_err(|e| e.to_string())? {
                OptionalMetadataField::ColumnName(n) => {
                    for name in n.iter_names() {
                        names.push(name.map_err(|e| e.to_string())?.name().into_owned());
                    }
                }
                OptionalMetadataField::Signedness(bits) => signedness = bits.iter().by_vals().collect(),
                OptionalMetadataField::EnumStrValue(v) => {
                    for col in v.iter_values() {
                        enum_labels.push(col.map_err(|e| e.to_string())?.values().iter().map(|l| l.value_raw().to_vec()).collect());
                    }
                }
                OptionalMetadataField::SetStrValue(v) => {
                    for col in v.iter_values() {
                        set_labels.push(col.map_err(|e| e.to_string())?.values().iter().map(|l| l.value_raw().to_vec()).collect());
                    }
                }
                OptionalMetadataField::SimplePrimaryKey(k) => {
                    for i in k.iter_indexes() {
                        primary_key.push(i.map_err(|e| e.to_string())? as usize);
                    }
                }
                OptionalMetadataField::PrimaryKeyWithPrefix(k) => {
                    for c in k.iter_keys() {
                        primary_key.push(c.map_err(|e| e.to_string())?.column_index() as usize);
                    }
                }
                OptionalMetadataField::DefaultCharset(d) => text_cs = Charsets::default_form(&d)?,
                OptionalMetadataField::ColumnCharset(c) => text_cs = Charsets::column_form(&c)?,
                OptionalMetadataField::EnumAndSetDefaultCharset(d) => enum_cs = Charsets::default_form(&d)?,
                OptionalMetadataField::EnumAndSetColumnCharset(c) => enum_cs = Charsets::column_form(&c)?,
                _ => {}
            }
        }
        let types: Vec<Option<ColumnType>> = (0..count).map(|i| tme.get_column_type(i).ok().flatten()).collect();
        let n_text = types.iter().filter(|t| t.is_some_and(|t| is_character(&t, flavor))).count();
        let n_enum = types.iter().filter(|t| matches!(t, Some(ColumnType::MYSQL_TYPE_ENUM | ColumnType::MYSQL_TYPE_SET))).count();
        // Charsets whose count does not fit the columns are not used (the recorded ones are).
        let text_cs = if text_cs.fits(n_text) { text_cs } else { Charsets::None };
        let enum_cs = if enum_cs.fits(n_enum) { enum_cs } else { Charsets::None };
        let (mut k_num, mut k_text, mut k_enum) = (0, 0, 0);
        let (mut next_enum, mut next_set) = (enum_labels.into_iter(), set_labels.into_iter());
        let mut meta = TableMeta { names, unsigned: Vec::new(), charsets: Vec::new(), labels: Vec::new(), primary_key };
        for ty in &types {
            let (mut unsigned, mut charset, mut labels) = (None, None, None);
            match ty {
                Some(t) if is_numeric(t) => {
                    unsigned = signedness.get(k_num).copied();
                    k_num += 1;
                }
                Some(t) if is_character(t, flavor) => {
                    charset = text_cs.get(k_text);
                    k_text += 1;
                }
                Some(t @ (ColumnType::MYSQL_TYPE_ENUM | ColumnType::MYSQL_TYPE_SET)) => {
                    charset = enum_cs.get(k_enum);
                    k_enum += 1;
                    labels = if *t == ColumnType::MYSQL_TYPE_ENUM { next_enum.next() } else { next_set.next() };
                }
                _ => {}
            }
            meta.unsigned.push(unsigned);
            meta.charsets.push(charset);
            meta.labels.push(labels);
        }
        Ok(meta)
    }
}

/// A table map's charsets of one group of columns (character columns, or ENUM/SET columns).
enum Charsets {
    None,
    /// `DEFAULT_CHARSET`: one collation for all but the listed (index in the group, collation).
    Default(u16, Vec<(usize, u16)>),
    /// `COLUMN_CHARSET`: one collation per column of the group.
    Column(Vec<u16>),
}

impl Charsets {
    fn default_form(d: &mysql_common::binlog::events::DefaultCharset<'_>) -> Result<Charsets, String> {
        let others = d.iter_non_default().map(|c| c.map(|c| (c.column_index() as usize, c.charset()))).collect::<Result<_, _>>();
        Ok(Charsets::Default(d.default_charset(), others.map_err(|e: std::io::Error| e.to_string())?))
    }

    fn column_form(c: &mysql_common::binlog::events::ColumnCharsets<'_>) -> Result<Charsets, String> {
        Ok(Charsets::Column(c.iter_charsets().collect::<Result<_, _>>().map_err(|e: std::io::Error| e.to_string())?))
    }

    /// Whether the charsets can be those of `n` columns.
    fn fits(&self, n: usize) -> bool {
        match self {
            Charsets::None => true,
            Charsets::Default(_, others) => others.iter().all(|(i, _)| *i < n),
            Charsets::Column(v) => v.len() == n,
        }
    }

    /// The collation of the `k`-th column of the group.
    fn get(&self, k: usize) -> Option<u16> {
        match self {
            Charsets::None => None,
            Charsets::Default(d, others) => Some(others.iter().find(|(i, _)| *i == k).map(|(_, c)| *c).unwrap_or(*d)),
            Charsets::Column(v) => v.get(k).copied(),
        }
    }
}

/// Types the table map gives signedness for (MySQL's and MariaDB's `is_numeric_type`).
fn is_numeric(t: &ColumnType) -> bool {
    use ColumnType::*;
    is_integer(*t) || matches!(t, MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE)
}

fn is_integer(t: ColumnType) -> bool {
    use ColumnType::*;
    matches!(t, MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG | MYSQL_TYPE_LONGLONG)
}

/// Types the table map gives a charset for, besides ENUM/SET (by real type). MariaDB counts
/// GEOMETRY among them, MySQL 9 does not but counts VECTOR (as their `mysqlbinlog` tools do).
fn is_character(t: &ColumnType, flavor: Flavor) -> bool {
    use ColumnType::*;
    match t {
        MYSQL_TYPE_STRING
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_BLOB
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB => true,
        MYSQL_TYPE_GEOMETRY => flavor == Flavor::MariaDb,
        MYSQL_TYPE_VECTOR => flavor == Flavor::MySql,
        _ => false,
    }
}

/// Whether a binlog column of type `t` can hold values of a recorded column of
/// `data_type` as decoded for it (same integer width, same family). Types
/// without a known binlog form match any.
fn type_matches(data_type: &str, t: ColumnType) -> bool {
    use ColumnType::*;
    let blob = matches!(t, MYSQL_TYPE_BLOB | MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB);
    match data_type {
        "tinyint" => t == MYSQL_TYPE_TINY,
        "smallint" => t == MYSQL_TYPE_SHORT,
        "mediumint" => t == MYSQL_TYPE_INT24,
        "int" | "integer" => t == MYSQL_TYPE_LONG,
        "bigint" => t == MYSQL_TYPE_LONGLONG,
        "float" => t == MYSQL_TYPE_FLOAT,
        "double" | "real" => t == MYSQL_TYPE_DOUBLE,
        "decimal" | "numeric" => matches!(t, MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL),
        "bit" => t == MYSQL_TYPE_BIT,
        "year" => t == MYSQL_TYPE_YEAR,
        "date" => matches!(t, MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE),
        "datetime" => matches!(t, MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2),
        "timestamp" => matches!(t, MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2),
        "time" => matches!(t, MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2),
        "char" | "binary" | "varchar" | "varbinary" => matches!(t, MYSQL_TYPE_STRING | MYSQL_TYPE_VAR_STRING | MYSQL_TYPE_VARCHAR),
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob" | "longblob" => blob,
        "json" => t == MYSQL_TYPE_JSON || blob,
        "enum" => t == MYSQL_TYPE_ENUM,
        "set" => t == MYSQL_TYPE_SET,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring" | "multipolygon" | "geometrycollection"
        | "geomcollection" => t == MYSQL_TYPE_GEOMETRY,
        // MySQL 9: VECTOR; MariaDB 11.7+: a binary VARCHAR.
        "vector" => matches!(t, MYSQL_TYPE_VECTOR | MYSQL_TYPE_VARCHAR) || blob,
        // MariaDB: fixed-size binary strings (their size is checked by the caller).
        "uuid" | "inet4" | "inet6" => t == MYSQL_TYPE_STRING,
        _ => true,
    }
}

/// The server's collations (id → character set), to read the collation ids
/// of table maps. Empty when they cannot be read: text is then decoded in the
/// recorded charsets.
async fn collations(conn: &mut Conn) -> HashMap<u16, String> {
    let rows: Result<Vec<(Option<u64>, Option<String>)>, _> =
        conn.query("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS").await;
    let mut map: HashMap<u16, String> = match rows {
        Ok(rows) => rows.into_iter().filter_map(|(id, cs)| Some((u16::try_from(id?).ok()?, cs?.to_ascii_lowercase()))).collect(),
        Err(e) => {
            tracing::debug!("cannot read the source's collations ({e}); text is decoded in the recorded charsets");
            HashMap::new()
        }
    };
    // MariaDB 10.10+ lists its UCA 14.0 collations (utf8mb4_uca1400_ai_ci, 11.x's default, id
    // 2304 and up) once per character set only here; MySQL has no ID column in this view.
    let more: Result<Vec<(Option<u64>, Option<String>)>, _> =
        conn.query("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY").await;
    if let Ok(rows) = more {
        for (id, cs) in rows {
            if let (Some(id), Some(cs)) = (id.and_then(|i| u16::try_from(i).ok()), cs) {
                map.entry(id).or_insert_with(|| cs.to_ascii_lowercase());
            }
        }
    }
    map
}

/// Storage bytes of a TIME2 value with `dec` fractional digits.
fn time2_width(dec: u8) -> u8 {
    3 + dec.div_ceil(2)
}

/// Reads a length-encoded integer at `pos`; returns (value, bytes used).
fn lenenc(b: &[u8], pos: usize) -> Result<(u64, usize), String> {
    let short = || "truncated table map event".to_string();
    let first = *b.get(pos).ok_or_else(short)?;
    let take = |n: usize| -> Result<u64, String> {
        let s = b.get(pos + 1..pos + 1 + n).ok_or_else(short)?;
        Ok(s.iter().rev().fold(0u64, |acc, x| (acc << 8) | *x as u64))
    };
    Ok(match first {
        0xfc => (take(2)?, 3),
        0xfd => (take(3)?, 4),
        0xfe => (take(8)?, 9),
        x => (x as u64, 1),
    })
}

fn put_lenenc(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=250 => out.push(v as u8),
        251..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            out.push(0xfd);
            out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// MariaDB's column types of `COMPRESSED` VARCHAR and BLOB/TEXT columns in table maps.
const MARIADB_VARCHAR_COMPRESSED: u8 = 141;
const MARIADB_BLOB_COMPRESSED: u8 = 140;

/// Offset of the column types in a serialized table map event body, and the column count.
fn table_map_types_at(raw: &[u8]) -> Result<(usize, usize), String> {
    // table id (6), flags (2), schema (len, bytes, NUL), table (len, bytes, NUL), column count, types, metadata.
    let mut pos = 8;
    for _ in 0..2 {
        pos += 1 + *raw.get(pos).ok_or("truncated table map event")? as usize + 1;
    }
    let (n, used) = lenenc(raw, pos)?;
    if raw.len() < pos + used + n as usize {
        return Err("truncated table map event".into());
    }
    Ok((pos + used, n as usize))
}

/// Rewrites a table map's MariaDB `COMPRESSED` columns (types 140 and 141, unknown
/// to `mysql_common`) as the VARCHAR and BLOB they are stored like (their metadata
/// has the same form); returns which columns were compressed.
fn compressed_as_plain(tme: TableMapEvent<'static>) -> Result<(TableMapEvent<'static>, Vec<bool>), String> {
    use mysql_common::binlog::consts::{BinlogVersion, EventType};
    use mysql_common::binlog::events::FormatDescriptionEvent;
    use mysql_common::binlog::BinlogCtx;
    use mysql_common::io::ParseBuf;
    use mysql_common::proto::{MyDeserialize, MySerialize};

    let mut raw = Vec::new();
    tme.serialize(&mut raw);
    let (types_at, count) = table_map_types_at(&raw)?;
    let compressed: Vec<bool> =
        raw[types_at..types_at + count].iter().map(|t| matches!(*t, MARIADB_VARCHAR_COMPRESSED | MARIADB_BLOB_COMPRESSED)).collect();
    if !compressed.contains(&true) {
        return Ok((tme, compressed));
    }
    for t in &mut raw[types_at..types_at + count] {
        match *t {
            MARIADB_VARCHAR_COMPRESSED => *t = ColumnType::MYSQL_TYPE_VARCHAR as u8,
            MARIADB_BLOB_COMPRESSED => *t = ColumnType::MYSQL_TYPE_BLOB as u8,
            _ => {}
        }
    }
    let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
    let ctx = BinlogCtx::new(raw.len(), &fde, EventType::TABLE_MAP_EVENT as u8);
    let parsed = TableMapEvent::deserialize(ctx, &mut ParseBuf(&raw)).map_err(|e| e.to_string())?;
    Ok((parsed.into_owned(), compressed))
}

/// The value of a MariaDB `COMPRESSED` column as stored (`Field_longstr::compress`):
/// empty, or a header byte followed by the value as is (header 0), or — header
/// `0x80 | 8·raw | n` — the original length in `n` big-endian bytes and a zlib
/// stream (a raw deflate stream when the `8` bit is set).
pub(crate) fn mariadb_uncompress(b: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let Some((&header, rest)) = b.split_first() else { return Ok(Vec::new()) };
    if header & 0x80 == 0 {
        return Ok(rest.to_vec());
    }
    let n = (header & 0x07) as usize;
    if n == 0 || n > 4 || rest.len() < n {
        return Err(format!("malformed compressed value (header byte {header:#04x})"));
    }
    let len = rest[..n].iter().fold(0usize, |acc, x| (acc << 8) | *x as usize);
    let mut out = Vec::with_capacity(len);
    let read = if header & 0x08 != 0 {
        flate2::read::DeflateDecoder::new(&rest[n..]).read_to_end(&mut out)
    } else {
        flate2::read::ZlibDecoder::new(&rest[n..]).read_to_end(&mut out)
    };
    read.map_err(|e| format!("compressed value cannot be inflated: {e}"))?;
    if out.len() != len {
        return Err(format!("compressed value inflates to {} bytes, its header says {len}", out.len()));
    }
    Ok(out)
}

/// Rewrites a table map so that its TIME2 columns are declared as BIT columns
/// of the same byte width: `mysql_common` then hands their stored bytes over
/// unchanged (see the module comment). Other columns are untouched.
fn time2_as_raw_bytes(tme: TableMapEvent<'static>) -> Result<TableMapEvent<'static>, String> {
    use mysql_common::binlog::consts::{BinlogVersion, EventType};
    use mysql_common::binlog::events::FormatDescriptionEvent;
    use mysql_common::binlog::BinlogCtx;
    use mysql_common::constants::ColumnType;
    use mysql_common::io::ParseBuf;
    use mysql_common::proto::{MyDeserialize, MySerialize};

    let count = tme.columns_count() as usize;
    let is_time2 = |i: usize| matches!(tme.get_raw_column_type(i), Ok(Some(ColumnType::MYSQL_TYPE_TIME2)));
    if !(0..count).any(is_time2) {
        return Ok(tme);
    }
    let mut meta = Vec::new();
    for i in 0..count {
        let m = tme.get_column_metadata(i).unwrap_or(&[]);
        if is_time2(i) {
            // BIT metadata: (bits % 8, whole bytes).
            meta.extend_from_slice(&[0, time2_width(m.first().copied().unwrap_or(0))]);
        } else {
            meta.extend_from_slice(m);
        }
    }
    let mut raw = Vec::new();
    tme.serialize(&mut raw);
    let (types_at, n) = table_map_types_at(&raw)?;
    if n != count {
        return Err(format!("column count {n} != {count}"));
    }
    let meta_len_at = types_at + count;
    let (old_meta_len, used) = lenenc(&raw, meta_len_at)?;
    let rest_at = meta_len_at + used + old_meta_len as usize;
    if rest_at > raw.len() {
        return Err("truncated table map event".into());
    }
    let mut out = raw[..meta_len_at].to_vec();
    for i in 0..count {
        if is_time2(i) {
            out[types_at + i] = ColumnType::MYSQL_TYPE_BIT as u8;
        }
    }
    put_lenenc(&mut out, meta.len() as u64);
    out.extend_from_slice(&meta);
    out.extend_from_slice(&raw[rest_at..]);
    let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
    let ctx = BinlogCtx::new(out.len(), &fde, EventType::TABLE_MAP_EVENT as u8);
    let parsed = TableMapEvent::deserialize(ctx, &mut ParseBuf(&out)).map_err(|e| e.to_string())?;
    Ok(parsed.into_owned())
}

/// The file name a rotate event announces. The stream's first (fake) rotate
/// event arrives before the format description, so the decoder cannot know the
/// event carries a CRC32 footer and leaves those 4 bytes on the name (MariaDB;
/// mysql_async issue #189). Binlog names always end in `.<digits>`, so a name
/// that only has that shape without its last 4 bytes is cut back to it.
fn rotate_file_name(raw: &[u8]) -> String {
    fn well_formed(n: &[u8]) -> bool {
        match n.iter().rposition(|b| *b == b'.') {
            Some(dot) => dot + 1 < n.len() && n[dot + 1..].iter().all(u8::is_ascii_digit),
            None => false,
        }
    }
    let name = if !well_formed(raw) && raw.len() > 4 && well_formed(&raw[..raw.len() - 4]) { &raw[..raw.len() - 4] } else { raw };
    String::from_utf8_lossy(name).into_owned()
}

fn format_uuid(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Refuses to connect when another replica with `server_id` is registered on
/// the source: two replicas with one server id disconnect each other in a
/// loop (error 1236). A registration under this pipe's own `replica_name` is
/// its previous connection (e.g. before a crash), which the source replaces.
pub async fn check_server_id(conn: &mut Conn, flavor: Flavor, server_id: u32, replica_name: &str) -> Result<(), SourceError> {
    let stmt = match flavor {
        Flavor::MySql => "SHOW REPLICAS",
        Flavor::MariaDb => "SHOW SLAVE HOSTS",
    };
    let rows: Vec<mysql_async::Row> = match conn.query(stmt).await {
        Ok(r) => r,
        // MariaDB 10.5+ shows replicas only to REPLICATION MASTER ADMIN, which a pipe
        // does not need otherwise: without it the check cannot be made.
        Err(mysql_async::Error::Server(e)) if e.code == 1227 => {
            tracing::debug!("cannot list the source's replicas ({}); server_id not checked", e.message);
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    for row in rows {
        let id: Option<u32> = row.get::<Option<u32>, _>(0).flatten();
        let host: String = row.get::<Option<String>, _>(1).flatten().unwrap_or_default();
        if id == Some(server_id) && host != replica_name {
            return Err(SourceError::ServerIdInUse(format!(
                "server_id {server_id} is already used by another replica of the source (host {host:?}); two replicas with one \
                 server_id disconnect each other in a loop: stop that replica, or create the pipe with another source.server_id"
            )));
        }
    }
    Ok(())
}

/// What to do when a GTID-positioned stream meets a transaction without a GTID.
const GTID_MODE_FIX: &str = "the source's gtid_mode was lowered from ON (to ON_PERMISSIVE, OFF_PERMISSIVE or OFF) while the \
     pipe follows it by GTIDs, and a transaction without a GTID cannot be positioned by GTIDs. Set gtid_mode back to ON \
     (SET PERSIST gtid_mode = ON_PERMISSIVE; then SET PERSIST gtid_mode = ON) and resync the pipe, or set \
     source.replication_mechanism to file_pos (resumes from the checkpoint's binlog file and offset on this server) and resume it";

/// The error for an anonymous transaction (no GTID) met at `at` by a stream positioned by GTIDs.
pub fn anonymous_in_gtid_stream(at: &str) -> SourceError {
    SourceError::GtidModeChanged(format!("the source wrote a transaction without a GTID at {at}: {GTID_MODE_FIX}"))
}

/// A binlog stream's error, made clear where a cause is known: error 1236
/// means the requested binlog file/position (or the binlogs holding the
/// transactions after the GTIDs) is gone (purged) or invalid — or that an
/// event exceeded the source's `max_allowed_packet`, or that `gtid_mode` no
/// longer allows GTID positioning (both said in its message); a packet the
/// client refuses is larger than the client's `max_allowed_packet`. `at`
/// says where the stream was.
pub fn stream_error(e: mysql_async::Error, from: &Checkpoint, by: ResumeBy, at: &str) -> SourceError {
    let packet_fix = "raise max_allowed_packet on the source (MySQL: SET PERSIST max_allowed_packet = 1073741824; MariaDB: \
                      SET GLOBAL max_allowed_packet = 1073741824 and the same in my.cnf; also replica_max_allowed_packet / \
                      slave_max_allowed_packet) and resume the pipe";
    match &e {
        mysql_async::Error::Server(s) if s.code == 1236 && s.message.to_ascii_lowercase().contains("max_allowed_packet") => {
            SourceError::PacketTooLarge(format!(
                "a binlog event at {at} is larger than the source's max_allowed_packet (the source said: {}); {packet_fix}",
                s.message
            ))
        }
        mysql_async::Error::Server(s)
            if s.code == 1236 && {
                let m = s.message.to_ascii_lowercase();
                m.contains("anonymous") || m.contains("gtid_mode")
            } =>
        {
            SourceError::GtidModeChanged(format!("the source stopped the stream at {at} ({}): {GTID_MODE_FIX}", s.message))
        }
        mysql_async::Error::Server(s) if s.code == 1236 => SourceError::BinlogPurged(match by {
            ResumeBy::FilePos => format!(
                "binlog file {} (position {}) is no longer available on the source: {}; resync the pipe",
                from.position.file, from.position.pos, s.message
            ),
            ResumeBy::Gtid => format!(
                "the source cannot stream the transactions after GTID set {} (checkpoint {}): {}; resync the pipe",
                from.gtid_set.as_deref().unwrap_or(""),
                from.position,
                s.message
            ),
        }),
        mysql_async::Error::Io(io) if io.to_string().contains("max_allowed_packet") => SourceError::PacketTooLarge(format!(
            "a binlog event at {at} is larger than the client's max_allowed_packet ({} bytes, the protocol's largest packet): \
             it cannot be read ({io}); make the row smaller on the source (no single row change may exceed 1 GiB), then resync the table",
            crate::conn::MAX_PACKET
        )),
        _ => SourceError::Mysql(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_errors_name_max_allowed_packet_and_gtid_mode() {
        use sluice_core::Severity;
        let cp = Checkpoint { position: BinlogPosition::new("binlog.000007", 4), gtid_set: Some("u:1-5".into()) };
        let server = |code: u16, message: &str| {
            mysql_async::Error::Server(mysql_async::ServerError { code, message: message.into(), state: "HY000".into() })
        };
        let e = stream_error(
            server(
                1236,
                "log event entry exceeded max_allowed_packet; Increase max_allowed_packet on source; the first event 'binlog.000007' at 4",
            ),
            &cp,
            ResumeBy::Gtid,
            "binlog.000007:4",
        );
        assert!(matches!(e, SourceError::PacketTooLarge(_)), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("max_allowed_packet") && text.contains("SET PERSIST max_allowed_packet") && text.contains("binlog.000007"),
            "{text}"
        );
        assert_eq!(e.severity(), Severity::Fatal);
        // The client's own limit: mysql_common's codec refuses the packet.
        let io: mysql_async::Error = mysql_common::proto::codec::error::PacketCodecError::PacketTooLarge.into();
        let e = stream_error(io, &cp, ResumeBy::FilePos, "binlog.000007:4");
        assert!(matches!(e, SourceError::PacketTooLarge(_)) && e.to_string().contains("client's max_allowed_packet"), "{e:?}");
        // An anonymous transaction refused by the source in a GTID (auto-position) stream.
        let e = stream_error(
            server(1236, "Cannot replicate anonymous transaction when AUTO_POSITION = 1, at file './binlog.000007', position 1234."),
            &cp,
            ResumeBy::Gtid,
            "x",
        );
        assert!(matches!(e, SourceError::GtidModeChanged(_)) && e.to_string().contains("gtid_mode"), "{e:?}");
        let e = stream_error(
            server(1236, "The replication receiver thread cannot start in AUTO_POSITION mode: this server uses @@GLOBAL.GTID_MODE = OFF."),
            &cp,
            ResumeBy::Gtid,
            "x",
        );
        assert!(matches!(e, SourceError::GtidModeChanged(_)), "{e:?}");
        let e = anonymous_in_gtid_stream("binlog.000007:99");
        let text = e.to_string();
        assert!(text.contains("binlog.000007:99") && text.contains("gtid_mode = ON") && text.contains("file_pos"), "{text}");
        assert_eq!(e.severity(), Severity::Fatal);
        // A purged binlog stays what it was.
        let e = stream_error(server(1236, "Could not find first log file name in binary log index file"), &cp, ResumeBy::FilePos, "x");
        assert!(matches!(e, SourceError::BinlogPurged(_)) && e.to_string().contains("resync the pipe"), "{e:?}");
    }

    #[test]
    fn resume_by_follows_mechanism_server_and_checkpoint() {
        use ReplicationMechanism::*;
        let server = |flavor, gtid_mode| ServerInfo { flavor, version: String::new(), gtid_mode, gtid_mode_text: None };
        let cp = |g: Option<&str>| Checkpoint { position: BinlogPosition::new("binlog.000001", 4), gtid_set: g.map(String::from) };
        let (my_on, my_off, maria) = (server(Flavor::MySql, true), server(Flavor::MySql, false), server(Flavor::MariaDb, true));
        let with = cp(Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"));
        assert_eq!(resume_by(Auto, &my_on, &with).unwrap(), ResumeBy::Gtid);
        assert_eq!(resume_by(Auto, &my_on, &cp(None)).unwrap(), ResumeBy::FilePos, "a checkpoint without GTIDs");
        assert_eq!(resume_by(Auto, &my_off, &with).unwrap(), ResumeBy::FilePos);
        assert_eq!(resume_by(FilePos, &my_on, &with).unwrap(), ResumeBy::FilePos);
        assert_eq!(resume_by(Gtid, &my_on, &with).unwrap(), ResumeBy::Gtid);
        let off = resume_by(Gtid, &my_off, &with).unwrap_err().to_string();
        assert!(off.contains("gtid_mode OFF") && off.contains("SET PERSIST"), "{off}");
        let none = resume_by(Gtid, &my_on, &cp(None)).unwrap_err().to_string();
        assert!(none.contains("taken without GTIDs"), "{none}");
        assert_eq!(resume_by(Auto, &maria, &cp(Some("0-1-5"))).unwrap(), ResumeBy::Gtid);
        assert_eq!(resume_by(Gtid, &maria, &cp(Some(""))).unwrap(), ResumeBy::FilePos, "a MariaDB server that never wrote a GTID");
    }

    #[test]
    fn rotate_names_lose_a_stray_checksum() {
        assert_eq!(rotate_file_name(b"mariadb-bin.000002"), "mariadb-bin.000002");
        assert_eq!(rotate_file_name(b"mariadb-bin.000002\x8f\x66\xa0\x11"), "mariadb-bin.000002");
        assert_eq!(rotate_file_name(b"binlog.000123"), "binlog.000123");
    }

    #[test]
    fn mariadb_compressed_values_are_uncompressed() {
        use std::io::Write;
        // As MariaDB 11.8 wrote REPEAT('a', 200) into a VARCHAR(100) COMPRESSED column (raw deflate).
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&[b'a'; 200]).unwrap();
        let mut stored = vec![0x89, 200];
        stored.extend(enc.finish().unwrap());
        assert_eq!(mariadb_uncompress(&stored).unwrap(), vec![b'a'; 200]);
        // zlib-wrapped (column_compression_zlib_wrap=ON), two length bytes.
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&[b'b'; 300]).unwrap();
        let mut stored = vec![0x82, 0x01, 0x2c];
        stored.extend(enc.finish().unwrap());
        assert_eq!(mariadb_uncompress(&stored).unwrap(), vec![b'b'; 300]);
        // Short values are stored as is behind a 0 header; the empty value has no header.
        assert_eq!(mariadb_uncompress(b"\x00x").unwrap(), b"x");
        assert_eq!(mariadb_uncompress(b"").unwrap(), b"");
        assert!(mariadb_uncompress(&[0x89, 200, 1, 2, 3]).is_err());
        assert!(mariadb_uncompress(&[0x80]).is_err());
    }
}
