//! Values flowing through a pipe, after decoding and before encoding.
//!
//! The snapshot reader (MySQL binary protocol) and the binlog reader both
//! produce `Cell`s through the same normalisation, so a value looks the same
//! whichever path carried it; the sink encodes `Cell`s per ClickHouse type.

/// One column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    /// Canonical decimal text: optional `-`, digits, optional `.` and exactly `scale` digits.
    Decimal(String),
    /// Text, binary strings, JSON text, ENUM/SET labels, TIME text, WKT; and the
    /// fixed-width binary forms of the types ClickHouse stores natively:
    /// UUID (16 bytes, canonical order), IPv4 (4 bytes) and IPv6 (16 bytes) in
    /// network order, VECTOR (little-endian `f32`s, 4 bytes each).
    Bytes(Vec<u8>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 00:00:00 (UTC for TIMESTAMP; wall clock for DATETIME).
    DateTime(i64),
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The proleptic Gregorian date `(year, month, day)` of a day number since
/// 1970-01-01: the inverse of `days_from_civil`.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// Builds a `Cell::Date`/`Cell::DateTime` from calendar parts; `None` for zero or
/// partial-zero dates (`0000-00-00`, `2024-00-10`) and impossible ones.
#[allow(clippy::too_many_arguments)] // the calendar parts of one value, as both decoders have them
pub fn calendar_cell(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32, with_time: bool) -> Option<Cell> {
    if y == 0 || mo == 0 || d == 0 || mo > 12 || d > 31 {
        return None;
    }
    let days = days_from_civil(y as i64, mo as u32, d as u32);
    if with_time {
        let secs = days * 86_400 + h as i64 * 3600 + mi as i64 * 60 + s as i64;
        Some(Cell::DateTime(secs * 1_000_000 + us as i64))
    } else {
        Some(Cell::Date(days as i32))
    }
}

/// MySQL's TIME text for a signed duration: `[-]HH:MM:SS[.ffffff]` (hours may exceed 24).
pub fn time_text(negative: bool, total_hours: u32, m: u8, s: u8, us: u32, precision: u32) -> String {
    let mut t = format!("{}{:02}:{:02}:{:02}", if negative { "-" } else { "" }, total_hours, m, s);
    if precision > 0 {
        let frac = format!("{:06}", us);
        t.push('.');
        t.push_str(&frac[..precision.min(6) as usize]);
    }
    t
}

/// Whether `text` is already canonical decimal text for `scale`: optional
/// `-`, an integer part without leading zeros (or exactly `0`), and, when
/// `scale > 0`, `.` and exactly `scale` digits; never a negative zero.
/// MySQL sends DECIMAL values this way, so this check spares a copy.
pub fn is_canonical_decimal(text: &[u8], scale: u32) -> bool {
    let (neg, t) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let int_len = t.len().checked_sub(if scale > 0 { scale as usize + 1 } else { 0 });
    let Some(int_len) = int_len.filter(|n| *n > 0) else { return false };
    let (int, rest) = t.split_at(int_len);
    if !int.iter().all(u8::is_ascii_digit) || (int.len() > 1 && int[0] == b'0') {
        return false;
    }
    let frac = match rest.split_first() {
        None => &[][..],
        Some((b'.', frac)) => frac,
        Some(_) => return false,
    };
    if !frac.iter().all(u8::is_ascii_digit) {
        return false;
    }
    !(neg && int == b"0" && frac.iter().all(|b| *b == b'0'))
}

/// `canonical_decimal` of owned bytes: the same bytes, without a copy, when
/// they are canonical already; the bytes back when they are not decimal text.
pub fn canonical_decimal_owned(bytes: Vec<u8>, scale: u32) -> Result<String, Vec<u8>> {
    if is_canonical_decimal(&bytes, scale) {
        return String::from_utf8(bytes).map_err(|e| e.into_bytes());
    }
    match std::str::from_utf8(&bytes).ok().and_then(|t| canonical_decimal(t, scale)) {
        Some(text) => Ok(text),
        None => Err(bytes),
    }
}

/// Normalises decimal text to exactly `scale` fractional digits, without exponent.
pub fn canonical_decimal(text: &str, scale: u32) -> Option<String> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let mut frac = frac.to_string();
    if frac.len() > scale as usize {
        if frac[scale as usize..].bytes().any(|b| b != b'0') {
            return None; // would lose digits
        }
        frac.truncate(scale as usize);
    }
    while frac.len() < scale as usize {
        frac.push('0');
    }
    let zero = int == "0" && frac.bytes().all(|b| b == b'0');
    let mut out = String::new();
    if neg && !zero {
        out.push('-');
    }
    out.push_str(int);
    if scale > 0 {
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        assert_eq!(days_from_civil(1900, 1, 1), -25567);
        for (y, m, d) in [(1970, 1, 1), (2000, 2, 29), (1900, 3, 1), (1, 1, 1), (9999, 12, 31), (-44, 3, 15)] {
            assert_eq!(civil_from_days(days_from_civil(y, m as u32, d as u32)), (y, m, d));
        }
        assert_eq!(calendar_cell(2024, 0, 10, 0, 0, 0, 0, false), None);
        assert_eq!(calendar_cell(1970, 1, 2, 0, 0, 1, 5, true), Some(Cell::DateTime(86_401_000_005)));
    }

    #[test]
    fn decimals() {
        assert_eq!(canonical_decimal("-0.00", 2).unwrap(), "0.00");
        assert_eq!(canonical_decimal("12.5", 3).unwrap(), "12.500");
        assert_eq!(canonical_decimal("007", 0).unwrap(), "7");
        assert_eq!(canonical_decimal("-.5", 1).unwrap(), "-0.5");
        assert!(canonical_decimal("1.25", 1).is_none());
        assert!(canonical_decimal("1e5", 0).is_none());
        assert_eq!(time_text(true, 838, 59, 59, 120000, 2), "-838:59:59.12");
        for (text, scale) in [("0.00", 2), ("-1.50", 2), ("123", 0), ("-7", 0), ("10.5", 1)] {
            assert!(is_canonical_decimal(text.as_bytes(), scale), "{text}");
            assert_eq!(canonical_decimal_owned(text.into(), scale).unwrap(), text);
        }
        for (text, scale) in [("-0.00", 2), ("00.10", 2), ("1.5", 2), (".50", 2), ("1.", 0), ("-", 0), ("", 0), ("1e5", 0), ("1,50", 2)] {
            assert!(!is_canonical_decimal(text.as_bytes(), scale), "{text}");
            assert_eq!(canonical_decimal_owned(text.into(), scale).ok(), canonical_decimal(text, scale), "{text}");
        }
    }
}
