//! The canonical form of a row on both sides.
//!
//! For each mapped column, either a SQL expression that renders the value as
//! the same text inside MySQL/MariaDB and inside ClickHouse (so that a range's
//! checksum can be computed by each database, `Canon::Hashed`), or
//! `Canon::Fetched` for the types whose text forms differ between the two
//! (floats, JSON, spatial WKT, VECTOR, INET6, non-UTF-8 charsets other than
//! latin1, unknown types): those are fetched and compared as `Cell`s in Rust,
//! through the snapshot's own conversion on the source side.
//!
//! Also here: reading ClickHouse values back as `Cell`s (`ch_read_expr` /
//! `parse_ch_cell`) and the sink's lossy rules applied to a source `Cell`
//! (`normalise`), so that a correctly copied value compares equal.

use sluice_core::schema::{quote_mysql, SourceColumn};
use sluice_core::types::ChType;
use sluice_core::value::days_from_civil;
use sluice_core::Cell;
use sluice_sink::quote;
use sluice_source::convert::ColKind;

/// How one column takes part in a range checksum.
#[derive(Debug, Clone, PartialEq)]
pub enum Canon {
    /// The same text on both sides: MySQL expression, ClickHouse expression (both may be NULL).
    Hashed { mysql: String, clickhouse: String },
    /// Compared by fetching the values (see the module doc).
    Fetched,
}

/// The canonical text expressions of a column, or `Fetched`.
pub fn canon(col: &SourceColumn, ch_name: &str, ch_type: &ChType) -> Canon {
    let kind = ColKind::of(col);
    let c = quote_mysql(&col.name);
    let inner = match ch_type {
        ChType::Nullable(t) => t.as_ref(),
        t => t,
    };
    let mysql = match &kind {
        ColKind::Int { .. } | ColKind::Decimal { .. } | ColKind::Time { .. } | ColKind::Uuid | ColKind::Inet4 => {
            format!("CAST({c} AS CHAR)")
        }
        ColKind::Bit | ColKind::Year => format!("CAST({c} + 0 AS CHAR)"),
        ColKind::Date => {
            format!("IF({c} BETWEEN '1900-01-01' AND '2299-12-31' AND MONTH({c}) <> 0 AND DAYOFMONTH({c}) <> 0, CAST({c} AS CHAR), NULL)")
        }
        ColKind::DateTime | ColKind::Timestamp => {
            format!("IF({c} >= '1900-01-01' AND {c} < '2300-01-01' AND MONTH({c}) <> 0 AND DAYOFMONTH({c}) <> 0, CAST({c} AS CHAR), NULL)")
        }
        ColKind::Bytes { .. } | ColKind::Enum(..) | ColKind::Set(..) => match text_conversion(col) {
            Some(expr) => expr,
            None => return Canon::Fetched,
        },
        ColKind::Float | ColKind::Double | ColKind::Json | ColKind::Geometry | ColKind::Vector | ColKind::Inet6 => return Canon::Fetched,
    };
    let q = quote(ch_name);
    let clickhouse = match inner {
        ChType::Decimal { scale, .. } => format!("toDecimalString({q}, {scale})"),
        ChType::String => q,
        ChType::Int8
        | ChType::Int16
        | ChType::Int32
        | ChType::Int64
        | ChType::UInt8
        | ChType::UInt16
        | ChType::UInt32
        | ChType::UInt64
        | ChType::Date32
        | ChType::DateTime64 { .. }
        | ChType::Uuid
        | ChType::IPv4 => format!("toString({q})"),
        _ => return Canon::Fetched,
    };
    Canon::Hashed { mysql, clickhouse }
}

/// The MySQL expression giving a character/binary/ENUM/SET column's value as
/// the UTF-8 (or raw, for binary data) bytes the snapshot stores; `None` for
/// types and character sets whose conversion inside MySQL may differ from
/// `convert`'s (they are fetched).
fn text_conversion(col: &SourceColumn) -> Option<String> {
    let c = quote_mysql(&col.name);
    const TEXT: [&str; 14] = [
        "char",
        "varchar",
        "tinytext",
        "text",
        "mediumtext",
        "longtext",
        "binary",
        "varbinary",
        "tinyblob",
        "blob",
        "mediumblob",
        "longblob",
        "enum",
        "set",
    ];
    if !TEXT.contains(&col.data_type.as_str()) {
        return None;
    }
    match col.charset.as_deref() {
        None | Some("binary") | Some("utf8mb4") | Some("utf8mb3") | Some("utf8") | Some("ascii") => Some(c),
        // MySQL's latin1 is Windows-1252, as `convert` decodes it.
        Some("latin1") => Some(format!("CONVERT({c} USING utf8mb4)")),
        Some(_) => None,
    }
}

/// One hashed part of the row text on MySQL: length-prefixed bytes, `N` for NULL
/// (unambiguous whatever the value holds).
/// One part of the row text on MySQL: the value's bytes in hex (`N` for
/// NULL), so that parts joined by commas are unambiguous and each value is
/// computed once. (`QUOTE` would do with less text, but MySQL 9 converts its
/// result to utf8mb3 and fails on binary data.)
fn mysql_part(expr: &str) -> String {
    format!("IFNULL(HEX(CAST({expr} AS BINARY)), 'N')")
}

/// The same on ClickHouse (`hex` is upper case too).
fn ch_part(expr: &str) -> String {
    format!("ifNull(hex({expr}), 'N')")
}

/// The SHA-256 of a row's canonical text, per side, over the given hashed
/// columns (`(mysql, clickhouse)` expression pairs); an empty list hashes a
/// constant. SHA-256 because MySQL 9 has neither `MD5` nor `SHA1` any more;
/// MySQL/MariaDB return it as hex text, ClickHouse as 32 bytes. Ranges sum
/// its first 64 bits (`sides`): one hash evaluation per row.
pub fn row_hash(parts: &[(String, String)]) -> (String, String) {
    if parts.is_empty() {
        return ("SHA2('', 256)".into(), "SHA256('')".into());
    }
    let my: Vec<String> = parts.iter().map(|(m, _)| mysql_part(m)).collect();
    let ch: Vec<String> = parts.iter().map(|(_, c)| ch_part(c)).collect();
    (format!("SHA2(CONCAT_WS(',', {}), 256)", my.join(", ")), format!("SHA256(concatWithSeparator(',', {}))", ch.join(", ")))
}

/// The ClickHouse expression reading a column so that `parse_ch_cell` can turn it into a `Cell`.
pub fn ch_read_expr(name: &str, t: &ChType) -> String {
    let q = quote(name);
    let inner = match t {
        ChType::Nullable(i) => i.as_ref(),
        t => t,
    };
    match inner {
        ChType::Float32 => format!("toString(reinterpretAsUInt32({q}))"),
        ChType::Float64 => format!("toString(reinterpretAsUInt64({q}))"),
        ChType::Decimal { scale, .. } => format!("toDecimalString({q}, {scale})"),
        ChType::String => format!("hex({q})"),
        ChType::Date32 => format!("toString(toInt32({q}))"),
        ChType::DateTime64 { .. } => format!("toString(toUnixTimestamp64Micro({q}))"),
        ChType::Uuid => format!("hex(UUIDStringToNum(toString({q})))"),
        ChType::IPv4 => format!("toString(toUInt32({q}))"),
        ChType::IPv6 => format!("hex(IPv6StringToNum(toString({q})))"),
        ChType::Array(_) => format!("arrayStringConcat(arrayMap(x -> toString(reinterpretAsUInt32(x)), {q}), ',')"),
        _ => format!("toString({q})"),
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// A value read with `ch_read_expr` (TabSeparated text, `\N` for NULL) as a `Cell`.
pub fn parse_ch_cell(t: &ChType, text: &str) -> Option<Cell> {
    if text == "\\N" {
        return Some(Cell::Null);
    }
    let inner = match t {
        ChType::Nullable(i) => i.as_ref(),
        t => t,
    };
    Some(match inner {
        ChType::Int8 | ChType::Int16 | ChType::Int32 | ChType::Int64 => Cell::Int(text.parse().ok()?),
        ChType::UInt8 | ChType::UInt16 | ChType::UInt32 | ChType::UInt64 => Cell::UInt(text.parse().ok()?),
        ChType::Float32 => Cell::Float(f32::from_bits(text.parse().ok()?)),
        ChType::Float64 => Cell::Double(f64::from_bits(text.parse().ok()?)),
        ChType::Decimal { .. } => Cell::Decimal(text.to_string()),
        ChType::String | ChType::Uuid | ChType::IPv6 => Cell::Bytes(unhex(text)?),
        ChType::Date32 => Cell::Date(text.parse().ok()?),
        ChType::DateTime64 { .. } => Cell::DateTime(text.parse().ok()?),
        ChType::IPv4 => Cell::Bytes(text.parse::<u32>().ok()?.to_be_bytes().to_vec()),
        ChType::Array(_) => {
            let mut b = Vec::new();
            for x in text.split(',').filter(|x| !x.is_empty()) {
                b.extend_from_slice(&x.parse::<u32>().ok()?.to_le_bytes());
            }
            Cell::Bytes(b)
        }
        ChType::Nullable(_) => return None,
    })
}

/// ClickHouse's date range (the sink writes dates outside it as NULL), in days since 1970.
fn date_range() -> (i64, i64) {
    (days_from_civil(1900, 1, 1), days_from_civil(2299, 12, 31))
}

/// A source `Cell` as the sink stores it in a column of type `t`: dates outside
/// ClickHouse's range NULL (in Nullable columns), DATETIME cut to the column's
/// precision, a NULL VECTOR `[]`, floats at the column's width.
pub fn normalise(t: &ChType, cell: Cell) -> Cell {
    let (lo, hi) = date_range();
    let nullable = t.is_nullable();
    let inner = match t {
        ChType::Nullable(i) => i.as_ref(),
        t => t,
    };
    match (inner, cell) {
        (ChType::Date32, Cell::Date(d)) if nullable && ((d as i64) < lo || (d as i64) > hi) => Cell::Null,
        (ChType::DateTime64 { precision }, Cell::DateTime(us)) => {
            let day = us.div_euclid(86_400_000_000);
            if nullable && (day < lo || day > hi) {
                Cell::Null
            } else {
                let unit = 10i64.pow(6u32.saturating_sub(*precision as u32));
                Cell::DateTime(us - us.rem_euclid(unit))
            }
        }
        (ChType::Array(_), Cell::Null) => Cell::Bytes(Vec::new()),
        (ChType::Float32, Cell::Double(d)) => Cell::Float(d as f32),
        (ChType::Float64, Cell::Float(f)) => Cell::Double(f as f64),
        (ChType::String, Cell::Decimal(s)) => Cell::Bytes(s.into_bytes()),
        (ChType::String, Cell::Int(v)) => Cell::Bytes(v.to_string().into_bytes()),
        (ChType::String, Cell::UInt(v)) => Cell::Bytes(v.to_string().into_bytes()),
        (_, c) => c,
    }
}

/// Two cells hold the same value; floats bit for bit.
pub fn same(a: &Cell, b: &Cell) -> bool {
    match (a, b) {
        (Cell::Float(x), Cell::Float(y)) => x.to_bits() == y.to_bits(),
        (Cell::Double(x), Cell::Double(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// A key value as people read it: numbers, quoted text, `0x…` for bytes that are not UTF-8.
pub fn show(cell: &Cell) -> String {
    match cell {
        Cell::Null => "NULL".into(),
        Cell::Int(v) => v.to_string(),
        Cell::UInt(v) => v.to_string(),
        Cell::Float(v) => v.to_string(),
        Cell::Double(v) => v.to_string(),
        Cell::Decimal(s) => s.clone(),
        Cell::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) if !s.chars().any(char::is_control) => format!("'{}'", s.replace('\'', "''")),
            _ => format!("0x{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        },
        Cell::Date(d) => {
            let (y, m, dd) = civil(*d as i64);
            format!("{y:04}-{m:02}-{dd:02}")
        }
        Cell::DateTime(us) => {
            let (days, rest) = (us.div_euclid(86_400_000_000), us.rem_euclid(86_400_000_000));
            let (y, m, d) = civil(days);
            let s = rest / 1_000_000;
            format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06}", s / 3600, s / 60 % 60, s % 60, rest % 1_000_000)
        }
    }
}

/// The date of a day number since 1970-01-01.
pub use sluice_core::value::civil_from_days as civil;

#[cfg(test)]
mod tests {
    use super::*;

    fn col(dt: &str, ct: &str, charset: Option<&str>) -> SourceColumn {
        SourceColumn { charset: charset.map(str::to_string), ..SourceColumn::new("c", dt, ct, true) }
    }

    #[test]
    fn every_type_is_hashed_or_fetched_never_skipped() {
        let hashed = |dt: &str, ct: &str, cs: Option<&str>, t: ChType| matches!(canon(&col(dt, ct, cs), "c", &t), Canon::Hashed { .. });
        assert!(hashed("int", "int unsigned", None, ChType::UInt32));
        assert!(hashed("decimal", "decimal(10,2)", None, ChType::Decimal { precision: 10, scale: 2 }));
        assert!(hashed("date", "date", None, ChType::Date32.nullable()));
        assert!(hashed("timestamp", "timestamp(3)", None, ChType::DateTime64 { precision: 3 }.nullable()));
        assert!(hashed("time", "time(2)", None, ChType::String));
        assert!(hashed("varchar", "varchar(5)", Some("utf8mb4"), ChType::String));
        assert!(hashed("char", "char(5)", Some("latin1"), ChType::String));
        assert!(hashed("enum", "enum('a')", Some("utf8mb4"), ChType::String));
        assert!(hashed("bit", "bit(5)", None, ChType::UInt64));
        assert!(hashed("uuid", "uuid", None, ChType::Uuid));
        assert!(!hashed("varchar", "varchar(5)", Some("sjis"), ChType::String));
        for (dt, t) in [
            ("float", ChType::Float32),
            ("double", ChType::Float64),
            ("json", ChType::String),
            ("point", ChType::String),
            ("vector", ChType::Array(Box::new(ChType::Float32))),
            ("inet6", ChType::IPv6),
            ("mystery", ChType::String),
        ] {
            assert_eq!(canon(&col(dt, dt, None), "c", &t), Canon::Fetched, "{dt}");
        }
        let Canon::Hashed { mysql, clickhouse } =
            canon(&col("decimal", "decimal(9,3)", None), "c", &ChType::Decimal { precision: 9, scale: 3 })
        else {
            panic!()
        };
        assert_eq!((mysql.as_str(), clickhouse.as_str()), ("CAST(`c` AS CHAR)", "toDecimalString(`c`, 3)"));
    }

    #[test]
    fn row_hash_joins_hex_values_with_a_null_marker() {
        let (m, c) = row_hash(&[("`a`".into(), "`a`".into()), ("`b`".into(), "toString(`b`)".into())]);
        assert_eq!(m, "SHA2(CONCAT_WS(',', IFNULL(HEX(CAST(`a` AS BINARY)), 'N'), IFNULL(HEX(CAST(`b` AS BINARY)), 'N')), 256)");
        assert_eq!(c, "SHA256(concatWithSeparator(',', ifNull(hex(`a`), 'N'), ifNull(hex(toString(`b`)), 'N')))");
        assert_eq!(row_hash(&[]).0, "SHA2('', 256)");
    }

    #[test]
    fn clickhouse_values_parse_to_the_cells_the_sink_wrote() {
        assert_eq!(parse_ch_cell(&ChType::Int32.nullable(), "\\N"), Some(Cell::Null));
        assert_eq!(parse_ch_cell(&ChType::Float32, &1.5f32.to_bits().to_string()), Some(Cell::Float(1.5)));
        assert_eq!(parse_ch_cell(&ChType::String, "61FF"), Some(Cell::Bytes(vec![0x61, 0xff])));
        assert_eq!(parse_ch_cell(&ChType::IPv4, "16909060"), Some(Cell::Bytes(vec![1, 2, 3, 4])));
        let v = format!("{},{}", 1.0f32.to_bits(), 2.0f32.to_bits());
        let mut want = 1.0f32.to_le_bytes().to_vec();
        want.extend(2.0f32.to_le_bytes());
        assert_eq!(parse_ch_cell(&ChType::Array(Box::new(ChType::Float32)), &v), Some(Cell::Bytes(want)));
        assert_eq!(parse_ch_cell(&ChType::Array(Box::new(ChType::Float32)), ""), Some(Cell::Bytes(vec![])));
        assert_eq!(parse_ch_cell(&ChType::Int8, "x"), None);
    }

    #[test]
    fn source_cells_are_normalised_like_the_sink_writes_them() {
        let d = ChType::Date32.nullable();
        assert_eq!(normalise(&d, Cell::Date(days_from_civil(1000, 1, 1) as i32)), Cell::Null);
        assert_eq!(normalise(&d, Cell::Date(5)), Cell::Date(5));
        assert_eq!(normalise(&ChType::DateTime64 { precision: 3 }.nullable(), Cell::DateTime(1_234_567)), Cell::DateTime(1_234_000));
        assert_eq!(normalise(&ChType::Array(Box::new(ChType::Float32)), Cell::Null), Cell::Bytes(vec![]));
        assert!(same(&Cell::Double(f64::NAN), &Cell::Double(f64::NAN)));
        assert!(!same(&Cell::Double(0.0), &Cell::Double(-0.0)));
        assert_eq!(show(&Cell::DateTime(86_400_000_001)), "1970-01-02 00:00:00.000001");
        assert_eq!(show(&Cell::Bytes(b"it's".to_vec())), "'it''s'");
        assert_eq!(show(&Cell::Bytes(vec![0, 1])), "0x0001");
    }
}
