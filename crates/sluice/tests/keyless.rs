//! Tables without a key, end to end on both servers: a `schema.*` pipe skips
//! them with an event naming the options (and reaches `Running`), `engine:
//! merge_tree` keeps their snapshot and every change as log rows, a declared
//! `key_columns` replicates their updates and deletes (FINAL equals the
//! source), a NULL in a declared key column is refused at Setup, and `sluice
//! check` reports duplicates of a declared key. Also (the other source items of
//! the same issue): a binlog event larger than the source's `max_allowed_packet`
//! replicates.
//!
//! MySQL 9.7 gives a keyless table an invisible `my_row_id` primary key when
//! `sql_generate_invisible_primary_key` is on: the tables here are created
//! with it off for the session, so that they really have no key.

mod common;
use common::*;
use mysql_async::prelude::*;
use reqwest::Method;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// A schema `db` on `flavor`'s server, and a connection that creates keyless tables as such.
async fn schema(flavor: Flavor, db: &str) -> mysql_async::Conn {
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    if flavor == Flavor::MySql {
        c.query_drop("SET SESSION sql_generate_invisible_primary_key = OFF").await.unwrap();
    }
    c
}

async fn events(srv: &SluiceServer, name: &str) -> String {
    let (_, ev) = srv.call(Method::GET, &format!("/v1/pipes/{name}/events"), None).await;
    ev.to_string()
}

/// `sluice check --json` of `spec`: its checks by name.
fn check(spec: &serde_json::Value) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["check", "--json", "--config"]).arg(&path).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn check_named<'a>(v: &'a serde_json::Value, table: &str) -> &'a serde_json::Value {
    v["checks"].as_array().unwrap().iter().find(|c| c["name"].as_str().unwrap().contains(table)).unwrap_or_else(|| panic!("{v}"))
}

/// `db.*` over a keyed and a keyless table (default engine): the pipe reaches
/// Running, replicates the keyed table, and its history names the skipped one
/// and the options that would include it; `sluice check` shows it as a warning.
async fn wildcard_skips_keyless(flavor: Flavor) {
    let db = unique(&format!("kl_wild_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = schema(flavor, &db).await;
    c.query_drop(format!("CREATE TABLE {db}.keyed (id INT PRIMARY KEY, v VARCHAR(10))")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.keyed VALUES (1, 'a'), (2, 'b')")).await.unwrap();
    // Like DBT-3's time_statistics: no key, empty.
    c.query_drop(format!("CREATE TABLE {db}.time_statistics (task_name VARCHAR(32), start_time TIMESTAMP NULL, end_time TIMESTAMP NULL)"))
        .await
        .unwrap();
    let spec = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");

    let v = check(&spec);
    let c_nokey = check_named(&v, "time_statistics");
    assert!(c_nokey["ok"] == true && c_nokey["warning"] == true, "{v}");
    assert!(c_nokey["found"].as_str().unwrap().contains("skipped"), "{v}");
    assert!(c_nokey["fix"].as_str().unwrap().contains("key_columns") && c_nokey["fix"].as_str().unwrap().contains("merge_tree"), "{v}");

    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    c.query_drop(format!("INSERT INTO {db}.keyed VALUES (3, 'c')")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.time_statistics VALUES ('q1', NOW(), NOW())")).await.unwrap();
    eventually(T, || async {
        let src = src_rows(&mut mysql(flavor).await, &format!("SELECT id, v FROM {db}.keyed ORDER BY id")).await;
        let dst = ch_rows(&format!("SELECT id, v FROM {ch_db}.keyed FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id")).await?;
        diff(&src, &dst)
    })
    .await;
    let ev = events(&srv, &db).await;
    assert!(ev.contains("time_statistics") && ev.contains("skipped"), "{ev}");
    assert!(ev.contains("key_columns") && ev.contains("merge_tree"), "{ev}");
    assert!(!ch_database_exists(&ch_db).await || ch_rows(&format!("EXISTS TABLE {ch_db}.time_statistics")).await.unwrap()[0][0] == "0");
    assert_eq!(srv.state(&db).await, "Running");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_wildcard_skips_a_keyless_table_with_an_event() {
    wildcard_skips_keyless(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_wildcard_skips_a_keyless_table_with_an_event() {
    wildcard_skips_keyless(Flavor::MariaDb).await;
}

/// The rows of a merge_tree log as `a|b|deleted` lines, sorted.
async fn log_rows(ch_db: &str) -> Result<Vec<String>, String> {
    let rows = ch_rows(&format!("SELECT toString(a), ifNull(b, 'NULL'), toString(_peerdb_is_deleted) FROM {ch_db}.log")).await?;
    let mut out: Vec<String> = rows.into_iter().map(|r| r.join("|")).collect();
    out.sort();
    Ok(out)
}

/// `engine: merge_tree` on a keyless table (with duplicate rows): the snapshot,
/// then every insert, update (after-image) and delete (`_peerdb_is_deleted = 1`)
/// are rows of the log, ordered by `_peerdb_version`.
async fn merge_tree_log(flavor: Flavor) {
    let db = unique(&format!("kl_log_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = schema(flavor, &db).await;
    c.query_drop(format!("CREATE TABLE {db}.log (a INT, b VARCHAR(10))")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.log VALUES (1, 'x'), (1, 'x'), (2, 'y'), (5, NULL)")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    // A small chunk size: the stream is handed out in several chunks.
    let mut spec = spec(&db, flavor, json!([{"source": format!("{db}.log"), "engine": "merge_tree"}]), &ch_db, "snapshot_and_cdc");
    spec["settings"]["snapshot_rows_per_chunk"] = json!(3);
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    let snapshot = ["1|x|0", "1|x|0", "2|y|0", "5|NULL|0"];
    eventually(T, || async {
        let got = log_rows(&ch_db).await?;
        if got == snapshot {
            Ok(())
        } else {
            Err(format!("snapshot rows {got:?}\n{}", srv.log()))
        }
    })
    .await;
    c.query_drop(format!("INSERT INTO {db}.log VALUES (3, 'z')")).await.unwrap();
    c.query_drop(format!("UPDATE {db}.log SET b = 'w' WHERE a = 2")).await.unwrap();
    c.query_drop(format!("DELETE FROM {db}.log WHERE a = 1")).await.unwrap();
    let mut want = vec!["1|x|0", "1|x|0", "2|y|0", "5|NULL|0", "3|z|0", "2|w|0", "1|x|1", "1|x|1"];
    want.sort();
    eventually(T, || async {
        let got = log_rows(&ch_db).await?;
        if got == want {
            Ok(())
        } else {
            Err(format!("log rows {got:?}, want {want:?}"))
        }
    })
    .await;
    // The changes come after the snapshot rows in version order: the last one is the delete.
    let last = ch_rows(&format!("SELECT toString(a), toString(_peerdb_is_deleted) FROM {ch_db}.log ORDER BY _peerdb_version DESC LIMIT 1"))
        .await
        .unwrap();
    assert_eq!(last, vec![vec!["1".to_string(), "1".to_string()]]);
    let meta =
        ch_rows(&format!("SELECT engine, trim(BOTH '()' FROM sorting_key) FROM system.tables WHERE database = '{ch_db}' AND name = 'log'"))
            .await
            .unwrap();
    assert_eq!(meta, vec![vec!["MergeTree".to_string(), "_peerdb_version".to_string()]]);
    assert_eq!(srv.state(&db).await, "Running");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_merge_tree_keeps_a_keyless_table_as_a_change_log() {
    merge_tree_log(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_merge_tree_keeps_a_keyless_table_as_a_change_log() {
    merge_tree_log(Flavor::MariaDb).await;
}

async fn same_declared(flavor: Flavor, db: &str, ch_db: &str) -> Result<(), String> {
    let src = src_rows(&mut mysql(flavor).await, &format!("SELECT code, n, v FROM {db}.kc ORDER BY code, n")).await;
    let dst = ch_rows(&format!("SELECT code, n, v FROM {ch_db}.kc FINAL WHERE _peerdb_is_deleted = 0 ORDER BY code, n")).await?;
    diff(&src, &dst)
}

/// `key_columns` on a keyless table (named next to a `schema.*` entry that also
/// matches it): `sluice check` reports duplicates of the
/// declared key; snapshot and CDC (updates of other columns and of the key,
/// deletes) leave FINAL equal to the source; the key is the sorting key.
async fn declared_key(flavor: Flavor) {
    let db = unique(&format!("kl_kc_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = schema(flavor, &db).await;
    // `code` is nullable but holds no NULL: accepted as a key column.
    c.query_drop(format!("CREATE TABLE {db}.kc (code VARCHAR(10) NULL, n INT NOT NULL, v INT, KEY (n))")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.kc VALUES ('a', 1, 10), ('a', 2, 20), ('b', 1, 30), ('c', 7, NULL)")).await.unwrap();
    // A named entry takes its table out of the schema.* entry, with options of its own.
    c.query_drop(format!("CREATE TABLE {db}.other (id INT PRIMARY KEY)")).await.unwrap();
    let tables = json!([{"source": format!("{db}.*")}, {"source": format!("{db}.kc"), "key_columns": ["code", "n"]}]);
    let spec = spec(&db, flavor, tables, &ch_db, "snapshot_and_cdc");

    // Duplicates of the declared key: a warning with their count and an example.
    c.query_drop(format!("INSERT INTO {db}.kc VALUES ('b', 1, 31)")).await.unwrap();
    let v = check(&spec);
    let kc = check_named(&v, ".`kc`");
    assert!(kc["ok"] == true && kc["warning"] == true, "{v}");
    let found = kc["found"].as_str().unwrap();
    assert!(found.contains("1 value(s)") && found.contains("b, 1"), "{v}");
    c.query_drop(format!("DELETE FROM {db}.kc WHERE v = 31")).await.unwrap();
    let v = check(&spec);
    assert_eq!(check_named(&v, ".`kc`")["warning"], false, "{v}");

    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    eventually(T, || same_declared(flavor, &db, &ch_db)).await;
    for sql in [
        "INSERT INTO {db}.kc VALUES ('d', 1, 40)",
        "UPDATE {db}.kc SET v = 21 WHERE code = 'a' AND n = 2",
        "UPDATE {db}.kc SET code = 'z' WHERE code = 'b' AND n = 1",
        "UPDATE {db}.kc SET n = 8, v = 70 WHERE code = 'c'",
        "DELETE FROM {db}.kc WHERE code = 'a' AND n = 1",
    ] {
        c.query_drop(sql.replace("{db}", &db)).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    eventually(T, || async { same_declared(flavor, &db, &ch_db).await.map_err(|e| format!("{e}\n{}", srv.log())) }).await;
    let key = ch_rows(&format!("SELECT sorting_key FROM system.tables WHERE database = '{ch_db}' AND name = 'kc'")).await.unwrap();
    assert_eq!(key, vec![vec!["code, n".to_string()]]);
    let ty =
        ch_rows(&format!("SELECT type FROM system.columns WHERE database = '{ch_db}' AND table = 'kc' AND name = 'code'")).await.unwrap();
    assert_eq!(ty[0][0], "String", "a key column is never Nullable");
    assert_eq!(srv.state(&db).await, "Running");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_declared_key_columns_replicate_updates_and_deletes() {
    declared_key(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_declared_key_columns_replicate_updates_and_deletes() {
    declared_key(Flavor::MariaDb).await;
}

/// A NULL in a declared key column is refused at Setup, naming the column and what to do.
async fn null_in_declared_key(flavor: Flavor) {
    let db = unique(&format!("kl_null_{}", flavor.tag()));
    let mut c = schema(flavor, &db).await;
    c.query_drop(format!("CREATE TABLE {db}.t (code VARCHAR(10) NULL, v INT)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.t VALUES ('a', 1), (NULL, 2)")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tables = json!([{"source": format!("{db}.t"), "key_columns": ["code"]}]);
    let mut run = SluiceRun::start(dir.path(), &spec(&db, flavor, tables, &format!("{db}_ch"), "snapshot_only"));
    run.wait_exit(T);
    let log = run.log();
    assert!(log.contains("→ Failed"), "{log}");
    assert!(log.contains("key_columns") && log.contains("\"code\"") && log.contains("holds NULL in 1 row(s)"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_null_in_a_declared_key_is_refused() {
    null_in_declared_key(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_null_in_a_declared_key_is_refused() {
    null_in_declared_key(Flavor::MariaDb).await;
}

/// A keyless table's copy cannot resume after a key: `sluice run` crashes after
/// a chunk of it is written (before its progress is saved), and the restarted
/// copy discards what the first one wrote and starts over — the log holds each
/// source row once.
async fn keyless_copy_restarts(flavor: Flavor) {
    let db = unique(&format!("kl_crash_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = schema(flavor, &db).await;
    c.query_drop(format!("CREATE TABLE {db}.log (a INT, b VARCHAR(10))")).await.unwrap();
    let values: Vec<String> = (0..20).map(|i| format!("({}, 'r{i}')", i % 7)).collect();
    c.query_drop(format!("INSERT INTO {db}.log VALUES {}", values.join(", "))).await.unwrap();
    let mut s = spec(&db, flavor, json!([{"source": format!("{db}.log"), "engine": "merge_tree"}]), &ch_db, "snapshot_and_cdc");
    s["settings"]["snapshot_rows_per_chunk"] = json!(3);
    let dir = tempfile::tempdir().unwrap();
    let mut run = SluiceRun::start_with_env(dir.path(), &s, &[("FAILPOINTS", "snapshot-after-chunk-before-progress=2*off->return")]);
    assert!(!run.wait_exit(T), "sluice run ended cleanly instead of crashing");
    assert!(run.log().contains("failpoint snapshot-after-chunk-before-progress: crashing"), "{}", run.log());
    let written = ch_rows(&format!("SELECT count() FROM {ch_db}.log")).await.unwrap();
    assert_eq!(written[0][0], "9", "three chunks of three rows were written before the crash");
    run.env.clear();
    run.restart();
    // A change made while the copy runs may be in both the copied rows and the
    // change log (a log has no key to collapse them): insert once CDC runs.
    eventually_logged(T, || run.log(), "Snapshot → Running").await;
    c.query_drop(format!("INSERT INTO {db}.log VALUES (100, 'after')")).await.unwrap();
    eventually(T, || async {
        let src = src_rows(&mut mysql(flavor).await, &format!("SELECT a, b FROM {db}.log ORDER BY a, b")).await;
        let dst = ch_rows(&format!("SELECT a, b FROM {ch_db}.log ORDER BY a, b")).await?;
        diff(&src, &dst).map_err(|e| format!("{e}\n{}", run.log()))
    })
    .await;
    assert!(run.log().contains("discarding the 9 row(s) an interrupted copy wrote"), "{}", run.log());
    assert!(run.is_running(), "{}", run.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_an_interrupted_keyless_copy_starts_over_without_duplicates() {
    keyless_copy_restarts(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_an_interrupted_keyless_copy_starts_over_without_duplicates() {
    keyless_copy_restarts(Flavor::MariaDb).await;
}

/// Keyless tables added to a live pipe: one named with the default engine is
/// refused (the pipe keeps running), one with `engine: merge_tree` is copied
/// alongside CDC into its live table and then logs its changes.
async fn keyless_added_live(flavor: Flavor) {
    let db = unique(&format!("kl_add_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = schema(flavor, &db).await;
    c.query_drop(format!("CREATE TABLE {db}.keyed (id INT PRIMARY KEY)")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.log (a INT, b VARCHAR(10))")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.log VALUES (1, 'x'), (2, 'y')")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let (code, v) = srv
        .call(Method::POST, "/v1/pipes", Some(spec(&db, flavor, json!([{"source": format!("{db}.keyed")}]), &ch_db, "snapshot_and_cdc")))
        .await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    let add = format!("/v1/pipes/{db}/tables");
    let (code, v) = srv.call(Method::POST, &add, Some(json!({"tables": [{"source": format!("{db}.log")}]}))).await;
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("key_columns"), "{v}");
    assert_eq!(srv.state(&db).await, "Running");
    // A wildcard whose every table is skipped adds nothing and says why.
    c.query_drop(format!("CREATE DATABASE {db}_x")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}_x.nokey (a INT)")).await.unwrap();
    let (code, v) = srv.call(Method::POST, &add, Some(json!({"tables": [{"source": format!("{db}_x.*")}]}))).await;
    assert_eq!(code, 422, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("no table to add") && e.contains(&format!("{db}_x.nokey")), "{v}");
    assert_eq!(srv.state(&db).await, "Running");
    let (_, ev) = srv.call(Method::GET, &format!("/v1/pipes/{db}/events"), None).await;
    assert!(!ev.to_string().contains("tables added: \""), "an empty addition was recorded: {ev}");
    let (code, v) = srv.call(Method::POST, &add, Some(json!({"tables": [{"source": format!("{db}.log"), "engine": "merge_tree"}]}))).await;
    assert_eq!(code, 202, "{v}");
    srv.wait_state(&db, "Running", T).await;
    c.query_drop(format!("DELETE FROM {db}.log WHERE a = 2")).await.unwrap();
    eventually(T, || async {
        let got = log_rows(&ch_db).await?;
        if got == ["1|x|0", "2|y|0", "2|y|1"] {
            Ok(())
        } else {
            Err(format!("log rows {got:?}\n{}", srv.log()))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_keyless_tables_added_to_a_live_pipe() {
    keyless_added_live(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_keyless_tables_added_to_a_live_pipe() {
    keyless_added_live(Flavor::MariaDb).await;
}

/// A binlog event larger than the source's `max_allowed_packet` (MariaDB's
/// default 16 MiB, not changed here): an UPDATE of a 9 MB value writes an
/// event with both images (~18 MB). Sluice's client accepts packets up to the
/// protocol's 1 GiB, so the change replicates instead of failing the stream.
///
/// The server itself cannot read such an event back for `BINLOG_GTID_POS` (it
/// answers NULL for any position after it in that file): a pipe started then
/// still gets its starting GTID position (read with the binlog status).
/// Runs on the scratch MariaDB and rotates its binlog afterwards, not to
/// disturb other tests on a shared server.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_an_event_larger_than_max_allowed_packet_replicates() {
    let url = testbed_url("SLUICE_TEST_MARIADB_SCRATCH_URL");
    let db = unique("kl_big_ma");
    let ch_db = format!("{db}_ch");
    let mut c = mysql_url(&url).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    let limit: u64 = c.query_first("SELECT @@GLOBAL.max_allowed_packet").await.unwrap().unwrap();
    let size = 9_000_000u64;
    assert!(2 * size > limit, "the source's max_allowed_packet ({limit}) is too large for this test");
    c.query_drop(format!("CREATE TABLE {db}.big (id INT PRIMARY KEY, b LONGBLOB)")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let (code, v) = srv
        .call(
            Method::POST,
            "/v1/pipes",
            Some(spec_for_url(&db, &url, json!([{"source": format!("{db}.big")}]), &ch_db, "snapshot_and_cdc")),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    c.query_drop(format!("INSERT INTO {db}.big VALUES (1, REPEAT('x', {size}))")).await.unwrap();
    c.query_drop(format!("UPDATE {db}.big SET b = REPEAT('y', {size}) WHERE id = 1")).await.unwrap();
    eventually(T, || async {
        let got = ch_rows(&format!("SELECT length(b), substring(b, 1, 1) FROM {ch_db}.big FINAL WHERE _peerdb_is_deleted = 0")).await?;
        if got == vec![vec![size.to_string(), "y".to_string()]] {
            Ok(())
        } else {
            Err(format!("{got:?}\n{}", srv.log()))
        }
    })
    .await;
    assert_eq!(srv.state(&db).await, "Running");
    // The server answers NULL to BINLOG_GTID_POS for positions after that event: a
    // pipe started now still gets its GTID position (read with the binlog status).
    c.query_drop(format!("CREATE TABLE {db}.after (id INT PRIMARY KEY)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.after VALUES (1)")).await.unwrap();
    let status: mysql_async::Row = c.query_first("SHOW MASTER STATUS").await.unwrap().unwrap();
    let (file, pos): (String, u64) = (status.get(0).unwrap(), status.get(1).unwrap());
    let gtid: Option<Option<String>> = c.exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&file, pos)).await.unwrap();
    assert_eq!(gtid, Some(None), "the premise: MariaDB cannot read its GTID position after the large event");
    let second = format!("{db}_2");
    let (code, v) = srv
        .call(
            Method::POST,
            "/v1/pipes",
            Some(spec_for_url(&second, &url, json!([{"source": format!("{db}.after")}]), &format!("{second}_ch"), "snapshot_and_cdc")),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&second, "Running", T).await;
    // Its starting checkpoint (no event since) carries the GTID position.
    let (_, view) = srv.call(Method::GET, &format!("/v1/pipes/{second}"), None).await;
    assert!(view["checkpoint"]["gtid_set"].as_str().is_some_and(|g| !g.is_empty()), "{view}");
    c.query_drop(format!("INSERT INTO {db}.after VALUES (2)")).await.unwrap();
    eventually(T, || async {
        let got = ch_rows(&format!("SELECT count() FROM {second}_ch.after FINAL WHERE _peerdb_is_deleted = 0")).await?;
        if got == vec![vec!["2".to_string()]] {
            Ok(())
        } else {
            Err(format!("{got:?}\n{}", srv.log()))
        }
    })
    .await;
    c.query_drop("FLUSH BINARY LOGS").await.unwrap();
}
