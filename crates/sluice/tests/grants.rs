//! Least-privilege source users, as managed services grant them: a user with
//! only what the README's *Source requirements* list (MySQL: `SELECT,
//! REPLICATION CLIENT, REPLICATION SLAVE`; MariaDB: `SELECT, REPLICATION SLAVE,
//! BINLOG MONITOR`) — no `SUPER`, `RELOAD`, `PROCESS`, `SHOW DATABASES` — runs
//! `sluice check`, the snapshot, CDC, a table added to a live pipe, a resync
//! and heartbeats end to end. What such a user cannot see is a warning, never
//! a failure.

mod common;
use common::workload::*;
use common::*;
use mysql_async::prelude::*;
use rand::SeedableRng;
use reqwest::Method;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(120);

/// Creates `user`@`127.0.0.1` (and `%`) with exactly the README's grants for
/// `flavor`, plus what heartbeats need on the heartbeat table's schema only.
async fn create_restricted_user(c: &mut mysql_async::Conn, flavor: Flavor, user: &str, heartbeat_db: &str) {
    let grants = match flavor {
        Flavor::MySql => "SELECT, REPLICATION CLIENT, REPLICATION SLAVE",
        Flavor::MariaDb | Flavor::MariaDb118 => "SELECT, REPLICATION SLAVE, BINLOG MONITOR",
    };
    c.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{heartbeat_db}`")).await.unwrap();
    for host in ["127.0.0.1", "%"] {
        c.query_drop(format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY 'pw-{user}'")).await.unwrap();
        c.query_drop(format!("GRANT {grants} ON *.* TO '{user}'@'{host}'")).await.unwrap();
        c.query_drop(format!("GRANT CREATE, INSERT, UPDATE ON `{heartbeat_db}`.* TO '{user}'@'{host}'")).await.unwrap();
    }
}

async fn drop_user(c: &mut mysql_async::Conn, user: &str) {
    for host in ["127.0.0.1", "%"] {
        let _ = c.query_drop(format!("DROP USER IF EXISTS '{user}'@'{host}'")).await;
    }
}

fn check_json(spec: &serde_json::Value, dir: &std::path::Path) -> (bool, serde_json::Value, String) {
    let path = dir.join(format!("check-{}.json", rand::random::<u32>()));
    std::fs::write(&path, spec.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["check", "--json", "--config"]).arg(&path).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.success(), v, text)
}

async fn least_privilege_end_to_end(flavor: Flavor) {
    let mut root = mysql(flavor).await;
    let db = unique(&format!("grants_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let user = format!("lp{}", rand::random::<u32>() % 1_000_000);
    let hb_db = format!("{db}_hb");
    create_schema(&mut root, &db).await;
    create_restricted_user(&mut root, flavor, &user, &hb_db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(71);
    load_orders(&mut root, &db, &mut rng, 1, 3_000).await;
    root.query_drop(format!("CREATE TABLE {db}.extra (id INT PRIMARY KEY, v VARCHAR(20))")).await.unwrap();
    root.query_drop(format!("INSERT INTO {db}.extra VALUES (1, 'a'), (2, 'b')")).await.unwrap();

    let mut spec =
        spec(&db, flavor, json!([{"source": format!("{db}.orders")}, {"source": format!("{db}.items")}]), &ch_db, "snapshot_and_cdc");
    spec["source"]["user"] = user.clone().into();
    spec["source"]["password"] = format!("pw-{user}").into();
    spec["source"]["heartbeat_table"] = format!("{hb_db}.beat").into();
    spec["settings"]["heartbeat_interval_ms"] = 500.into();
    let dir = tempfile::tempdir().unwrap();

    // `sluice check` passes; what the user cannot see is a warning naming the grant, not a failure.
    let (ok, v, text) = check_json(&spec, dir.path());
    assert!(ok && v["ok"] == true, "{flavor:?}: check failed for a least-privilege user:\n{text}");
    for c in v["checks"].as_array().unwrap() {
        assert!(c["ok"] == true, "{flavor:?}: {c}");
        if c["warning"] == true {
            assert!(!c["fix"].as_str().unwrap().is_empty(), "{flavor:?}: a warning without advice: {c}");
        }
    }
    if flavor.is_mariadb() {
        // SHOW SLAVE STATUS needs SLAVE MONITOR, which the user lacks: a warning saying so.
        let replica = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "replica");
        assert!(replica.is_some_and(|c| c["warning"] == true && c["found"].as_str().unwrap().contains("SLAVE MONITOR")), "{v}");
    }

    // Snapshot, CDC, heartbeats, an added table and a resync, through the pipe server.
    let srv = SluiceServer::start(&dir.path().join("server")).await;
    let (code, body) = srv.call(Method::POST, "/v1/pipes", Some(spec.clone())).await;
    assert_eq!(code, 201, "{body}");
    srv.wait_state(&db, "Running", CONVERGE).await;
    let mut next_id = 100_000;
    for _ in 0..300 {
        random_write(&mut root, &db, &mut rng, &mut next_id, 3_000).await;
    }
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
    // The heartbeat row is written by the restricted user.
    eventually(CONVERGE, || async {
        let n: Option<u64> =
            mysql(flavor).await.query_first(format!("SELECT COUNT(*) FROM {hb_db}.beat")).await.map_err(|e| e.to_string())?;
        if n == Some(1) {
            Ok(())
        } else {
            Err(format!("heartbeat rows: {n:?}"))
        }
    })
    .await;

    let (code, body) =
        srv.call(Method::POST, &format!("/v1/pipes/{db}/tables"), Some(json!({"tables": [{"source": format!("{db}.extra")}]}))).await;
    assert!(code < 300, "adding a table: {code} {body}");
    root.query_drop(format!("INSERT INTO {db}.extra VALUES (3, 'c')")).await.unwrap();
    eventually(CONVERGE, || async {
        let rows = ch_rows(&format!("SELECT id, v FROM {ch_db}.extra FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id")).await?;
        diff(&[vec!["1".into(), "a".into()], vec!["2".into(), "b".into()], vec!["3".into(), "c".into()]], &rows)
    })
    .await;
    // The added table's rows can be visible before its copy is recorded done: a resync waits for Running.
    srv.wait_state(&db, "Running", CONVERGE).await;

    let (code, body) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resync"), Some(json!({"tables": [format!("{db}.orders")]}))).await;
    assert!(code < 300, "resync: {code} {body}");
    for _ in 0..100 {
        random_write(&mut root, &db, &mut rng, &mut next_id, 3_000).await;
    }
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
    assert_eq!(srv.state(&db).await, "Running", "{}", srv.log());
    drop(srv);
    drop_user(&mut root, &user).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_least_privilege_user_end_to_end() {
    least_privilege_end_to_end(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_least_privilege_user_end_to_end() {
    least_privilege_end_to_end(Flavor::MariaDb).await;
}
