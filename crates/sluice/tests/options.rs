//! Per-table options of the pipe spec end to end against the test bed:
//! `exclude_columns`, `sorting_key`, `engine`, `partition_by`, `hard_deletes`
//! (spec → destination DDL → data after the snapshot and CDC), and every refusal.

mod common;
use common::*;
use mysql_async::prelude::*;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// A fresh source schema with table `t` and its rows, and the ClickHouse database name.
async fn setup(flavor: Flavor, name: &str, ddl: &str, rows: &str) -> (String, String) {
    let db = unique(&format!("{name}_{}", flavor.tag()));
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE `{db}`")).await.unwrap();
    c.query_drop(format!("CREATE TABLE `{db}`.t {ddl}")).await.unwrap();
    if !rows.is_empty() {
        c.query_drop(format!("INSERT INTO `{db}`.t VALUES {rows}")).await.unwrap();
    }
    let ch_db = format!("{db}_ch");
    (db, ch_db)
}

async fn exec(flavor: Flavor, db: &str, sql: &str) {
    let mut c = mysql(flavor).await;
    c.query_drop(format!("USE `{db}`")).await.unwrap();
    c.query_drop(sql).await.unwrap();
}

/// `engine_full`, `sorting_key`, `partition_key` of a destination table.
async fn table_ddl(ch_db: &str, table: &str) -> Vec<String> {
    ch_rows(&format!("SELECT engine_full, sorting_key, partition_key FROM system.tables WHERE database = '{ch_db}' AND name = '{table}'"))
        .await
        .unwrap()
        .pop()
        .unwrap_or_default()
}

/// The destination columns as `name type`.
async fn ch_columns(ch_db: &str, table: &str) -> Vec<String> {
    ch_rows(&format!("SELECT name, type FROM system.columns WHERE database = '{ch_db}' AND table = '{table}' ORDER BY position"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.join(" "))
        .collect()
}

/// Waits until `sql` returns exactly `want`.
async fn expect_rows(sql: &str, want: &[&str]) {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    eventually(T, || async {
        let got: Vec<String> = ch_rows(sql).await?.into_iter().map(|r| r.join(",")).collect();
        if got == want {
            Ok(())
        } else {
            Err(format!("{sql}: got {got:?}, want {want:?}"))
        }
    })
    .await;
}

/// Starts `sluice run` with one table entry for `t` carrying `options`.
fn run(flavor: Flavor, db: &str, ch_db: &str, options: serde_json::Value, dir: &std::path::Path) -> SluiceRun {
    let mut entry = json!({"source": format!("{db}.t")});
    entry.as_object_mut().unwrap().extend(options.as_object().unwrap().clone());
    SluiceRun::start(dir, &spec(db, flavor, json!([entry]), ch_db, "snapshot_and_cdc"))
}

/// Excluded columns are not in the destination, rows flow through snapshot and
/// CDC without them, and a column added later under an excluded name stays out.
async fn exclude_columns(flavor: Flavor) {
    let (db, ch_db) = setup(
        flavor,
        "optexcl",
        "(id INT PRIMARY KEY, a INT, secret VARCHAR(20), b VARCHAR(20))",
        "(1, 10, 's1', 'x'), (2, 20, 's2', 'y'), (3, 30, 's3', 'z')",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut r = run(flavor, &db, &ch_db, json!({"exclude_columns": ["secret", "later"]}), dir.path());
    let q = format!("SELECT id, a, b FROM {ch_db}.t FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id");
    expect_rows(&q, &["1,10,x", "2,20,y", "3,30,z"]).await;
    let cols = ch_columns(&ch_db, "t").await;
    assert_eq!(cols[..3], ["id Int32", "a Nullable(Int32)", "b Nullable(String)"], "{cols:?}");
    assert!(!cols.iter().any(|c| c.starts_with("secret")), "{cols:?}");

    exec(flavor, &db, "INSERT INTO t VALUES (4, 40, 's4', 'w')").await;
    exec(flavor, &db, "UPDATE t SET a = 21, secret = 'changed' WHERE id = 2").await;
    exec(flavor, &db, "UPDATE t SET secret = 'only the secret' WHERE id = 3").await;
    exec(flavor, &db, "DELETE FROM t WHERE id = 1").await;
    expect_rows(&q, &["2,21,y", "3,30,z", "4,40,w"]).await;

    // A column added under an excluded name stays excluded; another one is added.
    exec(flavor, &db, "ALTER TABLE t ADD COLUMN later INT DEFAULT 7, ADD COLUMN c INT DEFAULT 5").await;
    exec(flavor, &db, "INSERT INTO t (id, a, secret, b, later, c) VALUES (5, 50, 's5', 'v', 8, 6)").await;
    let q = format!("SELECT id, a, b, c FROM {ch_db}.t FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id");
    expect_rows(&q, &["2,21,y,5", "3,30,z,5", "4,40,w,5", "5,50,v,6"]).await;
    let cols = ch_columns(&ch_db, "t").await;
    assert!(!cols.iter().any(|c| c.starts_with("later") || c.starts_with("secret")), "{cols:?}");
    assert!(r.is_running(), "sluice exited:\n{}", r.log());
    r.kill9();
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_exclude_columns() {
    exclude_columns(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_exclude_columns() {
    exclude_columns(Flavor::MariaDb).await;
}

/// sorting_key + partition_by + hard_deletes on the replacing engine: the DDL,
/// updates that move a row in the sort order collapse, and FINAL CLEANUP
/// removes deleted rows.
async fn sorting_key_partition_by_hard_deletes(flavor: Flavor) {
    let (db, ch_db) = setup(
        flavor,
        "optsort",
        "(id INT PRIMARY KEY, cust INT NOT NULL, created DATE NOT NULL, note VARCHAR(20))",
        "(1, 100, '2024-01-05', 'a'), (2, 200, '2024-02-05', 'b'), (3, 100, '2024-03-05', 'c')",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let opts = json!({"sorting_key": ["cust", "id"], "partition_by": "toYYYYMM(created)", "hard_deletes": true});
    let mut r = run(flavor, &db, &ch_db, opts, dir.path());
    let q = format!("SELECT id, cust, created, note FROM {ch_db}.t FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id");
    expect_rows(&q, &["1,100,2024-01-05,a", "2,200,2024-02-05,b", "3,100,2024-03-05,c"]).await;
    let ddl = table_ddl(&ch_db, "t").await;
    assert_eq!(ddl[1..], ["cust, id", "toYYYYMM(created)"], "{ddl:?}");
    assert!(ddl[0].starts_with("ReplacingMergeTree(_peerdb_version, _peerdb_is_deleted)"), "{ddl:?}");
    assert!(ddl[0].contains("allow_experimental_replacing_merge_with_cleanup = 1"), "{ddl:?}");
    let cols = ch_columns(&ch_db, "t").await;
    // Sorting key columns are not Nullable; the partition expression may use a Nullable date.
    assert_eq!(cols[..3], ["id Int32", "cust Int32", "created Nullable(Date32)"], "{cols:?}");
    assert!(ddl[0].contains("allow_nullable_key = 1"), "{ddl:?}");

    exec(flavor, &db, "INSERT INTO t VALUES (4, 300, '2024-01-20', 'd')").await;
    // Moves row 1 elsewhere in the sort order: must not leave the old row behind.
    exec(flavor, &db, "UPDATE t SET cust = 150, note = 'a2' WHERE id = 1").await;
    exec(flavor, &db, "UPDATE t SET note = 'b2' WHERE id = 2").await;
    exec(flavor, &db, "DELETE FROM t WHERE id = 3").await;
    let want = ["1,150,2024-01-05,a2", "2,200,2024-02-05,b2", "4,300,2024-01-20,d"];
    expect_rows(&q, &want).await;
    // Dropping a sorting_key column cannot be followed: that table goes to Error, saying why.
    exec(flavor, &db, "ALTER TABLE t DROP COLUMN cust").await;
    eventually(T, || async {
        let log = r.log();
        if log.contains("column \"cust\" of the sorting_key") {
            Ok(())
        } else {
            Err(log)
        }
    })
    .await;
    assert!(r.is_running(), "sluice exited:\n{}", r.log());
    r.kill9();

    // Hard deletes: after FINAL CLEANUP no deleted row is stored, the live rows are unchanged.
    let raw_deleted = format!("SELECT count() FROM {ch_db}.t WHERE _peerdb_is_deleted = 1");
    assert_ne!(ch_rows(&raw_deleted).await.unwrap(), [["0"]]);
    clickhouse().query(&format!("OPTIMIZE TABLE {ch_db}.t FINAL CLEANUP")).execute().await.unwrap();
    assert_eq!(ch_rows(&raw_deleted).await.unwrap(), [["0"]]);
    expect_rows(&q, &want).await;
    expect_rows(&format!("SELECT id, cust FROM {ch_db}.t ORDER BY id"), &["1,150", "2,200", "4,300"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_sorting_key_partition_by_hard_deletes() {
    sorting_key_partition_by_hard_deletes(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_sorting_key_partition_by_hard_deletes() {
    sorting_key_partition_by_hard_deletes(Flavor::MariaDb).await;
}

/// engine merge_tree: an append-only change log, one row per change.
#[tokio::test(flavor = "multi_thread")]
async fn merge_tree_change_log() {
    let flavor = Flavor::MySql;
    let (db, ch_db) = setup(flavor, "optlog", "(id INT PRIMARY KEY, a INT)", "(1, 10), (2, 20)").await;
    let dir = tempfile::tempdir().unwrap();
    let mut r = run(flavor, &db, &ch_db, json!({"engine": "merge_tree"}), dir.path());
    let q = format!("SELECT id, a, _peerdb_is_deleted FROM {ch_db}.t ORDER BY _peerdb_version, id");
    expect_rows(&q, &["1,10,0", "2,20,0"]).await;
    let ddl = table_ddl(&ch_db, "t").await;
    assert!(ddl[0].starts_with("MergeTree ORDER BY (id, _peerdb_version)"), "{ddl:?}");
    assert_eq!(ddl[1], "id, _peerdb_version");

    exec(flavor, &db, "INSERT INTO t VALUES (3, 30)").await;
    exec(flavor, &db, "UPDATE t SET a = 11 WHERE id = 1").await;
    exec(flavor, &db, "UPDATE t SET a = 12 WHERE id = 1").await;
    exec(flavor, &db, "DELETE FROM t WHERE id = 2").await;
    exec(flavor, &db, "UPDATE t SET id = 4 WHERE id = 3").await;
    expect_rows(&q, &["1,10,0", "2,20,0", "3,30,0", "1,11,0", "1,12,0", "2,20,1", "3,30,1", "4,30,0"]).await;
    // The documented way to read the current state.
    let current = format!(
        "SELECT id, a FROM (SELECT * FROM {ch_db}.t ORDER BY _peerdb_version DESC LIMIT 1 BY id) WHERE _peerdb_is_deleted = 0 ORDER BY id"
    );
    expect_rows(&current, &["1,12", "4,30"]).await;
    assert!(r.is_running(), "sluice exited:\n{}", r.log());
    r.kill9();
}

/// engine null: nothing stored, a materialized view sees the rows.
#[tokio::test(flavor = "multi_thread")]
async fn null_engine_feeds_materialized_views() {
    let flavor = Flavor::MariaDb;
    let (db, ch_db) = setup(flavor, "optnull", "(id INT PRIMARY KEY, a INT)", "(1, 10)").await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(&db, flavor, json!([{"source": format!("{db}.t"), "engine": "null"}]), &ch_db, "cdc_only");
    spec["settings"]["sync_interval_ms"] = 200.into();
    let mut r = SluiceRun::start(dir.path(), &spec);
    eventually(T, || async {
        let d = table_ddl(&ch_db, "t").await;
        if d.first().map(|e| e.trim_matches('`')) == Some("Null") {
            Ok(())
        } else {
            Err(format!("{d:?}"))
        }
    })
    .await;
    clickhouse()
        .query(&format!(
            "CREATE MATERIALIZED VIEW {ch_db}.mv ENGINE = MergeTree ORDER BY (id, v) AS SELECT id, a, _peerdb_is_deleted AS del, _peerdb_version AS v FROM {ch_db}.t"
        ))
        .execute()
        .await
        .unwrap();
    eventually_logged(T, || r.log(), "→ Running").await;
    exec(flavor, &db, "INSERT INTO t VALUES (2, 20)").await;
    exec(flavor, &db, "UPDATE t SET a = 21 WHERE id = 2").await;
    exec(flavor, &db, "DELETE FROM t WHERE id = 1").await;
    expect_rows(&format!("SELECT id, a, del FROM {ch_db}.mv ORDER BY v"), &["2,20,0", "2,21,0", "1,10,1"]).await;
    assert_eq!(ch_rows(&format!("SELECT count() FROM {ch_db}.t")).await.unwrap(), [["0"]]);
    assert!(r.is_running(), "sluice exited:\n{}", r.log());
    r.kill9();
}

/// A resync rebuilds the table with its options (excluded columns, sorting key, engine).
#[tokio::test(flavor = "multi_thread")]
async fn resync_keeps_the_options() {
    let flavor = Flavor::MySql;
    let (db, ch_db) = setup(flavor, "optresync", "(id INT PRIMARY KEY, k INT NOT NULL, secret INT)", "(1, 5, 9), (2, 6, 9)").await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let entry = json!({"source": format!("{db}.t"), "exclude_columns": ["secret"], "sorting_key": ["k", "id"], "partition_by": "k % 2"});
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec(&db, flavor, json!([entry]), &ch_db, "snapshot_and_cdc"))).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    let before = table_ddl(&ch_db, "t").await;
    assert_eq!(before[1..], ["k, id", "k % 2"], "{before:?}");
    let uuid = format!("SELECT toString(uuid) FROM system.tables WHERE database = '{ch_db}' AND name = 't'");
    let uuid_before = ch_rows(&uuid).await.unwrap();
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resync"), None).await;
    assert_eq!((code, v["state"].as_str()), (202, Some("Resync")), "{v}");
    srv.wait_state(&db, "Running", T).await;
    exec(flavor, &db, "INSERT INTO t VALUES (3, 7, 9)").await;
    expect_rows(&format!("SELECT id, k FROM {ch_db}.t FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id"), &["1,5", "2,6", "3,7"]).await;
    let after = table_ddl(&ch_db, "t").await;
    assert_eq!(after[1..], before[1..], "{after:?}");
    assert_ne!(ch_rows(&uuid).await.unwrap(), uuid_before, "the table was not replaced by the resync");
    assert!(!ch_columns(&ch_db, "t").await.iter().any(|c| c.starts_with("secret")));
}

/// Setup refuses every invalid option with the field and the reason, and a bad
/// partition_by with ClickHouse's message; nothing is left running.
#[tokio::test(flavor = "multi_thread")]
async fn refusals_name_the_field() {
    let flavor = Flavor::MySql;
    let (db, ch_db) = setup(
        flavor,
        "optrefuse",
        "(id INT NOT NULL, u INT NOT NULL, n INT NULL, a INT NOT NULL, UNIQUE KEY (u), KEY (a))",
        "(1, 1, 1, 1)",
    )
    .await;
    // A second table keyed by its primary key.
    exec(flavor, &db, "CREATE TABLE p (id INT PRIMARY KEY, a INT NOT NULL, KEY (a))").await;
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("t", json!({"exclude_columns": ["u"]}), "tables[0].exclude_columns: \"u\" is part of the key (u)"),
        ("p", json!({"exclude_columns": ["id"]}), "tables[0].exclude_columns: \"id\" is part of the key (id)"),
        ("p", json!({"partition_key": "a", "exclude_columns": ["a"]}), "tables[0].exclude_columns: \"a\" is the partition_key"),
        ("p", json!({"sorting_key": ["a"]}), "tables[0].sorting_key: must contain every column of the key (id)"),
        ("t", json!({"sorting_key": ["a", "id"]}), "tables[0].sorting_key: must contain every column of the key (u)"),
        ("p", json!({"sorting_key": ["id", "nope"]}), "tables[0].sorting_key:"),
        ("t", json!({"sorting_key": ["u", "n"]}), "tables[0].sorting_key: \"n\""),
        ("p", json!({"sorting_key": ["id"], "exclude_columns": ["id"]}), "tables[0].sorting_key: \"id\" is in exclude_columns"),
        ("p", json!({"sorting_key": ["id"], "engine": "null"}), "tables[0].sorting_key:"),
        ("p", json!({"partition_by": "id", "engine": "null"}), "tables[0].partition_by:"),
        ("p", json!({"partition_by": ""}), "tables[0].partition_by:"),
        ("p", json!({"hard_deletes": true, "engine": "merge_tree"}), "tables[0].hard_deletes:"),
        ("p", json!({"engine": "summing"}), "unknown variant"),
        ("p", json!({"partition_by": "nosuchfunction(id)"}), "Unknown function nosuchfunction"),
    ];
    for (i, (table, options, want)) in cases.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let mut entry = json!({"source": format!("{db}.{table}")});
        entry.as_object_mut().unwrap().extend(options.as_object().unwrap().clone());
        let spec = spec(&format!("{db}_{i}"), flavor, json!([entry]), &ch_db, "snapshot_and_cdc");
        let mut r = SluiceRun::start(dir.path(), &spec);
        assert!(!r.wait_exit(T), "sluice run accepted {options}:\n{}", r.log());
        let log = r.log();
        assert!(log.contains(want), "{options}: the error lacks {want:?}:\n{log}");
    }
    // `sluice check` reports the same refusal without changing anything.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipe.json");
    let entry = json!({"source": format!("{db}.p"), "sorting_key": ["a"]});
    std::fs::write(&path, spec(&db, flavor, json!([entry]), &ch_db, "snapshot_and_cdc").to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice")).args(["check", "--config"]).arg(&path).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && text.contains("tables[0].sorting_key"), "{text}");
}

/// Tables added to a running pipe through the API carry their options: the
/// destination DDL (sorting key, PARTITION BY, engine, no excluded columns),
/// the copy (keyed by a DATE partition_key) and the CDC changes after it, also
/// after a restart. Invalid options are refused with the field and the reason,
/// nothing is added, and the pipe keeps running.
async fn tables_added_with_options(flavor: Flavor) {
    let (db, ch_db) = setup(flavor, "optadd", "(id INT PRIMARY KEY, a INT)", "(1, 10)").await;
    exec(
        flavor,
        &db,
        "CREATE TABLE o (id INT PRIMARY KEY, cust INT NOT NULL, created DATE NOT NULL, secret VARCHAR(20), note VARCHAR(20), KEY (created))",
    )
    .await;
    let rows: Vec<String> =
        (1..=3000).map(|i| format!("({i}, {}, '2024-01-01' + INTERVAL {} DAY, 's{i}', 'n{i}')", i % 7, i % 90)).collect();
    exec(flavor, &db, &format!("INSERT INTO o VALUES {}", rows.join(","))).await;
    exec(flavor, &db, "CREATE TABLE ev (id INT PRIMARY KEY, kind VARCHAR(10), secret VARCHAR(20))").await;
    exec(flavor, &db, "INSERT INTO ev VALUES (1, 'a', 'x'), (2, 'b', 'y')").await;
    exec(flavor, &db, "ANALYZE TABLE o").await;
    let dir = tempfile::tempdir().unwrap();
    let mut srv = SluiceServer::start(dir.path()).await;
    let mut spec = spec(&db, flavor, json!([{"source": format!("{db}.t")}]), &ch_db, "snapshot_and_cdc");
    spec["settings"]["rows_per_partition"] = 1000.into();
    spec["settings"]["snapshot_rows_per_chunk"] = 400.into();
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    let add = format!("/v1/pipes/{db}/tables");
    let o = format!("{db}.o");

    // Refusals: the request's field and the reason; the pipe is untouched and keeps running.
    let refusals = [
        (json!({"source": o, "exclude_columns": ["id"]}), "tables[0].exclude_columns: \"id\" is part of the key (id)"),
        (json!({"source": o, "partition_key": "note"}), "partition_key \"note\""),
        (json!({"source": o, "sorting_key": ["cust"]}), "tables[0].sorting_key: must contain every column of the key (id)"),
        (json!({"source": o, "sorting_key": ["id"], "engine": "null"}), "tables[0].sorting_key: a Null engine table has no sorting key"),
        (json!({"source": o, "hard_deletes": true, "engine": "merge_tree"}), "tables[0].hard_deletes: only applies to engine replacing"),
        (json!({"source": o, "exclude_columns": ["secret", "secret"]}), "tables[0].exclude_columns: \"secret\" is listed twice"),
        (json!({"source": o, "destination": "o_resync"}), "tables[0].destination: must be non-empty and must not end in _resync"),
        (json!({"source": o, "partition_by": "nosuchfunction(id)"}), "Unknown function nosuchfunction"),
        // A valid table with an invalid one: neither is added, and o's destination is not left behind.
        (
            json!([{"source": o, "sorting_key": ["cust", "id"]}, {"source": format!("{db}.ev"), "partition_by": "nosuchfunction(id)"}]),
            "Unknown function nosuchfunction",
        ),
    ];
    for (entry, want) in refusals {
        let tables = if entry.is_array() { entry.clone() } else { json!([entry]) };
        let (code, v) = srv.call(Method::POST, &add, Some(json!({"tables": tables}))).await;
        assert_eq!(code, 422, "{entry} was not refused: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{entry}: the error lacks {want:?}: {v}");
        assert_eq!(srv.state(&db).await, "Running", "after refusing {entry}");
    }
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    assert_eq!(v["tables"].as_array().map(Vec::len), Some(1), "a refused table was added: {v}");
    assert!(table_ddl(&ch_db, "o").await.is_empty(), "a refused table was created");
    assert!(table_ddl(&ch_db, "ev").await.is_empty(), "a refused table was created");

    // Two tables with options, one request.
    let entries = json!([
        {"source": o, "exclude_columns": ["secret"], "sorting_key": ["cust", "id"], "partition_by": "toYYYYMM(created)", "partition_key": "created"},
        {"source": format!("{db}.ev"), "destination": "events", "engine": "merge_tree", "exclude_columns": ["secret"]},
    ]);
    let (code, v) = srv.call(Method::POST, &add, Some(json!({"tables": entries}))).await;
    assert_eq!((code, v["state"].as_str()), (202, Some("Snapshot")), "{v}");
    srv.wait_state(&db, "Running", T).await;

    let ddl = table_ddl(&ch_db, "o").await;
    assert!(ddl[0].starts_with("ReplacingMergeTree(_peerdb_version, _peerdb_is_deleted)"), "{ddl:?}");
    assert_eq!(ddl[1..], ["cust, id", "toYYYYMM(created)"], "{ddl:?}");
    let cols = ch_columns(&ch_db, "o").await;
    assert_eq!(cols[..4], ["id Int32", "cust Int32", "created Nullable(Date32)", "note Nullable(String)"], "{cols:?}");
    assert!(!cols.iter().any(|c| c.starts_with("secret")), "{cols:?}");
    let ddl = table_ddl(&ch_db, "events").await;
    assert!(ddl[0].starts_with("MergeTree ORDER BY (id, _peerdb_version)"), "{ddl:?}");
    let cols = ch_columns(&ch_db, "events").await;
    assert_eq!(cols[..2], ["id Int32", "kind Nullable(String)"], "{cols:?}");
    assert!(!cols.iter().any(|c| c.starts_with("secret")), "{cols:?}");
    // The added table is split by its DATE partition_key into ceil(estimate / 1000) ranges.
    let est: Option<u64> = mysql(flavor)
        .await
        .exec_first("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'o'", (&db,))
        .await
        .unwrap();
    let parts = est.unwrap_or(0).div_ceil(1000);
    assert!(parts > 1, "estimate {est:?}: nothing to split");
    let log = srv.log();
    assert!(log.contains(&format!("copying `{db}`.`o` → o: {parts} partition(s)")), "o was not split by created into {parts}:\n{log}");

    // The copy equals the source (without the excluded column), then CDC changes follow.
    let mut c = mysql(flavor).await;
    let src_o = format!("SELECT id, cust, created, note FROM `{db}`.o ORDER BY id");
    let dst_o = format!("SELECT id, cust, created, note FROM {ch_db}.o FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id");
    let converged = || async {
        let src = src_rows(&mut mysql(flavor).await, &src_o).await;
        diff(&src, &ch_rows(&dst_o).await?)
    };
    eventually(T, converged).await;
    let copied = src_rows(&mut c, &format!("SELECT count(*) FROM `{db}`.o")).await;
    assert_eq!(copied, [["3000"]]);
    exec(flavor, &db, "INSERT INTO o VALUES (5001, 3, '2025-06-01', 'hidden', 'new')").await;
    exec(flavor, &db, "UPDATE o SET cust = 100, note = 'moved' WHERE id = 7").await;
    exec(flavor, &db, "UPDATE o SET secret = 'only the secret' WHERE id = 8").await;
    exec(flavor, &db, "DELETE FROM o WHERE id IN (9, 10)").await;
    exec(flavor, &db, "INSERT INTO ev VALUES (3, 'c', 'z')").await;
    exec(flavor, &db, "UPDATE ev SET kind = 'a2', secret = 'w' WHERE id = 1").await;
    eventually(T, converged).await;
    let log_rows = format!("SELECT id, kind, _peerdb_is_deleted FROM {ch_db}.events ORDER BY _peerdb_version, id");
    expect_rows(&log_rows, &["1,a,0", "2,b,0", "3,c,0", "1,a2,0"]).await;
    // Updates that moved a row in the sort order left no stale version behind.
    expect_rows(&format!("SELECT count() FROM {ch_db}.o FINAL WHERE id = 7"), &["1"]).await;

    // After a restart the recorded options still apply to the added tables.
    srv.kill9();
    srv.restart().await;
    srv.wait_state(&db, "Running", T).await;
    exec(flavor, &db, "UPDATE o SET note = 'after restart', secret = 'still hidden' WHERE id = 11").await;
    exec(flavor, &db, "DELETE FROM ev WHERE id = 2").await;
    eventually(T, converged).await;
    expect_rows(&log_rows, &["1,a,0", "2,b,0", "3,c,0", "1,a2,0", "2,b,1"]).await;
    assert!(!ch_columns(&ch_db, "o").await.iter().any(|c| c.starts_with("secret")));
    assert_eq!(srv.state(&db).await, "Running");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_tables_added_with_options() {
    tables_added_with_options(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_tables_added_with_options() {
    tables_added_with_options(Flavor::MariaDb).await;
}
