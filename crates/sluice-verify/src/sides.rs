//! The queries a verification runs on each side for one range: the range's
//! checksum (row count and four sums of 32-bit parts of each row's SHA-256 (its first 16 bytes),
//! order-independent and exact in both databases: MySQL sums them as
//! DECIMAL, ClickHouse as UInt64, which cannot overflow below 2^32 rows),
//! and the range's lowest and highest key (for bisection).

use crate::range::KeyCol;
use crate::VerifyError;
use mysql_async::prelude::*;
use mysql_async::Conn;
use sluice_core::spec::SourceSpec;
use sluice_sink::ClickHouseSink;
use sluice_source::conn::bounded;

/// A range's checksum on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sum {
    pub rows: u64,
    pub parts: [u128; 4],
}

/// The ClickHouse rows of a destination table that exist (newest version, not deleted).
pub fn ch_live_rows(sink: &ClickHouseSink, table: &str) -> String {
    format!("{} FINAL WHERE _peerdb_is_deleted = 0", sink.qualified(table))
}

fn num(s: &str) -> Result<u128, VerifyError> {
    s.trim().parse().map_err(|_| VerifyError::Invalid(format!("unexpected checksum value {s:?}")))
}

pub async fn source_sum(conn: &mut Conn, spec: &SourceSpec, table: &str, row_hash: &str, pred: &str) -> Result<Sum, VerifyError> {
    let part = |i: usize| format!("CAST(IFNULL(SUM(CAST(CONV(SUBSTRING(h, {}, 8), 16, 10) AS UNSIGNED)), 0) AS CHAR)", 1 + 8 * i);
    let sql = format!(
        "SELECT CAST(COUNT(*) AS CHAR), {}, {}, {}, {} FROM (SELECT {row_hash} AS h FROM {table} WHERE {pred}) x",
        part(0),
        part(1),
        part(2),
        part(3)
    );
    let row: Option<(String, String, String, String, String)> =
        bounded(spec, "a verification checksum", async { Ok(conn.query_first(sql).await?) }).await?;
    let (n, a, b, c, d) = row.ok_or_else(|| VerifyError::Invalid("the checksum query returned no row".into()))?;
    Ok(Sum { rows: num(&n)? as u64, parts: [num(&a)?, num(&b)?, num(&c)?, num(&d)?] })
}

pub async fn dest_sum(sink: &ClickHouseSink, table: &str, row_hash: &str, pred: &str) -> Result<Sum, VerifyError> {
    let part = |i: usize| format!("toString(sum(reinterpretAsUInt32(reverse(substring(h, {}, 4)))))", 1 + 4 * i);
    let sql = format!(
        "SELECT count(), {}, {}, {}, {} FROM (SELECT {row_hash} AS h FROM {} AND ({pred}))",
        part(0),
        part(1),
        part(2),
        part(3),
        ch_live_rows(sink, table)
    );
    let out = sink.query_tsv(&sql).await?;
    let f: Vec<&str> = out.trim_end_matches('\n').split('\t').collect();
    if f.len() != 5 {
        return Err(VerifyError::Invalid(format!("unexpected checksum answer from ClickHouse: {out:?}")));
    }
    Ok(Sum { rows: num(f[0])? as u64, parts: [num(f[1])?, num(f[2])?, num(f[3])?, num(f[4])?] })
}

/// Checksums per hash bucket (`bucket` is the side's bucket expression) over
/// the whole table, in one scan; buckets without rows are absent.
pub async fn source_bucket_sums(
    conn: &mut Conn,
    spec: &SourceSpec,
    table: &str,
    row_hash: &str,
    bucket: &str,
) -> Result<std::collections::BTreeMap<u32, Sum>, VerifyError> {
    let part = |i: usize| format!("CAST(IFNULL(SUM(CAST(CONV(SUBSTRING(h, {}, 8), 16, 10) AS UNSIGNED)), 0) AS CHAR)", 1 + 8 * i);
    let sql = format!(
        "SELECT CAST(b AS CHAR), CAST(COUNT(*) AS CHAR), {}, {}, {}, {} FROM (SELECT {bucket} AS b, {row_hash} AS h FROM {table}) x GROUP BY b",
        part(0),
        part(1),
        part(2),
        part(3)
    );
    let rows: Vec<(String, String, String, String, String, String)> =
        bounded(spec, "verification bucket checksums", async { Ok(conn.query(sql).await?) }).await?;
    let mut out = std::collections::BTreeMap::new();
    for (b, n, p0, p1, p2, p3) in rows {
        out.insert(num(&b)? as u32, Sum { rows: num(&n)? as u64, parts: [num(&p0)?, num(&p1)?, num(&p2)?, num(&p3)?] });
    }
    Ok(out)
}

pub async fn dest_bucket_sums(
    sink: &ClickHouseSink,
    table: &str,
    row_hash: &str,
    bucket: &str,
) -> Result<std::collections::BTreeMap<u32, Sum>, VerifyError> {
    let part = |i: usize| format!("toString(sum(reinterpretAsUInt32(reverse(substring(h, {}, 4)))))", 1 + 4 * i);
    let sql = format!(
        "SELECT b, count(), {}, {}, {}, {} FROM (SELECT {bucket} AS b, {row_hash} AS h FROM {}) GROUP BY b",
        part(0),
        part(1),
        part(2),
        part(3),
        ch_live_rows(sink, table)
    );
    let mut out = std::collections::BTreeMap::new();
    for line in sink.query_tsv(&sql).await?.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 6 {
            return Err(VerifyError::Invalid(format!("unexpected checksum answer from ClickHouse: {line:?}")));
        }
        out.insert(num(f[0])? as u32, Sum { rows: num(f[1])? as u64, parts: [num(f[2])?, num(f[3])?, num(f[4])?, num(f[5])?] });
    }
    Ok(out)
}

/// Lowest and highest key of the range over both sides; `None` when both are empty.
pub async fn key_span(
    conn: &mut Conn,
    spec: &SourceSpec,
    sink: &ClickHouseSink,
    src_table: &str,
    dest_table: &str,
    key: &KeyCol,
    part: &sluice_source::snapshot::Partition,
) -> Result<Option<(i128, i128)>, VerifyError> {
    let sql =
        format!("SELECT CAST(MIN({k}) AS CHAR), CAST(MAX({k}) AS CHAR) FROM {src_table} WHERE {}", key.mysql_pred(part), k = key.mysql);
    let row: Option<(Option<String>, Option<String>)> =
        bounded(spec, "a verification key range", async { Ok(conn.query_first(sql).await?) }).await?;
    let mut span: Option<(i128, i128)> = None;
    let mut add = |lo: Option<i128>, hi: Option<i128>| {
        if let (Some(lo), Some(hi)) = (lo, hi) {
            span = Some(match span {
                None => (lo, hi),
                Some((a, b)) => (a.min(lo), b.max(hi)),
            });
        }
    };
    if let Some((Some(lo), Some(hi))) = row {
        add(key.parse(&lo), key.parse(&hi));
    }
    let sql = format!(
        "SELECT toString(min({k})), toString(max({k})), count() FROM {} AND ({})",
        ch_live_rows(sink, dest_table),
        key.ch_pred(part),
        k = key.ch
    );
    let out = sink.query_tsv(&sql).await?;
    let f: Vec<&str> = out.trim_end_matches('\n').split('\t').collect();
    if f.len() == 3 && f[2] != "0" {
        add(key.parse(f[0]), key.parse(f[1]));
    }
    Ok(span)
}
