//! Source values → `Cell`s, one normalisation for both paths.
//!
//! The snapshot reads through the binary protocol (exact floats, no text
//! parsing) and the binlog yields `BinlogValue`s; both are turned into the same
//! `Cell` for the same stored value. ENUM/SET become their labels, BIT an
//! unsigned integer, TIMESTAMP the UTC instant, zero dates NULL, JSON compact
//! text, DECIMAL canonical text with exactly `scale` digits.
//!
//! Character data: snapshot sessions read with `character_set_results = NULL`
//! (the stored bytes, no server-side conversion) and the binlog carries the
//! stored bytes too, so text in any charset is transcoded to UTF-8 here, by
//! the same function on both paths.

use crate::conn::SourceError;
use mysql_async::Value;
use mysql_common::binlog::value::BinlogValue;
use sluice_core::schema::SourceColumn;
use sluice_core::value::{calendar_cell, canonical_decimal, time_text};
use sluice_core::Cell;

type Encoding = &'static encoding_rs::Encoding;

/// The decoder for a MySQL character set; `Ok(None)` when the bytes are kept
/// as they are (UTF-8, ASCII, binary); `Err` for a charset Sluice cannot decode.
pub fn charset_encoding(charset: &str) -> Result<Option<Encoding>, String> {
    use encoding_rs::*;
    Ok(Some(match charset {
        "utf8mb4" | "utf8mb3" | "utf8" | "ascii" | "binary" => return Ok(None),
        // MySQL's latin1 is Windows-1252 (its 5 undefined bytes map to C1 controls, as here).
        "latin1" => WINDOWS_1252,
        "latin2" => ISO_8859_2,
        "latin5" => WINDOWS_1254,
        "latin7" => ISO_8859_13,
        "cp1250" => WINDOWS_1250,
        "cp1251" => WINDOWS_1251,
        "cp1256" => WINDOWS_1256,
        "cp1257" => WINDOWS_1257,
        "greek" => ISO_8859_7,
        "hebrew" => ISO_8859_8,
        "koi8r" => KOI8_R,
        "koi8u" => KOI8_U,
        "cp866" => IBM866,
        "tis620" => WINDOWS_874,
        "macroman" => MACINTOSH,
        "gbk" | "gb2312" => GBK,
        "gb18030" => GB18030,
        "big5" => BIG5,
        "sjis" | "cp932" => SHIFT_JIS,
        "ujis" | "eucjpms" => EUC_JP,
        "euckr" => EUC_KR,
        "utf16" | "ucs2" => UTF_16BE,
        "utf16le" => UTF_16LE,
        other => return Err(format!("character set {other} is not supported; convert the column to utf8mb4")),
    }))
}

fn text_cell(enc: Option<Encoding>, b: Vec<u8>) -> Cell {
    match enc {
        None => Cell::Bytes(b),
        Some(e) => Cell::Bytes(e.decode_without_bom_handling(&b).0.into_owned().into_bytes()),
    }
}

/// How a column's values are decoded; computed once per column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColKind {
    Int { unsigned: bool, bits: u32 },
    Float,
    Double,
    Decimal { scale: u32 },
    /// Character or binary data; `enc` decodes a non-UTF-8 charset.
    Bytes { enc: Option<Encoding> },
    /// Labels (UTF-8, from `information_schema`) and the column's charset for snapshot values.
    Enum(Vec<String>, Option<Encoding>),
    Set(Vec<String>, Option<Encoding>),
    Json,
    Bit,
    Year,
    Date,
    DateTime,
    Timestamp,
    Time { precision: u32 },
}

impl ColKind {
    pub fn of(c: &SourceColumn) -> ColKind {
        let unsigned = c.unsigned();
        let enc = c.charset.as_deref().and_then(|cs| charset_encoding(cs).ok().flatten());
        match c.data_type.as_str() {
            "tinyint" => ColKind::Int { unsigned, bits: 8 },
            "smallint" => ColKind::Int { unsigned, bits: 16 },
            "mediumint" => ColKind::Int { unsigned, bits: 24 },
            "int" | "integer" => ColKind::Int { unsigned, bits: 32 },
            "bigint" => ColKind::Int { unsigned, bits: 64 },
            "float" => ColKind::Float,
            "double" | "real" => ColKind::Double,
            "decimal" | "numeric" => ColKind::Decimal { scale: c.numeric_scale.unwrap_or(0) },
            "enum" => ColKind::Enum(c.enum_values(), enc),
            "set" => ColKind::Set(c.enum_values(), enc),
            "json" => ColKind::Json,
            "bit" => ColKind::Bit,
            "year" => ColKind::Year,
            "date" => ColKind::Date,
            "datetime" => ColKind::DateTime,
            "timestamp" => ColKind::Timestamp,
            "time" => ColKind::Time { precision: c.datetime_precision.unwrap_or(0) },
            _ => ColKind::Bytes { enc },
        }
    }
}

fn bad(col: &SourceColumn, what: impl std::fmt::Debug) -> SourceError {
    SourceError::Decode(format!("column {} ({}): unexpected value {:?}", col.name, col.column_type, what))
}

fn int_cell(unsigned: bool, bits: u32, v: i128) -> Cell {
    if unsigned {
        let mask: u128 = if bits >= 64 { u64::MAX as u128 } else { (1u128 << bits) - 1 };
        Cell::UInt(((v as u128) & mask) as u64)
    } else {
        Cell::Int(v as i64)
    }
}

fn json_text(raw: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(v) => serde_json::to_vec(&v).unwrap_or_else(|_| raw.to_vec()),
        Err(_) => raw.to_vec(),
    }
}

fn set_labels(values: &[String], mut bits: u64) -> Cell {
    let mut out = Vec::new();
    for v in values {
        if bits & 1 == 1 {
            out.push(v.as_str());
        }
        bits >>= 1;
    }
    Cell::Bytes(out.join(",").into_bytes())
}

fn be_uint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64)
}

fn le_uint(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0u64, |acc, b| (acc << 8) | *b as u64)
}

fn parse_num<T: std::str::FromStr>(col: &SourceColumn, b: &[u8]) -> Result<T, SourceError> {
    std::str::from_utf8(b).ok().and_then(|s| s.trim().parse().ok()).ok_or_else(|| bad(col, String::from_utf8_lossy(b)))
}

/// Converts a value read by the snapshot (binary protocol, session time_zone UTC).
pub fn from_snapshot(col: &SourceColumn, kind: &ColKind, v: Value) -> Result<Cell, SourceError> {
    if v == Value::NULL {
        return Ok(Cell::Null);
    }
    Ok(match (kind, v) {
        (ColKind::Int { unsigned, bits }, Value::Int(i)) => int_cell(*unsigned, *bits, i as i128),
        (ColKind::Int { unsigned, bits }, Value::UInt(u)) => int_cell(*unsigned, *bits, u as i128),
        (ColKind::Int { unsigned, bits }, Value::Bytes(b)) => int_cell(*unsigned, *bits, parse_num::<i128>(col, &b)?),
        (ColKind::Float, Value::Float(f)) => Cell::Float(f),
        (ColKind::Float, Value::Double(d)) => Cell::Float(d as f32),
        (ColKind::Double, Value::Double(d)) => Cell::Double(d),
        (ColKind::Double, Value::Float(f)) => Cell::Double(f as f64),
        (ColKind::Decimal { scale }, Value::Bytes(b)) => {
            let text = String::from_utf8_lossy(&b);
            Cell::Decimal(canonical_decimal(&text, *scale).ok_or_else(|| bad(col, &text))?)
        }
        (ColKind::Json, Value::Bytes(b)) => Cell::Bytes(json_text(&b)),
        (ColKind::Bit, Value::Bytes(b)) => Cell::UInt(be_uint(&b)),
        (ColKind::Bit, Value::UInt(u)) => Cell::UInt(u),
        (ColKind::Bit, Value::Int(i)) => Cell::UInt(i as u64),
        (ColKind::Year, Value::Int(i)) => Cell::UInt(i as u64),
        (ColKind::Year, Value::UInt(u)) => Cell::UInt(u),
        (ColKind::Year, Value::Bytes(b)) => Cell::UInt(parse_num::<u64>(col, &b)?),
        (ColKind::Date, Value::Date(y, mo, d, ..)) => calendar_cell(y, mo, d, 0, 0, 0, 0, false).unwrap_or(Cell::Null),
        (ColKind::DateTime | ColKind::Timestamp, Value::Date(y, mo, d, h, mi, s, us)) => {
            calendar_cell(y, mo, d, h, mi, s, us, true).unwrap_or(Cell::Null)
        }
        (ColKind::Time { precision }, Value::Time(neg, days, h, m, s, us)) => {
            Cell::Bytes(time_text(neg, days * 24 + h as u32, m, s, us, *precision).into_bytes())
        }
        (ColKind::Bytes { enc } | ColKind::Enum(_, enc) | ColKind::Set(_, enc), Value::Bytes(b)) => text_cell(*enc, b),
        (_, other) => return Err(bad(col, other)),
    })
}

/// Converts a value decoded from a binlog row event.
pub fn from_binlog(col: &SourceColumn, kind: &ColKind, v: Option<BinlogValue<'_>>) -> Result<Cell, SourceError> {
    let v = match v {
        None | Some(BinlogValue::Value(Value::NULL)) => return Ok(Cell::Null),
        Some(BinlogValue::Value(v)) => v,
        Some(BinlogValue::Jsonb(j)) => {
            let json = serde_json::Value::try_from(j).map_err(|e| bad(col, e.to_string()))?;
            return Ok(Cell::Bytes(serde_json::to_vec(&json).unwrap_or_default()));
        }
        Some(BinlogValue::JsonDiff(_)) => {
            return Err(SourceError::Decode(format!(
                "column {}: partial JSON update in the binlog (binlog_row_value_options=PARTIAL_JSON); set binlog_row_value_options='' on the source and resync",
                col.name
            )))
        }
    };
    Ok(match (kind, v) {
        (ColKind::Enum(values, _), Value::Int(i)) => {
            let label = if i <= 0 { "" } else { values.get(i as usize - 1).map(String::as_str).unwrap_or("") };
            Cell::Bytes(label.as_bytes().to_vec())
        }
        (ColKind::Set(values, _), Value::Bytes(b)) => set_labels(values, le_uint(&b)),
        (ColKind::Set(values, _), Value::Int(i)) => set_labels(values, i as u64),
        (ColKind::Year, Value::Bytes(b)) => {
            let y: u64 = parse_num(col, &b)?;
            Cell::UInt(if y == 1900 { 0 } else { y })
        }
        (ColKind::Timestamp, Value::Bytes(b)) => {
            let text = String::from_utf8_lossy(&b);
            let (secs, frac) = text.split_once('.').unwrap_or((&text, "0"));
            let secs: i64 = secs.parse().map_err(|_| bad(col, &text))?;
            let us: i64 = format!("{frac:0<6}")[..6].parse().map_err(|_| bad(col, &text))?;
            if secs == 0 && us == 0 {
                Cell::Null // '0000-00-00 00:00:00'
            } else {
                Cell::DateTime(secs * 1_000_000 + us)
            }
        }
        (ColKind::Timestamp, Value::Int(secs)) => {
            if secs == 0 {
                Cell::Null
            } else {
                Cell::DateTime(secs * 1_000_000)
            }
        }
        (ColKind::Bit, Value::Bytes(b)) => Cell::UInt(be_uint(&b)),
        (ColKind::Json, Value::Bytes(b)) => Cell::Bytes(json_text(&b)),
        (kind, v) => from_snapshot(col, kind, v)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(dt: &str, ct: &str) -> SourceColumn {
        SourceColumn {
            name: "c".into(),
            ordinal: 1,
            data_type: dt.into(),
            column_type: ct.into(),
            nullable: true,
            numeric_precision: Some(10),
            numeric_scale: Some(2),
            datetime_precision: Some(3),
            charset: None,
            extra: String::new(),
        }
    }

    #[test]
    fn latin1_text_is_transcoded_on_both_paths() {
        let mut c = col("varchar", "varchar(10)");
        c.charset = Some("latin1".into());
        let k = ColKind::of(&c);
        let want = Cell::Bytes("ü€".as_bytes().to_vec());
        assert_eq!(from_snapshot(&c, &k, Value::Bytes(vec![0xfc, 0x80])).unwrap(), want);
        assert_eq!(from_binlog(&c, &k, Some(BinlogValue::Value(Value::Bytes(vec![0xfc, 0x80])))).unwrap(), want);
        assert!(charset_encoding("armscii8").is_err());
        assert_eq!(charset_encoding("utf8mb4"), Ok(None));
    }

    #[test]
    fn unsigned_masks_signed_wire_values() {
        let c = col("tinyint", "tinyint unsigned");
        let k = ColKind::of(&c);
        assert_eq!(from_binlog(&c, &k, Some(BinlogValue::Value(Value::Int(-1)))).unwrap(), Cell::UInt(255));
        let c = col("bigint", "bigint unsigned");
        let k = ColKind::of(&c);
        assert_eq!(from_snapshot(&c, &k, Value::UInt(u64::MAX)).unwrap(), Cell::UInt(u64::MAX));
    }

    #[test]
    fn enum_set_timestamp_and_zero_dates() {
        let c = col("enum", "enum('a','b')");
        let k = ColKind::of(&c);
        assert_eq!(from_binlog(&c, &k, Some(BinlogValue::Value(Value::Int(2)))).unwrap(), Cell::Bytes(b"b".to_vec()));
        let c = col("set", "set('x','y','z')");
        let k = ColKind::of(&c);
        assert_eq!(from_binlog(&c, &k, Some(BinlogValue::Value(Value::Bytes(vec![5])))).unwrap(), Cell::Bytes(b"x,z".to_vec()));
        let c = col("timestamp", "timestamp(3)");
        let k = ColKind::of(&c);
        assert_eq!(
            from_binlog(&c, &k, Some(BinlogValue::Value(Value::Bytes(b"86400.500000".to_vec())))).unwrap(),
            Cell::DateTime(86_400_500_000)
        );
        assert_eq!(from_snapshot(&c, &k, Value::Date(1970, 1, 2, 0, 0, 0, 500_000)).unwrap(), Cell::DateTime(86_400_500_000));
        let c = col("date", "date");
        assert_eq!(from_snapshot(&c, &ColKind::of(&c), Value::Date(0, 0, 0, 0, 0, 0, 0)).unwrap(), Cell::Null);
        let c = col("decimal", "decimal(10,2)");
        assert!(from_snapshot(&c, &ColKind::of(&c), Value::Bytes(b"x".to_vec())).is_err());
    }
}
