//! RowBinary encoding of `Cell`s for the ClickHouse types in `sluice_core::types`.
//!
//! Hand-written because the `clickhouse` crate's typed `Row` API needs the row
//! type at compile time, while Sluice learns its tables at run time. The format
//! is ClickHouse's documented RowBinary: little-endian fixed-width numbers,
//! LEB128-length-prefixed strings, a 0/1 prefix byte for `Nullable`.

use sluice_core::{value::days_from_civil, Cell, ChType};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EncodeError {
    #[error("NULL for non-nullable column of type {0}")]
    NullInNonNullable(String),
    #[error("value {value} does not fit {ch_type}")]
    OutOfRange { value: String, ch_type: String },
    #[error("value {value:?} cannot be written as {ch_type}")]
    Mismatch { value: String, ch_type: String },
}

fn out_of_range(value: impl ToString, t: &ChType) -> EncodeError {
    EncodeError::OutOfRange { value: value.to_string(), ch_type: t.sql() }
}

fn mismatch(value: &Cell, t: &ChType) -> EncodeError {
    EncodeError::Mismatch { value: format!("{value:?}"), ch_type: t.sql() }
}

/// First and last day ClickHouse's Date32/DateTime64 can hold: 1900-01-01 and 2299-12-31.
fn date_range() -> (i64, i64) {
    (days_from_civil(1900, 1, 1), days_from_civil(2299, 12, 31))
}

/// Whether a date/datetime value lies outside what ClickHouse can store.
fn outside_ch_range(t: &ChType, cell: &Cell) -> bool {
    let (lo, hi) = date_range();
    match (t, cell) {
        (ChType::Date32, Cell::Date(d)) => (*d as i64) < lo || (*d as i64) > hi,
        (ChType::DateTime64 { .. }, Cell::DateTime(us)) => {
            let day = us.div_euclid(86_400_000_000);
            day < lo || day > hi
        }
        _ => false,
    }
}

pub fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf.push(byte);
            return;
        }
        buf.push(byte | 0x80);
    }
}

pub fn put_string(buf: &mut Vec<u8>, s: &[u8]) {
    put_varint(buf, s.len() as u64);
    buf.extend_from_slice(s);
}

fn as_i128(cell: &Cell, t: &ChType) -> Result<i128, EncodeError> {
    match cell {
        Cell::Int(v) => Ok(*v as i128),
        Cell::UInt(v) => Ok(*v as i128),
        _ => Err(mismatch(cell, t)),
    }
}

fn int_in<T: TryFrom<i128>>(cell: &Cell, t: &ChType) -> Result<T, EncodeError> {
    let v = as_i128(cell, t)?;
    T::try_from(v).map_err(|_| out_of_range(v, t))
}

/// The bytes of a fixed-width binary cell (UUID, IPv4, IPv6).
fn fixed<const N: usize>(cell: &Cell, t: &ChType) -> Result<[u8; N], EncodeError> {
    match cell {
        Cell::Bytes(b) => b.as_slice().try_into().map_err(|_| mismatch(cell, t)),
        _ => Err(mismatch(cell, t)),
    }
}

/// Appends one value of type `t`. Dates outside ClickHouse's range become NULL
/// in `Nullable` columns (documented) and an error otherwise.
pub fn encode(buf: &mut Vec<u8>, t: &ChType, cell: &Cell) -> Result<(), EncodeError> {
    if let ChType::Nullable(inner) = t {
        if matches!(cell, Cell::Null) || outside_ch_range(inner, cell) {
            buf.push(1);
            return Ok(());
        }
        buf.push(0);
        return encode(buf, inner, cell);
    }
    if matches!(cell, Cell::Null) {
        if let ChType::Array(_) = t {
            // ClickHouse has no Nullable(Array): NULL is the empty array (documented).
            buf.push(0);
            return Ok(());
        }
        return Err(EncodeError::NullInNonNullable(t.sql()));
    }
    match t {
        ChType::Int8 => buf.push(int_in::<i8>(cell, t)? as u8),
        ChType::Int16 => buf.extend_from_slice(&int_in::<i16>(cell, t)?.to_le_bytes()),
        ChType::Int32 => buf.extend_from_slice(&int_in::<i32>(cell, t)?.to_le_bytes()),
        ChType::Int64 => buf.extend_from_slice(&int_in::<i64>(cell, t)?.to_le_bytes()),
        ChType::UInt8 => buf.push(int_in::<u8>(cell, t)?),
        ChType::UInt16 => buf.extend_from_slice(&int_in::<u16>(cell, t)?.to_le_bytes()),
        ChType::UInt32 => buf.extend_from_slice(&int_in::<u32>(cell, t)?.to_le_bytes()),
        ChType::UInt64 => buf.extend_from_slice(&int_in::<u64>(cell, t)?.to_le_bytes()),
        ChType::Float32 => match cell {
            Cell::Float(f) => buf.extend_from_slice(&f.to_le_bytes()),
            Cell::Double(d) => buf.extend_from_slice(&(*d as f32).to_le_bytes()),
            _ => return Err(mismatch(cell, t)),
        },
        ChType::Float64 => match cell {
            Cell::Double(d) => buf.extend_from_slice(&d.to_le_bytes()),
            Cell::Float(f) => buf.extend_from_slice(&(*f as f64).to_le_bytes()),
            _ => return Err(mismatch(cell, t)),
        },
        ChType::Decimal { precision, scale } => {
            let Cell::Decimal(text) = cell else { return Err(mismatch(cell, t)) };
            encode_decimal(buf, text, *precision, *scale).ok_or_else(|| out_of_range(text, t))?;
        }
        ChType::String => match cell {
            Cell::Bytes(b) => put_string(buf, b),
            Cell::Decimal(s) => put_string(buf, s.as_bytes()),
            Cell::Int(v) => put_string(buf, v.to_string().as_bytes()),
            Cell::UInt(v) => put_string(buf, v.to_string().as_bytes()),
            _ => return Err(mismatch(cell, t)),
        },
        ChType::Date32 => {
            let Cell::Date(d) = cell else { return Err(mismatch(cell, t)) };
            if outside_ch_range(t, cell) {
                return Err(out_of_range(d, t));
            }
            buf.extend_from_slice(&d.to_le_bytes());
        }
        ChType::DateTime64 { precision } => {
            let Cell::DateTime(us) = cell else { return Err(mismatch(cell, t)) };
            if outside_ch_range(t, cell) {
                return Err(out_of_range(us, t));
            }
            let ticks =
                if *precision <= 6 { us.div_euclid(10i64.pow(6 - *precision as u32)) } else { us * 10i64.pow(*precision as u32 - 6) };
            buf.extend_from_slice(&ticks.to_le_bytes());
        }
        ChType::Uuid => {
            let b = fixed::<16>(cell, t)?;
            // Two little-endian UInt64 halves: each half's bytes reversed.
            buf.extend(b[..8].iter().rev());
            buf.extend(b[8..].iter().rev());
        }
        ChType::IPv4 => buf.extend_from_slice(&u32::from_be_bytes(fixed::<4>(cell, t)?).to_le_bytes()),
        ChType::IPv6 => buf.extend_from_slice(&fixed::<16>(cell, t)?),
        ChType::Array(inner) if **inner == ChType::Float32 => {
            let Cell::Bytes(b) = cell else { return Err(mismatch(cell, t)) };
            if b.len() % 4 != 0 {
                return Err(mismatch(cell, t));
            }
            // Float32 in RowBinary is the same little-endian bytes MySQL stores.
            put_varint(buf, (b.len() / 4) as u64);
            buf.extend_from_slice(b);
        }
        ChType::Array(_) => return Err(mismatch(cell, t)),
        ChType::Nullable(_) => unreachable!("handled above"),
    }
    Ok(())
}

/// Writes canonical decimal text (see `canonical_decimal`) as the scaled integer
/// of Decimal32/64/128/256 chosen by `precision`. `None` if it does not fit.
fn encode_decimal(buf: &mut Vec<u8>, text: &str, precision: u8, scale: u8) -> Option<()> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if frac.len() != scale as usize {
        return None;
    }
    let all = || int.bytes().chain(frac.bytes());
    let significant = all().skip_while(|b| *b == b'0').count();
    if significant > precision as usize || !all().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if precision <= 38 {
        // At most 38 significant digits: the value fits an i128 (the common case, without limbs).
        let magnitude = all().fold(0i128, |acc, d| acc * 10 + (d - b'0') as i128);
        let v = if neg { -magnitude } else { magnitude };
        match precision {
            0..=9 => buf.extend_from_slice(&(v as i32).to_le_bytes()),
            10..=18 => buf.extend_from_slice(&(v as i64).to_le_bytes()),
            _ => buf.extend_from_slice(&v.to_le_bytes()),
        }
        return Some(());
    }
    // Little-endian 256-bit magnitude, then two's complement when negative.
    let mut limbs = [0u64; 4];
    for d in all() {
        let mut carry = (d - b'0') as u128;
        for limb in limbs.iter_mut() {
            let v = (*limb as u128) * 10 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
    }
    if neg {
        let mut carry = 1u128;
        for limb in limbs.iter_mut() {
            let v = (!*limb) as u128 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
    }
    for limb in limbs {
        buf.extend_from_slice(&limb.to_le_bytes());
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(t: &ChType, c: &Cell) -> Vec<u8> {
        let mut b = Vec::new();
        encode(&mut b, t, c).unwrap();
        b
    }

    #[test]
    fn integers_and_ranges() {
        assert_eq!(enc(&ChType::UInt64, &Cell::UInt(u64::MAX)), vec![0xff; 8]);
        assert_eq!(enc(&ChType::Int8, &Cell::Int(-1)), vec![0xff]);
        let mut b = Vec::new();
        assert!(encode(&mut b, &ChType::UInt8, &Cell::Int(256)).is_err());
        assert!(encode(&mut b, &ChType::Int32, &Cell::Null).is_err());
        assert_eq!(enc(&ChType::Int32.nullable(), &Cell::Null), vec![1]);
        assert_eq!(enc(&ChType::Int32.nullable(), &Cell::Int(2)), vec![0, 2, 0, 0, 0]);
    }

    #[test]
    fn decimals() {
        let d = |p, s, t: &str| enc(&ChType::Decimal { precision: p, scale: s }, &Cell::Decimal(t.into()));
        assert_eq!(d(9, 2, "-1.50"), (-150i32).to_le_bytes().to_vec());
        assert_eq!(d(18, 0, "123"), 123i64.to_le_bytes().to_vec());
        assert_eq!(d(38, 10, "1.0000000001"), 10000000001i128.to_le_bytes().to_vec());
        let big = d(65, 30, "-1.000000000000000000000000000001");
        assert_eq!(big.len(), 32);
        let mut expect = (-1_000_000_000_000_000_000_000_000_000_001i128).to_le_bytes().to_vec();
        expect.extend_from_slice(&[0xff; 16]);
        assert_eq!(big, expect);
        assert_eq!(
            d(38, 0, "-99999999999999999999999999999999999999"),
            (-99999999999999999999999999999999999999i128).to_le_bytes().to_vec()
        );
        assert_eq!(d(9, 2, "0.00"), 0i32.to_le_bytes().to_vec());
        assert_eq!(d(39, 0, "-1"), [0xff; 32].to_vec());
        let mut b = Vec::new();
        assert!(encode(&mut b, &ChType::Decimal { precision: 3, scale: 0 }, &Cell::Decimal("1000".into())).is_err());
    }

    #[test]
    fn uuid_ip_and_vectors() {
        let uuid: Vec<u8> = (0u8..16).collect();
        let mut want: Vec<u8> = (0u8..8).rev().collect();
        want.extend((8u8..16).rev());
        assert_eq!(enc(&ChType::Uuid, &Cell::Bytes(uuid)), want);
        assert_eq!(enc(&ChType::IPv4, &Cell::Bytes(vec![192, 168, 0, 1])), vec![1, 0, 168, 192]);
        assert_eq!(enc(&ChType::IPv6.nullable(), &Cell::Bytes(vec![0xfe; 16]))[1..], [0xfe; 16]);
        let arr = ChType::Array(Box::new(ChType::Float32));
        let mut floats = 1.5f32.to_le_bytes().to_vec();
        floats.extend((-2f32).to_le_bytes());
        let mut want = vec![2];
        want.extend(&floats);
        assert_eq!(enc(&arr, &Cell::Bytes(floats)), want);
        assert_eq!(enc(&arr, &Cell::Null), vec![0]);
        let mut b = Vec::new();
        assert!(encode(&mut b, &ChType::IPv4, &Cell::Bytes(vec![1, 2, 3])).is_err());
    }

    #[test]
    fn dates_out_of_range_become_null_when_nullable() {
        let t = ChType::Date32.nullable();
        assert_eq!(enc(&t, &Cell::Date(days_from_civil(1000, 1, 1) as i32)), vec![1]);
        assert_eq!(enc(&t, &Cell::Date(0)), vec![0, 0, 0, 0, 0]);
        let dt = ChType::DateTime64 { precision: 3 };
        assert_eq!(enc(&dt, &Cell::DateTime(1_500)), 1i64.to_le_bytes().to_vec());
        assert_eq!(enc(&dt, &Cell::DateTime(-1)), (-1i64).to_le_bytes().to_vec());
        let mut s = Vec::new();
        put_string(&mut s, &[0u8; 300]);
        assert_eq!(&s[..2], &[0xac, 0x02]);
    }
}
