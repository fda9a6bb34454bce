//! Schema history: a pipe that lags behind several DDL statements (paused
//! while they run) records the shape each statement gave the table at its
//! moment, not the table's present shape, and decodes the rows between the
//! statements against the definition of their moment. On MySQL and MariaDB.
//!
//! Also: a table whose row images cannot be mapped onto its recorded
//! definition goes to `Error` on its own while the pipe's other tables keep
//! flowing.

mod common;
use common::*;
use mysql_async::prelude::*;
use mysql_async::Conn;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// Runs each statement on the source, `{db}` replaced.
async fn run(c: &mut Conn, db: &str, statements: &[&str]) {
    for s in statements {
        let sql = s.replace("{db}", db);
        c.query_drop(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

async fn create_pipe(srv: &SluiceServer, flavor: Flavor, db: &str, ch_db: &str) {
    let spec = spec(db, flavor, json!([{"source": format!("{db}.*")}]), ch_db, "snapshot_and_cdc");
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(db, "Running", T).await;
}

async fn pause(srv: &SluiceServer, db: &str) {
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
    assert_eq!(code, 202, "{v}");
    srv.wait_state(db, "Paused", T).await;
}

async fn resume(srv: &SluiceServer, db: &str) {
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
    assert_eq!(code, 200, "{v}");
}

/// The pipe is paused while the table goes through ADD, DROP, MODIFY (widening),
/// RENAME COLUMN, a change of its default charset with a text column added under
/// it, another charset change, one to the database's default (MariaDB's
/// `CHARACTER SET DEFAULT`) with a column added under it, and a column re-added under a dropped name with
/// another type; rows are inserted, updated and deleted between every two
/// statements. After resume the destination equals the source.
async fn lagging_pipe_follows_history(flavor: Flavor) {
    let url = flavor.url();
    let db = unique(&format!("hist_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    run(
        &mut c,
        &db,
        &[
            "CREATE DATABASE {db} CHARACTER SET utf8mb4",
            "CREATE TABLE {db}.t (id INT PRIMARY KEY, a INT, b VARCHAR(10), n INT NOT NULL DEFAULT 0) DEFAULT CHARSET=utf8mb4",
            "CREATE TABLE {db}.other (id INT PRIMARY KEY, v INT)",
        ],
    )
    .await;
    let values: Vec<String> = (1..=60).map(|i| format!("({i}, {i}, 'b{i}', {i})")).collect();
    c.query_drop(format!("INSERT INTO {db}.t VALUES {}", values.join(", "))).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.other VALUES (1, 1)")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    create_pipe(&srv, flavor, &db, &ch_db).await;
    eventually(T, || same_table(url, &db, "t", &ch_db, "t")).await;

    pause(&srv, &db).await;
    run(
        &mut c,
        &db,
        &[
            // A column added; rows written with it, some updated, some deleted.
            "ALTER TABLE {db}.t ADD COLUMN x INT NOT NULL DEFAULT 7",
            "INSERT INTO {db}.t (id, a, b, n, x) VALUES (101, 1, 'added', 1, 70), (102, 2, 'added', 2, 71), (103, 3, 'added', 3, 72)",
            "UPDATE {db}.t SET x = id * 3, a = a + 1 WHERE id % 4 = 0",
            "DELETE FROM {db}.t WHERE id % 13 = 0",
            // A column dropped: rows inserted while it existed are updated after its drop.
            "ALTER TABLE {db}.t DROP COLUMN a",
            "INSERT INTO {db}.t (id, b, n, x) VALUES (201, 'dropped', 4, 80), (202, 'dropped', 5, 81)",
            "UPDATE {db}.t SET n = n + 100 WHERE id IN (101, 102) OR id % 5 = 0",
            "DELETE FROM {db}.t WHERE id = 103 OR id % 17 = 0",
            // Widenings: values that only fit the new types.
            "ALTER TABLE {db}.t MODIFY COLUMN b VARCHAR(50), MODIFY COLUMN x BIGINT NOT NULL DEFAULT 7",
            "INSERT INTO {db}.t (id, b, n, x) VALUES (301, 'a value longer than ten characters', 6, 5000000000)",
            "UPDATE {db}.t SET b = CONCAT(b, ' widened to fifty chars'), x = x + 4000000000 WHERE id % 3 = 0",
            "DELETE FROM {db}.t WHERE id = 202",
            // A column renamed.
            "ALTER TABLE {db}.t RENAME COLUMN b TO b2",
            "INSERT INTO {db}.t (id, b2, n, x) VALUES (401, 'renamed', 7, 1)",
            "UPDATE {db}.t SET b2 = 'renamed later' WHERE id IN (201, 301) OR id % 7 = 0",
            "DELETE FROM {db}.t WHERE id % 19 = 0",
            // The table's default charset changes; a text column without a charset inherits it.
            "ALTER TABLE {db}.t DEFAULT CHARSET=latin1",
            "ALTER TABLE {db}.t ADD COLUMN txt VARCHAR(30)",
            "INSERT INTO {db}.t (id, b2, n, x, txt) VALUES (501, 'latin', 8, 2, 'café ñandú ÿ'), (502, 'latin', 9, 3, 'Grüße')",
            "UPDATE {db}.t SET txt = 'naïve façade' WHERE id IN (101, 401) OR id % 6 = 0",
            // ... and changes again: the present differs from the moment txt was added.
            "ALTER TABLE {db}.t DEFAULT CHARSET=utf8mb4",
            "ALTER TABLE {db}.t ADD COLUMN txt2 TEXT",
            "INSERT INTO {db}.t (id, b2, n, x, txt, txt2) VALUES (601, 'utf8', 10, 4, 'à', 'emoji 😀 and ü')",
            "UPDATE {db}.t SET txt2 = 'ünïcödé ✓', txt = 'è' WHERE id IN (501, 101) OR id % 8 = 0",
            // The default set to the database's (utf8mb4), which the statement does not name
            // (MariaDB's syntax; MySQL refuses DEFAULT there and is given the name).
            "ALTER TABLE {db}.t CHARACTER SET latin1",
            if matches!(flavor, Flavor::MariaDb) {
                "ALTER TABLE {db}.t CHARACTER SET DEFAULT"
            } else {
                "ALTER TABLE {db}.t CHARACTER SET utf8mb4"
            },
            "ALTER TABLE {db}.t ADD COLUMN txt3 VARCHAR(20)",
            "INSERT INTO {db}.t (id, b2, n, x, txt3) VALUES (651, 'db default', 10, 4, 'emoji 😀 ü')",
            // A dropped name re-added with another type: old rows get its default.
            "ALTER TABLE {db}.t ADD COLUMN a VARCHAR(5) NOT NULL DEFAULT 'zz'",
            "INSERT INTO {db}.t (id, b2, n, x, a) VALUES (701, 're-added', 11, 5, 'new')",
            "UPDATE {db}.t SET a = 'upd' WHERE id IN (1, 501)",
            "DELETE FROM {db}.t WHERE id = 2",
            "INSERT INTO {db}.other VALUES (2, 2)",
        ],
    )
    .await;
    // While paused nothing was applied.
    let n = ch_rows(&format!("SELECT count() FROM {ch_db}.t FINAL WHERE id = 701")).await.unwrap();
    assert_eq!(n[0][0], "0", "a paused pipe applied changes");
    resume(&srv, &db).await;
    eventually(T, || async { same_table(url, &db, "t", &ch_db, "t").await.map_err(|e| format!("{e}\n{}", srv.log())) }).await;
    eventually(T, || same_table(url, &db, "other", &ch_db, "other")).await;
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    assert_eq!(v["state"], "Running", "{v}");
    for t in v["tables"].as_array().unwrap() {
        assert_ne!(t["state"], "Error", "{v}");
    }
    let types = ch_rows(&format!(
        "SELECT name, type FROM system.columns WHERE database = '{ch_db}' AND table = 't' AND name IN ('x', 'b2', 'txt', 'a') ORDER BY name"
    ))
    .await
    .unwrap();
    assert_eq!(
        types,
        vec![
            vec!["a".to_string(), "String".to_string()],
            vec!["b2".to_string(), "Nullable(String)".to_string()],
            vec!["txt".to_string(), "Nullable(String)".to_string()],
            vec!["x".to_string(), "Int64".to_string()],
        ]
    );
    // Later writes still flow with the current shape.
    c.query_drop(format!("INSERT INTO {db}.t (id, b2, n, x, txt, txt2, a) VALUES (801, 'late', 12, 6, 'ô', 'ô', 'l')")).await.unwrap();
    eventually(T, || same_table(url, &db, "t", &ch_db, "t")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_lagging_pipe_follows_schema_history() {
    lagging_pipe_follows_history(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_lagging_pipe_follows_schema_history() {
    lagging_pipe_follows_history(Flavor::MariaDb).await;
}

/// A column added by a statement Sluice cannot interpret (a parenthesised
/// `ADD COLUMN` list) makes the table's row images disagree with its recorded
/// definition: that table goes to `Error` with a message naming the column and
/// recommending a resync, and the pipe's other table keeps flowing. A resync
/// then recovers the table with its present definition.
async fn undecodable_table_is_isolated(flavor: Flavor) {
    let url = flavor.url();
    let db = unique(&format!("undec_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    run(
        &mut c,
        &db,
        &[
            "CREATE DATABASE {db}",
            "CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)",
            "CREATE TABLE {db}.other (id INT PRIMARY KEY, v INT)",
            "INSERT INTO {db}.t VALUES (1, 1), (2, 2)",
            "INSERT INTO {db}.other VALUES (1, 1)",
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    create_pipe(&srv, flavor, &db, &ch_db).await;
    eventually(T, || same_table(url, &db, "t", &ch_db, "t")).await;
    run(
        &mut c,
        &db,
        &[
            "ALTER TABLE {db}.t ADD COLUMN (w1 INT, w2 INT)",
            "INSERT INTO {db}.t VALUES (3, 3, 30, 300)",
            "INSERT INTO {db}.other VALUES (2, 2)",
            "UPDATE {db}.other SET v = 20 WHERE id = 1",
        ],
    )
    .await;
    eventually(T, || same_table(url, &db, "other", &ch_db, "other")).await;
    eventually(T, || async {
        let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
        let t = v["tables"].as_array().unwrap().iter().find(|t| t["destination"] == "t").cloned().unwrap_or_default();
        let msg = t["error"].as_str().unwrap_or_default();
        if t["state"] == "Error" && msg.contains("w1") && msg.contains("resync") {
            Ok(())
        } else {
            Err(format!("table t is not in Error naming w1: {t}"))
        }
    })
    .await;
    // The other table keeps flowing, and the pipe runs.
    c.query_drop(format!("INSERT INTO {db}.other VALUES (3, 3)")).await.unwrap();
    eventually(T, || same_table(url, &db, "other", &ch_db, "other")).await;
    assert_eq!(srv.state(&db).await, "Running");
    // A resync recovers the table with its present shape.
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resync"), Some(json!({"tables": ["t"]}))).await;
    assert_eq!(code, 202, "{v}");
    srv.wait_state(&db, "Running", T).await;
    c.query_drop(format!("INSERT INTO {db}.t VALUES (4, 4, 40, 400)")).await.unwrap();
    eventually(T, || same_table(url, &db, "t", &ch_db, "t")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_undecodable_table_is_isolated() {
    undecodable_table_is_isolated(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_undecodable_table_is_isolated() {
    undecodable_table_is_isolated(Flavor::MariaDb).await;
}
