//! Source values → `Cell`s, one normalisation for both paths.
//!
//! The snapshot reads through the binary protocol (exact floats, no text
//! parsing) and the binlog yields `BinlogValue`s; both are turned into the same
//! `Cell` for the same stored value. ENUM/SET become their labels, BIT an
//! unsigned integer, TIMESTAMP the UTC instant, zero dates NULL, JSON compact
//! text, DECIMAL canonical text with exactly `scale` digits, spatial values WKT
//! text, VECTOR its little-endian floats, MariaDB UUID/INET4/INET6 their
//! canonical binary form (the snapshot receives them as text, the binlog as
//! bytes). The binlog drops trailing 0x00 bytes of fixed-width binary values
//! (BINARY(n), UUID, INET*), so they are padded back to their width.
//!
//! Character data: snapshot sessions read with `character_set_results = NULL`
//! (the stored bytes, no server-side conversion) and the binlog carries the
//! stored bytes too, so text in any charset is transcoded to UTF-8 here, by
//! the same function on both paths.

use crate::conn::SourceError;
use mysql_async::Value;
use mysql_common::binlog::value::BinlogValue;
use sluice_core::schema::SourceColumn;
use sluice_core::value::{calendar_cell, canonical_decimal_owned, time_text};
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

/// Text stored in `enc` (None: UTF-8) as a Rust string (ENUM/SET labels from the binlog's table map).
pub fn text_to_utf8(enc: Option<Encoding>, b: Vec<u8>) -> String {
    match enc {
        None => String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        Some(e) => e.decode_without_bom_handling(&b).0.into_owned(),
    }
}

/// How a column's values are decoded; computed once per column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColKind {
    Int {
        unsigned: bool,
        bits: u32,
    },
    Float,
    Double,
    Decimal {
        scale: u32,
    },
    /// Character or binary data; `enc` decodes a non-UTF-8 charset; `pad` is BINARY(n)'s width.
    Bytes {
        enc: Option<Encoding>,
        pad: Option<usize>,
    },
    /// Labels (UTF-8, from `information_schema`) and the column's charset for snapshot values.
    Enum(Vec<String>, Option<Encoding>),
    Set(Vec<String>, Option<Encoding>),
    Json,
    Bit,
    Year,
    Date,
    DateTime,
    Timestamp,
    Time {
        precision: u32,
    },
    /// GEOMETRY and its subtypes: SRID + WKB, written as WKT.
    Geometry,
    /// MySQL 9 VECTOR: little-endian f32s.
    Vector,
    /// MariaDB UUID, INET4, INET6.
    Uuid,
    Inet4,
    Inet6,
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
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring" | "multipolygon" | "geometrycollection"
            | "geomcollection" => ColKind::Geometry,
            "vector" => ColKind::Vector,
            "uuid" => ColKind::Uuid,
            "inet4" => ColKind::Inet4,
            "inet6" => ColKind::Inet6,
            "binary" => ColKind::Bytes { enc, pad: binary_width(&c.column_type) },
            _ => ColKind::Bytes { enc, pad: None },
        }
    }
}

/// `n` of `binary(n)`.
fn binary_width(column_type: &str) -> Option<usize> {
    column_type.strip_prefix("binary(")?.split(')').next()?.parse().ok()
}

/// Restores trailing 0x00 bytes the binlog leaves out of fixed-width binary values.
fn padded(mut b: Vec<u8>, width: usize) -> Vec<u8> {
    if b.len() < width {
        b.resize(width, 0);
    }
    b
}

/// A UUID's 16 bytes from its text (hyphens anywhere, as MariaDB accepts).
fn uuid_from_text(text: &[u8]) -> Option<Vec<u8>> {
    let hex: Vec<u8> = text.iter().copied().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    (0..16).map(|i| std::str::from_utf8(&hex[2 * i..2 * i + 2]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

fn fixed_binary(col: &SourceColumn, b: Vec<u8>, width: usize) -> Result<Cell, SourceError> {
    if b.len() > width {
        return Err(bad(col, b));
    }
    Ok(Cell::Bytes(padded(b, width)))
}

fn bad(col: &SourceColumn, what: impl std::fmt::Debug) -> SourceError {
    SourceError::Decode(format!("column {} ({}): unexpected value {:?}", col.name, col.column_type, what))
}

/// An integer of a `bits`-wide column. The binlog does not say whether a
/// column is signed, so its values arrive with either interpretation (a
/// signed MEDIUMINT's -1 as 16777215, an unsigned TINYINT's 255 as -1):
/// unsigned values are masked and signed ones sign-extended to the width.
fn int_cell(unsigned: bool, bits: u32, v: i128) -> Cell {
    if unsigned {
        let mask: u128 = if bits >= 64 { u64::MAX as u128 } else { (1u128 << bits) - 1 };
        Cell::UInt(((v as u128) & mask) as u64)
    } else if bits < 64 {
        let shift = 64 - bits;
        Cell::Int(((v as i64) << shift) >> shift)
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

/// MySQL's text for a double inside JSON (`my_gcvt` with the JSON field width):
/// shortest round-trip digits, plain notation for decimal exponents -14..=15
/// (or when the digits reach past the point), `<d>[.ddd]e[-]<exp>` otherwise,
/// and `.0` appended to plain integers so the value stays a double.
pub fn mysql_json_double(d: f64) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let sci = format!("{:e}", d.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let decpt = exp + 1;
    let len = digits.len() as i32;
    let mut out = String::from(if d < 0.0 { "-" } else { "" });
    if decpt >= -14 && (decpt <= 15 || len > decpt) {
        if decpt <= 0 {
            out.push_str("0.");
            out.push_str(&"0".repeat((-decpt) as usize));
            out.push_str(&digits);
        } else if decpt < len {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        } else {
            out.push_str(&digits);
            out.push_str(&"0".repeat((decpt - len) as usize));
            out.push_str(".0");
        }
    } else {
        out.push_str(&digits[..1]);
        if len > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push_str(&exp.to_string());
    }
    out
}

fn json_number(text: &str) -> Result<serde_json::Value, String> {
    text.parse::<serde_json::Number>().map(serde_json::Value::Number).map_err(|e| format!("JSON number {text}: {e}"))
}

/// MySQL binary JSON → the JSON text MySQL itself prints for it (same key
/// order, same number text, opaque DECIMAL/DATE/TIME/DATETIME as MySQL shows
/// them), so the binlog path yields what the snapshot reads.
fn jsonb_to_json(v: mysql_common::binlog::jsonb::Value<'_>) -> Result<serde_json::Value, String> {
    use mysql_common::binlog::jsonb::{JsonDom, JsonNumber, JsonScalar, Value as Jb};
    use serde_json::Value as J;
    let io = |e: std::io::Error| e.to_string();
    Ok(match v {
        Jb::Null => J::Null,
        Jb::Bool(b) => J::Bool(b),
        Jb::I16(x) => x.into(),
        Jb::U16(x) => x.into(),
        Jb::I32(x) => x.into(),
        Jb::U32(x) => x.into(),
        Jb::I64(x) => x.into(),
        Jb::U64(x) => x.into(),
        Jb::F64(x) => json_number(&mysql_json_double(x))?,
        Jb::String(s) => J::String(std::str::from_utf8(s.str_raw()).map_err(|e| e.to_string())?.to_string()),
        Jb::SmallArray(a) => J::Array(a.iter().map(|x| x.map_err(io).and_then(jsonb_to_json)).collect::<Result<_, _>>()?),
        Jb::LargeArray(a) => J::Array(a.iter().map(|x| x.map_err(io).and_then(jsonb_to_json)).collect::<Result<_, _>>()?),
        Jb::SmallObject(o) => {
            let mut m = serde_json::Map::new();
            for e in o.iter() {
                let (k, v) = e.map_err(io)?;
                m.insert(k.value().into_owned(), jsonb_to_json(v)?);
            }
            J::Object(m)
        }
        Jb::LargeObject(o) => {
            let mut m = serde_json::Map::new();
            for e in o.iter() {
                let (k, v) = e.map_err(io)?;
                m.insert(k.value().into_owned(), jsonb_to_json(v)?);
            }
            J::Object(m)
        }
        Jb::Opaque(o) => match Jb::Opaque(o).parse().map_err(io)? {
            JsonDom::Scalar(JsonScalar::Number(JsonNumber::Decimal(d))) => json_number(&d.to_string())?,
            JsonDom::Scalar(JsonScalar::DateTime(t)) => J::String(format!("{t:.6}")),
            // Other opaque values (BLOBs, geometry...) as MySQL prints them: "base64:type<N>:<data>".
            other => serde_json::Value::from(other),
        },
    })
}

/// Decodes MySQL's TIME2 storage format: a big-endian number offset by half
/// its range, whose low `8 × (len − 3)` bits are the fraction (1/100 s, 1/10⁴ s
/// or µs for 1–2, 3–4, 5–6 digits) and whose high bits are the packed
/// `hours << 12 | minutes << 6 | seconds` of the absolute value.
pub fn time2_cell(b: &[u8], precision: u32) -> Option<Cell> {
    if !(3..=6).contains(&b.len()) {
        return None;
    }
    let frac_bits = 8 * (b.len() as u32 - 3);
    let v = be_uint(b) as i64 - (1i64 << (8 * b.len() - 1));
    let negative = v < 0;
    let a = v.unsigned_abs();
    let hms = a >> frac_bits;
    let frac = a & ((1u64 << frac_bits) - 1);
    let us = match frac_bits {
        0 => 0,
        8 => frac * 10_000,
        16 => frac * 100,
        _ => frac,
    };
    if us >= 1_000_000 {
        return None;
    }
    let (h, m, s) = ((hms >> 12) as u32 & 0x3ff, (hms >> 6) as u8 & 0x3f, hms as u8 & 0x3f);
    Some(Cell::Bytes(time_text(negative, h, m, s, us as u32, precision).into_bytes()))
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
    if matches!(v, Value::NULL) {
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
        (ColKind::Decimal { scale }, Value::Bytes(b)) => match canonical_decimal_owned(b, *scale) {
            Ok(text) => Cell::Decimal(text),
            Err(b) => return Err(bad(col, String::from_utf8_lossy(&b))),
        },
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
        (ColKind::Bytes { enc, pad }, Value::Bytes(b)) => match pad {
            Some(width) => Cell::Bytes(padded(b, *width)),
            None => text_cell(*enc, b),
        },
        (ColKind::Enum(_, enc) | ColKind::Set(_, enc), Value::Bytes(b)) => text_cell(*enc, b),
        (ColKind::Geometry, Value::Bytes(b)) => Cell::Bytes(crate::wkt::to_wkt(&b).map_err(|e| bad(col, e))?.into_bytes()),
        (ColKind::Vector, Value::Bytes(b)) if b.len() % 4 == 0 => Cell::Bytes(b),
        // The snapshot receives MariaDB's UUID/INET types as their text.
        (ColKind::Uuid, Value::Bytes(b)) => Cell::Bytes(uuid_from_text(&b).ok_or_else(|| bad(col, String::from_utf8_lossy(&b)))?),
        (ColKind::Inet4, Value::Bytes(b)) => {
            let ip: std::net::Ipv4Addr = parse_num(col, &b)?;
            Cell::Bytes(ip.octets().to_vec())
        }
        (ColKind::Inet6, Value::Bytes(b)) => {
            let ip: std::net::Ipv6Addr = parse_num(col, &b)?;
            Cell::Bytes(ip.octets().to_vec())
        }
        (_, other) => return Err(bad(col, other)),
    })
}

/// Converts a value decoded from a binlog row event.
pub fn from_binlog(col: &SourceColumn, kind: &ColKind, v: Option<BinlogValue<'_>>) -> Result<Cell, SourceError> {
    let v = match v {
        None | Some(BinlogValue::Value(Value::NULL)) => return Ok(Cell::Null),
        Some(BinlogValue::Value(v)) => v,
        Some(BinlogValue::Jsonb(j)) => {
            let json = jsonb_to_json(j).map_err(|e| bad(col, e))?;
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
        // TIME2 storage bytes (the binlog reader has them passed through undecoded).
        (ColKind::Time { precision }, Value::Bytes(b)) => time2_cell(&b, *precision).ok_or_else(|| bad(col, b))?,
        (ColKind::Json, Value::Bytes(b)) => Cell::Bytes(json_text(&b)),
        // The binlog carries MariaDB's UUID (in its canonical, unswapped order) and INET types as bytes.
        (ColKind::Uuid, Value::Bytes(b)) => fixed_binary(col, b, 16)?,
        (ColKind::Inet4, Value::Bytes(b)) => fixed_binary(col, b, 4)?,
        (ColKind::Inet6, Value::Bytes(b)) => fixed_binary(col, b, 16)?,
        (kind, v) => from_snapshot(col, kind, v)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(dt: &str, ct: &str) -> SourceColumn {
        SourceColumn {
            ordinal: 1,
            numeric_precision: Some(10),
            numeric_scale: Some(2),
            datetime_precision: Some(3),
            ..SourceColumn::new("c", dt, ct, true)
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
    fn time2_storage_bytes() {
        let t = |b: &[u8], p| {
            String::from_utf8(match time2_cell(b, p).unwrap() {
                Cell::Bytes(x) => x,
                _ => unreachable!(),
            })
            .unwrap()
        };
        // -00:00:01.50 as TIME(2): intpart -2 (0x7ffffe), fraction byte 0xce (MySQL's reversed order).
        assert_eq!(t(&[0x7f, 0xff, 0xfe, 0xce], 2), "-00:00:01.50");
        assert_eq!(t(&[0x80, 0x00, 0x00], 0), "00:00:00");
        // 838:59:59 = 838 << 12 | 59 << 6 | 59.
        let hms = (838u32 << 12) | (59 << 6) | 59;
        let v = 0x800000u32 + hms;
        assert_eq!(t(&v.to_be_bytes()[1..], 0), "838:59:59");
        let v = (0x8000_0000_0000u64 as i64 - ((hms as i64) << 24)) as u64;
        assert_eq!(t(&v.to_be_bytes()[2..], 6), "-838:59:59.000000");
        assert!(time2_cell(&[1, 2], 0).is_none());
    }

    #[test]
    fn json_doubles_print_like_mysql() {
        // Expected texts are what MySQL 9 prints for CAST('[...]' AS JSON).
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e-5, "0.00001"),
            (1e-15, "0.000000000000001"),
            (1.5e-14, "0.000000000000015"),
            (1e15, "1e15"),
            (1e14, "100000000000000.0"),
            (1234567890123456.7, "1234567890123456.8"),
            (-3e10, "-30000000000.0"),
            (1.2345678901234568e29, "1.2345678901234568e29"),
            (5e-324, "5e-324"),
            (2.5e-300, "2.5e-300"),
            (-1.5, "-1.5"),
        ];
        for (d, want) in cases {
            assert_eq!(mysql_json_double(d), want, "{d:e}");
        }
    }

    #[test]
    fn binary_uuid_and_inet_values() {
        let c = col("binary", "binary(4)");
        let k = ColKind::of(&c);
        assert_eq!(from_binlog(&c, &k, Some(BinlogValue::Value(Value::Bytes(vec![1])))).unwrap(), Cell::Bytes(vec![1, 0, 0, 0]));
        let c = col("uuid", "uuid");
        let k = ColKind::of(&c);
        let text = b"6ccd780c-baba-1026-9564-5b8c65602400".to_vec();
        let snap = from_snapshot(&c, &k, Value::Bytes(text)).unwrap();
        let mut raw = vec![0x6c, 0xcd, 0x78, 0x0c, 0xba, 0xba, 0x10, 0x26, 0x95, 0x64, 0x5b, 0x8c, 0x65, 0x60, 0x24, 0x00];
        assert_eq!(snap, Cell::Bytes(raw.clone()));
        raw.pop();
        assert_eq!(from_binlog(&c, &k, Some(BinlogValue::Value(Value::Bytes(raw)))).unwrap(), snap);
        let c = col("inet6", "inet6");
        let k = ColKind::of(&c);
        let mut want = vec![0u8; 16];
        want[10..].copy_from_slice(&[0xff, 0xff, 1, 2, 3, 4]);
        assert_eq!(from_snapshot(&c, &k, Value::Bytes(b"::ffff:1.2.3.4".to_vec())).unwrap(), Cell::Bytes(want));
        let c = col("inet4", "inet4");
        assert!(from_snapshot(&c, &ColKind::of(&c), Value::Bytes(b"1.2.3".to_vec())).is_err());
    }

    #[test]
    fn unsigned_masks_signed_wire_values() {
        let c = col("tinyint", "tinyint unsigned");
        let k = ColKind::of(&c);
        assert_eq!(from_binlog(&c, &k, Some(BinlogValue::Value(Value::Int(-1)))).unwrap(), Cell::UInt(255));
        let c = col("bigint", "bigint unsigned");
        let k = ColKind::of(&c);
        assert_eq!(from_snapshot(&c, &k, Value::UInt(u64::MAX)).unwrap(), Cell::UInt(u64::MAX));
        let c = col("mediumint", "mediumint");
        let k = ColKind::of(&c);
        assert_eq!(from_binlog(&c, &k, Some(BinlogValue::Value(Value::Int(8_388_608)))).unwrap(), Cell::Int(-8_388_608));
        assert_eq!(from_snapshot(&c, &k, Value::Int(-8_388_608)).unwrap(), Cell::Int(-8_388_608));
        assert_eq!(from_snapshot(&c, &k, Value::Int(8_388_607)).unwrap(), Cell::Int(8_388_607));
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
