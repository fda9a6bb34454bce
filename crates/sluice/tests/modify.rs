//! A live pipe changing shape, over the REST API against the test bed: resync
//! (`<table>_resync` + `EXCHANGE TABLES`) under load with a reader that must
//! never see an empty or missing table, recovery of a `Failed` pipe by resync,
//! and tables added to and removed from a running pipe.

mod common;
use common::workload::*;
use common::*;
use mysql_async::prelude::*;
use rand::SeedableRng;
use reqwest::Method;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);

/// Random writes to `db` until `stop` is set.
fn writer(url: String, db: String, seed: u64, max_id: u64, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut c = mysql_url(&url).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut next_id = 1_000_000 + seed * 100_000;
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            random_write(&mut c, &db, &mut rng, &mut next_id, max_id).await;
            n += 1;
        }
        n
    })
}

async fn events(srv: &SluiceServer, name: &str) -> Vec<String> {
    let (_, ev) = srv.call(Method::GET, &format!("/v1/pipes/{name}/events"), None).await;
    ev.as_array().unwrap().iter().map(|e| format!("{} {}", e["to_state"].as_str().unwrap(), e["reason"].as_str().unwrap())).collect()
}

/// Resync of a running pipe while a writer changes the source and a reader
/// polls the destination: the reader never sees zero rows or an error, the
/// pipe goes Running → Resync → Running, `_resync` is gone, versions only grow,
/// and the destination equals the source.
async fn resync_under_write_load(flavor: Flavor) {
    let db = unique(&format!("resync_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    load_orders(&mut c, &db, &mut rng, 1, 30_000).await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let mut spec = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    spec["settings"]["snapshot_rows_per_chunk"] = 3000.into();
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    let before = max_version(&format!("{ch_db}.orders")).await;

    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(flavor.url().to_string(), db.clone(), 1, 30_000, stop.clone());
    let reader = {
        let (stop, table) = (stop.clone(), format!("{ch_db}.orders"));
        tokio::spawn(async move {
            let mut polls = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match ch_rows(&format!("SELECT count() FROM {table}")).await {
                    Ok(r) if r[0][0] != "0" => polls += 1,
                    Ok(r) => panic!("reader saw {} rows in {table} during the resync", r[0][0]),
                    Err(e) => panic!("reader got an error during the resync: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            polls
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resync"), None).await;
    assert_eq!((code, v["state"].as_str()), (202, Some("Resync")), "{v}");
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
    assert_eq!((code, v["state"].as_str()), (409, Some("Resync")), "pause during a resync: {v}");
    srv.wait_state(&db, "Running", T).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let writes = w.await.unwrap();
    let polls = reader.await.unwrap();
    assert!(writes > 50 && polls > 20, "too little load: {writes} writes, {polls} polls");

    eventually(T, || compare(flavor, &db, &ch_db)).await;
    assert!(ch_rows(&format!("SELECT count() FROM {ch_db}.orders_resync")).await.is_err(), "orders_resync still exists");
    assert!(max_version(&format!("{ch_db}.orders")).await > before, "versions did not grow across the swap");
    let ev = events(&srv, &db).await;
    assert!(ev.iter().any(|e| e.starts_with("Resync resync of every table")), "{ev:?}");
    assert!(ev.iter().any(|e| e.contains("table orders resynced")), "{ev:?}");
    assert!(ev.last().unwrap().starts_with("Running"), "{ev:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_resync_under_write_load_keeps_serving_and_converges() {
    resync_under_write_load(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_resync_under_write_load_keeps_serving_and_converges() {
    resync_under_write_load(Flavor::MariaDb).await;
}

/// One table resynced while CDC keeps applying the other, then an unknown table is refused.
#[tokio::test(flavor = "multi_thread")]
async fn resync_of_one_table_keeps_the_others_flowing() {
    let flavor = Flavor::MariaDb;
    let db = unique("resync1");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(22);
    load_orders(&mut c, &db, &mut rng, 1, 5000).await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let (code, v) = srv
        .call(Method::POST, "/v1/pipes", Some(spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc")))
        .await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    let (code, _) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resync"), Some(json!({"tables": ["nope"]}))).await;
    assert_eq!(code, 404);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(flavor.url().to_string(), db.clone(), 2, 5000, stop.clone());
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resync"), Some(json!({"tables": [format!("{db}.items")]}))).await;
    assert_eq!((code, v["state"].as_str()), (202, Some("Resync")), "{v}");
    srv.wait_state(&db, "Running", T).await;
    stop.store(true, Ordering::Relaxed);
    w.await.unwrap();
    eventually(T, || compare(flavor, &db, &ch_db)).await;
    let ev = events(&srv, &db).await;
    assert!(ev.iter().any(|e| e.contains("resync of items requested")), "{ev:?}");
}

/// A pipe that failed because its binlog was purged recovers by a resync and
/// converges, including the writes made while it was down.
#[tokio::test(flavor = "multi_thread")]
async fn failed_pipe_recovers_by_resync() {
    let url = testbed_url("SLUICE_TEST_MARIADB_SCRATCH_URL");
    let db = unique("recover");
    let ch_db = format!("{db}_ch");
    let mut c = mysql_url(&url).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    load_orders(&mut c, &db, &mut rng, 1, 2000).await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let (code, v) = srv
        .call(Method::POST, "/v1/pipes", Some(spec_for_url(&db, &url, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc")))
        .await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    srv.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
    srv.wait_state(&db, "Paused", T).await;
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    let file = v["checkpoint"]["binlog_file"].as_str().unwrap().to_string();
    let mut next_id = 500_000;
    for _ in 0..100 {
        random_write(&mut c, &db, &mut rng, &mut next_id, 2000).await;
    }
    c.query_drop(format!("INSERT INTO {db}.orders VALUES {}", order_values(&mut rng, 777_777))).await.unwrap();
    purge_binlogs_through(&mut c, &file).await;
    srv.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
    srv.wait_state(&db, "Failed", T).await;
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resync"), Some(json!({"tables": ["orders"]}))).await;
    assert_eq!(code, 422, "a Failed pipe must be resynced whole: {v}");
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resync"), None).await;
    assert_eq!((code, v["state"].as_str()), (202, Some("Resync")), "{v}");
    srv.wait_state(&db, "Running", T).await;
    c.query_drop(format!("UPDATE {db}.orders SET qty = 31337 WHERE id = 777777")).await.unwrap();
    eventually(T, || compare_url(&url, &db, &ch_db)).await;
}

/// A table added to a running pipe under write load is copied and joins CDC,
/// while the existing table keeps receiving changes; then it is removed again.
async fn tables_added_and_removed(flavor: Flavor) {
    let db = unique(&format!("addtbl_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(24);
    load_orders(&mut c, &db, &mut rng, 1, 3000).await;
    for oid in 1..=300u64 {
        c.query_drop(format!("INSERT INTO {db}.items VALUES ({oid}, 0, X'0102', 'first'), ({oid}, 1, X'00', NULL)")).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let interval_ms = 1000u64;
    let mut spec = spec(&db, flavor, json!([{"source": format!("{db}.orders")}]), &ch_db, "snapshot_and_cdc");
    spec["settings"]["sync_interval_ms"] = interval_ms.into();
    spec["settings"]["snapshot_rows_per_chunk"] = 100.into();
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;

    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(flavor.url().to_string(), db.clone(), 3, 3000, stop.clone());
    // The existing table keeps flowing during the add: every marker row arrives (its latency is printed,
    // not asserted — latency belongs in the benchmark).
    let probe = {
        let (stop, db, ch_db) = (stop.clone(), db.clone(), ch_db.clone());
        tokio::spawn(async move {
            let mut c = mysql(flavor).await;
            let mut worst = Duration::ZERO;
            let mut id = 9_000_000u64;
            while !stop.load(Ordering::Relaxed) {
                c.query_drop(format!(
                    "INSERT INTO {db}.orders (id, customer, price, created, status, big) VALUES ({id}, 'probe', 1, NOW(), 'new', 1)"
                ))
                .await
                .unwrap();
                let t0 = Instant::now();
                loop {
                    let r = ch_rows(&format!("SELECT count() FROM {ch_db}.orders WHERE id = {id}")).await.unwrap();
                    if r[0][0] == "1" {
                        break;
                    }
                    assert!(t0.elapsed() < Duration::from_secs(60), "probe row {id} never arrived");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                worst = worst.max(t0.elapsed());
                id += 1;
            }
            worst
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, v) =
        srv.call(Method::POST, &format!("/v1/pipes/{db}/tables"), Some(json!({"tables": [{"source": format!("{db}.orders")}]}))).await;
    assert_eq!(code, 422, "adding a table twice: {v}");
    assert_eq!(srv.state(&db).await, "Running");
    let (code, v) =
        srv.call(Method::POST, &format!("/v1/pipes/{db}/tables"), Some(json!({"tables": [{"source": format!("{db}.items")}]}))).await;
    assert_eq!((code, v["state"].as_str()), (202, Some("Snapshot")), "{v}");
    srv.wait_state(&db, "Running", T).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    w.await.unwrap();
    let worst = probe.await.unwrap();
    eprintln!("worst probe latency of the existing table during the add: {worst:?}");
    eventually(T, || compare(flavor, &db, &ch_db)).await;
    let ev = events(&srv, &db).await;
    for want in ["Modifying adding", "Snapshot tables added", "table items copied", "Running added tables copied"] {
        assert!(ev.iter().any(|e| e.contains(want)), "no event {want:?}: {ev:?}");
    }

    // Remove it again through the CLI: its changes stop, the destination table stays.
    let (code, _) = srv.call(Method::DELETE, &format!("/v1/pipes/{db}/tables/nope"), None).await;
    assert_eq!(code, 404);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["pipe", "remove-table", &db, "items", "--server", &srv.base()])
        .env("SLUICE_API_TOKEN", &srv.token)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Running"), "{}", String::from_utf8_lossy(&out.stdout));
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    assert_eq!(v["tables"].as_array().unwrap().len(), 1, "{v}");
    let before = ch_rows(&format!("SELECT count() FROM {ch_db}.items FINAL")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.items VALUES (424242, 0, X'01', 'after removal')")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.orders VALUES {}", order_values(&mut rng, 8_888_888))).await.unwrap();
    eventually(T, || async {
        let r = ch_rows(&format!("SELECT count() FROM {ch_db}.orders FINAL WHERE id = 8888888")).await?;
        if r[0][0] == "1" {
            Ok(())
        } else {
            Err("orders no longer receives changes".into())
        }
    })
    .await;
    assert_eq!(
        ch_rows(&format!("SELECT count() FROM {ch_db}.items FINAL")).await.unwrap(),
        before,
        "a removed table still receives changes"
    );
    let (code, v) = srv.call(Method::DELETE, &format!("/v1/pipes/{db}/tables/orders"), None).await;
    assert_eq!(code, 422, "removing the only table: {v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_tables_added_and_removed_on_a_running_pipe() {
    tables_added_and_removed(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_tables_added_and_removed_on_a_running_pipe() {
    tables_added_and_removed(Flavor::MariaDb).await;
}
