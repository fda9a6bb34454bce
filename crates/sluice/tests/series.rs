//! Time-series history against a real server and the test bed (MySQL →
//! ClickHouse): the sampler records a pipe's lag, its changes per second and
//! its tables' upserts and deletes per second and snapshot rows per second;
//! `GET /v1/pipes/{name}/series` serves them and refuses bad requests with a
//! 400 or 404 naming what is wrong; the count of changes applied survives a
//! restart of the server; history pages with `before`/`limit`.

mod common;
use common::*;
use mysql_async::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

fn nonzero(v: &Value) -> usize {
    v["points"].as_array().map(|p| p.iter().filter(|p| p[1].as_f64().unwrap_or(0.0) > 0.0).count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_are_sampled_served_and_counts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The server inherits the environment of the test process (one process per test under nextest).
    std::env::set_var("SLUICE_SERIES_INTERVAL_MS", "500");
    let mut srv = SluiceServer::start(dir.path()).await;

    let db = unique("series");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(Flavor::MySql).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)")).await.unwrap();
    let values: Vec<String> = (1..=3000).map(|i| format!("({i}, {i})")).collect();
    c.query_drop(format!("INSERT INTO {db}.t VALUES {}", values.join(","))).await.unwrap();
    let spec = spec(&db, Flavor::MySql, json!([{"source": format!("{db}.t")}]), &ch_db, "snapshot_and_cdc");
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;

    // Changes arrive over several samples: the rates show them.
    for i in 0..6 {
        c.query_drop(format!("INSERT INTO {db}.t VALUES ({}, 0)", 10_000 + i)).await.unwrap();
        c.query_drop(format!("DELETE FROM {db}.t WHERE id = {}", i + 1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let series = |metric: &str, table: Option<&str>| {
        let q = format!("/v1/pipes/{db}/series?metric={metric}&range=1h{}", table.map(|t| format!("&table={t}")).unwrap_or_default());
        let srv = &srv;
        async move { srv.call(Method::GET, &q, None).await }
    };
    eventually(T, || async {
        let (code, pipe_rate) = series("changes_per_second", None).await;
        let (_, deletes) = series("deletes_per_second", Some("t")).await;
        let (_, upserts) = series("upserts_per_second", Some(&format!("{db}.t"))).await;
        let (_, lag) = series("lag_seconds", None).await;
        if code == 200
            && nonzero(&pipe_rate) > 0
            && nonzero(&deletes) > 0
            && nonzero(&upserts) > 0
            && !lag["points"].as_array().unwrap().is_empty()
        {
            Ok(())
        } else {
            Err(format!("pipe {pipe_rate}\ndeletes {deletes}\nupserts {upserts}\nlag {lag}"))
        }
    })
    .await;
    let (_, v) = series("deletes_per_second", Some("t")).await;
    assert_eq!((v["resolution"].as_i64(), v["missing_is_zero"].as_bool(), v["table"].as_str()), (Some(10), Some(true), Some("t")), "{v}");
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}/series?metric=lag_seconds&range=30d"), None).await;
    assert_eq!(v["resolution"], 300, "{v}");
    assert!(!v["points"].as_array().unwrap().is_empty(), "the 5 min points follow the 10 s ones: {v}");

    // Bad requests say what is wrong.
    let (code, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}/series?metric=nope"), None).await;
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("lag_seconds"), "{v}");
    let (code, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}/series?metric=lag_seconds&range=2y"), None).await;
    assert_eq!(code, 400, "{v}");
    let (code, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}/series?metric=batch_seconds&table=t"), None).await;
    assert_eq!(code, 400, "batch_seconds is a pipe metric: {v}");
    let (code, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}/series?metric=deletes_per_second&table=zz"), None).await;
    assert_eq!(code, 404, "{v}");
    let (code, _) = srv.call(Method::GET, "/v1/pipes/nope/series?metric=lag_seconds", None).await;
    assert_eq!(code, 404);

    // The count of changes applied goes on after a restart (a clean stop saves it).
    let applied = |v: &Value| v["changes_applied"].as_u64().unwrap();
    // The rates above show changes landing, not all 12 of them: wait for the count.
    eventually(T, || async {
        let (_, now) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
        if applied(&now) >= 12 {
            Ok(())
        } else {
            Err(format!("{now}"))
        }
    })
    .await;
    let (_, before) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    let pid = srv.child.as_ref().unwrap().id();
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert_eq!(srv.wait_exit(T), Some(0), "{}", srv.log());
    srv.restart().await;
    let (_, after) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    // At least as many: a batch in flight when `before` was read may have landed before the stop.
    assert!(applied(&after) >= applied(&before), "before {before}\nafter {after}");
    c.query_drop(format!("INSERT INTO {db}.t VALUES (20000, 0)")).await.unwrap();
    eventually(T, || async {
        let (_, now) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
        if applied(&now) > applied(&before) {
            Ok(())
        } else {
            Err(format!("{now}"))
        }
    })
    .await;

    // History in pages: the newest `limit` before an id, oldest first.
    let (_, all) = srv.call(Method::GET, &format!("/v1/pipes/{db}/events"), None).await;
    let all = all.as_array().unwrap().clone();
    assert!(all.len() >= 3, "{all:?}");
    let (_, page) = srv.call(Method::GET, &format!("/v1/pipes/{db}/events?limit=2"), None).await;
    assert_eq!(page.as_array().unwrap(), &all[all.len() - 2..]);
    let before_id = all[all.len() - 2]["id"].as_i64().unwrap();
    let (_, older) = srv.call(Method::GET, &format!("/v1/pipes/{db}/events?before={before_id}&limit=1"), None).await;
    assert_eq!(older.as_array().unwrap(), &all[all.len() - 3..all.len() - 2]);

    // The dashboard's address is in the log.
    assert!(srv.log().contains(&format!("dashboard: http://127.0.0.1:{}/", srv.port)), "{}", srv.log());
    // Cleanup only (not what this test checks).
    let _ = srv.call(Method::DELETE, &format!("/v1/pipes/{db}?drop_tables=true"), None).await;
}
