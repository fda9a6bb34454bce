//! Turns the spec's table patterns into recorded `SourceTable`s.

use crate::conn::SourceError;
use mysql_async::prelude::*;
use mysql_async::Conn;
use sluice_core::schema::{SourceColumn, SourceTable, TableId};
use sluice_core::spec::TableSpec;

/// Expands `schema.table` / `schema.*` patterns into (table, destination name) pairs.
/// A named table that does not exist is an error naming it.
pub async fn expand(conn: &mut Conn, tables: &[TableSpec]) -> Result<Vec<(TableId, String)>, SourceError> {
    let mut out: Vec<(TableId, String)> = Vec::new();
    for t in tables {
        let p = t.pattern().map_err(SourceError::Config)?;
        let names: Vec<String> = match &p.table {
            Some(name) => {
                let found: Option<String> = conn
                    .exec_first(
                        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND TABLE_TYPE = 'BASE TABLE'",
                        (&p.schema, name),
                    )
                    .await?;
                if found.is_none() {
                    return Err(SourceError::Config(format!(
                        "source table {} does not exist (or is a view, or the user lacks SELECT on it)",
                        TableId::new(&p.schema, name)
                    )));
                }
                vec![name.clone()]
            }
            None => {
                conn.exec(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
                    (&p.schema,),
                )
                .await?
            }
        };
        if names.is_empty() {
            return Err(SourceError::Config(format!("source pattern {:?} matches no tables", t.source)));
        }
        for name in names {
            let id = TableId::new(&p.schema, &name);
            let dest = t.destination.clone().unwrap_or_else(|| name.clone());
            if out.iter().any(|(i, d)| i == &id || d == &dest) {
                return Err(SourceError::Config(format!("table {id} (destination {dest:?}) is listed twice")));
            }
            out.push((id, dest));
        }
    }
    Ok(out)
}

type ColumnRow = (String, u32, String, String, String, Option<u64>, Option<u64>, Option<u64>, Option<String>, String);

/// Reads a table's columns and primary key from `information_schema`.
pub async fn describe(conn: &mut Conn, id: &TableId) -> Result<SourceTable, SourceError> {
    let rows: Vec<ColumnRow> = conn
        .exec(
            "SELECT COLUMN_NAME, ORDINAL_POSITION, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), IS_NULLABLE, \
             NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_SET_NAME, EXTRA \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (&id.schema, &id.table),
        )
        .await?;
    if rows.is_empty() {
        return Err(SourceError::Config(format!("source table {id} has no columns visible to this user")));
    }
    let columns: Vec<SourceColumn> = rows
        .into_iter()
        .map(|(name, ordinal, data_type, column_type, nullable, prec, scale, dtp, charset, extra)| SourceColumn {
            name,
            ordinal,
            data_type,
            column_type,
            nullable: nullable == "YES",
            numeric_precision: prec.map(|v| v as u32),
            numeric_scale: scale.map(|v| v as u32),
            datetime_precision: dtp.map(|v| v as u32),
            charset,
            extra,
        })
        .collect();
    for c in &columns {
        if let Some(cs) = &c.charset {
            crate::convert::charset_encoding(cs).map_err(|e| SourceError::Config(format!("column {} of {id}: {e}", c.name)))?;
        }
    }
    let primary_key: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            (&id.schema, &id.table),
        )
        .await?;
    Ok(SourceTable { id: id.clone(), columns, primary_key })
}
