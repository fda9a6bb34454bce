//! Turns the spec's table patterns into recorded `SourceTable`s.
//!
//! A table's key is its primary key; a table without one is keyed by a unique
//! index whose columns are all NOT NULL (the fewest columns, then the first
//! by name), which identifies rows just as well. A table with neither gets an
//! empty key: it is replicated only with options that say how (`key_columns`,
//! or an engine that needs no key), else skipped (a `schema.*` match) or
//! refused (a named table) at Setup.

use crate::conn::SourceError;
use mysql_async::prelude::*;
use mysql_async::Conn;
use sluice_core::schema::{SourceColumn, SourceTable, TableId};
use sluice_core::spec::TableSpec;

/// Expands `schema.table` / `schema.*` patterns into (table, destination name) pairs.
/// A named table that does not exist is an error naming it. A table both named
/// by an entry and matched by a `schema.*` entry comes from the naming entry
/// (so that one table of a schema can have options of its own).
pub async fn expand(conn: &mut Conn, tables: &[TableSpec]) -> Result<Vec<Expanded>, SourceError> {
    let mut out: Vec<Expanded> = Vec::new();
    let named: Vec<TableId> = tables
        .iter()
        .filter_map(|t| t.pattern().ok())
        .filter_map(|p| p.table.clone().map(|table| TableId::new(&p.schema, table)))
        .collect();
    for (index, t) in tables.iter().enumerate() {
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
            if p.table.is_none() && named.contains(&id) {
                continue;
            }
            let dest = t.destination.clone().unwrap_or_else(|| name.clone());
            if out.iter().any(|e| e.id == id || e.destination == dest) {
                return Err(SourceError::Config(format!("table {id} (destination {dest:?}) is listed twice")));
            }
            out.push(Expanded { id, destination: dest, index, named: p.table.is_some() });
        }
    }
    Ok(out)
}

/// The schemas a table listing leaves out: the server's own.
pub const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// One base table visible to the user, for a table picker: `(schema, table,
/// estimated rows)` (the estimate is `information_schema.TABLES.TABLE_ROWS`:
/// InnoDB's sample, not a count). System schemas are left out; `schemas`
/// (when not empty) keeps only those. Ordered by schema, then table.
pub async fn list_tables(conn: &mut Conn, schemas: &[String]) -> Result<Vec<(String, String, u64)>, SourceError> {
    let rows: Vec<(String, String, Option<u64>)> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' \
             ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter(|(s, _, _)| !SYSTEM_SCHEMAS.contains(&s.to_ascii_lowercase().as_str()))
        .filter(|(s, _, _)| schemas.is_empty() || schemas.contains(s))
        .map(|(s, t, n)| (s, t, n.unwrap_or(0)))
        .collect())
}

/// One table of the spec's list: its id, destination name, and the entry (index into `tables`) it came from.
#[derive(Debug, Clone)]
pub struct Expanded {
    pub id: TableId,
    pub destination: String,
    pub index: usize,
    /// The entry names the table (`schema.table`, not `schema.*`).
    pub named: bool,
}

/// Checks a table's options and `partition_key` against its definition; a
/// declared `key_columns` must hold no NULL (a row with one could not be keyed).
pub async fn check_table_spec(conn: &mut Conn, table: &SourceTable, spec: &TableSpec, e: &Expanded) -> Result<(), SourceError> {
    spec.options().check(table, spec.partition_key.as_deref(), e.index).map_err(SourceError::Config)?;
    if let Some(pk) = &spec.partition_key {
        check_partition_key(conn, table, pk).await?;
    }
    if let (Some(key), true) = (&spec.key_columns, table.primary_key.is_empty()) {
        if let Some((column, rows)) = null_in_key(conn, table, key).await? {
            return Err(SourceError::Config(format!(
                "tables[{}].key_columns: column {column:?} of {} holds NULL in {rows} row(s), and a key column must identify \
                 every row; choose NOT NULL columns, or fill the NULLs (and make the column NOT NULL) on the source",
                e.index, table.id
            )));
        }
    }
    Ok(())
}

/// The first of the nullable `key` columns of `table` that holds NULL, with how many rows do.
pub async fn null_in_key(conn: &mut Conn, table: &SourceTable, key: &[String]) -> Result<Option<(String, u64)>, SourceError> {
    for c in key {
        if !table.column(c).is_some_and(|col| col.nullable) {
            continue;
        }
        let col = sluice_core::schema::quote_mysql(c);
        let n: Option<u64> = conn.query_first(format!("SELECT COUNT(*) FROM {} WHERE {col} IS NULL", table.id)).await?;
        if let Some(n) = n.filter(|n| *n > 0) {
            return Ok(Some((c.clone(), n)));
        }
    }
    Ok(None)
}

/// How many values of `key` occur more than once in `table`, with one of them
/// (as text, `a, b`); `None` when every value is unique.
pub async fn duplicate_keys(conn: &mut Conn, table: &SourceTable, key: &[String]) -> Result<Option<(u64, String)>, SourceError> {
    let cols: Vec<String> = key.iter().map(|c| sluice_core::schema::quote_mysql(c)).collect();
    let shown: Vec<String> = cols.iter().map(|c| format!("COALESCE(CAST({c} AS CHAR), 'NULL')")).collect();
    let sql = format!(
        "SELECT COUNT(*), MIN(k) FROM (SELECT CONCAT_WS(', ', {}) AS k FROM {} GROUP BY {} HAVING COUNT(*) > 1) d",
        shown.join(", "),
        table.id,
        cols.join(", ")
    );
    let row: Option<(u64, Option<String>)> = conn.query_first(sql).await?;
    Ok(match row {
        Some((n, Some(example))) if n > 0 => Some((n, example)),
        _ => None,
    })
}

type ColumnRow = (String, u32, String, String, String, Option<u64>, Option<u64>, Option<u64>, Option<String>, String);

/// A `ColumnRow` led by its table's name.
type NamedColumnRow = (String, String, u32, String, String, String, Option<u64>, Option<u64>, Option<u64>, Option<String>, String);

/// One table's `information_schema` rows (see `assemble`).
#[derive(Default)]
struct TableRows {
    columns: Vec<ColumnRow>,
    unique: Vec<(String, Option<String>)>,
    charset: Option<String>,
}

const COLUMNS: &str = "COLUMN_NAME, ORDINAL_POSITION, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), IS_NULLABLE, \
     NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_SET_NAME, EXTRA";

/// Reads a table's columns, key (see the module comment) and default
/// character set from `information_schema`: the table as it is now.
pub async fn describe(conn: &mut Conn, id: &TableId) -> Result<SourceTable, SourceError> {
    let rows: Vec<ColumnRow> = conn
        .exec(
            format!("SELECT {COLUMNS} FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"),
            (&id.schema, &id.table),
        )
        .await?;
    let unique: Vec<(String, Option<String>)> = conn
        .exec(
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (&id.schema, &id.table),
        )
        .await?;
    let charset = table_charset(conn, id).await?;
    let table = assemble(id, rows, &unique, charset)?;
    if !table.primary_key.is_empty() && !unique.iter().any(|(index, _)| index == "PRIMARY") {
        let key = table.primary_key.join(", ");
        tracing::info!("table {id} has no primary key; its unique key on NOT NULL columns ({key}) is used as the key");
    }
    Ok(table)
}

/// Describes every base table of `schema` (as `describe` does each) in three
/// queries, whatever the number of tables: for listings of whole sources,
/// where a round trip per table would not scale. A table that cannot be
/// described (no visible column, an unsupported charset) has its error.
pub async fn describe_schema(conn: &mut Conn, schema: &str) -> Result<Vec<(String, Result<SourceTable, SourceError>)>, SourceError> {
    let charsets: Vec<(String, Option<String>)> = conn
        .exec(
            "SELECT t.TABLE_NAME, c.CHARACTER_SET_NAME FROM information_schema.TABLES t \
             LEFT JOIN information_schema.COLLATIONS c ON c.COLLATION_NAME = t.TABLE_COLLATION \
             WHERE t.TABLE_SCHEMA = ? AND t.TABLE_TYPE = 'BASE TABLE'",
            (schema,),
        )
        .await?;
    let columns: Vec<(String, ColumnRow)> = conn
        .exec_map(
            format!(
                "SELECT TABLE_NAME, {COLUMNS} FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION"
            ),
            (schema,),
            |(t, a, b, c, d, e, f, g, h, i, j): NamedColumnRow| (t, (a, b, c, d, e, f, g, h, i, j)),
        )
        .await?;
    let unique: Vec<(String, String, Option<String>)> = conn
        .exec(
            "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? \
             AND NON_UNIQUE = 0 ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
            (schema,),
        )
        .await?;
    // Base tables only (views have columns too).
    let mut by_table: std::collections::BTreeMap<String, TableRows> =
        charsets.into_iter().map(|(t, charset)| (t, TableRows { charset, ..Default::default() })).collect();
    for (t, row) in columns {
        if let Some(e) = by_table.get_mut(&t) {
            e.columns.push(row);
        }
    }
    for (t, index, column) in unique {
        if let Some(e) = by_table.get_mut(&t) {
            e.unique.push((index, column));
        }
    }
    Ok(by_table
        .into_iter()
        .map(|(t, rows)| {
            let described = assemble(&TableId::new(schema, &t), rows.columns, &rows.unique, rows.charset);
            (t, described)
        })
        .collect())
}

/// The error for a table whose columns the user cannot see (or that is gone).
pub fn no_visible_columns(id: &TableId) -> SourceError {
    SourceError::Config(format!("source table {id} has no columns visible to this user"))
}

/// A table's definition from its `information_schema` rows: its columns (in
/// ordinal order), its unique indexes' `(index, column)` rows (in index and
/// sequence order) and its default charset.
fn assemble(
    id: &TableId,
    rows: Vec<ColumnRow>,
    unique: &[(String, Option<String>)],
    charset: Option<String>,
) -> Result<SourceTable, SourceError> {
    if rows.is_empty() {
        return Err(no_visible_columns(id));
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
    let primary_key = choose_key(&columns, unique);
    Ok(SourceTable { id: id.clone(), columns, primary_key, charset })
}

/// A table's default character set: the charset of its `TABLE_COLLATION`.
pub async fn table_charset(conn: &mut Conn, id: &TableId) -> Result<Option<String>, SourceError> {
    Ok(conn
        .exec_first(
            "SELECT c.CHARACTER_SET_NAME FROM information_schema.TABLES t \
             JOIN information_schema.COLLATIONS c ON c.COLLATION_NAME = t.TABLE_COLLATION \
             WHERE t.TABLE_SCHEMA = ? AND t.TABLE_NAME = ?",
            (&id.schema, &id.table),
        )
        .await?)
}

/// The key columns: the primary key, else the smallest unique index (then the
/// first by name) whose columns all exist and are NOT NULL (functional index
/// parts have no column name and disqualify their index); empty when none qualifies.
fn choose_key(columns: &[SourceColumn], unique: &[(String, Option<String>)]) -> Vec<String> {
    let mut indexes: Vec<(&str, Vec<Option<&str>>)> = Vec::new();
    for (index, column) in unique {
        match indexes.iter_mut().find(|(name, _)| name == index) {
            Some((_, cols)) => cols.push(column.as_deref()),
            None => indexes.push((index, vec![column.as_deref()])),
        }
    }
    if let Some((_, cols)) = indexes.iter().find(|(name, _)| *name == "PRIMARY") {
        return cols.iter().flatten().map(|c| c.to_string()).collect();
    }
    let usable =
        |cols: &Vec<Option<&str>>| cols.iter().all(|c| c.is_some_and(|name| columns.iter().any(|col| col.name == name && !col.nullable)));
    indexes
        .iter()
        .filter(|(_, cols)| usable(cols))
        .min_by(|a, b| a.1.len().cmp(&b.1.len()).then(a.0.cmp(b.0)))
        .map(|(_, cols)| cols.iter().flatten().map(|c| c.to_string()).collect())
        .unwrap_or_default()
}

/// A snapshot partition key must be a NOT NULL integer, DATE/DATETIME/TIMESTAMP
/// or string (CHAR/VARCHAR/BINARY/VARBINARY) column that leads an index on its
/// whole value: ranges of it are read through that index, and every row falls
/// in one (see `TableReader::plan_partitions` for how each kind is split).
pub async fn check_partition_key(conn: &mut Conn, table: &SourceTable, name: &str) -> Result<(), SourceError> {
    let refuse = |why: &str| SourceError::Config(format!("partition_key {name:?} of {}: {why}", table.id));
    let col = table.column(name).ok_or_else(|| refuse("no such column"))?;
    let ty = col.data_type.as_str();
    let integer = matches!(ty, "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint");
    let temporal = matches!(ty, "date" | "datetime" | "timestamp");
    let string = crate::snapshot::STRING_KEY_TYPES.contains(&ty);
    if ty.ends_with("text") || ty.ends_with("blob") {
        return Err(refuse(&format!(
            "{} columns can only be indexed by a prefix, which cannot order ranges of the whole value; \
             use an integer, date/datetime/timestamp or CHAR/VARCHAR/BINARY/VARBINARY column",
            col.column_type
        )));
    }
    if !(integer || temporal || string) {
        return Err(refuse(&format!(
            "must be an integer, date/datetime/timestamp or string (CHAR/VARCHAR/BINARY/VARBINARY) column, not {}",
            col.column_type
        )));
    }
    if col.nullable {
        return Err(refuse("must be NOT NULL (rows with NULL would fall in no partition)"));
    }
    if leads_whole_value_index(conn, table, name).await? {
        return Ok(());
    }
    let prefix: Option<String> = conn
        .exec_first(
            "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ? AND SEQ_IN_INDEX = 1 LIMIT 1",
            (&table.id.schema, &table.id.table, name),
        )
        .await?;
    Err(match prefix {
        Some(index) => refuse(&format!(
            "is indexed only by a prefix of its value (index {index}), which cannot order ranges of the whole value; add an index on the whole column"
        )),
        None => refuse("is not the first column of any index; reading ranges of it would scan the whole table for every chunk"),
    })
}

/// Whether column `name` is the first column of an index on its whole value
/// (not a prefix `KEY (c(10))`), which serves ranges and order of the column.
pub async fn leads_whole_value_index(conn: &mut Conn, table: &SourceTable, name: &str) -> Result<bool, SourceError> {
    let indexed: Option<String> = conn
        .exec_first(
            "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ? \
             AND SEQ_IN_INDEX = 1 AND SUB_PART IS NULL LIMIT 1",
            (&table.id.schema, &table.id.table, name),
        )
        .await?;
    Ok(indexed.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, nullable: bool) -> SourceColumn {
        SourceColumn { ordinal: 1, ..SourceColumn::new(name, "int", "int", nullable) }
    }

    #[test]
    fn key_is_primary_else_smallest_not_null_unique() {
        let cols = [col("a", false), col("b", false), col("n", true)];
        let u = |rows: &[(&str, Option<&str>)]| -> Vec<(String, Option<String>)> {
            rows.iter().map(|(i, c)| (i.to_string(), c.map(String::from))).collect()
        };
        assert_eq!(choose_key(&cols, &u(&[("PRIMARY", Some("b")), ("PRIMARY", Some("a"))])), ["b", "a"]);
        assert_eq!(choose_key(&cols, &u(&[("ab", Some("a")), ("ab", Some("b")), ("bb", Some("b"))])), ["b"]);
        assert_eq!(choose_key(&cols, &u(&[("n", Some("n")), ("ab", Some("a")), ("ab", Some("b"))])), ["a", "b"]);
        assert!(choose_key(&cols, &u(&[("n", Some("n")), ("f", None)])).is_empty());
        assert!(choose_key(&cols, &[]).is_empty());
    }
}
