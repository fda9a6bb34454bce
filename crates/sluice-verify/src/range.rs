//! Key ranges of a verified table: ranges `[lo, hi)` of its first paging
//! column (the snapshot's `Partition`s, bounds in the same JSON encoding),
//! the same filter written for MySQL and for ClickHouse, and the split of a
//! range in two halves (bisection).
//!
//! Only integer and DATE/DATETIME/TIMESTAMP first columns are ranged: their
//! order is the same in both databases. A string column's order is its
//! collation's in MySQL and byte order in ClickHouse, so a range of it would
//! not hold the same rows on both sides; such a table is split into hash
//! buckets of its key instead (`Scope::Bucket`: the CRC-32 of the key's
//! canonical text, which both databases compute alike).

use serde_json::json;
use sluice_core::schema::quote_mysql;
use sluice_core::types::{ChType, TableMapping};
use sluice_core::value::days_from_civil;
use sluice_sink::quote;
use sluice_source::convert::ColKind;
use sluice_source::snapshot::Partition;

const DAY_US: i128 = 86_400_000_000;

/// A set of rows compared at once.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// A range of the first paging column.
    Range(Partition),
    /// The rows whose key hash has `value` in its low `bits` bits.
    Bucket { bits: u32, value: u32 },
}

impl Scope {
    /// The bucket filter on a side, given that side's key-hash expression.
    pub fn bucket_pred(bits: u32, value: u32, hash: &str, clickhouse: bool) -> String {
        let mask = ((1u64 << bits) - 1) as u32;
        if clickhouse {
            format!("bitAnd({hash}, {mask}) = {value}")
        } else {
            format!("({hash} & {mask}) = {value}")
        }
    }
}

/// Bits of hash buckets holding about `per_bucket` of `rows` rows each (at most 2^16 buckets).
pub fn bucket_bits(rows: u64, per_bucket: u64) -> u32 {
    let n = rows.div_ceil(per_bucket.max(1)).max(1);
    (64 - (n - 1).leading_zeros()).min(16)
}

/// What the first paging column holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyKind {
    Int {
        unsigned: bool,
    },
    /// DATE: bounds are whole days.
    Date,
    /// DATETIME/TIMESTAMP (session UTC): bounds are microseconds.
    DateTime,
}

/// The first paging column of a table, when it can be ranged.
#[derive(Debug, Clone)]
pub struct KeyCol {
    pub mysql: String,
    pub ch: String,
    pub kind: KeyKind,
}

impl KeyCol {
    /// The first paging column (`partition_key`, else the first key column) if it is an integer or date/time.
    pub fn of(mapping: &TableMapping) -> Option<KeyCol> {
        let name = mapping.partition_key.clone().or_else(|| mapping.source.primary_key.first().cloned())?;
        let col = mapping.source.column(&name)?;
        let kind = match ColKind::of(col) {
            ColKind::Int { unsigned, .. } => KeyKind::Int { unsigned },
            ColKind::Date => KeyKind::Date,
            ColKind::DateTime | ColKind::Timestamp => KeyKind::DateTime,
            _ => return None,
        };
        let ch = mapping.columns.iter().find(|c| mapping.source.columns[c.source_index].name == name)?;
        // A key column whose destination type is unexpected is not ranged (one range, still compared).
        let ok = matches!(
            (kind, ch.ch_type.clone()),
            (KeyKind::Int { .. }, _) | (KeyKind::Date, ChType::Date32) | (KeyKind::DateTime, ChType::DateTime64 { .. })
        );
        ok.then(|| KeyCol { mysql: quote_mysql(&name), ch: quote(&ch.name), kind })
    }

    /// The smallest step between two bounds.
    pub fn unit(&self) -> i128 {
        match self.kind {
            KeyKind::Date => DAY_US,
            _ => 1,
        }
    }

    /// A bound (snapshot JSON encoding) as a number: the integer, or microseconds since 1970.
    pub fn num(&self, bound: &serde_json::Value) -> Option<i128> {
        let (tag, v) = bound.as_object()?.iter().next()?;
        match tag.as_str() {
            "i" => v.as_i64().map(i128::from),
            "u" => v.as_u64().map(i128::from),
            "dt" => {
                let n = |i: usize| v.get(i).and_then(|x| x.as_i64());
                let days = days_from_civil(n(0)?, n(1)?.clamp(1, 12) as u32, n(2)?.max(1) as u32) as i128;
                Some(days * DAY_US + ((n(3)? * 60 + n(4)?) * 60 + n(5)?) as i128 * 1_000_000 + n(6)? as i128)
            }
            _ => None,
        }
    }

    /// A number as a bound in the snapshot's JSON encoding.
    pub fn bound(&self, n: i128) -> serde_json::Value {
        match self.kind {
            KeyKind::Int { unsigned: true } => json!({"u": n as u64}),
            KeyKind::Int { unsigned: false } => json!({"i": n as i64}),
            KeyKind::Date | KeyKind::DateTime => {
                let (y, m, d, h, mi, s, us) = parts(n);
                json!({"dt": [y, m, d, h, mi, s, us]})
            }
        }
    }

    /// The bound just above the value `n` (one unit more), `None` above the column's largest value.
    pub fn above(&self, n: i128) -> Option<serde_json::Value> {
        let next = n.checked_add(self.unit())?;
        let max = match self.kind {
            KeyKind::Int { unsigned: true } => u64::MAX as i128,
            KeyKind::Int { unsigned: false } => i64::MAX as i128,
            // 9999-12-31 23:59:59.999999, the last DATE/DATETIME value.
            KeyKind::Date | KeyKind::DateTime => 253_402_300_799_999_999,
        };
        (next <= max).then(|| self.bound(next))
    }

    fn mysql_literal(&self, n: i128) -> String {
        match self.kind {
            KeyKind::Int { .. } => n.to_string(),
            _ => format!("'{}'", text(n)),
        }
    }

    fn ch_literal(&self, n: i128) -> String {
        match self.kind {
            KeyKind::Int { .. } => n.to_string(),
            KeyKind::Date => format!("toDate32('{}')", &text(n)[..10]),
            KeyKind::DateTime => format!("toDateTime64('{}', 6, 'UTC')", text(n)),
        }
    }

    fn pred(&self, part: &Partition, col: &str, lit: impl Fn(i128) -> String) -> String {
        let mut conds = Vec::new();
        if let Some(lo) = part.lo.as_ref().and_then(|b| self.num(b)) {
            conds.push(format!("{col} >= {}", lit(lo)));
        }
        if let Some(hi) = part.hi.as_ref().and_then(|b| self.num(b)) {
            conds.push(format!("{col} < {}", lit(hi)));
        }
        if conds.is_empty() {
            "1 = 1".into()
        } else {
            conds.join(" AND ")
        }
    }

    /// The range as a MySQL filter.
    pub fn mysql_pred(&self, part: &Partition) -> String {
        self.pred(part, &self.mysql, |n| self.mysql_literal(n))
    }

    /// The range as a ClickHouse filter.
    pub fn ch_pred(&self, part: &Partition) -> String {
        self.pred(part, &self.ch, |n| self.ch_literal(n))
    }

    /// Parses MIN/MAX text of the column (an integer, or `YYYY-MM-DD[ hh:mm:ss[.f]]`) as a number.
    pub fn parse(&self, text: &str) -> Option<i128> {
        match self.kind {
            KeyKind::Int { .. } => text.trim().parse().ok(),
            _ => parse_datetime(text.trim()),
        }
    }

    /// Splits `part`, whose rows (on both sides) have keys between `min` and
    /// `max` inclusive, into two halves; `None` when it holds one key value only.
    pub fn split(&self, part: &Partition, min: i128, max: i128) -> Option<(Partition, Partition)> {
        let unit = self.unit();
        if max < min {
            return None;
        }
        let base = min.div_euclid(unit) * unit;
        let mid = base + ((max - base) / 2 / unit + 1) * unit;
        if mid <= min || mid > max {
            return None;
        }
        let b = self.bound(mid);
        Some((Partition { lo: part.lo.clone(), hi: Some(b.clone()) }, Partition { lo: Some(b), hi: part.hi.clone() }))
    }
}

/// The calendar parts of microseconds since 1970.
fn parts(n: i128) -> (i64, i64, i64, i64, i64, i64, i64) {
    let (days, rest) = (n.div_euclid(DAY_US), n.rem_euclid(DAY_US));
    let (y, m, d) = crate::canon::civil(days as i64);
    let s = (rest / 1_000_000) as i64;
    (y, m, d, s / 3600, s / 60 % 60, s % 60, (rest % 1_000_000) as i64)
}

fn text(n: i128) -> String {
    let (y, m, d, h, mi, s, us) = parts(n);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
}

/// `YYYY-MM-DD[ hh:mm:ss[.f]]` as microseconds since 1970 (a zero month or day counts as 1).
pub fn parse_datetime(t: &str) -> Option<i128> {
    let (date, time) = t.split_once(' ').unwrap_or((t, "00:00:00"));
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, dd) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut h = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mi, s) = (h.next()??, h.next()??, h.next()??);
    let us: i64 = if frac.is_empty() { 0 } else { format!("{:0<6}", &frac[..frac.len().min(6)]).parse().ok()? };
    let days = days_from_civil(y, m.clamp(1, 12) as u32, dd.max(1) as u32) as i128;
    Some(days * DAY_US + ((hh * 60 + mi) * 60 + s) as i128 * 1_000_000 + us as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: KeyKind) -> KeyCol {
        KeyCol { mysql: "`k`".into(), ch: "`k`".into(), kind }
    }

    #[test]
    fn bounds_round_trip_and_filters_match_on_both_sides() {
        let k = key(KeyKind::Int { unsigned: false });
        let p = Partition { lo: Some(k.bound(-5)), hi: Some(k.bound(100)) };
        assert_eq!(k.mysql_pred(&p), "`k` >= -5 AND `k` < 100");
        assert_eq!(k.ch_pred(&p), "`k` >= -5 AND `k` < 100");
        assert_eq!(k.mysql_pred(&Partition::WHOLE), "1 = 1");
        let u = key(KeyKind::Int { unsigned: true });
        assert_eq!(u.num(&u.bound(u64::MAX as i128)), Some(u64::MAX as i128));
        let t = key(KeyKind::DateTime);
        let n = parse_datetime("2024-02-29 23:59:59.5").unwrap();
        assert_eq!(t.num(&t.bound(n)), Some(n));
        assert_eq!(t.bound(n), json!({"dt": [2024, 2, 29, 23, 59, 59, 500000]}));
        let p = Partition { lo: Some(t.bound(n)), hi: None };
        assert_eq!(t.mysql_pred(&p), "`k` >= '2024-02-29 23:59:59.500000'");
        assert_eq!(t.ch_pred(&p), "`k` >= toDateTime64('2024-02-29 23:59:59.500000', 6, 'UTC')");
        let d = key(KeyKind::Date);
        assert_eq!(
            d.ch_pred(&Partition { lo: None, hi: Some(d.bound(parse_datetime("1999-12-31").unwrap())) }),
            "`k` < toDate32('1999-12-31')"
        );
        assert_eq!(parse_datetime("0000-00-00"), parse_datetime("0000-01-01"));
        // The bound just above a value, none above the largest.
        assert_eq!(k.above(7), Some(k.bound(8)));
        assert_eq!(k.above(i64::MAX as i128), None);
        assert_eq!(u.above(u64::MAX as i128), None);
        assert_eq!(d.above(parse_datetime("1999-12-31").unwrap()), Some(d.bound(parse_datetime("2000-01-01").unwrap())));
        assert_eq!(t.above(n), Some(t.bound(n + 1)));
        assert_eq!(t.above(parse_datetime("9999-12-31 23:59:59.999999").unwrap()), None);
    }

    #[test]
    fn hash_buckets_cover_the_rows_in_about_the_asked_size() {
        assert_eq!(bucket_bits(0, 1000), 0);
        assert_eq!(bucket_bits(1000, 1000), 0);
        assert_eq!(bucket_bits(1001, 1000), 1);
        assert_eq!(bucket_bits(5_000_000, 1000), 13);
        assert_eq!(bucket_bits(u64::MAX, 1), 16);
        assert_eq!(Scope::bucket_pred(3, 5, "CRC32(k)", false), "(CRC32(k) & 7) = 5");
        assert_eq!(Scope::bucket_pred(0, 0, "CRC32(k)", true), "bitAnd(CRC32(k), 0) = 0");
    }

    #[test]
    fn bisection_halves_the_key_span_until_one_value_is_left() {
        let k = key(KeyKind::Int { unsigned: false });
        let (a, b) = k.split(&Partition::WHOLE, 0, 9).unwrap();
        assert_eq!((a.lo, a.hi.clone(), b.lo.clone(), b.hi), (None, Some(k.bound(5)), Some(k.bound(5)), None));
        let (_, b) = k.split(&Partition::WHOLE, 7, 8).unwrap();
        assert_eq!(b.lo, Some(k.bound(8)));
        assert!(k.split(&Partition::WHOLE, 7, 7).is_none());
        assert!(k.split(&Partition::WHOLE, 8, 7).is_none());
        // Extreme keys do not overflow.
        assert!(k.split(&Partition::WHOLE, i64::MIN as i128, i64::MAX as i128).is_some());
        // Dates split on midnights only.
        let d = key(KeyKind::Date);
        let day = |s| parse_datetime(s).unwrap();
        let (a, _) = d.split(&Partition::WHOLE, day("2024-01-01"), day("2024-01-10")).unwrap();
        assert_eq!(a.hi, Some(d.bound(day("2024-01-06"))));
        assert!(d.split(&Partition::WHOLE, day("2024-01-01"), day("2024-01-01")).is_none());
        let (_, b) = d.split(&Partition::WHOLE, day("2024-01-01"), day("2024-01-02")).unwrap();
        assert_eq!(b.lo, Some(d.bound(day("2024-01-02"))));
    }
}
