//! `sluice verify` end to end, on MySQL and MariaDB: a correctly copied table
//! of every type family verifies clean; differences injected into ClickHouse
//! (a row deleted, values changed in several type families, an extra row, a
//! deleted row brought back) and into the source while the pipe is paused are
//! named exactly, with their kind and columns; a repair makes the next run
//! clean; and a pipe under a running write workload verifies clean.

mod common;
use common::workload;
use common::*;
use mysql_async::prelude::*;
use rand::SeedableRng;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const RUN: Duration = Duration::from_secs(300);
const ROWS: i64 = 2500;

/// The type-torture table's columns (beyond `id`), per flavor.
fn columns(flavor: Flavor) -> Vec<(&'static str, &'static str)> {
    let mut c = vec![
        ("ti", "TINYINT"),
        ("bu", "BIGINT UNSIGNED"),
        ("mi", "MEDIUMINT"),
        ("b", "BOOL"),
        ("bt", "BIT(17)"),
        ("y", "YEAR"),
        ("d102", "DECIMAL(10,2)"),
        ("d6530", "DECIMAL(65,30)"),
        ("f", "FLOAT"),
        ("dbl", "DOUBLE"),
        ("c", "CHAR(10)"),
        ("v", "VARCHAR(100)"),
        ("l1", "VARCHAR(20) CHARACTER SET latin1"),
        ("tx", "TEXT"),
        ("bn", "BINARY(8)"),
        ("vb", "VARBINARY(16)"),
        ("bl", "BLOB"),
        ("e", "ENUM('a','b,c','ü','')"),
        ("st", "SET('a','b','ü')"),
        ("j", "JSON"),
        ("dt", "DATE"),
        ("dt0", "DATETIME"),
        ("dt6", "DATETIME(6)"),
        ("ts3", "TIMESTAMP(3) NULL"),
        ("tm", "TIME(2)"),
        ("g", "GEOMETRY NULL"),
        ("secret", "VARCHAR(10)"),
    ];
    match flavor {
        Flavor::MySql => c.push(("vec", "VECTOR(3)")),
        Flavor::MariaDb | Flavor::MariaDb118 => c.extend([("u", "UUID"), ("i4", "INET4"), ("i6", "INET6")]),
    }
    c
}

/// One row's value expressions for key `i` (edge values every few rows, NULLs in every column of some rows).
fn row(flavor: Flavor, i: i64) -> String {
    if i % 101 == 0 {
        let n = columns(flavor).len();
        return format!("({i}, {})", vec!["NULL"; n].join(", "));
    }
    let edge = i % 13 == 0;
    let mut v: Vec<String> = vec![
        format!("{}", if edge { -128 } else { i % 256 - 128 }),
        if edge { "18446744073709551615".into() } else { format!("{}", i * 1_000_000_007) },
        format!("{}", -i * 3),
        format!("{}", i % 2),
        format!("{}", if edge { 131071 } else { i % 131072 }),
        if edge { "0".into() } else { format!("{}", 1901 + i % 254) },
        format!("'{}{}.{:02}'", if i % 2 == 0 { "-" } else { "" }, i, i % 100),
        format!("'{}.{}'", i, "0123456789".repeat(3)),
        if edge { "3.4028234e38".into() } else { format!("{i}/7") },
        if edge { "2.2250738585072014e-308".into() } else { format!("{i}/3") },
        format!("'c{i}  '"),
        if edge { "'😀🎉 ü tab\\there'".into() } else { format!("'v{i} ü'") },
        format!("'é{i}€'"),
        format!("REPEAT('t', {})", i % 50),
        format!("X'{:016x}'", i as u64 * 0x0100_0000_0000),
        format!("UNHEX('{:04x}')", i),
        format!("CONCAT('b', CHAR(0), {i})"),
        format!("'{}'", ["a", "b,c", "ü", ""][(i % 4) as usize]),
        format!("'{}'", ["a", "a,b", "b,ü", ""][(i % 4) as usize]),
        if edge {
            "'{\"a\": [1, 2.5, -3e10, true, null], \"ü\": \"😀\", \"n\": 18446744073709551615}'".into()
        } else {
            format!("JSON_OBJECT('i', {i}, 'f', {i}/8, 's', 'x')")
        },
        match i % 7 {
            0 => "'0000-00-00'".into(),
            1 => "'1800-01-01'".into(),
            _ => format!("DATE_ADD('1950-01-01', INTERVAL {i} DAY)"),
        },
        if i % 11 == 0 { "'0000-00-00 00:00:00'".into() } else { format!("DATE_ADD('2024-01-01 00:00:00', INTERVAL {i} MINUTE)") },
        format!("DATE_ADD('2024-01-01 00:00:00.123456', INTERVAL {i} SECOND)"),
        if i % 50 == 0 { "NULL".into() } else { format!("DATE_ADD('2020-01-01 00:00:00.5', INTERVAL {i} HOUR)") },
        if edge { "'-838:59:59.00'".into() } else { format!("SEC_TO_TIME({i} * 37 - 40000)") },
        if i % 3 == 0 { format!("ST_GeomFromText('POINT({i} {} )')", i as f64 / 3.0) } else { "NULL".into() },
        format!("'s{i}'"),
    ];
    match flavor {
        Flavor::MySql => v.push(if i % 5 == 0 { "NULL".into() } else { format!("STRING_TO_VECTOR('[{i},{},0.1]')", i as f64 / 3.0) }),
        Flavor::MariaDb | Flavor::MariaDb118 => v.extend([
            format!("'{:08x}-0000-4000-8000-00000000000{}'", i, i % 10),
            format!("'10.0.{}.{}'", i / 256 % 256, i % 256),
            if edge { "'::ffff:1.2.3.4'".into() } else { format!("'2001:db8::{:x}'", i) },
        ]),
    }
    format!("({i}, {})", v.join(", "))
}

async fn create_tables(c: &mut mysql_async::Conn, flavor: Flavor, db: &str) {
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop("SET SESSION sql_mode = '', time_zone = '+05:30'").await.unwrap();
    let cols: Vec<String> = columns(flavor).iter().map(|(n, t)| format!("`{n}` {t}")).collect();
    c.query_drop(format!("CREATE TABLE {db}.tt (id INT PRIMARY KEY, {})", cols.join(", "))).await.unwrap();
    for chunk in (1..=ROWS).collect::<Vec<_>>().chunks(250) {
        let rows: Vec<String> = chunk.iter().map(|i| row(flavor, *i)).collect();
        c.query_drop(format!("INSERT INTO {db}.tt VALUES {}", rows.join(", "))).await.unwrap();
    }
    // A string key: the table is compared in hash buckets of its key.
    c.query_drop(format!("CREATE TABLE {db}.sk (k VARCHAR(20) PRIMARY KEY, n INT, note VARCHAR(20)) CHARACTER SET utf8mb4")).await.unwrap();
    let rows: Vec<String> = (0..3000).map(|i| format!("('k{i:05}', {i}, 'n{i}')")).collect();
    c.query_drop(format!("INSERT INTO {db}.sk VALUES {}", rows.join(", "))).await.unwrap();
}

/// Starts a run, waits for its end, returns it.
async fn run_verification(s: &SluiceServer, pipe: &str, body: Value) -> Value {
    run_verification_within(s, pipe, body, RUN).await
}

/// The (key, kind, columns) triples a run reports for a table.
fn found(run: &Value, dest: &str) -> BTreeSet<(String, String, String)> {
    verified_table(run, dest)["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let cols: Vec<&str> = d["columns"].as_array().map(|a| a.iter().map(|c| c.as_str().unwrap()).collect()).unwrap_or_default();
            (d["key"].as_str().unwrap().to_string(), d["kind"].as_str().unwrap().to_string(), cols.join(","))
        })
        .collect()
}

fn assert_clean(run: &Value) {
    assert_eq!(run["clean"], true, "{run:#}");
    for t in run["tables"].as_array().unwrap() {
        assert_eq!(t["rows_differing"], 0, "{t:#}");
        assert!(t["error"].is_null(), "{t:#}");
    }
}

async fn ch_exec(sql: &str) {
    clickhouse().query(sql).execute().await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Runs the `sluice verify` CLI against the server; returns its exit code and stdout.
fn cli(s: &SluiceServer, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("verify")
        .args(args)
        .args(["--server", &s.base()])
        .env("SLUICE_API_TOKEN", &s.token)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn types_and_injections(flavor: Flavor) {
    let db = unique(&format!("vf_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_tables(&mut c, flavor, &db).await;
    let dir = tempfile::tempdir().unwrap();
    let s = SluiceServer::start(dir.path()).await;
    let tables = json!([{"source": format!("{db}.tt"), "exclude_columns": ["secret"]}, {"source": format!("{db}.sk")}]);
    let (code, v) = s.call(Method::POST, "/v1/pipes", Some(spec(&db, flavor, tables, &ch_db, "snapshot_and_cdc"))).await;
    assert_eq!(code, 201, "{v}");
    s.wait_state(&db, "Running", RUN).await;

    // Changes through the binlog: updates across type families, inserts, deletes.
    c.query_drop("SET SESSION sql_mode = '', time_zone = '+05:30'").await.unwrap();
    c.query_drop(format!(
        "UPDATE {db}.tt SET v = CONCAT(v, '+'), d102 = d102 + 1, dbl = dbl * 3, j = JSON_OBJECT('u', id), dt6 = NULL WHERE id BETWEEN 100 AND 160"
    ))
    .await
    .unwrap();
    let rows: Vec<String> = (3001..3051).map(|i| row(flavor, i)).collect();
    c.query_drop(format!("INSERT INTO {db}.tt VALUES {}", rows.join(", "))).await.unwrap();
    c.query_drop(format!("DELETE FROM {db}.tt WHERE id BETWEEN 5 AND 9")).await.unwrap();
    c.query_drop(format!("UPDATE {db}.sk SET note = 'changed' WHERE n < 10")).await.unwrap();
    let want = ROWS + 50 - 5;
    eventually(RUN, || async {
        let n = ch_rows(&format!("SELECT count() FROM {ch_db}.tt FINAL WHERE _peerdb_is_deleted = 0")).await?;
        if n[0][0] == want.to_string() {
            Ok(())
        } else {
            Err(format!("{} rows, want {want}", n[0][0]))
        }
    })
    .await;

    // (a) A correct copy verifies clean; the columns that cannot be checksummed alike are named as fetched.
    let run = run_verification(&s, &db, json!({})).await;
    assert_clean(&run);
    let tt = verified_table(&run, "tt");
    assert_eq!(tt["rows_compared"], want, "{tt:#}");
    let fetched: BTreeSet<&str> = tt["fetched_columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    // MariaDB's JSON is a LONGTEXT column (text, checksummed in the databases); MySQL's is binary JSON.
    let want_fetched: BTreeSet<&str> = match flavor {
        Flavor::MySql => ["f", "dbl", "j", "g", "vec"].into(),
        Flavor::MariaDb | Flavor::MariaDb118 => ["f", "dbl", "g", "i6"].into(),
    };
    assert_eq!(fetched, want_fetched, "{tt:#}");
    let sk = verified_table(&run, "sk");
    assert_eq!(sk["rows_compared"], 3000, "{sk:#}");
    assert!(sk["notes"][0].as_str().unwrap().contains("hash buckets"), "{sk:#}");

    // (b) Differences injected into ClickHouse.
    let t = format!("{ch_db}.tt");
    let bump = "_peerdb_version + 1000 AS _peerdb_version";
    // (The rows are selected in a subquery: a `REPLACE` alias would shadow the column in `WHERE`.)
    ch_exec(&format!("INSERT INTO {t} SELECT * REPLACE (1 AS _peerdb_is_deleted, {bump}) FROM (SELECT * FROM {t} FINAL WHERE id = 10)"))
        .await;
    let mut changes = vec![
        (20, "mi", "mi + 1"),
        (21, "d102", "d102 + 1"),
        (22, "v", "concat(v, 'x')"),
        (23, "dt6", "dt6 + toIntervalSecond(1)"),
        (24, "dbl", "dbl * 2"),
        (25, "j", "'{\"x\":1}'"),
        (26, "e", "'zz'"),
        (27, "tm", "'00:00:00.00'"),
        (28, "bn", "unhex('00')"),
        (29, "bt", "bt + 1"),
        (30, "f", "f + 1"),
        (31, "g", "'POINT(0 0)'"),
    ];
    match flavor {
        Flavor::MySql => changes.push((32, "vec", "[1., 2., 3.]")),
        Flavor::MariaDb | Flavor::MariaDb118 => {
            changes.extend([(32, "i6", "toIPv6('::1')"), (33, "u", "toUUID('00000000-0000-0000-0000-000000000001')")])
        }
    }
    for (id, col, expr) in &changes {
        ch_exec(&format!("INSERT INTO {t} SELECT * REPLACE ({expr} AS `{col}`, {bump}) FROM (SELECT * FROM {t} FINAL WHERE id = {id})"))
            .await;
    }
    ch_exec(&format!("INSERT INTO {t} SELECT * REPLACE (999999 AS id, {bump}) FROM (SELECT * FROM {t} FINAL WHERE id = 11)")).await;
    // A row deleted at the source whose delete marker is undone in place by a mutation
    // (merged first, so the marker is the row's only version): it is back in FINAL.
    ch_exec(&format!("OPTIMIZE TABLE {t} FINAL")).await;
    ch_exec(&format!("ALTER TABLE {t} UPDATE _peerdb_is_deleted = 0 WHERE id = 7 AND _peerdb_is_deleted = 1 SETTINGS mutations_sync = 2"))
        .await;
    let sk = format!("{ch_db}.sk");
    ch_exec(&format!("INSERT INTO {sk} SELECT * REPLACE ('other' AS note, {bump}) FROM (SELECT * FROM {sk} FINAL WHERE k = 'k00050')"))
        .await;

    let mut expected: BTreeSet<(String, String, String)> =
        changes.iter().map(|(id, col, _)| (format!("id={id}"), "differs".to_string(), col.to_string())).collect();
    expected.insert(("id=10".into(), "missing".into(), String::new()));
    expected.insert(("id=999999".into(), "extra".into(), String::new()));
    expected.insert(("id=7".into(), "extra".into(), String::new()));
    let run = run_verification(&s, &db, json!({})).await;
    assert_eq!(found(&run, "tt"), expected, "{run:#}");
    assert_eq!(found(&run, "sk"), [("k='k00050'".to_string(), "differs".to_string(), "note".to_string())].into());
    assert_eq!(run["clean"], false);
    // One run at a time per pipe.
    let (code, first) = s.call(Method::POST, &format!("/v1/pipes/{db}/verify"), Some(json!({"tables": ["tt"]}))).await;
    assert_eq!(code, 202, "{first}");
    let (code, v) = s.call(Method::POST, &format!("/v1/pipes/{db}/verify"), Some(json!({}))).await;
    assert_eq!(code, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("still running"), "{v}");
    let first = first["id"].as_i64().unwrap();
    eventually(RUN, || async {
        let (_, v) = s.call(Method::GET, &format!("/v1/pipes/{db}/verifications/{first}"), None).await;
        if v["state"] == "running" {
            Err("running".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    // One table only; unknown tables and pipes are refused.
    let only = run_verification(&s, &db, json!({"tables": ["sk"]})).await;
    assert_eq!(only["tables"].as_array().unwrap().len(), 1);
    let (code, v) = s.call(Method::POST, &format!("/v1/pipes/{db}/verify"), Some(json!({"tables": ["nope"]}))).await;
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("nope"), "{v}");
    let (code, _) = s.call(Method::POST, "/v1/pipes/no_such_pipe/verify", Some(json!({}))).await;
    assert_eq!(code, 404);
    // The CLI prints the differing keys and exits non-zero.
    let (code, out) = cli(&s, &[&db, "--table", "tt"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("missing  id=10") && out.contains("extra    id=999999"), "{out}");
    assert!(out.contains("compared by fetching:"), "{out}");

    // (c) Repair: the next verification is clean, and the destination equals the source for those rows.
    let run = run_verification(&s, &db, json!({"repair": true})).await;
    assert_clean(&run);
    assert_eq!(verified_table(&run, "tt")["differing_before_repair"], expected.len() as u64, "{run:#}");
    assert_eq!(verified_table(&run, "tt")["rows_repaired"], expected.len() as u64, "{run:#}");
    s.wait_state(&db, "Running", RUN).await;
    let (code, out) = cli(&s, &[&db]);
    assert_eq!(code, 0, "{out}");
    let n = ch_rows(&format!("SELECT count() FROM {t} FINAL WHERE _peerdb_is_deleted = 0 AND id IN (7, 10, 999999)")).await.unwrap();
    assert_eq!(n[0][0], "1");

    // Changes made at the source while the pipe is paused are named; once resumed the pipe catches up.
    let (code, v) = s.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
    assert_eq!(code, 202, "{v}");
    s.wait_state(&db, "Paused", RUN).await;
    c.query_drop(format!("UPDATE {db}.tt SET ti = 1 - ti, l1 = 'paused' WHERE id = 40")).await.unwrap();
    c.query_drop(format!("DELETE FROM {db}.tt WHERE id = 41")).await.unwrap();
    let run = run_verification(&s, &db, json!({"tables": ["tt"]})).await;
    let want: BTreeSet<_> =
        [("id=40".to_string(), "differs".to_string(), "ti,l1".to_string()), ("id=41".into(), "extra".into(), String::new())].into();
    assert_eq!(found(&run, "tt"), want, "{run:#}");
    let (code, v) = s.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
    assert_eq!(code, 200, "{v}");
    s.wait_state(&db, "Running", RUN).await;
    assert_clean(&run_verification(&s, &db, json!({})).await);

    // Runs are listed newest first, summarised in the pipe's events and counted in the metrics.
    let (_, list) = s.call(Method::GET, &format!("/v1/pipes/{db}/verifications"), None).await;
    assert!(list.as_array().unwrap().len() >= 7, "{list:#}");
    let (_, events) = s.call(Method::GET, &format!("/v1/pipes/{db}/events"), None).await;
    assert!(events.as_array().unwrap().iter().any(|e| e["reason"].as_str().unwrap().contains("rows repaired")), "{events:#}");
    let metrics = s.http.get(format!("{}/metrics", s.base())).bearer_auth(&s.token).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("sluice_verify_ranges_total") && metrics.contains("sluice_verify_last_run_timestamp_seconds"), "{metrics}");
    let (code, _) = s.call(Method::DELETE, &format!("/v1/pipes/{db}?drop_tables=true"), None).await;
    assert_eq!(code, 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_types_injections_repair() {
    types_and_injections(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_types_injections_repair() {
    types_and_injections(Flavor::MariaDb).await;
}

/// (d) Under a steady write workload, a correctly replicated pipe verifies clean.
async fn under_workload(flavor: Flavor) {
    let db = unique(&format!("vw_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    workload::create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    workload::load_orders(&mut c, &db, &mut rng, 1, 3000).await;
    let dir = tempfile::tempdir().unwrap();
    let s = SluiceServer::start(dir.path()).await;
    let (code, v) = s
        .call(Method::POST, "/v1/pipes", Some(spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc")))
        .await;
    assert_eq!(code, 201, "{v}");
    s.wait_state(&db, "Running", RUN).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, db) = (stop.clone(), db.clone());
        tokio::spawn(async move {
            let mut c = mysql(flavor).await;
            let mut rng = rand::rngs::StdRng::seed_from_u64(11);
            let mut next_id = 100_000;
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                workload::random_write(&mut c, &db, &mut rng, &mut next_id, 3000).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let run = run_verification(&s, &db, json!({})).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(writes > 50, "the workload wrote only {writes} times");
    assert_clean(&run);
    assert!(verified_table(&run, "orders")["rows_compared"].as_u64().unwrap() > 2000, "{run:#}");
    let (code, _) = s.call(Method::DELETE, &format!("/v1/pipes/{db}?drop_tables=true"), None).await;
    assert_eq!(code, 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_verifies_clean_under_workload() {
    under_workload(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_verifies_clean_under_workload() {
    under_workload(Flavor::MariaDb).await;
}

/// `verify_interval_hours` starts verifications by itself: a pipe whose interval is set and
/// that was never verified gets a run after a server (re)start, without any request, and
/// its result is in the history; a second one is not started while the interval has not
/// passed. Source-independent, so one flavour.
#[tokio::test(flavor = "multi_thread")]
async fn scheduled_verification_runs_by_itself() {
    let flavor = Flavor::MariaDb;
    let db = unique("vsched");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    workload::create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    workload::load_orders(&mut c, &db, &mut rng, 1, 500).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = SluiceServer::start(dir.path()).await;
    let mut body = spec(&db, flavor, json!([{"source": format!("{db}.orders")}]), &ch_db, "snapshot_and_cdc");
    body["settings"]["verify_interval_hours"] = json!(24);
    let (code, v) = s.call(Method::POST, "/v1/pipes", Some(body)).await;
    assert_eq!(code, 201, "{v}");
    s.wait_state(&db, "Running", RUN).await;
    // The scheduler looks a few seconds after start: restart so that it finds the pipe Running.
    s.kill9();
    s.restart().await;
    eventually(RUN, || async {
        match runs(&s, &db).await.first() {
            Some(r) if r["state"] == "done" => Ok(()),
            other => Err(format!("no finished scheduled verification yet: {other:?}\n{}", s.log())),
        }
    })
    .await;
    let all = runs(&s, &db).await;
    assert_eq!(all.len(), 1, "one scheduled run within the interval: {all:#?}");
    let id = all[0]["id"].as_i64().unwrap();
    let (_, run) = s.call(Method::GET, &format!("/v1/pipes/{db}/verifications/{id}"), None).await;
    assert_clean(&run);
    assert!(s.log().contains("scheduled verification"), "{}", s.log());
    let (_, ev) = s.call(Method::GET, &format!("/v1/pipes/{db}/events"), None).await;
    assert!(ev.to_string().contains(&format!("verification #{id}")), "{ev}");
    // Another restart: the last run is recent, nothing new starts.
    s.kill9();
    s.restart().await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(runs(&s, &db).await.len(), 1, "a run started before the interval passed");
}

/// The pipe's verification runs, newest first.
async fn runs(s: &SluiceServer, pipe: &str) -> Vec<Value> {
    let (code, v) = s.call(Method::GET, &format!("/v1/pipes/{pipe}/verifications"), None).await;
    assert_eq!(code, 200, "{v}");
    v.as_array().unwrap().clone()
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Cost measurement, not part of the suite: `VERIFY_MEASURE_ROWS=1000000 VERIFY_SRC_PID=<mysqld>
/// VERIFY_CH_PID=<clickhouse> cargo nextest run --workspace --test verify measure --run-ignored only`.
/// Loads the workload's `orders` table, copies it, verifies it unthrottled and prints rows/s and CPU seconds.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn measure_verification_cost() {
    let n: u64 = std::env::var("VERIFY_MEASURE_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let pid = |v: &str| std::env::var(v).ok().and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
    let (src_pid, ch_pid) = (pid("VERIFY_SRC_PID"), pid("VERIFY_CH_PID"));
    let flavor = if std::env::var("VERIFY_MEASURE_MARIADB").is_ok() { Flavor::MariaDb } else { Flavor::MySql };
    let db = unique(&format!("vm_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    // VERIFY_MEASURE_BENCH: the benchmark table of `sluice-bench` (same generator) instead of `orders`.
    let bench = std::env::var("VERIFY_MEASURE_BENCH").is_ok();
    let table = if bench { "t" } else { "orders" };
    if bench {
        bench_table(&mut c, &db, n).await;
    } else {
        workload::create_schema(&mut c, &db).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        workload::load_orders(&mut c, &db, &mut rng, 1, n).await;
    }
    c.query_drop(format!("ANALYZE TABLE {db}.{table}")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = SluiceServer::start(dir.path()).await;
    // VERIFY_MEASURE_HASHED_ONLY: leave out the DOUBLE and JSON columns (compared by fetching), so every column is checksummed in the databases.
    let exclude: Vec<&str> = if std::env::var("VERIFY_MEASURE_HASHED_ONLY").is_ok() { vec!["score", "doc"] } else { vec![] };
    let tables = json!([{"source": format!("{db}.{table}"), "exclude_columns": exclude}]);
    let mut sp = spec(&db, flavor, tables, &ch_db, "snapshot_and_cdc");
    sp["settings"]["verify_rows_per_second"] = json!(100_000_000);
    let (code, v) = s.call(Method::POST, "/v1/pipes", Some(sp)).await;
    assert_eq!(code, 201, "{v}");
    s.wait_state(&db, "Running", Duration::from_secs(1800)).await;
    // VERIFY_MEASURE_PAUSED: verify a paused pipe (no live re-check: any difference is reported).
    if std::env::var("VERIFY_MEASURE_PAUSED").is_ok() {
        let (code, v) = s.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
        assert_eq!(code, 202, "{v}");
        s.wait_state(&db, "Paused", RUN).await;
    }
    let sluice_pid = s.child.as_ref().unwrap().id();
    let before = (cpu_seconds(sluice_pid), cpu_seconds(src_pid), cpu_seconds(ch_pid));
    let start = std::time::Instant::now();
    let run = run_verification_within(&s, &db, json!({}), Duration::from_secs(3600)).await;
    let wall = start.elapsed().as_secs_f64();
    let after = (cpu_seconds(sluice_pid), cpu_seconds(src_pid), cpu_seconds(ch_pid));
    assert_clean(&run);
    let t = self::verified_table(&run, table);
    println!(
        "MEASURE {:?}: {} rows, {} ranges, fetched {}, wall {wall:.1}s, {:.0} rows/s, CPU s sluice {:.1} / source {:.1} / clickhouse {:.1}",
        flavor,
        t["rows_compared"],
        t["ranges_checked"],
        t["fetched_columns"],
        t["rows_compared"].as_f64().unwrap() / wall,
        after.0 - before.0,
        after.1 - before.1,
        after.2 - before.2
    );
    let (code, _) = s.call(Method::DELETE, &format!("/v1/pipes/{db}?drop_tables=true"), None).await;
    assert_eq!(code, 204);
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

/// `sluice-bench`'s table: 11 mixed-type columns, `n` rows, generated by the server.
async fn bench_table(c: &mut mysql_async::Conn, db: &str, rows: u64) {
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, a INT NOT NULL, b BIGINT, c DOUBLE, d DECIMAL(12,2) NOT NULL, \
         e VARCHAR(64) NOT NULL, f DATETIME(6) NOT NULL, g TIMESTAMP NULL, h ENUM('new','paid','shipped') NOT NULL, \
         i TEXT, j TINYINT NOT NULL) CHARACTER SET utf8mb4"
    ))
    .await
    .unwrap();
    c.query_drop("SET SESSION cte_max_recursion_depth = 100000").await.ok();
    c.query_drop("SET SESSION max_recursive_iterations = 100000").await.ok();
    c.query_drop(format!("CREATE TABLE {db}.seq (n INT PRIMARY KEY)")).await.unwrap();
    c.query_drop(format!(
        "INSERT INTO {db}.seq WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 9999) SELECT n FROM s"
    ))
    .await
    .unwrap();
    let mut done = 0u64;
    while done < rows {
        let step = (rows - done).min(500_000);
        c.query_drop(format!(
            "INSERT INTO {db}.t SELECT {done} + a.n * 10000 + b.n + 1, (a.n * 7919 + b.n) % 1000000, a.n * b.n, (b.n + 0.5) / (a.n + 1.25), \
             ROUND((a.n * 10000 + b.n) * 0.37, 2), CONCAT('customer-', a.n, '-', b.n), \
             TIMESTAMP('2024-01-01') + INTERVAL (a.n * 10000 + b.n) SECOND + INTERVAL b.n MICROSECOND, \
             IF(b.n % 5 = 0, NULL, TIMESTAMP('2025-06-01') + INTERVAL b.n MINUTE), ELT(1 + b.n % 3, 'new', 'paid', 'shipped'), \
             IF(b.n % 3 = 0, NULL, REPEAT(CHAR(97 + b.n % 26), 40 + b.n % 20)), b.n % 100 \
             FROM {db}.seq a JOIN {db}.seq b WHERE a.n * 10000 + b.n < {step}"
        ))
        .await
        .unwrap();
        done += step;
    }
}
