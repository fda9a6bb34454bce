//! The queries a verification runs on each side for one range: the range's
//! checksum (row count and the sum of the first 64 bits of each row's
//! SHA-256: order-independent and exact in both databases — MySQL sums
//! them as DECIMAL, ClickHouse as UInt128 — with one hash per row), and the
//! range's lowest and highest key (for bisection).

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
    pub hash: u128,
}

/// MySQL: the sum of the first 64 bits of the hex hashes `h`, as text.
const MY_SUM: &str = "CAST(IFNULL(SUM(CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS UNSIGNED)), 0) AS CHAR)";
/// ClickHouse: the same sum over the binary hashes `h`.
const CH_SUM: &str = "toString(sum(toUInt128(reinterpretAsUInt64(reverse(substring(h, 1, 8))))))";

/// The ClickHouse rows of a destination table that exist (newest version, not deleted).
pub fn ch_live_rows(sink: &ClickHouseSink, table: &str) -> String {
    format!("{} FINAL WHERE _peerdb_is_deleted = 0", sink.qualified(table))
}

fn num(s: &str) -> Result<u128, VerifyError> {
    s.trim().parse().map_err(|_| VerifyError::Invalid(format!("unexpected checksum value {s:?}")))
}

/// The source's checksum of a range, and the bytes of its rows (`row_len`:
/// the SQL sum of a row's value lengths), which tell whether the range's rows
/// fit in memory for a row-by-row comparison.
pub async fn source_sum(
    conn: &mut Conn,
    spec: &SourceSpec,
    table: &str,
    row_hash: &str,
    row_len: &str,
    pred: &str,
) -> Result<(Sum, u64), VerifyError> {
    let sql = format!(
        "SELECT CAST(COUNT(*) AS CHAR), {MY_SUM}, CAST(IFNULL(SUM(l), 0) AS CHAR) FROM (SELECT {row_hash} AS h, {row_len} AS l FROM {table} WHERE {pred}) x"
    );
    let row: Option<(String, String, String)> =
        bounded(spec, "a verification checksum", async { Ok(conn.query_first(sql).await?) }).await?;
    let (n, h, l) = row.ok_or_else(|| VerifyError::Invalid("the checksum query returned no row".into()))?;
    Ok((Sum { rows: num(&n)? as u64, hash: num(&h)? }, num(&l)? as u64))
}

pub async fn dest_sum(sink: &ClickHouseSink, table: &str, row_hash: &str, pred: &str) -> Result<Sum, VerifyError> {
    let sql = format!("SELECT count(), {CH_SUM} FROM (SELECT {row_hash} AS h FROM {} AND ({pred}))", ch_live_rows(sink, table));
    let out = sink.query_tsv(&sql).await?;
    let f: Vec<&str> = out.trim_end_matches('\n').split('\t').collect();
    if f.len() != 2 {
        return Err(VerifyError::Invalid(format!("unexpected checksum answer from ClickHouse: {out:?}")));
    }
    Ok(Sum { rows: num(f[0])? as u64, hash: num(f[1])? })
}

/// Checksums per hash bucket (`bucket` is the side's bucket expression) over
/// the whole table, in one scan; buckets without rows are absent. Also the
/// bytes of all the rows (`row_len` as for `source_sum`).
pub async fn source_bucket_sums(
    conn: &mut Conn,
    spec: &SourceSpec,
    table: &str,
    row_hash: &str,
    row_len: &str,
    bucket: &str,
) -> Result<(std::collections::BTreeMap<u32, Sum>, u64), VerifyError> {
    let sql = format!(
        "SELECT CAST(b AS CHAR), CAST(COUNT(*) AS CHAR), {MY_SUM}, CAST(IFNULL(SUM(l), 0) AS CHAR) \
         FROM (SELECT {bucket} AS b, {row_hash} AS h, {row_len} AS l FROM {table}) x GROUP BY b"
    );
    let rows: Vec<(String, String, String, String)> =
        bounded(spec, "verification bucket checksums", async { Ok(conn.query(sql).await?) }).await?;
    let mut out = std::collections::BTreeMap::new();
    let mut bytes = 0;
    for (b, n, h, l) in rows {
        out.insert(num(&b)? as u32, Sum { rows: num(&n)? as u64, hash: num(&h)? });
        bytes += num(&l)? as u64;
    }
    Ok((out, bytes))
}

pub async fn dest_bucket_sums(
    sink: &ClickHouseSink,
    table: &str,
    row_hash: &str,
    bucket: &str,
) -> Result<std::collections::BTreeMap<u32, Sum>, VerifyError> {
    let sql =
        format!("SELECT b, count(), {CH_SUM} FROM (SELECT {bucket} AS b, {row_hash} AS h FROM {}) GROUP BY b", ch_live_rows(sink, table));
    let mut out = std::collections::BTreeMap::new();
    for line in sink.query_tsv(&sql).await?.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 3 {
            return Err(VerifyError::Invalid(format!("unexpected checksum answer from ClickHouse: {line:?}")));
        }
        out.insert(num(f[0])? as u32, Sum { rows: num(f[1])? as u64, hash: num(f[2])? });
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
