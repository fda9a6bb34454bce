//! Memory bounded in bytes: a pipe over a table of 1 MiB rows, run with a
//! 32 MiB budget (`SLUICE_MEMORY_BUDGET_MB`), snapshots it and follows a
//! transaction that rewrites every row (hundreds of MiB of row images), and the
//! process's peak resident memory stays within the budget plus a fixed
//! overhead — where row-count bounds alone (25,000 rows per chunk, 100,000
//! changes per batch) would hold the whole table several times over. A
//! verification of a table of wide JSON values (a column compared row by row,
//! not by checksum) stays within the same bounds and still finds a difference.

mod common;
use common::*;
use mysql_async::prelude::*;
use reqwest::Method;
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
    // Cleanup only (hundreds of MiB a run on a shared test bed).
    drop_databases(&mut c, &db, &ch_db).await;
}

async fn drop_databases(c: &mut mysql_async::Conn, db: &str, ch_db: &str) {
    let _ = c.query_drop(format!("DROP DATABASE IF EXISTS {db}")).await;
    let _ = clickhouse().query(&format!("DROP DATABASE IF EXISTS `{ch_db}`")).execute().await;
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

/// A server with the test's memory budget running a pipe over `db.tables`
/// (a name or `*`), `Running`.
async fn budgeted_pipe(dir: &std::path::Path, flavor: Flavor, db: &str, ch_db: &str, tables: &str) -> SluiceServer {
    // The server inherits the environment of the test process (one process per test under nextest).
    std::env::set_var("SLUICE_MEMORY_BUDGET_MB", BUDGET_MB.to_string());
    let srv = SluiceServer::start(dir).await;
    let (code, v) = srv
        .call(Method::POST, "/v1/pipes", Some(spec(db, flavor, json!([{"source": format!("{db}.{tables}")}]), ch_db, "snapshot_and_cdc")))
        .await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(db, "Running", CONVERGE).await;
    srv
}

/// Waits until ClickHouse table `ch_db.table` holds `rows` live rows.
async fn wait_for_rows(ch_db: &str, table: &str, rows: u32) {
    eventually(CONVERGE, || async {
        let n = ch_rows(&format!("SELECT count() FROM `{ch_db}`.`{table}` FINAL WHERE _peerdb_is_deleted = 0")).await?;
        if n == vec![vec![rows.to_string()]] {
            Ok(())
        } else {
            Err(format!("{n:?}"))
        }
    })
    .await;
}

/// JSON values are compared row by row (their text differs between the two
/// databases): ranges are narrowed until their rows fit the budget, instead of
/// reading up to 100,000 rows of each side at once.
#[tokio::test(flavor = "multi_thread")]
async fn verifying_wide_json_rows_stays_within_the_memory_budget() {
    const JSON_ROWS: u32 = 150;
    const JSON_BYTES: u32 = 400_000;
    let flavor = Flavor::MySql;
    let db = unique("wide_json");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.wj (id INT PRIMARY KEY, j JSON)")).await.unwrap();
    for i in 0..JSON_ROWS {
        c.query_drop(format!("INSERT INTO {db}.wj VALUES ({i}, JSON_OBJECT('k', REPEAT(CHAR(65 + {i} % 26), {JSON_BYTES})))"))
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let srv = budgeted_pipe(dir.path(), flavor, &db, &ch_db, "wj").await;
    wait_for_rows(&ch_db, "wj", JSON_ROWS).await;
    let t = format!("`{ch_db}`.wj");
    let after_copy = peak_rss_mb(srv.child.as_ref().unwrap().id());
    eprintln!("peak RSS {after_copy} MiB after the copy");
    // One row's JSON differs in ClickHouse.
    let sql = format!(
        "INSERT INTO {t} SELECT * REPLACE ('{{\"k\": \"x\"}}' AS j, _peerdb_version + 1000 AS _peerdb_version) FROM (SELECT * FROM {t} FINAL WHERE id = 77)"
    );
    clickhouse().query(&sql).execute().await.unwrap_or_else(|e| panic!("{sql}: {e}"));

    let run = run_verification_within(&srv, &db, json!({}), CONVERGE).await;
    let t0 = &run["tables"][0];
    assert_eq!(t0["fetched_columns"], json!(["j"]), "{run:#}");
    let diffs: Vec<(String, String)> = t0["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["key"].as_str().unwrap_or_default().to_string(), d["kind"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(diffs, vec![("id=77".to_string(), "differs".to_string())], "{run:#}");
    let peak = peak_rss_mb(srv.child.as_ref().unwrap().id());
    eprintln!("peak RSS {peak} MiB after verifying {} MiB of JSON (budget {BUDGET_MB} MiB)", (JSON_ROWS * JSON_BYTES) >> 20);
    assert!(
        peak > 0 && peak <= BUDGET_MB + OVERHEAD_MB,
        "peak RSS {peak} MiB is above the {BUDGET_MB} MiB budget + {OVERHEAD_MB} MiB overhead"
    );
    let _ = srv.call(Method::DELETE, &format!("/v1/pipes/{db}?drop_tables=true"), None).await;
    drop_databases(&mut c, &db, &ch_db).await;
}

/// A table whose key cannot be ranged nor hashed alike on both sides (here a
/// DOUBLE key) is compared row by row in one piece: a small one verifies
/// clean, one whose rows would not fit the budget's share is refused with a
/// clear error instead of being read whole.
#[tokio::test(flavor = "multi_thread")]
async fn verifying_a_table_keyed_by_a_fetched_column_refuses_what_does_not_fit() {
    const BIG_ROWS: u32 = 20_000;
    let flavor = Flavor::MySql;
    let db = unique("fetched_key");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    for t in ["small", "big"] {
        c.query_drop(format!("CREATE TABLE {db}.{t} (k DOUBLE PRIMARY KEY, v VARCHAR(255))")).await.unwrap();
    }
    c.query_drop(format!("INSERT INTO {db}.small VALUES (0.5, 'a'), (1.5, 'b'), (2.5, NULL)")).await.unwrap();
    c.query_drop("SET SESSION cte_max_recursion_depth = 1000000").await.unwrap();
    c.query_drop(format!(
        "INSERT INTO {db}.big WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {BIG_ROWS}) \
         SELECT n + 0.25, REPEAT('x', 200) FROM s"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let srv = budgeted_pipe(dir.path(), flavor, &db, &ch_db, "*").await;
    wait_for_rows(&ch_db, "big", BIG_ROWS).await;
    let run = run_verification_within(&srv, &db, json!({}), CONVERGE).await;
    let (small, big) = (verified_table(&run, "small"), verified_table(&run, "big"));
    assert_eq!(small["state"], "done", "{run:#}");
    assert_eq!(small["rows_compared"], 3, "{run:#}");
    assert_eq!(small["differences"], json!([]), "{run:#}");
    assert_eq!(big["state"], "failed", "{run:#}");
    let err = big["error"].as_str().unwrap_or_default();
    eprintln!("the big table's error: {err}");
    assert!(
        err.contains("was not verified") && err.contains("k cannot be checksummed alike") && err.contains("--memory-budget-mb"),
        "{err}"
    );
    let _ = srv.call(Method::DELETE, &format!("/v1/pipes/{db}?drop_tables=true"), None).await;
    drop_databases(&mut c, &db, &ch_db).await;
}

/// A table without a key is copied as one stream, a chunk at a time, each
/// chunk reading while its encoding holds less than its share of the budget:
/// with the smallest budget (16 MiB, a 1 MiB share, less than an insert block's
/// room) every chunk still reads rows and the copy completes.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_without_a_key_is_copied_under_the_smallest_budget() {
    let flavor = Flavor::MySql;
    let db = unique("keyless_budget");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.k (a INT, b VARCHAR(200))")).await.unwrap();
    let values: Vec<String> = (0..3000).map(|i| format!("({i}, REPEAT('x', 100 + {i} % 100))")).collect();
    c.query_drop(format!("INSERT INTO {db}.k VALUES {}", values.join(", "))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(&db, flavor, json!([{"source": format!("{db}.k"), "engine": "merge_tree"}]), &ch_db, "snapshot_only");
    let run = SluiceRun::start_with_env(dir.path(), &spec, &[("SLUICE_MEMORY_BUDGET_MB", "16")]);
    eventually(CONVERGE, || async {
        let n = ch_rows(&format!("SELECT count(), sum(a), sum(length(b)) FROM `{ch_db}`.`k`")).await?;
        let want = vec![vec!["3000".to_string(), "4498500".to_string(), (3000 * 100 + 30 * 4950).to_string()]];
        if n == want {
            Ok(())
        } else {
            Err(format!("{n:?}, want {want:?}\n{}", log_tail(&run.log())))
        }
    })
    .await;
    assert!(run.log().contains("memory budget for rows in flight: 16 MiB"), "{}", log_tail(&run.log()));
    drop_databases(&mut c, &db, &ch_db).await;
}
