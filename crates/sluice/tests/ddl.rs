//! Schema changes arriving through the binlog while rows are written before
//! and after them, on MySQL and MariaDB: columns added, dropped, renamed and
//! widened, tables renamed and truncated, an incompatible change isolated to
//! its table. (Online schema-change tools' cut-overs: `osc.rs`.)

mod common;
use common::*;
use mysql_async::prelude::*;
use mysql_async::Conn;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// Inserts `n` rows with ids from `*next` (columns given by name, values from `f(id)`).
async fn insert(c: &mut Conn, db: &str, table: &str, cols: &str, next: &mut u32, n: u32, f: impl Fn(u32) -> String) {
    let values: Vec<String> = (*next..*next + n).map(|i| format!("({i}, {})", f(i))).collect();
    c.query_drop(format!("INSERT INTO `{db}`.`{table}` (id, {cols}) VALUES {}", values.join(", "))).await.unwrap();
    *next += n;
}

async fn ddl_changes(flavor: Flavor) {
    let url = flavor.url();
    let db = unique(&format!("ddl_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, a INT, b VARCHAR(10), c INT NOT NULL DEFAULT 0)")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.other (id INT PRIMARY KEY, v INT)")).await.unwrap();
    let mut next = 1;
    insert(&mut c, &db, "t", "a, b, c", &mut next, 200, |i| format!("{i}, 'b{}', {}", i % 7, i * 2)).await;
    c.query_drop(format!("INSERT INTO {db}.other VALUES (1, 1), (2, 2)")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let (code, v) = srv
        .call(Method::POST, "/v1/pipes", Some(spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc")))
        .await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;

    // Each statement with writes right before and after it, in the same second.
    let steps: &[(&str, &str, &str)] = &[
        ("ALTER TABLE {db}.t ADD COLUMN d VARCHAR(20) NOT NULL DEFAULT 'dflt' AFTER a", "a, b, c, d", "{i}, 'x', 1, 'd{i}'"),
        ("ALTER TABLE {db}.t ADD COLUMN first_col INT NULL FIRST", "first_col, a, b, c, d", "-{i}, {i}, 'y', 2, 'e'"),
        ("ALTER TABLE {db}.t DROP COLUMN c", "a, b, d", "{i}, 'z', 'f'"),
        ("ALTER TABLE {db}.t RENAME COLUMN b TO b2", "a, b2, d", "{i}, 'r{i}', 'g'"),
        ("ALTER TABLE {db}.t MODIFY COLUMN a BIGINT", "a, b2, d", "{i} * 100000000, 'w', 'h'"),
        ("ALTER TABLE {db}.t MODIFY COLUMN b2 VARCHAR(100)", "a, b2, d", "{i}, REPEAT('long', 20), 'i'"),
    ];
    let mut cols_before = "a, b, c";
    let mut vals_before = "{i}, 'p', 3";
    for (ddl, cols, vals) in steps {
        let (cb, vb) = (cols_before, vals_before);
        insert(&mut c, &db, "t", cb, &mut next, 20, |i| vb.replace("{i}", &i.to_string())).await;
        c.query_drop(format!("UPDATE {db}.t SET a = a + 1 WHERE id % 5 = 0")).await.unwrap();
        c.query_drop(ddl.replace("{db}", &db)).await.unwrap();
        insert(&mut c, &db, "t", cols, &mut next, 20, |i| vals.replace("{i}", &i.to_string())).await;
        c.query_drop(format!("DELETE FROM {db}.t WHERE id % 11 = 0")).await.unwrap();
        cols_before = cols;
        vals_before = vals;
    }
    eventually(T, || same_table(url, &db, "t", &ch_db, "t")).await;

    // TRUNCATE: the destination is truncated too; later rows arrive.
    c.query_drop(format!("TRUNCATE TABLE {db}.t")).await.unwrap();
    insert(&mut c, &db, "t", "a, b2, d", &mut next, 5, |i| format!("{i}, 'after truncate', 'j'")).await;
    eventually(T, || same_table(url, &db, "t", &ch_db, "t")).await;

    // RENAME TABLE: followed; the destination keeps its name.
    c.query_drop(format!("RENAME TABLE {db}.t TO {db}.t_renamed")).await.unwrap();
    insert(&mut c, &db, "t_renamed", "a, b2, d", &mut next, 5, |i| format!("{i}, 'renamed', 'k'")).await;
    eventually(T, || same_table(url, &db, "t_renamed", &ch_db, "t")).await;

    // Narrowing: that table goes to Error (the message recommends a resync); the other keeps flowing.
    c.query_drop(format!("ALTER TABLE {db}.other MODIFY COLUMN v TINYINT")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.other VALUES (3, 3)")).await.unwrap();
    insert(&mut c, &db, "t_renamed", "a, b2, d", &mut next, 5, |i| format!("{i}, 'still flowing', 'l'")).await;
    eventually(T, || same_table(url, &db, "t_renamed", &ch_db, "t")).await;
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    let other = v["tables"].as_array().unwrap().iter().find(|t| t["destination"] == "other").unwrap().clone();
    assert_eq!(other["state"], "Error", "{v}");
    assert!(other["error"].as_str().unwrap().contains("resync"), "{other}");
    assert_eq!(v["state"], "Running", "{v}");
    // ... and a resync of that table recovers it with its new definition.
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resync"), Some(json!({"tables": ["other"]}))).await;
    assert_eq!(code, 202, "{v}");
    srv.wait_state(&db, "Running", T).await;
    c.query_drop(format!("INSERT INTO {db}.other VALUES (4, 4)")).await.unwrap();
    eventually(T, || same_table(url, &db, "other", &ch_db, "other")).await;
    let ch_type =
        ch_rows(&format!("SELECT type FROM system.columns WHERE database = '{ch_db}' AND table = 'other' AND name = 'v'")).await.unwrap();
    assert_eq!(ch_type[0][0], "Nullable(Int8)");

    // Every followed statement is in the pipe's history with its text.
    let (_, ev) = srv.call(Method::GET, &format!("/v1/pipes/{db}/events"), None).await;
    let text = ev.to_string();
    for want in [
        "ADD COLUMN d",
        "DROP COLUMN c",
        "RENAME COLUMN b TO b2",
        "MODIFY COLUMN a BIGINT",
        "TRUNCATE TABLE",
        "RENAME TABLE",
        "MODIFY COLUMN v TINYINT",
    ] {
        assert!(text.contains(want), "history lacks {want:?}: {ev}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_ddl_changes_are_followed() {
    ddl_changes(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_ddl_changes_are_followed() {
    ddl_changes(Flavor::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb118_ddl_changes_are_followed() {
    ddl_changes(Flavor::MariaDb118).await;
}

/// MariaDB's own column types and `COMPRESSED` columns added by DDL while the
/// pipe runs are followed: the new columns' rows arrive, value for value.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb118_uuid_inet_and_compressed_columns_added_by_ddl_are_followed() {
    let flavor = Flavor::MariaDb118;
    let db = unique("ddl_types_m118");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, a INT)")).await.unwrap();
    let mut next = 1;
    insert(&mut c, &db, "t", "a", &mut next, 5, |i| i.to_string()).await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let (code, v) = srv
        .call(Method::POST, "/v1/pipes", Some(spec(&db, flavor, json!([{"source": format!("{db}.t")}]), &ch_db, "snapshot_and_cdc")))
        .await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    c.query_drop(format!(
        "ALTER TABLE {db}.t ADD u UUID, ADD i4 INET4, ADD i6 INET6, ADD vc VARCHAR(300) COMPRESSED, ADD tc TEXT COMPRESSED"
    ))
    .await
    .unwrap();
    insert(&mut c, &db, "t", "a, u, i4, i6, vc, tc", &mut next, 20, |i| {
        format!("{i}, UUID(), '10.0.0.{i}', '2001:db8::{i:x}', REPEAT('ü{i}', 100), IF({i} % 2 = 0, REPEAT('long text ', 500), 'short')")
    })
    .await;
    c.query_drop(format!("UPDATE {db}.t SET i6 = '::ffff:1.2.3.4', tc = REPEAT('x', 1000) WHERE id % 3 = 0")).await.unwrap();
    c.query_drop(format!("DELETE FROM {db}.t WHERE id = 7")).await.unwrap();
    eventually(T, || same_table(flavor.url(), &db, "t", &ch_db, "t")).await;
    assert_eq!(srv.state(&db).await, "Running");
}
