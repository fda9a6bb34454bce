//! Snapshot reads: a table copied in keyset-paged chunks, in key order (the
//! primary key, or the NOT NULL unique key discovery chose instead),
//! optionally split into partitions (ranges of the first key column when it
//! is an integer) that separate connections read in parallel.
//!
//! Each chunk is one `SELECT ... WHERE (pk) > (last) ORDER BY pk LIMIT n` over
//! the binary protocol, so memory is bounded by the chunk size whatever the
//! table size, and a restart resumes after the last key whose chunk ClickHouse
//! acknowledged. Rows may reflect changes made after the snapshot's start
//! position; the binlog replay from that position (with higher versions)
//! brings every such row to its final state.

use crate::conn::SourceError;
use crate::convert::{from_snapshot, ColKind};
use mysql_async::prelude::*;
use mysql_async::{Conn, Value};
use serde_json::json;
use sluice_core::schema::{quote_mysql, SourceColumn, SourceTable};
use sluice_core::types::TableMapping;
use sluice_core::Cell;

/// A range of the first primary-key column, `[lo, hi)`; `None` is unbounded.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub lo: Option<serde_json::Value>,
    pub hi: Option<serde_json::Value>,
}

impl Partition {
    pub const WHOLE: Partition = Partition { lo: None, hi: None };
}

/// A chunk of snapshot rows and the key to continue after.
pub struct Chunk {
    pub rows: Vec<Vec<Cell>>,
    /// Primary key of the last row (JSON, for the catalog); `None` when the chunk is empty.
    pub last_key: Option<serde_json::Value>,
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
    /// Setup: an indexed NOT NULL integer column) partitions are ranges of it
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
        if key_idx.is_empty() {
            return Err(SourceError::Config(format!(
                "table {} has no primary key and no unique key on NOT NULL columns; add one (ALTER TABLE ... ADD PRIMARY KEY) or leave the table out of the pipe",
                table.id
            )));
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

    /// Splits the table into partitions of about `rows_per_partition` rows
    /// (equal-width ranges between the first key column's MIN and MAX, the outer
    /// ones unbounded), or returns `None` when the first key column is not an
    /// integer (the table is then read by one reader).
    pub async fn plan_partitions(&self, conn: &mut Conn, estimated_rows: u64, rows_per_partition: u64) -> Result<Option<Vec<Partition>>, SourceError> {
        let first = &self.cols[self.key_idx[0]];
        if !matches!(self.kinds[self.key_idx[0]], ColKind::Int { .. }) {
            return Ok(None);
        }
        let n = estimated_rows.div_ceil(rows_per_partition.max(1)).max(1);
        if n == 1 {
            return Ok(Some(vec![Partition::WHOLE]));
        }
        let col = quote_mysql(&first.name);
        let row: Option<(Option<i128>, Option<i128>)> = conn
            .query_first(format!("SELECT CAST(MIN({col}) AS CHAR), CAST(MAX({col}) AS CHAR) FROM {}", self.table.id))
            .await?
            .map(|(a, b): (Option<String>, Option<String>)| (a.and_then(|v| v.parse().ok()), b.and_then(|v| v.parse().ok())));
        let Some((Some(min), Some(max))) = row else { return Ok(Some(vec![Partition::WHOLE])) };
        let width = ((max - min + 1) / n as i128).max(1);
        let bound = |v: i128| if first.unsigned() { json!({"u": v as u64}) } else { json!({"i": v as i64}) };
        let mut parts = Vec::new();
        let mut lo: Option<i128> = None;
        for i in 1..n as i128 {
            let hi = min + width * i;
            if hi > max {
                break;
            }
            parts.push(Partition { lo: lo.map(bound), hi: Some(bound(hi)) });
            lo = Some(hi);
        }
        parts.push(Partition { lo: lo.map(bound), hi: None });
        Ok(Some(parts))
    }

    /// Reads up to `limit` rows of the whole table after `after` (a key from a previous chunk).
    pub async fn read_chunk(&self, conn: &mut Conn, after: Option<&serde_json::Value>, limit: u64) -> Result<Chunk, SourceError> {
        self.read_partition_chunk(conn, &Partition::WHOLE, after, limit).await
    }

    /// Reads up to `limit` rows of `part` after `after`.
    pub async fn read_partition_chunk(
        &self,
        conn: &mut Conn,
        part: &Partition,
        after: Option<&serde_json::Value>,
        limit: u64,
    ) -> Result<Chunk, SourceError> {
        let first = quote_mysql(&self.cols[self.key_idx[0]].name);
        let mut conds = Vec::new();
        let mut params = Vec::new();
        if let Some(lo) = &part.lo {
            conds.push(format!("{first} >= ?"));
            params.extend(key_from_json(&json!([lo]))?);
        }
        if let Some(hi) = &part.hi {
            conds.push(format!("{first} < ?"));
            params.extend(key_from_json(&json!([hi]))?);
        }
        if let Some(key) = after {
            let k = key_from_json(key)?;
            conds.push(format!("{} > ({})", self.key_tuple, vec!["?"; k.len()].join(", ")));
            params.extend(k);
        }
        let filter = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
        let sql = format!("{}{filter} ORDER BY {} LIMIT {limit}", self.select, self.order);
        let raw: Vec<mysql_async::Row> = conn.exec(sql, params).await?;
        let mut last_key = None;
        let mut rows = Vec::with_capacity(raw.len());
        let n = raw.len();
        for (i, row) in raw.into_iter().enumerate() {
            let values = row.unwrap();
            if i + 1 == n {
                last_key = Some(key_to_json(self.key_idx.iter().map(|k| &values[*k])));
            }
            let cells = values
                .into_iter()
                .take(self.mapped)
                .zip(self.cols.iter().zip(&self.kinds))
                .map(|(v, (col, kind))| from_snapshot(col, kind, v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SourceError::Decode(format!("table {}: {e}", self.table.id)))?;
            rows.push(cells);
        }
        Ok(Chunk { rows, last_key })
    }

    /// The optimizer's row estimate for progress reporting.
    pub async fn estimated_rows(&self, conn: &mut Conn) -> Result<u64, SourceError> {
        let n: Option<Option<u64>> = conn
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&self.table.id.schema, &self.table.id.table),
            )
            .await?;
        Ok(n.flatten().unwrap_or(0))
    }
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
        let t = SourceTable { id: TableId::new("s", "t"), columns: vec![col("a"), col("secret"), col("id")], primary_key: vec!["id".into()] };
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
}
