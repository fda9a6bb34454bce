//! Memory bounded in bytes: a pipe over a table of 1 MiB rows, run with a
//! 32 MiB budget (`SLUICE_MEMORY_BUDGET_MB`), snapshots it and follows a
//! transaction that rewrites every row (hundreds of MiB of row images), and the
//! process's peak resident memory stays within the budget plus a fixed
//! overhead — where row-count bounds alone (25,000 rows per chunk, 100,000
//! changes per batch) would hold the whole table several times over.

mod common;
use common::*;
use mysql_async::prelude::*;
use serde_json::json;
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(300);

const ROWS: u32 = 160;
const ROW_BYTES: u32 = 1 << 20;
const BUDGET_MB: u64 = 32;
/// What the process holds besides rows in flight (code, runtime, connections'
/// buffers, one encoded block per insert, the allocator's slack). Measured
/// peaks: 44–53 MiB on both flavors. Before the budget (row-count bounds only)
/// and the process's allocator settings, the same run peaked at 216–244 MiB.
const OVERHEAD_MB: u64 = 96;

/// `(count, total length, sum of CRC32)` of the source rows.
async fn source_sums(c: &mut mysql_async::Conn, db: &str) -> Vec<Vec<String>> {
    src_rows(c, &format!("SELECT COUNT(*), SUM(LENGTH(v)), SUM(CRC32(v)), SUM(n) FROM {db}.wide")).await
}

async fn converged(flavor: Flavor, db: &str, ch_db: &str) -> Result<(), String> {
    let mut c = mysql(flavor).await;
    let src = source_sums(&mut c, db).await;
    let dst =
        ch_rows(&format!("SELECT count(), sum(length(v)), sum(CRC32(v)), sum(n) FROM `{ch_db}`.wide FINAL WHERE _peerdb_is_deleted = 0"))
            .await?;
    if src == dst {
        Ok(())
    } else {
        Err(format!("source {src:?} vs ClickHouse {dst:?}"))
    }
}

fn peak_rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

async fn wide_rows_stay_within_the_budget(flavor: Flavor) {
    let db = unique(&format!("wide_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.wide (id INT PRIMARY KEY, n INT NOT NULL, v LONGBLOB)")).await.unwrap();
    for i in 0..ROWS {
        c.query_drop(format!("INSERT INTO {db}.wide VALUES ({i}, 0, REPEAT(CHAR(65 + {i} % 26), {ROW_BYTES}))")).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(&db, flavor, json!([{"source": format!("{db}.wide")}]), &ch_db, "snapshot_and_cdc");
    let mut run = SluiceRun::start_with_env(dir.path(), &spec, &[("SLUICE_MEMORY_BUDGET_MB", &BUDGET_MB.to_string())]);
    let pid = run.child.as_ref().unwrap().id();
    eventually(CONVERGE, || converged(flavor, &db, &ch_db)).await;
    let after_snapshot = peak_rss_mb(pid);

    // One transaction rewrites every row: ~2 × ROWS MiB of row images, written in parts.
    c.query_drop(format!("UPDATE {db}.wide SET v = REPEAT('z', {ROW_BYTES} + id), n = n + 1")).await.unwrap();
    for i in ROWS..ROWS + 20 {
        c.query_drop(format!("INSERT INTO {db}.wide VALUES ({i}, 1, REPEAT('y', {ROW_BYTES}))")).await.unwrap();
    }
    c.query_drop(format!("DELETE FROM {db}.wide WHERE id < 10")).await.unwrap();
    eventually(CONVERGE, || converged(flavor, &db, &ch_db)).await;
    let peak = peak_rss_mb(pid);
    let log = run.log();
    assert!(log.contains("memory budget for rows in flight: 32 MiB"), "{}", log_tail(&log));
    assert!(log.contains("is written in parts before its commit"), "the large transaction was not split:\n{}", log_tail(&log));
    assert!(run.is_running(), "{}", log_tail(&log));
    run.kill9();
    eprintln!("{flavor:?}: peak RSS {after_snapshot} MiB after the snapshot, {peak} MiB after CDC (budget {BUDGET_MB} MiB)");
    assert!(
        peak > 0 && peak <= BUDGET_MB + OVERHEAD_MB,
        "peak RSS {peak} MiB is above the {BUDGET_MB} MiB budget + {OVERHEAD_MB} MiB overhead (after the snapshot: {after_snapshot} MiB)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_wide_rows_stay_within_the_memory_budget() {
    wide_rows_stay_within_the_budget(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_wide_rows_stay_within_the_memory_budget() {
    wide_rows_stay_within_the_budget(Flavor::MariaDb).await;
}

fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
