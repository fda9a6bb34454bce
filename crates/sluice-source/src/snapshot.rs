//! Snapshot reads: a table copied in keyset-paged chunks, in key order (the
//! primary key, or the NOT NULL unique key discovery chose instead),
//! optionally split into partitions (ranges of the first paging column when it
//! is an integer, date/time or string column) that separate connections read
//! in parallel.
//!
//! Each chunk is one `SELECT ... WHERE (pk) > (last) ORDER BY pk LIMIT n` over
//! the binary protocol, so memory is bounded by the chunk size whatever the
//! table size, and a restart resumes after the last key whose chunk ClickHouse
//! acknowledged. Rows may reflect changes made after the snapshot's start
//! position; the binlog replay from that position (with higher versions)
//! brings every such row to its final state.
//!
//! A table without a key (stored by an engine that needs none) has nothing to
//! page on: it is read as one stream, one `SELECT` without `ORDER BY` whose
//! rows are handed out a chunk at a time (see `MySqlCopyReader`). Such a copy
//! cannot resume after an interruption; it starts again from the first row,
//! after the rows it already wrote are discarded. The hand-off is the same as
//! for keyed tables: rows read after the start position, then every change
//! from that position replayed by the binlog.

use crate::conn::SourceError;
use crate::convert::{from_snapshot, ColKind};
use mysql_async::prelude::*;
use mysql_async::{Conn, Value};
use serde_json::json;
use sluice_core::schema::{quote_mysql, SourceColumn, SourceTable};
use sluice_core::types::TableMapping;
use sluice_core::value::{civil_from_days, days_from_civil};
use sluice_core::{Cell, RowSink, Rows};

/// A range of the first paging column, `[lo, hi)` in the column's order (its
/// collation for strings); `None` is unbounded. Bounds are encoded as resume
/// keys are (see `key_to_json`), so they persist in the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub lo: Option<serde_json::Value>,
    pub hi: Option<serde_json::Value>,
}

impl Partition {
    pub const WHOLE: Partition = Partition { lo: None, hi: None };
}

/// A chunk of snapshot rows kept as cells, and the key to continue after.
pub struct Chunk {
    pub rows: Vec<Vec<Cell>>,
    /// Primary key of the last row (JSON, for the catalog); `None` when the chunk is empty.
    pub last_key: Option<serde_json::Value>,
    /// The range has no rows after this chunk's last one.
    pub done: bool,
    /// Bytes the rows hold in memory (`sluice_core::change::cells_size`).
    pub bytes: u64,
}

/// How a chunk whose rows went to a `RowSink` ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkEnd {
    /// Primary key of the last row (JSON, for the catalog); `None` when the chunk is empty.
    pub last_key: Option<serde_json::Value>,
    /// The range has no rows after this chunk's last one.
    pub done: bool,
    /// The chunk stopped at its byte bound before `limit` rows: the rest of
    /// the server's answer is still unread on the connection.
    pub cut: bool,
}

/// Reads one table's mapped columns: cells come out per column of the
/// mapping (`mapping.columns`), excluded columns are never selected.
pub struct TableReader {
    table: SourceTable,
    /// The selected source columns (the mapping's, in mapping order).
    cols: Vec<SourceColumn>,
    kinds: Vec<ColKind>,
    /// How many of `cols` are the mapping's (the rest are only paged on).
    mapped: usize,
    /// Positions in `cols` of the paging key.
    key_idx: Vec<usize>,
    select: String,
    order: String,
    key_tuple: String,
}

impl TableReader {
    /// A reader of `mapping`'s columns. With a `partition_key` (validated at
    /// Setup: an indexed NOT NULL integer, date/time or string column) partitions are ranges of it
    /// and chunks are paged in `(partition_key, key...)` order, which the index serves.
    pub fn new(mapping: &TableMapping) -> Result<Self, SourceError> {
        let table = mapping.source.clone();
        let mut cols: Vec<SourceColumn> = mapping.columns.iter().map(|c| table.columns[c.source_index].clone()).collect();
        let mut position = |name: &str| -> Result<usize, SourceError> {
            if let Some(i) = cols.iter().position(|c| c.name == name) {
                return Ok(i);
            }
            // A paging column that is not mapped is still selected (after the mapped ones) to page on.
            let c = table.column(name).ok_or_else(|| SourceError::Config(format!("{name:?} is not a column of {}", table.id)))?;
            cols.push(c.clone());
            Ok(cols.len() - 1)
        };
        let mut key_idx = table.primary_key.iter().map(|k| position(k)).collect::<Result<Vec<_>, _>>()?;
        if let Some(pk) = mapping.partition_key.as_deref() {
            let i = position(pk).map_err(|_| SourceError::Config(format!("partition_key {pk:?} is not a column of {}", table.id)))?;
            key_idx.retain(|k| *k != i);
            key_idx.insert(0, i);
        }
        let kinds = cols.iter().map(ColKind::of).collect();
        let select: Vec<String> = cols.iter().map(|c| quote_mysql(&c.name)).collect();
        let keys: Vec<String> = key_idx.iter().map(|i| quote_mysql(&cols[*i].name)).collect();
        Ok(Self {
            select: format!("SELECT {} FROM {}", select.join(", "), table.id),
            order: keys.join(", "),
            key_tuple: format!("({})", keys.join(", ")),
            kinds,
            key_idx,
            mapped: mapping.columns.len(),
            cols,
            table,
        })
    }

    /// The SELECT list and table the reader queries (without filter and order).
    pub fn select_sql(&self) -> &str {
        &self.select
    }

    pub fn table(&self) -> &SourceTable {
        &self.table
    }

    /// Whether the table has no paging key: it is read as one stream (`stream_sql`).
    pub fn keyless(&self) -> bool {
        self.key_idx.is_empty()
    }

    /// The query that reads the whole table as one stream, in no particular order.
    pub fn stream_sql(&self) -> String {
        self.select.clone()
    }

    /// One row of the reader's `SELECT` appended to `cells` (cleared by the
    /// caller) as cells of the mapping's columns.
    pub fn cells_into(&self, row: mysql_async::Row, cells: &mut Vec<Cell>) -> Result<(), SourceError> {
        // One pass over the row's values, moved out (no copy of text or
        // binary data) and converted column by column (profiled: the
        // iterator chain with `Row::unwrap` and a fallible collect cost more).
        let mut values = row.unwrap_raw().into_iter();
        for (col, kind) in self.cols[..self.mapped].iter().zip(&self.kinds) {
            let v = values.next().flatten().unwrap_or(Value::NULL);
            cells.push(from_snapshot(col, kind, v).map_err(|e| SourceError::Decode(format!("table {}: {e}", self.table.id)))?);
        }
        Ok(())
    }

    /// Converts `row` and gives it to `sink` (`cells` is the reused row buffer).
    pub fn push_row(&self, row: mysql_async::Row, cells: &mut Vec<Cell>, sink: &mut dyn RowSink) -> Result<(), SourceError> {
        cells.clear();
        self.cells_into(row, cells)?;
        sink.push(cells).map_err(|e| SourceError::Decode(e.0))
    }

    /// Splits the table into partitions of about `rows_per_partition` rows, or
    /// returns `None` when the first paging column cannot be split (the table
    /// is then read by one reader). The outer partitions are unbounded.
    /// - integers: equal-width ranges between MIN and MAX;
    /// - DATE/DATETIME/TIMESTAMP: equal-width ranges of time between MIN and
    ///   MAX (whole days for DATE, the column's fractional precision otherwise),
    ///   read and bound as the same temporal values in the session's UTC;
    /// - CHAR/VARCHAR/BINARY/VARBINARY led by a whole-value index: the bounds
    ///   are values sampled from the index every `rows_per_partition` rows in
    ///   the column's collation order, each strictly above the previous one, so
    ///   values equal under the collation fall in one partition.
    pub async fn plan_partitions(
        &self,
        conn: &mut Conn,
        estimated_rows: u64,
        rows_per_partition: u64,
    ) -> Result<Option<Vec<Partition>>, SourceError> {
        if self.keyless() {
            return Ok(None);
        }
        let first = &self.cols[self.key_idx[0]];
        let Some(split) = Split::of(first, &self.kinds[self.key_idx[0]]) else { return Ok(None) };
        if split == Split::Str && !crate::discovery::leads_whole_value_index(conn, &self.table, &first.name).await? {
            return Ok(None);
        }
        let n = estimated_rows.div_ceil(rows_per_partition.max(1)).max(1);
        if n == 1 {
            return Ok(Some(vec![Partition::WHOLE]));
        }
        let col = quote_mysql(&first.name);
        let bounds: Vec<serde_json::Value> = match split {
            Split::Int => {
                let row: Option<(Option<i128>, Option<i128>)> = conn
                    .query_first(format!("SELECT CAST(MIN({col}) AS CHAR), CAST(MAX({col}) AS CHAR) FROM {}", self.table.id))
                    .await?
                    .map(|(a, b): (Option<String>, Option<String>)| (a.and_then(|v| v.parse().ok()), b.and_then(|v| v.parse().ok())));
                let Some((Some(min), Some(max))) = row else { return Ok(Some(vec![Partition::WHOLE])) };
                let unsigned = first.unsigned();
                equal_width(min, max, n, 1)
                    .into_iter()
                    .map(|v| if unsigned { json!({"u": v as u64}) } else { json!({"i": v as i64}) })
                    .collect()
            }
            Split::Time { unit_us } => {
                let Some((min, max)) = self.time_range(conn, &col).await? else { return Ok(Some(vec![Partition::WHOLE])) };
                equal_width(min, max, n, unit_us).into_iter().map(|us| bound_json(&micros_to_value(us))).collect()
            }
            Split::Str => self.sampled_bounds(conn, &col, rows_per_partition.max(1)).await?,
        };
        let mut parts = Vec::with_capacity(bounds.len() + 1);
        let mut lo = None;
        for hi in bounds {
            parts.push(Partition { lo: lo.take(), hi: Some(hi.clone()) });
            lo = Some(hi);
        }
        parts.push(Partition { lo, hi: None });
        Ok(Some(parts))
    }

    /// MIN and MAX of a temporal first paging column in microseconds since
    /// 1970 (binary protocol, session time zone UTC); a zero date (possible
    /// with a lax `sql_mode`) is skipped for MIN, as it would stretch the
    /// ranges over two thousand empty years. `None` for an empty table.
    async fn time_range(&self, conn: &mut Conn, col: &str) -> Result<Option<(i128, i128)>, SourceError> {
        let row: Option<(Value, Value)> = conn.exec_first(format!("SELECT MIN({col}), MAX({col}) FROM {}", self.table.id), ()).await?;
        let Some((mut min, max)) = row else { return Ok(None) };
        if is_zero_date(&min) {
            let zero = Value::Date(0, 0, 0, 0, 0, 0, 0);
            let v: Option<Value> = conn.exec_first(format!("SELECT MIN({col}) FROM {} WHERE {col} > ?", self.table.id), (zero,)).await?;
            min = v.unwrap_or(Value::NULL);
        }
        Ok(match (value_to_micros(&min), value_to_micros(&max)) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        })
    }

    /// Partition bounds of a string column: a value every `step` rows of the
    /// index, each strictly greater (in the column's collation) than the one
    /// before. Each query starts from the previous bound, so the index is read
    /// once in total, by the server, and only the bounds cross the network.
    async fn sampled_bounds(&self, conn: &mut Conn, col: &str, step: u64) -> Result<Vec<serde_json::Value>, SourceError> {
        let t = &self.table.id;
        let mut bounds = Vec::new();
        let mut prev: Option<Value> = None;
        loop {
            let next: Option<Value> = match prev {
                None => conn.exec_first(format!("SELECT {col} FROM {t} ORDER BY {col} LIMIT 1 OFFSET {step}"), ()).await?,
                Some(p) => {
                    let sql = format!("SELECT {col} FROM {t} WHERE {col} > ? ORDER BY {col} LIMIT 1 OFFSET {}", step - 1);
                    conn.exec_first(sql, (self.bind(0, p),)).await?
                }
            };
            let Some(v) = next.filter(|v| *v != Value::NULL) else { break };
            bounds.push(bound_json(&v));
            prev = Some(v);
        }
        Ok(bounds)
    }

    /// A key value of paging column `pos` as a statement parameter. Strings
    /// are read as stored (no conversion by the server); one in a non-UTF-8
    /// character set is sent as UTF-8, which the server converts back into the
    /// column's character set and compares in the column's collation (a
    /// parameter yields to the column), as it does for UTF-8 columns.
    fn bind(&self, pos: usize, v: Value) -> Value {
        match (&self.kinds[self.key_idx[pos]], v) {
            (ColKind::Bytes { enc: Some(enc), .. }, Value::Bytes(b)) => {
                Value::Bytes(enc.decode_without_bom_handling(&b).0.into_owned().into_bytes())
            }
            (_, v) => v,
        }
    }

    /// Reads up to `limit` rows of the whole table after `after` (a key from a previous chunk).
    pub async fn read_chunk(&self, conn: &mut Conn, after: Option<&serde_json::Value>, limit: u64) -> Result<Chunk, SourceError> {
        self.read_partition_chunk(conn, &Partition::WHOLE, after, limit, u64::MAX).await
    }

    /// Reads up to `limit` rows of `part` after `after`, kept as cells (see
    /// `read_partition_into`).
    pub async fn read_partition_chunk(
        &self,
        conn: &mut Conn,
        part: &Partition,
        after: Option<&serde_json::Value>,
        limit: u64,
        max_bytes: u64,
    ) -> Result<Chunk, SourceError> {
        let mut rows = Rows::default();
        let end = self.read_partition_into(conn, part, after, limit, max_bytes, &mut rows).await?;
        let bytes = rows.held();
        Ok(Chunk { rows: rows.into_rows(), last_key: end.last_key, done: end.done, bytes })
    }

    /// Reads up to `limit` rows of `part` after `after`, streaming them off the
    /// connection and giving each to `sink` as it arrives; stops early once
    /// the sink holds `max_bytes` (at least one row is read). A chunk cut
    /// short that way (`ChunkEnd::cut`) is not `done`: the rest of the
    /// server's answer is still unread on `conn`, which must then be discarded.
    pub async fn read_partition_into(
        &self,
        conn: &mut Conn,
        part: &Partition,
        after: Option<&serde_json::Value>,
        limit: u64,
        max_bytes: u64,
        sink: &mut dyn RowSink,
    ) -> Result<ChunkEnd, SourceError> {
        if self.keyless() {
            return Err(SourceError::Config(format!("table {} has no key to page on; it is read as one stream", self.table.id)));
        }
        let first = quote_mysql(&self.cols[self.key_idx[0]].name);
        let mut conds = Vec::new();
        let mut params = Vec::new();
        if let Some(lo) = &part.lo {
            conds.push(format!("{first} >= ?"));
            params.extend(key_from_json(&json!([lo]))?.into_iter().map(|v| self.bind(0, v)));
        }
        if let Some(hi) = &part.hi {
            conds.push(format!("{first} < ?"));
            params.extend(key_from_json(&json!([hi]))?.into_iter().map(|v| self.bind(0, v)));
        }
        if let Some(key) = after {
            let k = key_from_json(key)?;
            conds.push(format!("{} > ({})", self.key_tuple, vec!["?"; k.len()].join(", ")));
            params.extend(k.into_iter().enumerate().map(|(i, v)| self.bind(i, v)));
        }
        let filter = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
        let sql = format!("{}{filter} ORDER BY {} LIMIT {limit}", self.select, self.order);
        let mut result = conn.exec_iter(sql, params).await?;
        let (mut n, mut last, mut cut, mut cells) = (0u64, Vec::new(), false, Vec::with_capacity(self.mapped));
        while let Some(row) = result.next().await? {
            last.clear();
            last.extend(self.key_idx.iter().map(|k| row[*k].clone()));
            self.push_row(row, &mut cells, sink)?;
            n += 1;
            if sink.held() >= max_bytes && n < limit {
                cut = true;
                break;
            }
        }
        let last_key = (n > 0).then(|| key_to_json(last.iter()));
        Ok(ChunkEnd { last_key, done: !cut && n < limit, cut })
    }

    /// The optimizer's row estimate for progress reporting.
    pub async fn estimated_rows(&self, conn: &mut Conn) -> Result<u64, SourceError> {
        Ok(self.statistics(conn).await?.0)
    }

    /// The server's statistics of the table in one round trip
    /// (`information_schema.TABLES`): its estimated rows and average row
    /// length in bytes, each 0 when it has none yet.
    pub async fn statistics(&self, conn: &mut Conn) -> Result<(u64, u64), SourceError> {
        let n: Option<(Option<u64>, Option<u64>)> = conn
            .exec_first(
                "SELECT TABLE_ROWS, AVG_ROW_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&self.table.id.schema, &self.table.id.table),
            )
            .await?;
        let (rows, avg) = n.unwrap_or_default();
        Ok((rows.unwrap_or(0), avg.unwrap_or(0)))
    }
}

/// How the first paging column is split into partitions.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Split {
    Int,
    /// Equal-width ranges of time, bounds multiples of `unit_us` from MIN.
    Time {
        unit_us: i128,
    },
    /// Bounds sampled from the index (collation order).
    Str,
}

impl Split {
    fn of(col: &SourceColumn, kind: &ColKind) -> Option<Split> {
        let fsp = col.datetime_precision.unwrap_or(0).min(6);
        Some(match kind {
            ColKind::Int { .. } => Split::Int,
            ColKind::Date => Split::Time { unit_us: 86_400 * 1_000_000 },
            ColKind::DateTime | ColKind::Timestamp => Split::Time { unit_us: 10i128.pow(6 - fsp) },
            ColKind::Bytes { .. } if STRING_KEY_TYPES.contains(&col.data_type.as_str()) => Split::Str,
            _ => return None,
        })
    }
}

/// String types whose values an index can hold whole (TEXT/BLOB only by a prefix).
pub const STRING_KEY_TYPES: [&str; 4] = ["char", "varchar", "binary", "varbinary"];

/// Bounds splitting `[min, max]` into at most `n` ranges of equal width, the
/// width a multiple of `unit` (at least one unit); every bound is in `(min, max]`.
fn equal_width(min: i128, max: i128, n: u64, unit: i128) -> Vec<i128> {
    let unit = unit.max(1);
    if max < min {
        return Vec::new();
    }
    let width = ((max - min + 1) / n.max(1) as i128 / unit * unit).max(unit);
    (1..n as i128).map(|i| min + width * i).take_while(|hi| *hi <= max).collect()
}

/// One value as a partition bound (the element of a one-column key).
fn bound_json(v: &Value) -> serde_json::Value {
    match key_to_json(std::iter::once(v)) {
        serde_json::Value::Array(mut a) if a.len() == 1 => a.remove(0),
        other => other,
    }
}

fn is_zero_date(v: &Value) -> bool {
    matches!(v, Value::Date(0, 0, 0, ..))
}

/// Microseconds since 1970 of a DATE/DATETIME/TIMESTAMP value; a zero month
/// or day (lax `sql_mode`) counts as 1, as it only places a bound.
fn value_to_micros(v: &Value) -> Option<i128> {
    let Value::Date(y, mo, d, h, mi, s, us) = *v else { return None };
    let days = days_from_civil(y as i64, mo.clamp(1, 12) as u32, d.max(1) as u32) as i128;
    Some(((days * 24 + h as i128) * 60 + mi as i128) * 60_000_000 + s as i128 * 1_000_000 + us as i128)
}

fn micros_to_value(t: i128) -> Value {
    let day_us = 86_400 * 1_000_000i128;
    let (days, rest) = (t.div_euclid(day_us), t.rem_euclid(day_us));
    let (y, m, d) = civil_from_days(days as i64);
    let secs = rest / 1_000_000;
    Value::Date(y as u16, m as u8, d as u8, (secs / 3600) as u8, (secs / 60 % 60) as u8, (secs % 60) as u8, (rest % 1_000_000) as u32)
}

fn key_to_json<'a>(values: impl Iterator<Item = &'a Value>) -> serde_json::Value {
    serde_json::Value::Array(
        values
            .map(|v| match v {
                Value::NULL => json!({"n": null}),
                Value::Int(i) => json!({"i": i}),
                Value::UInt(u) => json!({"u": u}),
                Value::Float(f) => json!({"f": f}),
                Value::Double(d) => json!({"d": d}),
                Value::Bytes(b) => json!({"b": hex(b)}),
                Value::Date(y, m, d, h, mi, s, us) => json!({"dt": [y, m, d, h, mi, s, us]}),
                Value::Time(neg, d, h, m, s, us) => json!({"t": [neg, d, h, m, s, us]}),
            })
            .collect(),
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn key_from_json(key: &serde_json::Value) -> Result<Vec<Value>, SourceError> {
    let bad = || SourceError::Decode(format!("unreadable snapshot resume key {key}"));
    let arr = key.as_array().ok_or_else(bad)?;
    arr.iter()
        .map(|v| {
            let (tag, val) = v.as_object().and_then(|o| o.iter().next()).ok_or_else(bad)?;
            let n = |i: usize| val.get(i).and_then(|x| x.as_u64()).ok_or_else(bad);
            Ok(match tag.as_str() {
                "n" => Value::NULL,
                "i" => Value::Int(val.as_i64().ok_or_else(bad)?),
                "u" => Value::UInt(val.as_u64().ok_or_else(bad)?),
                "f" => Value::Float(val.as_f64().ok_or_else(bad)? as f32),
                "d" => Value::Double(val.as_f64().ok_or_else(bad)?),
                "b" => {
                    let s = val.as_str().ok_or_else(bad)?;
                    let bytes = (0..s.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16))
                        .collect::<Result<Vec<u8>, _>>()
                        .map_err(|_| bad())?;
                    Value::Bytes(bytes)
                }
                "dt" => Value::Date(n(0)? as u16, n(1)? as u8, n(2)? as u8, n(3)? as u8, n(4)? as u8, n(5)? as u8, n(6)? as u32),
                "t" => Value::Time(
                    val.get(0).and_then(|x| x.as_bool()).ok_or_else(bad)?,
                    n(1)? as u32,
                    n(2)? as u8,
                    n(3)? as u8,
                    n(4)? as u8,
                    n(5)? as u32,
                ),
                _ => return Err(bad()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mapped_columns_are_selected() {
        use sluice_core::schema::{SourceColumn, TableId};
        use sluice_core::types::TableOptions;
        let col = |name: &str| SourceColumn {
            name: name.into(),
            ordinal: 1,
            data_type: "int".into(),
            column_type: "int".into(),
            nullable: false,
            numeric_precision: None,
            numeric_scale: None,
            datetime_precision: None,
            charset: None,
            extra: String::new(),
        };
        let t = SourceTable {
            id: TableId::new("s", "t"),
            columns: vec![col("a"), col("secret"), col("id")],
            primary_key: vec!["id".into()],
            charset: None,
        };
        let m = TableMapping::with_options(t, "t".into(), TableOptions { exclude_columns: vec!["secret".into()], ..Default::default() });
        let r = TableReader::new(&m).unwrap();
        assert_eq!(r.select_sql(), "SELECT `a`, `id` FROM `s`.`t`");
        assert_eq!(r.key_idx, [1]);
        assert_eq!(r.order, "`id`");
    }

    #[test]
    fn resume_keys_round_trip() {
        let vals = vec![
            Value::Int(-5),
            Value::UInt(u64::MAX),
            Value::Bytes(vec![0, 255, b'a']),
            Value::Date(2024, 2, 29, 1, 2, 3, 4),
            Value::Time(true, 1, 2, 3, 4, 5),
            Value::Double(0.1),
        ];
        let j = key_to_json(vals.iter());
        assert_eq!(key_from_json(&j).unwrap(), vals);
        assert!(key_from_json(&json!([{"x": 1}])).is_err());
    }

    #[test]
    fn equal_width_bounds_are_inside_the_range_and_aligned() {
        // Integers: 6 ranges of 1000 over 0..=5999.
        assert_eq!(equal_width(0, 5999, 6, 1), [1000, 2000, 3000, 4000, 5000]);
        // Fewer distinct values than partitions: one bound per value, none above MAX.
        assert_eq!(equal_width(10, 12, 8, 1), [11, 12]);
        assert!(equal_width(7, 7, 4, 1).is_empty());
        assert!(equal_width(9, 3, 4, 1).is_empty());
        // Units: widths are whole units from MIN (a DATE splits on midnights); n ranges need n - 1 bounds.
        let day = 86_400_000_000i128;
        let b = equal_width(0, 10 * day - 1, 5, day);
        assert_eq!(b, [2 * day, 4 * day, 6 * day, 8 * day]);
        assert!(equal_width(5, 5 + 3 * day, 10, day).iter().all(|v| (v - 5) % day == 0 && *v <= 5 + 3 * day));
        // Extreme values do not overflow.
        assert_eq!(equal_width(i64::MIN as i128, i64::MAX as i128, 2, 1), [0]);
        assert_eq!(equal_width(0, u64::MAX as i128, 2, 1), [1i128 << 63]);
    }

    #[test]
    fn temporal_values_convert_to_micros_and_back() {
        for v in [
            Value::Date(1970, 1, 1, 0, 0, 0, 0),
            Value::Date(2024, 2, 29, 23, 59, 59, 999_999),
            Value::Date(1000, 1, 1, 0, 0, 0, 0),
            Value::Date(9999, 12, 31, 23, 59, 59, 0),
            Value::Date(1969, 12, 31, 12, 0, 0, 5),
            Value::Date(2038, 1, 19, 3, 14, 7, 0),
        ] {
            assert_eq!(micros_to_value(value_to_micros(&v).unwrap()), v);
        }
        assert_eq!(value_to_micros(&Value::Date(1970, 1, 2, 0, 0, 1, 2)), Some(86_400_000_000 + 1_000_002));
        assert_eq!(value_to_micros(&Value::Date(1969, 12, 31, 0, 0, 0, 0)), Some(-86_400_000_000));
        // A zero month/day only places a bound: it counts as the 1st.
        assert_eq!(value_to_micros(&Value::Date(2024, 0, 0, 0, 0, 0, 0)), value_to_micros(&Value::Date(2024, 1, 1, 0, 0, 0, 0)));
        assert!(is_zero_date(&Value::Date(0, 0, 0, 0, 0, 0, 0)));
        assert_eq!(value_to_micros(&Value::NULL), None);
        // DATETIME(3) bounds: multiples of a millisecond from MIN, converted to valid values.
        let (lo, hi) = (
            value_to_micros(&Value::Date(2024, 1, 1, 0, 0, 0, 123_000)).unwrap(),
            value_to_micros(&Value::Date(2024, 1, 2, 0, 0, 0, 0)).unwrap(),
        );
        for b in equal_width(lo, hi, 7, 1000) {
            let Value::Date(y, m, d, _, _, _, us) = micros_to_value(b) else { panic!() };
            assert_eq!((y, m, us % 1000), (2024, 1, 0));
            assert!(d == 1 || d == 2);
        }
    }

    #[test]
    fn split_follows_the_column_type() {
        let c = |dt: &str, ct: &str, fsp: Option<u32>| SourceColumn { datetime_precision: fsp, ..SourceColumn::new("c", dt, ct, false) };
        let split = |col: SourceColumn| Split::of(&col, &ColKind::of(&col));
        assert_eq!(split(c("bigint", "bigint unsigned", None)), Some(Split::Int));
        assert_eq!(split(c("date", "date", None)), Some(Split::Time { unit_us: 86_400_000_000 }));
        assert_eq!(split(c("datetime", "datetime", Some(0))), Some(Split::Time { unit_us: 1_000_000 }));
        assert_eq!(split(c("timestamp", "timestamp(6)", Some(6))), Some(Split::Time { unit_us: 1 }));
        assert_eq!(split(c("varchar", "varchar(20)", None)), Some(Split::Str));
        assert_eq!(split(c("binary", "binary(16)", None)), Some(Split::Str));
        for (dt, ct) in [
            ("text", "text"),
            ("blob", "blob"),
            ("json", "json"),
            ("double", "double"),
            ("decimal", "decimal(10,2)"),
            ("enum", "enum('a','b')"),
        ] {
            assert_eq!(split(c(dt, ct, None)), None, "{dt}");
        }
    }

    #[test]
    fn partition_bounds_round_trip_through_catalog_json() {
        let b = bound_json(&Value::Date(2024, 5, 6, 7, 8, 9, 10));
        assert_eq!(b, json!({"dt": [2024, 5, 6, 7, 8, 9, 10]}));
        let text = b.to_string();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(key_from_json(&json!([back])).unwrap(), [Value::Date(2024, 5, 6, 7, 8, 9, 10)]);
        let s = bound_json(&Value::Bytes("Ærø-ß".as_bytes().to_vec()));
        assert_eq!(key_from_json(&json!([s])).unwrap(), [Value::Bytes("Ærø-ß".as_bytes().to_vec())]);
    }

    #[test]
    fn string_keys_in_other_charsets_are_bound_as_utf8() {
        use sluice_core::schema::TableId;
        let mut latin1 = SourceColumn::new("k", "varchar", "varchar(10)", false);
        latin1.charset = Some("latin1".into());
        let t = SourceTable {
            id: TableId::new("s", "t"),
            columns: vec![latin1, SourceColumn::new("b", "varbinary", "varbinary(4)", false)],
            primary_key: vec!["k".into(), "b".into()],
            charset: None,
        };
        let r = TableReader::new(&TableMapping::with_options(t, "t".into(), Default::default())).unwrap();
        assert_eq!(r.bind(0, Value::Bytes(vec![0xe9])), Value::Bytes("é".as_bytes().to_vec()));
        assert_eq!(r.bind(1, Value::Bytes(vec![0xe9])), Value::Bytes(vec![0xe9]));
        assert_eq!(r.bind(0, Value::Int(1)), Value::Int(1));
    }
}
