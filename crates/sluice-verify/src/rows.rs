//! Row-by-row comparison of one range: the rows are fetched from both sides
//! and compared value by value. The source side is read by the snapshot's own
//! reader (`TableReader`, the same conversion to `Cell`s the copy used); the
//! ClickHouse side is read back into `Cell`s (`canon::parse_ch_cell`) and the
//! source cells get the sink's lossy rules (`canon::normalise`).

use crate::canon::{ch_read_expr, normalise, parse_ch_cell, same, show};
use crate::sides::ch_live_rows;
use crate::{DiffKind, KeyDiff, VerifyError};
use mysql_async::Conn;
use sluice_core::spec::SourceSpec;
use sluice_core::types::TableMapping;
use sluice_core::Cell;
use sluice_sink::{quote, ClickHouseSink};
use sluice_source::conn::bounded;
use sluice_source::convert::{from_snapshot, ColKind};
use sluice_source::snapshot::{Partition, TableReader};
use std::collections::BTreeMap;

/// Source rows read per query.
const PAGE: u64 = 10_000;

/// A table's mapping cut down to its key columns and `columns` (destination
/// names), in mapping order: what a comparison of those columns reads.
pub fn narrowed(mapping: &TableMapping, columns: &[String]) -> TableMapping {
    let mut m = mapping.clone();
    let keys = &mapping.source.primary_key;
    m.columns.retain(|c| keys.contains(&mapping.source.columns[c.source_index].name) || columns.contains(&c.name));
    m
}

/// The rows of one side, by key text.
pub type Rows = BTreeMap<String, Vec<Cell>>;

fn key_text(mapping: &TableMapping, cells: &[Cell]) -> String {
    let mut out = Vec::new();
    for k in &mapping.source.primary_key {
        if let Some(i) = mapping.columns.iter().position(|c| &mapping.source.columns[c.source_index].name == k) {
            out.push(format!("{k}={}", show(&cells[i])));
        }
    }
    out.join(", ")
}

/// Source rows read by a `TableReader` of `mapping`, normalised as the sink writes them, by key text.
pub fn keyed_rows(mapping: &TableMapping, read: Vec<Vec<Cell>>) -> Rows {
    read.into_iter()
        .map(|cells| {
            let cells: Vec<Cell> = cells.into_iter().zip(&mapping.columns).map(|(c, m)| normalise(&m.ch_type, c)).collect();
            (key_text(mapping, &cells), cells)
        })
        .collect()
}

/// The source rows of `part` (all of them, paged), normalised as the sink writes them.
pub async fn source_rows(
    conn: &mut Conn,
    spec: &SourceSpec,
    mapping: &TableMapping,
    part: &Partition,
    pace: &mut crate::run::Pace,
) -> Result<Rows, VerifyError> {
    let reader = TableReader::new(mapping)?;
    let mut rows = Rows::new();
    let mut after = None;
    loop {
        let chunk = bounded(spec, "a verification read", reader.read_partition_chunk(conn, part, after.as_ref(), PAGE, u64::MAX)).await?;
        let n = chunk.rows.len() as u64;
        rows.append(&mut keyed_rows(mapping, chunk.rows));
        pace.scanned(n).await;
        if n < PAGE || chunk.last_key.is_none() {
            return Ok(rows);
        }
        after = chunk.last_key;
    }
}

/// The source rows matching the MySQL filter `pred` (one query, binary
/// protocol, the snapshot's conversion), normalised as the sink writes them.
pub async fn source_rows_where(
    conn: &mut Conn,
    spec: &SourceSpec,
    mapping: &TableMapping,
    pred: &str,
    pace: &mut crate::run::Pace,
) -> Result<Rows, VerifyError> {
    use mysql_async::prelude::*;
    let reader = TableReader::new(mapping)?;
    let sql = format!("{} WHERE {pred}", reader.select_sql());
    let raw: Vec<mysql_async::Row> = bounded(spec, "a verification read", async { Ok(conn.exec(sql, ()).await?) }).await?;
    let kinds: Vec<ColKind> = mapping.columns.iter().map(|c| ColKind::of(&mapping.source.columns[c.source_index])).collect();
    let mut rows = Rows::new();
    pace.scanned(raw.len() as u64).await;
    for row in raw {
        let cells = row
            .unwrap()
            .into_iter()
            .zip(mapping.columns.iter().zip(&kinds))
            .map(|(v, (m, kind))| from_snapshot(&mapping.source.columns[m.source_index], kind, v).map(|c| normalise(&m.ch_type, c)))
            .collect::<Result<Vec<_>, _>>()?;
        rows.insert(key_text(mapping, &cells), cells);
    }
    Ok(rows)
}

/// The ClickHouse rows matching the ClickHouse filter `pred` (newest version, not deleted).
pub async fn dest_rows(sink: &ClickHouseSink, mapping: &TableMapping, pred: &str) -> Result<Rows, VerifyError> {
    let cols: Vec<String> = mapping.columns.iter().map(|c| ch_read_expr(&c.name, &c.ch_type)).collect();
    let sql = format!(
        "SELECT {} FROM {} AND ({pred}) SETTINGS output_format_tsv_crlf_end_of_line = 0",
        cols.join(", "),
        ch_live_rows(sink, &mapping.destination)
    );
    let out = sink.query_tsv(&sql).await?;
    let mut rows = Rows::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != mapping.columns.len() {
            return Err(VerifyError::Invalid(format!("unexpected row from ClickHouse: {line:?}")));
        }
        let cells = fields
            .iter()
            .zip(&mapping.columns)
            .map(|(f, c)| {
                parse_ch_cell(&c.ch_type, f).ok_or_else(|| {
                    VerifyError::Invalid(format!("cannot read {} value {f:?} of column {}", c.ch_type.sql(), quote(&c.name)))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.insert(key_text(mapping, &cells), cells);
    }
    Ok(rows)
}

/// The differences between the two sides' rows, in key order.
pub fn diff(mapping: &TableMapping, src: &Rows, dst: &Rows) -> Vec<KeyDiff> {
    let mut out = Vec::new();
    for (k, s) in src {
        match dst.get(k) {
            None => out.push(KeyDiff { key: k.clone(), kind: DiffKind::Missing, columns: vec![] }),
            Some(d) => {
                let columns: Vec<String> =
                    mapping.columns.iter().zip(s.iter().zip(d)).filter(|(_, (a, b))| !same(a, b)).map(|(c, _)| c.name.clone()).collect();
                if !columns.is_empty() {
                    out.push(KeyDiff { key: k.clone(), kind: DiffKind::Differs, columns });
                }
            }
        }
    }
    for k in dst.keys().filter(|k| !src.contains_key(*k)) {
        out.push(KeyDiff { key: k.clone(), kind: DiffKind::Extra, columns: vec![] });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::schema::{SourceColumn, SourceTable, TableId};

    fn mapping() -> TableMapping {
        let t = SourceTable {
            id: TableId::new("s", "t"),
            columns: vec![
                SourceColumn::new("id", "int", "int", false),
                SourceColumn::new("a", "double", "double", true),
                SourceColumn::new("b", "varchar", "varchar(9)", true),
            ],
            primary_key: vec!["id".into()],
            charset: None,
        };
        TableMapping::with_options(t, "t".into(), Default::default())
    }

    #[test]
    fn rows_are_named_missing_extra_or_differing_with_their_columns() {
        let m = mapping();
        let row = |id: i64, a: f64, b: &str| vec![Cell::Int(id), Cell::Double(a), Cell::Bytes(b.as_bytes().to_vec())];
        let rows = |v: Vec<Vec<Cell>>| v.into_iter().map(|c| (key_text(&m, &c), c)).collect::<Rows>();
        let src = rows(vec![row(1, 1.0, "x"), row(2, 2.0, "y"), row(3, 0.0, "z")]);
        let dst = rows(vec![row(2, 2.0, "Y"), row(3, -0.0, "z"), row(4, 4.0, "w")]);
        let d = diff(&m, &src, &dst);
        assert_eq!(
            d,
            [
                KeyDiff { key: "id=1".into(), kind: DiffKind::Missing, columns: vec![] },
                KeyDiff { key: "id=2".into(), kind: DiffKind::Differs, columns: vec!["b".into()] },
                KeyDiff { key: "id=3".into(), kind: DiffKind::Differs, columns: vec!["a".into()] },
                KeyDiff { key: "id=4".into(), kind: DiffKind::Extra, columns: vec![] },
            ]
        );
        assert!(diff(&m, &src, &src).is_empty());
        assert_eq!(narrowed(&m, &["b".into()]).columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["id", "b"]);
    }
}
