//! The recorded shape of a source table: read from `information_schema` when
//! the table is set up (or resynced), then changed by the DDL statements of
//! the binlog, one at a time, so that it always describes the table as of the
//! pipe's position in the stream (never the table's present shape).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A source table's fully qualified name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableId {
    pub schema: String,
    pub table: String,
}

impl TableId {
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        Self { schema: schema.into(), table: table.into() }
    }
}

/// Quotes a MySQL identifier with backticks.
pub fn quote_mysql(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

impl fmt::Display for TableId {
    /// Backtick-quoted `schema`.`table`, safe to splice into MySQL SQL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", quote_mysql(&self.schema), quote_mysql(&self.table))
    }
}

/// One column as `information_schema.COLUMNS` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceColumn {
    pub name: String,
    /// 1-based position in the table.
    pub ordinal: u32,
    /// `DATA_TYPE`, lower case: `int`, `varchar`, `decimal`, ...
    pub data_type: String,
    /// `COLUMN_TYPE`, lower case: `int unsigned`, `enum('a','b')`, `decimal(10,2)`, ...
    pub column_type: String,
    pub nullable: bool,
    pub numeric_precision: Option<u32>,
    pub numeric_scale: Option<u32>,
    pub datetime_precision: Option<u32>,
    pub charset: Option<String>,
    /// `VIRTUAL GENERATED` / `STORED GENERATED` columns keep their `EXTRA` text here.
    pub extra: String,
}

impl SourceColumn {
    /// A column with the given type text and no precision, charset or extra
    /// (fill those in as `information_schema` would report them).
    pub fn new(name: &str, data_type: &str, column_type: &str, nullable: bool) -> Self {
        SourceColumn {
            name: name.into(),
            ordinal: 0,
            data_type: data_type.into(),
            column_type: column_type.into(),
            nullable,
            numeric_precision: None,
            numeric_scale: None,
            datetime_precision: None,
            charset: None,
            extra: String::new(),
        }
    }

    pub fn unsigned(&self) -> bool {
        self.column_type.contains("unsigned")
    }

    /// The value list of an ENUM or SET column, parsed from `COLUMN_TYPE`.
    pub fn enum_values(&self) -> Vec<String> {
        let ct = &self.column_type;
        let Some(start) = ct.find('(') else { return vec![] };
        let body = &ct[start + 1..ct.rfind(')').unwrap_or(ct.len())];
        let mut out = Vec::new();
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\'' {
                continue;
            }
            let mut v = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\'' if chars.peek() == Some(&'\'') => {
                        chars.next();
                        v.push('\'');
                    }
                    '\'' => break,
                    '\\' => {
                        if let Some(n) = chars.next() {
                            v.push(n)
                        }
                    }
                    c => v.push(c),
                }
            }
            out.push(v);
        }
        out
    }
}

/// A source table: its columns in ordinal order and its primary key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceTable {
    pub id: TableId,
    pub columns: Vec<SourceColumn>,
    /// Key column names in key order: the primary key, or for a table without
    /// one the NOT NULL unique key discovery chose; empty when there is neither.
    pub primary_key: Vec<String>,
    /// The table's default character set (the charset of `TABLE_COLLATION`),
    /// which text columns added later without a charset inherit; changed by
    /// `ALTER TABLE .. [DEFAULT] CHARACTER SET|COLLATE`. `None` in definitions
    /// recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
}

impl SourceTable {
    pub fn column(&self, name: &str) -> Option<&SourceColumn> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Indices (into `columns`) of the primary key columns, in key order.
    pub fn primary_key_indices(&self) -> Vec<usize> {
        self.primary_key.iter().filter_map(|k| self.columns.iter().position(|c| &c.name == k)).collect()
    }
}

/// One column-level step of an `ALTER TABLE` on a tracked table, in statement order.
///
/// Shared vocabulary between the source (which derives the steps from the DDL in
/// the binlog) and the sink (which replays them on the destination table).
/// Column names are the source column names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlterOp {
    /// A new column. `default` is the value MySQL gave the rows already in the
    /// table, as text (`5`, `0.00`, `abc`, `2024-01-01 00:00:00`); `None` means
    /// NULL for a nullable column and the type's zero value (`0`, `''`) otherwise.
    AddColumn {
        name: String,
        default: Option<String>,
    },
    DropColumn {
        name: String,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    /// `MODIFY`/`CHANGE`: the column was redefined (and renamed when the names differ).
    ModifyColumn {
        old_name: String,
        new_name: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_values_with_quotes_and_commas() {
        let c = SourceColumn {
            name: "e".into(),
            ordinal: 1,
            data_type: "enum".into(),
            column_type: "enum('a','b,c','it''s','')".into(),
            nullable: true,
            numeric_precision: None,
            numeric_scale: None,
            datetime_precision: None,
            charset: None,
            extra: String::new(),
        };
        assert_eq!(c.enum_values(), vec!["a", "b,c", "it's", ""]);
        assert_eq!(TableId::new("a`b", "c").to_string(), "`a``b`.`c`");
    }
}
