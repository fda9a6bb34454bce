//! MySQL/MariaDB → ClickHouse type mapping.
//!
//! `map_column` is the single place that decides a destination type; the
//! README's mapping table is generated from `MAPPING_RULES` and a test checks
//! that they agree, so the documentation cannot drift from the code.

use crate::schema::{AlterOp, SourceColumn, SourceTable};
use serde::{Deserialize, Serialize};

/// A ClickHouse column type Sluice writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChType {
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: u8,
    },
    String,
    Date32,
    /// `DateTime64(precision, 'UTC')`.
    DateTime64 {
        precision: u8,
    },
    Uuid,
    IPv4,
    IPv6,
    /// `Array(T)`; never inside `Nullable` (ClickHouse forbids it), so NULL is written as `[]`.
    Array(Box<ChType>),
    Nullable(Box<ChType>),
}

impl ChType {
    pub fn sql(&self) -> String {
        match self {
            ChType::Int8 => "Int8".into(),
            ChType::Int16 => "Int16".into(),
            ChType::Int32 => "Int32".into(),
            ChType::Int64 => "Int64".into(),
            ChType::UInt8 => "UInt8".into(),
            ChType::UInt16 => "UInt16".into(),
            ChType::UInt32 => "UInt32".into(),
            ChType::UInt64 => "UInt64".into(),
            ChType::Float32 => "Float32".into(),
            ChType::Float64 => "Float64".into(),
            ChType::Decimal { precision, scale } => format!("Decimal({precision}, {scale})"),
            ChType::String => "String".into(),
            ChType::Date32 => "Date32".into(),
            ChType::DateTime64 { precision } => format!("DateTime64({precision}, 'UTC')"),
            ChType::Uuid => "UUID".into(),
            ChType::IPv4 => "IPv4".into(),
            ChType::IPv6 => "IPv6".into(),
            ChType::Array(t) => format!("Array({})", t.sql()),
            ChType::Nullable(t) => format!("Nullable({})", t.sql()),
        }
    }

    /// `Nullable(self)`; arrays stay as they are (ClickHouse has no `Nullable(Array)`).
    pub fn nullable(self) -> ChType {
        match self {
            ChType::Nullable(_) | ChType::Array(_) => self,
            t => ChType::Nullable(Box::new(t)),
        }
    }

    pub fn is_nullable(&self) -> bool {
        matches!(self, ChType::Nullable(_))
    }
}

/// One row of the documented mapping: source type names → ClickHouse type → notes.
pub struct MappingRule {
    pub mysql: &'static str,
    pub clickhouse: &'static str,
    pub notes: &'static str,
}

/// The mapping as documented in the README (checked against `map_column` by tests).
pub const MAPPING_RULES: &[MappingRule] = &[
    MappingRule { mysql: "TINYINT / TINYINT UNSIGNED (also BOOL)", clickhouse: "Int8 / UInt8", notes: "full range; BOOL stays a number" },
    MappingRule { mysql: "SMALLINT / SMALLINT UNSIGNED", clickhouse: "Int16 / UInt16", notes: "" },
    MappingRule { mysql: "MEDIUMINT / MEDIUMINT UNSIGNED", clickhouse: "Int32 / UInt32", notes: "" },
    MappingRule { mysql: "INT / INT UNSIGNED", clickhouse: "Int32 / UInt32", notes: "" },
    MappingRule { mysql: "BIGINT / BIGINT UNSIGNED", clickhouse: "Int64 / UInt64", notes: "up to 18446744073709551615" },
    MappingRule { mysql: "DECIMAL(p,s) / NUMERIC(p,s)", clickhouse: "Decimal(p, s)", notes: "exact, p up to 65, s up to 30" },
    MappingRule { mysql: "FLOAT", clickhouse: "Float32", notes: "binary value kept bit for bit (never through text)" },
    MappingRule { mysql: "DOUBLE / REAL", clickhouse: "Float64", notes: "binary value kept bit for bit (never through text)" },
    MappingRule { mysql: "BIT(n)", clickhouse: "UInt64", notes: "the bits as an unsigned integer, n up to 64" },
    MappingRule { mysql: "YEAR", clickhouse: "UInt16", notes: "0000 → 0" },
    MappingRule {
        mysql: "DATE",
        clickhouse: "Nullable(Date32)",
        notes: "**lossy**: zero/partial-zero dates and dates outside 1900-01-01..2299-12-31 → NULL (never shifted)",
    },
    MappingRule {
        mysql: "DATETIME(n)",
        clickhouse: "Nullable(DateTime64(n, 'UTC'))",
        notes: "wall-clock value stored as UTC (no shift); **lossy**: zero/partial-zero/outside 1900..2299 → NULL",
    },
    MappingRule {
        mysql: "TIMESTAMP(n)",
        clickhouse: "Nullable(DateTime64(n, 'UTC'))",
        notes: "the UTC instant, whatever the source or session time_zone; zero → NULL",
    },
    MappingRule {
        mysql: "TIME(n)",
        clickhouse: "String",
        notes: "MySQL text form `[-]HH:MM:SS[.f]` with n fractional digits, hours up to 838",
    },
    MappingRule {
        mysql: "CHAR / VARCHAR / TINYTEXT..LONGTEXT",
        clickhouse: "String",
        notes: "UTF-8 text: utf8mb4 as stored, other charsets (latin1, ...) transcoded; CHAR without trailing spaces, as MySQL returns it",
    },
    MappingRule {
        mysql: "BINARY / VARBINARY / TINYBLOB..LONGBLOB",
        clickhouse: "String",
        notes: "raw bytes, BINARY(n) right-padded with 0x00 as MySQL stores it",
    },
    MappingRule { mysql: "ENUM", clickhouse: "String", notes: "the label, not the index ('' for the invalid value)" },
    MappingRule { mysql: "SET", clickhouse: "String", notes: "labels in definition order joined with ','" },
    MappingRule {
        mysql: "JSON",
        clickhouse: "String",
        notes: "compact JSON text (MySQL binary JSON decoded; MariaDB JSON is LONGTEXT, re-serialised)",
    },
    MappingRule {
        mysql: "GEOMETRY, POINT, LINESTRING, POLYGON, MULTI*, GEOMETRYCOLLECTION",
        clickhouse: "String",
        notes: "WKT as `ST_AsText` prints it, `SRID=n;` prefix when the SRID is not 0; coordinates in storage (x y) order",
    },
    MappingRule {
        mysql: "VECTOR(n) (MySQL 9, MariaDB 11.7+)",
        clickhouse: "Array(Float32)",
        notes: "the n floats bit for bit; NULL → `[]` (ClickHouse has no Nullable(Array))",
    },
    MappingRule { mysql: "UUID (MariaDB 10.7+)", clickhouse: "UUID", notes: "the canonical UUID, whatever MariaDB's internal byte order" },
    MappingRule { mysql: "INET4 / INET6 (MariaDB 10.10+ / 10.5+)", clickhouse: "IPv4 / IPv6", notes: "" },
    MappingRule {
        mysql: "VARCHAR / VARBINARY / TEXT / BLOB `COMPRESSED` (MariaDB)",
        clickhouse: "String",
        notes: "the uncompressed value (the binlog carries the compressed form; Sluice inflates it)",
    },
    MappingRule { mysql: "other types", clickhouse: "String", notes: "raw bytes as the server sends them" },
];

/// Decides the ClickHouse type of one source column.
/// `in_key` columns are never `Nullable` (ClickHouse sorting keys cannot be).
pub fn map_column(c: &SourceColumn, in_key: bool) -> ChType {
    let unsigned = c.unsigned();
    let pick = |s: ChType, u: ChType| if unsigned { u } else { s };
    let base = match c.data_type.as_str() {
        "tinyint" => pick(ChType::Int8, ChType::UInt8),
        "smallint" => pick(ChType::Int16, ChType::UInt16),
        "mediumint" | "int" | "integer" => pick(ChType::Int32, ChType::UInt32),
        "bigint" => pick(ChType::Int64, ChType::UInt64),
        "decimal" | "numeric" => ChType::Decimal {
            precision: c.numeric_precision.unwrap_or(10).clamp(1, 76) as u8,
            scale: c.numeric_scale.unwrap_or(0).min(76) as u8,
        },
        "float" => ChType::Float32,
        "double" | "real" => ChType::Float64,
        "bit" => ChType::UInt64,
        "year" => ChType::UInt16,
        "date" => ChType::Date32,
        "datetime" | "timestamp" => ChType::DateTime64 { precision: c.datetime_precision.unwrap_or(0).min(6) as u8 },
        "vector" => ChType::Array(Box::new(ChType::Float32)),
        "uuid" => ChType::Uuid,
        "inet4" => ChType::IPv4,
        "inet6" => ChType::IPv6,
        _ => ChType::String,
    };
    let date_like = matches!(base, ChType::Date32 | ChType::DateTime64 { .. });
    if !in_key && (c.nullable || date_like) {
        base.nullable()
    } else {
        base
    }
}

/// A destination column and the source column it is fed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMapping {
    /// Index into `SourceTable::columns`.
    pub source_index: usize,
    pub name: String,
    pub ch_type: ChType,
}

/// How one source table lands in ClickHouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableMapping {
    pub source: SourceTable,
    pub destination: String,
    pub columns: Vec<ColumnMapping>,
    /// The snapshot's partition column when it is not the first key column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
    /// The table's options from the spec (columns left out, engine, keys).
    #[serde(default, skip_serializing_if = "TableOptions::is_default")]
    pub options: TableOptions,
}

/// The destination table's engine.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableEngine {
    /// `ReplacingMergeTree(_peerdb_version, _peerdb_is_deleted)`: `FINAL` shows the current rows.
    #[default]
    Replacing,
    /// `MergeTree` ordered by (sorting key, `_peerdb_version`): every change is kept as a row.
    MergeTree,
    /// `Null`: nothing is stored; materialized views on the table see every insert.
    Null,
}

impl TableEngine {
    pub fn is_default(&self) -> bool {
        *self == TableEngine::Replacing
    }
}

/// Per-table options of the pipe spec, kept with the mapping so that resyncs
/// and schema changes rebuild the table the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableOptions {
    /// Source columns never read nor written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_columns: Vec<String>,
    /// ClickHouse ORDER BY columns (default: the source key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorting_key: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "TableEngine::is_default")]
    pub engine: TableEngine,
    /// ClickHouse PARTITION BY expression, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_by: Option<String>,
    /// ReplacingMergeTree with `allow_experimental_replacing_merge_with_cleanup = 1`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hard_deletes: bool,
    /// The key the user declared for a table without one (see `TableSpec::key_columns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_columns: Option<Vec<String>>,
    /// The sharding key of the table's `Distributed` table (see `TableSpec::sharding_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding_key: Option<String>,
}

impl TableOptions {
    pub fn is_default(&self) -> bool {
        *self == TableOptions::default()
    }

    pub fn excludes(&self, column: &str) -> bool {
        self.exclude_columns.iter().any(|c| c == column)
    }

    /// The options after `ops` changed the table: an excluded column stays
    /// excluded under its new name when it is renamed.
    pub fn after_alter(&self, ops: &[AlterOp]) -> TableOptions {
        let mut o = self.clone();
        for op in ops {
            if let AlterOp::RenameColumn { from, to } | AlterOp::ModifyColumn { old_name: from, new_name: to } = op {
                for c in o.exclude_columns.iter_mut() {
                    if c == from {
                        *c = to.clone();
                    }
                }
            }
        }
        o
    }

    /// Excluded names the table has no column for (yet).
    pub fn unknown_excluded(&self, table: &SourceTable) -> Vec<String> {
        self.exclude_columns.iter().filter(|c| table.column(c).is_none()).cloned().collect()
    }

    /// The key rows are identified by: the table's own, else the declared `key_columns`
    /// (empty when there is neither: a keyless table).
    pub fn effective_key(&self, table: &SourceTable) -> Vec<String> {
        match &self.key_columns {
            Some(k) if table.primary_key.is_empty() => k.clone(),
            _ => table.primary_key.clone(),
        }
    }

    /// Why `table` cannot be replicated with these options because it has no
    /// key (no primary key, no unique key on NOT NULL columns, no `key_columns`),
    /// naming the options that would include it; `None` when it can be: it has
    /// a key, or its engine needs none (`merge_tree`, `null`).
    pub fn keyless_refusal(&self, table: &SourceTable) -> Option<String> {
        if !self.effective_key(table).is_empty() || self.engine != TableEngine::Replacing {
            return None;
        }
        Some(format!(
            "table {} has no primary key and no unique key on NOT NULL columns: the default engine (replacing, a \
             ReplacingMergeTree) needs a key to collapse updates and deletes. Include it with an entry of its own \
             {{\"source\": \"{}.{}\", \"key_columns\": [<columns that identify a row>]}}, or with \
             \"engine\": \"merge_tree\" (a change log: every insert, update and delete is a row), or add a primary key on the source",
            table.id, table.id.schema, table.id.table
        ))
    }

    /// Checks the options against a source table (entry `i` of the spec's `tables`).
    pub fn check(&self, table: &SourceTable, partition_key: Option<&str>, i: usize) -> Result<(), String> {
        let id = &table.id;
        if let Some(declared) = &self.key_columns {
            if !table.primary_key.is_empty() {
                return Err(format!(
                    "tables[{i}].key_columns: {id} has a key of its own ({}); key_columns is only for tables without one, leave it out",
                    table.primary_key.join(", ")
                ));
            }
            for c in declared {
                let Some(col) = table.column(c) else {
                    return Err(format!("tables[{i}].key_columns: {id} has no column {c:?}"));
                };
                if col.data_type.ends_with("text") || col.data_type.ends_with("blob") || col.data_type == "json" {
                    return Err(format!(
                        "tables[{i}].key_columns: {c:?} of {id} is {}, which cannot identify rows in a sorting key; choose other columns",
                        col.column_type
                    ));
                }
            }
        }
        let key = self.effective_key(table);
        if let (Some(pk), true) = (partition_key, key.is_empty()) {
            return Err(format!(
                "tables[{i}].partition_key: {id} has no key, so it is copied as one stream (there is nothing to page on after \
                 {pk:?}); leave partition_key out, or declare key_columns"
            ));
        }
        let table = &SourceTable { primary_key: key, ..table.clone() };
        let keys = table.primary_key.join(", ");
        for c in &self.exclude_columns {
            if table.column(c).is_none() {
                // Accepted (a column added later under that name stays out); Setup logs it.
                continue;
            }
            if table.primary_key.contains(c) {
                return Err(format!(
                    "tables[{i}].exclude_columns: {c:?} is part of the key ({keys}) of {id}, which identifies rows for updates and deletes; it cannot be excluded"
                ));
            }
            if partition_key == Some(c.as_str()) {
                return Err(format!("tables[{i}].exclude_columns: {c:?} is the partition_key of {id}; it cannot be excluded"));
            }
        }
        if let Some(sk) = &self.sorting_key {
            for c in sk {
                let Some(col) = table.column(c) else {
                    return Err(format!("tables[{i}].sorting_key: {id} has no column {c:?}"));
                };
                if self.excludes(c) {
                    return Err(format!("tables[{i}].sorting_key: {c:?} is in exclude_columns"));
                }
                if col.nullable && !table.primary_key.contains(c) {
                    return Err(format!(
                        "tables[{i}].sorting_key: {c:?} of {id} is nullable, and a ClickHouse sorting key cannot be Nullable; \
                         make it NOT NULL on the source or leave it out of sorting_key"
                    ));
                }
            }
            let missing: Vec<&String> = table.primary_key.iter().filter(|k| !sk.contains(k)).collect();
            if !missing.is_empty() {
                let missing: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                return Err(format!(
                    "tables[{i}].sorting_key: must contain every column of the key ({keys}) of {id}, so that updates and deletes \
                     of a row collapse into it; {} missing",
                    missing.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// Metadata columns every destination table carries (names kept from ClickPipes/PeerDB).
pub const SYNCED_AT: &str = "_peerdb_synced_at";
pub const IS_DELETED: &str = "_peerdb_is_deleted";
pub const VERSION: &str = "_peerdb_version";

impl TableMapping {
    pub fn new(source: SourceTable, destination: String) -> Self {
        Self::with_options(source, destination, TableOptions::default())
    }

    /// The mapping of `source` without its excluded columns; columns of the
    /// sorting key are, like key columns, never `Nullable`.
    /// A table without a key of its own gets the declared `key_columns` as its key.
    pub fn with_options(mut source: SourceTable, destination: String, options: TableOptions) -> Self {
        source.primary_key = options.effective_key(&source);
        let in_key = |name: &String| source.primary_key.contains(name) || options.sorting_key.as_ref().is_some_and(|k| k.contains(name));
        let columns = source
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !options.excludes(&c.name))
            .map(|(i, c)| ColumnMapping { source_index: i, name: c.name.clone(), ch_type: map_column(c, in_key(&c.name)) })
            .collect();
        Self { source, destination, columns, partition_key: None, options }
    }

    /// The mapping of a new definition of the same table (resync, schema
    /// change), with this mapping's options and partition key carried over.
    /// Fails when a column of the sorting key is gone.
    pub fn rebuilt(&self, source: SourceTable, options: TableOptions) -> Result<TableMapping, String> {
        if let Some(sk) = &options.sorting_key {
            if let Some(c) = sk.iter().find(|c| source.column(c).is_none()) {
                return Err(format!(
                    "column {c:?} of the sorting_key of {} is gone from the source table; remove the table from the pipe and add it again with another sorting_key",
                    source.id
                ));
            }
        }
        let mut m = TableMapping::with_options(source, self.destination.clone(), options);
        m.partition_key = self.partition_key.clone().filter(|k| m.source.column(k).is_some());
        Ok(m)
    }

    /// The destination's ORDER BY columns: the sorting key, or the source key.
    pub fn sorting_key(&self) -> &[String] {
        self.options.sorting_key.as_deref().unwrap_or(&self.source.primary_key)
    }

    /// Positions in `columns` of the key and the sorting key: an update that
    /// changes any of them lands elsewhere in the destination's order, so it is
    /// written as a delete of the old row and an insert of the new one.
    pub fn identity_positions(&self) -> Vec<usize> {
        let mut out = self.key_positions();
        for k in self.sorting_key() {
            if let Some(p) = self.columns.iter().position(|c| &c.name == k) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// Whether the table has no key at all (no primary key, no unique key on NOT
    /// NULL columns, no declared `key_columns`): copied as one stream, stored
    /// only by an engine that needs no key.
    pub fn keyless(&self) -> bool {
        self.source.primary_key.is_empty()
    }

    /// Positions in `columns` of the primary key, in key order.
    pub fn key_positions(&self) -> Vec<usize> {
        self.source.primary_key.iter().filter_map(|k| self.columns.iter().position(|c| &c.name == k)).collect()
    }
}

/// The README's mapping table, in Markdown.
pub fn mapping_table_markdown() -> String {
    let mut s = String::from("| MySQL / MariaDB type | ClickHouse type | notes |\n|---|---|---|\n");
    for r in MAPPING_RULES {
        s.push_str(&format!("| {} | {} | {} |\n", r.mysql, r.clickhouse, r.notes));
    }
    s.push_str("| any nullable column | Nullable(T) | NULL stays NULL; primary-key columns are never Nullable |\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str, column_type: &str, nullable: bool) -> SourceColumn {
        SourceColumn {
            ordinal: 1,
            numeric_precision: Some(65),
            numeric_scale: Some(30),
            datetime_precision: Some(6),
            ..SourceColumn::new("c", data_type, column_type, nullable)
        }
    }

    #[test]
    fn keyless_tables_need_an_engine_without_key_or_declared_key_columns() {
        let t = SourceTable {
            id: crate::schema::TableId::new("s", "t"),
            columns: vec![col("int", "int", true), SourceColumn { name: "d".into(), ..col("text", "text", false) }],
            primary_key: vec![],
            charset: None,
        };
        let opts = |engine: TableEngine, key: Option<&[&str]>| TableOptions {
            engine,
            key_columns: key.map(|k| k.iter().map(|c| c.to_string()).collect()),
            ..Default::default()
        };
        let refusal = opts(TableEngine::Replacing, None).keyless_refusal(&t).unwrap();
        assert!(refusal.contains("key_columns") && refusal.contains("merge_tree"), "{refusal}");
        assert!(opts(TableEngine::MergeTree, None).keyless_refusal(&t).is_none());
        assert!(opts(TableEngine::Null, None).keyless_refusal(&t).is_none());
        let declared = opts(TableEngine::Replacing, Some(&["c"]));
        assert!(declared.keyless_refusal(&t).is_none());
        declared.check(&t, None, 0).unwrap();
        let m = TableMapping::with_options(t.clone(), "t".into(), declared.clone());
        assert_eq!((m.source.primary_key.clone(), m.keyless()), (vec!["c".to_string()], false));
        assert_eq!(m.columns[0].ch_type.sql(), "Int32", "a declared key column is not Nullable");
        assert!(TableMapping::with_options(t.clone(), "t".into(), opts(TableEngine::MergeTree, None)).keyless());
        let e = opts(TableEngine::Replacing, Some(&["nope"])).check(&t, None, 3).unwrap_err();
        assert!(e.starts_with("tables[3].key_columns") && e.contains("no column \"nope\""), "{e}");
        let e = opts(TableEngine::Replacing, Some(&["d"])).check(&t, None, 0).unwrap_err();
        assert!(e.contains("text"), "{e}");
        let e = opts(TableEngine::MergeTree, None).check(&t, Some("c"), 0).unwrap_err();
        assert!(e.starts_with("tables[0].partition_key"), "{e}");
        let keyed = SourceTable { primary_key: vec!["c".into()], ..t };
        let e = declared.check(&keyed, None, 0).unwrap_err();
        assert!(e.contains("has a key of its own (c)"), "{e}");
    }

    /// Every documented rule names the ClickHouse type that `map_column` produces.
    #[test]
    fn documented_rules_match_code() {
        let cases = [
            ("tinyint", "tinyint unsigned", 0),
            ("smallint", "smallint", 1),
            ("mediumint", "mediumint unsigned", 2),
            ("int", "int", 3),
            ("bigint", "bigint unsigned", 4),
            ("decimal", "decimal(65,30)", 5),
            ("float", "float", 6),
            ("double", "double", 7),
            ("bit", "bit(7)", 8),
            ("year", "year", 9),
            ("date", "date", 10),
            ("datetime", "datetime(6)", 11),
            ("timestamp", "timestamp(6)", 12),
            ("time", "time(3)", 13),
            ("varchar", "varchar(10)", 14),
            ("varbinary", "varbinary(10)", 15),
            ("enum", "enum('a')", 16),
            ("set", "set('a')", 17),
            ("json", "json", 18),
            ("geometry", "geometry", 19),
            ("point", "point", 19),
            ("vector", "vector(3)", 20),
            ("uuid", "uuid", 21),
            ("inet4", "inet4", 22),
            ("inet6", "inet6", 22),
            ("blob", "blob /*m!100301 compressed*/", 23),
            ("mystery", "mystery", 24),
        ];
        for (dt, ct, rule) in cases {
            let sql = map_column(&col(dt, ct, false), false).sql();
            let doc = MAPPING_RULES[rule].clickhouse;
            let doc = doc.replace("(p, s)", "(65, 30)").replace("(n,", "(6,");
            assert!(doc.split(" / ").any(|d| d == sql), "{dt}: code says {sql}, README says {doc}");
        }
        assert_eq!(map_column(&col("int", "int", true), false).sql(), "Nullable(Int32)");
        assert_eq!(map_column(&col("date", "date", false), true).sql(), "Date32");
        assert_eq!(map_column(&col("vector", "vector(2)", true), false).sql(), "Array(Float32)");
        assert_eq!(map_column(&col("inet6", "inet6", true), false).sql(), "Nullable(IPv6)");
    }
}
