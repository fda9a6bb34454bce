//! The control plane end to end: `sluice server` driven over its REST API
//! against the test bed's real servers.

mod common;
use common::workload::*;
use common::*;
use mysql_async::prelude::*;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// A pipe spec whose source user has a distinctive password (to grep the catalog for).
async fn spec_with_own_user(flavor: Flavor, db: &str, ch_db: &str, mode: &str) -> (serde_json::Value, String) {
    let mut c = mysql(flavor).await;
    let user = format!("u{}", rand::random::<u32>());
    let password = format!("Pw-{}-unique", rand::random::<u64>());
    c.query_drop(format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")).await.unwrap();
    let grants =
        if flavor == Flavor::MySql { "SELECT, REPLICATION CLIENT, REPLICATION SLAVE" } else { "SELECT, REPLICATION SLAVE, BINLOG MONITOR" };
    c.query_drop(format!("GRANT {grants} ON *.* TO '{user}'@'%'")).await.unwrap();
    let mut spec = spec(db, flavor, json!([{"source": format!("{db}.*")}]), ch_db, mode);
    spec["source"]["user"] = user.into();
    spec["source"]["password"] = password.clone().into();
    (spec, password)
}

#[tokio::test(flavor = "multi_thread")]
async fn api_lifecycle_pause_resume_settings_and_security() {
    let flavor = Flavor::MySql;
    let db = unique("api");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut r = rand::rngs::StdRng::seed_from_u64(rand::random());
    load_orders(&mut c, &db, &mut r, 1, 3000).await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let (spec, password) = spec_with_own_user(flavor, &db, &ch_db, "snapshot_and_cdc").await;

    // Security: no token → 401; /healthz is open.
    let anon = srv.http.get(format!("{}/v1/pipes", srv.base())).send().await.unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    let wrong = srv.http.get(format!("{}/v1/pipes", srv.base())).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    // Bad input is refused, naming the field.
    let mut bad = spec.clone();
    bad["settings"]["sync_interval_ms"] = 0.into();
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(bad)).await;
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("settings.sync_interval_ms"), "{v}");
    let (code, _) = srv.call(Method::POST, "/v1/pipes", Some(json!({"name": "x"}))).await;
    assert_eq!(code, 400);

    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec.clone())).await;
    assert_eq!(code, 201, "{v}");
    assert!(!v.to_string().contains(&password), "password shown in the API: {v}");
    let (code, _) = srv.call(Method::POST, "/v1/pipes", Some(spec.clone())).await;
    assert_eq!(code, 409, "duplicate name");

    srv.wait_state(&db, "Running", T).await;
    eventually(T, || compare(flavor, &db, &ch_db)).await;

    // Illegal requests get 409 with the current state.
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
    assert_eq!((code, v["state"].as_str()), (409, Some("Running")), "{v}");

    // Pause; changes made while paused arrive only after resume.
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
    assert_eq!((code, v["state"].as_str()), (202, Some("Pausing")), "{v}");
    srv.wait_state(&db, "Paused", T).await;
    c.query_drop(format!("UPDATE {db}.orders SET qty = 7777 WHERE id <= 10")).await.unwrap();
    c.query_drop(format!("DELETE FROM {db}.orders WHERE id BETWEEN 11 AND 20")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n = ch_rows(&format!("SELECT count() FROM {ch_db}.orders FINAL WHERE qty = 7777")).await.unwrap();
    assert_eq!(n[0][0], "0", "a paused pipe applied changes");
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
    assert_eq!((code, v["state"].as_str()), (409, Some("Paused")), "{v}");

    // Settings change on the live pipe.
    let (code, v) =
        srv.call(Method::PATCH, &format!("/v1/pipes/{db}/settings"), Some(json!({"sync_interval_ms": 150, "pull_batch_size": 500}))).await;
    assert_eq!(code, 200, "{v}");
    let (code, _) = srv.call(Method::PATCH, &format!("/v1/pipes/{db}/settings"), Some(json!({"sync_interval_ms": 0}))).await;
    assert_eq!(code, 422);
    let (code, _) = srv.call(Method::PATCH, &format!("/v1/pipes/{db}/settings"), Some(json!({"bogus": 1}))).await;
    assert_eq!(code, 400);

    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
    assert_eq!((code, v["state"].as_str()), (200, Some("Running")), "{v}");
    eventually(T, || compare(flavor, &db, &ch_db)).await;
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    assert_eq!(v["settings"]["sync_interval_ms"], 150);
    assert_eq!(v["tables"].as_array().unwrap().len(), 2);
    assert!(v["checkpoint"]["binlog_file"].is_string(), "{v}");

    // Per-table copy progress.
    let orders = v["tables"].as_array().unwrap().iter().find(|t| t["destination"] == "orders").unwrap();
    assert_eq!((orders["partitions_done"].as_u64(), orders["partitions_total"].as_u64()), (Some(1), Some(1)), "{orders}");
    assert_eq!(orders["rows_copied"], 3000, "{orders}");

    // Prometheus metrics (behind the token like the rest of the API).
    let anon = srv.http.get(format!("{}/metrics", srv.base())).send().await.unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    let (code, m) = srv.call(Method::GET, "/metrics", None).await;
    assert_eq!(code, 200);
    let m = m.as_str().unwrap().to_string();
    for want in [
        format!("sluice_pipe_state{{pipe=\"{db}\",state=\"Running\"}} 1"),
        format!("sluice_pipe_state{{pipe=\"{db}\",state=\"Paused\"}} 0"),
        format!("sluice_snapshot_rows_total{{pipe=\"{db}\",table=\"orders\"}} 3000"),
        format!("sluice_cdc_changes_total{{pipe=\"{db}\",table=\"orders\"}}"),
        format!("sluice_replication_lag_seconds{{pipe=\"{db}\"}}"),
        format!("sluice_binlog_bytes_total{{pipe=\"{db}\"}}"),
        format!("sluice_cdc_batch_rows_bucket{{pipe=\"{db}\""),
        format!("sluice_cdc_batch_duration_seconds_bucket{{pipe=\"{db}\""),
    ] {
        assert!(m.contains(&want), "metrics lack {want}:\n{m}");
    }

    // The history holds every transition, in order, and the settings change (a note: no state change).
    let (_, ev) = srv.call(Method::GET, &format!("/v1/pipes/{db}/events"), None).await;
    let ev = ev.as_array().unwrap();
    let states: Vec<&str> = ev.iter().filter(|e| e["from_state"] != e["to_state"]).map(|e| e["to_state"].as_str().unwrap()).collect();
    assert_eq!(states, ["Provisioning", "Setup", "Snapshot", "Running", "Pausing", "Paused", "Running"], "{ev:?}");
    let notes: Vec<&str> = ev.iter().filter(|e| e["from_state"] == e["to_state"]).map(|e| e["reason"].as_str().unwrap()).collect();
    assert_eq!(notes, ["settings changed: sync_interval_ms 300 → 150, pull_batch_size 20000 → 500"], "{ev:?}");

    // No password in clear text anywhere in the data dir.
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let p = entry.unwrap().path();
        let raw = std::fs::read(&p).unwrap();
        assert!(!raw.windows(password.len()).any(|w| w == password.as_bytes()), "password in clear text in {p:?}");
    }
    assert!(!srv.log().contains(&password), "password in the server log");

    // OpenAPI lists every endpoint.
    let (code, doc) = srv.call(Method::GET, "/openapi.json", None).await;
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    for path in [
        "/v1/pipes",
        "/v1/pipes/{name}",
        "/v1/pipes/{name}/pause",
        "/v1/pipes/{name}/resume",
        "/v1/pipes/{name}/settings",
        "/v1/pipes/{name}/events",
        "/v1/pipes/{name}/resync",
        "/v1/pipes/{name}/tables",
        "/v1/pipes/{name}/tables/{table}",
        "/metrics",
        "/healthz",
        "/openapi.json",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }

    // Delete keeps the destination tables unless asked.
    let (code, _) = srv.call(Method::DELETE, &format!("/v1/pipes/{db}"), None).await;
    assert_eq!(code, 204);
    let (code, _) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    assert_eq!(code, 404);
    assert!(ch_rows(&format!("SELECT count() FROM {ch_db}.orders")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn api_snapshot_only_completes_and_refuses_pause() {
    let flavor = Flavor::MariaDb;
    let db = unique("apisnap");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut r = rand::rngs::StdRng::seed_from_u64(5);
    load_orders(&mut c, &db, &mut r, 1, 2000).await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let (spec, _) = spec_with_own_user(flavor, &db, &ch_db, "snapshot_only").await;
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Completed", T).await;
    compare(flavor, &db, &ch_db).await.unwrap();
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
    assert_eq!((code, v["state"].as_str()), (409, Some("Completed")), "{v}");
    let (code, _) = srv.call(Method::DELETE, &format!("/v1/pipes/{db}?drop_tables=true"), None).await;
    assert_eq!(code, 204);
    assert!(ch_rows(&format!("SELECT count() FROM {ch_db}.orders")).await.is_err(), "tables were not dropped");
}

/// kill -9 of the server with one pipe Running and one Paused: both come back as they were.
#[tokio::test(flavor = "multi_thread")]
async fn api_server_kill9_restores_running_and_paused_pipes() {
    let flavor = Flavor::MariaDb;
    let dir = tempfile::tempdir().unwrap();
    let mut srv = SluiceServer::start(dir.path()).await;
    let mut c = mysql(flavor).await;
    let mut names = Vec::new();
    for _ in 0..2 {
        let db = unique("apikill");
        create_schema(&mut c, &db).await;
        let mut r = rand::rngs::StdRng::seed_from_u64(9);
        load_orders(&mut c, &db, &mut r, 1, 1000).await;
        let (spec, _) = spec_with_own_user(flavor, &db, &format!("{db}_ch"), "snapshot_and_cdc").await;
        let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
        assert_eq!(code, 201, "{v}");
        names.push(db);
    }
    for n in &names {
        srv.wait_state(n, "Running", T).await;
    }
    srv.call(Method::POST, &format!("/v1/pipes/{}/pause", names[1]), None).await;
    srv.wait_state(&names[1], "Paused", T).await;
    let mut r = rand::rngs::StdRng::seed_from_u64(10);
    let mut next_id = 50_000;
    for _ in 0..200 {
        random_write(&mut c, &names[0], &mut r, &mut next_id, 1000).await;
    }
    srv.kill9();
    for _ in 0..200 {
        random_write(&mut c, &names[0], &mut r, &mut next_id, 1000).await;
    }
    srv.restart().await;
    assert_eq!(srv.state(&names[0]).await, "Running", "{}", srv.log());
    assert_eq!(srv.state(&names[1]).await, "Paused", "{}", srv.log());
    let ch0 = format!("{}_ch", names[0]);
    eventually(T, || compare(flavor, &names[0], &ch0)).await;
    assert_eq!(srv.state(&names[1]).await, "Paused");
}

use rand::SeedableRng;

/// A wrong password is caught before anything is stored: `POST /v1/checks` says
/// which check failed and why, `POST /v1/pipes` answers 422 with the checks and
/// creates nothing. A pipe stored anyway (`skip_checks=true`) fails at Setup; it
/// is corrected with `PATCH /source` and resumed, which runs Setup again, and
/// it replicates.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_refused_before_creation_and_a_failed_setup_can_be_corrected() {
    let flavor = Flavor::MariaDb;
    let db = unique("wrongpw");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.t VALUES (1, 1), (2, 2)")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let good = spec(&db, flavor, json!([{"source": format!("{db}.t")}]), &ch_db, "snapshot_and_cdc");
    let mut bad = good.clone();
    bad["source"]["password"] = json!("not-the-password");

    let (code, v) = srv.call(Method::POST, "/v1/checks", Some(bad.clone())).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["ok"], false, "{v}");
    let failed: Vec<&serde_json::Value> = v["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).collect();
    assert_eq!(failed.len(), 1, "{v}");
    assert_eq!(failed[0]["name"], "source_connection", "{v}");
    assert!(failed[0]["found"].as_str().unwrap().contains("Access denied"), "{v}");
    let (code, v) = srv.call(Method::POST, "/v1/checks", Some(good.clone())).await;
    assert_eq!((code, &v["ok"]), (200, &json!(true)), "{v}");
    assert!(v["checks"].as_array().unwrap().iter().any(|c| c["name"] == "destination_connection" && c["ok"] == true), "{v}");

    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(bad.clone())).await;
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("pre-flight checks failed, nothing was created: source_connection"), "{v}");
    assert_eq!(v["checks"]["ok"], false, "{v}");
    assert_eq!(srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await.0, 404);

    // Stored anyway: Failed at Setup, saying why.
    let (code, v) = srv.call(Method::POST, "/v1/pipes?skip_checks=true", Some(bad)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Failed", T).await;
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    assert!(v["error"].as_str().unwrap_or_default().contains("Access denied"), "{v}");
    // Resync has nothing to work on and says what to do instead.
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resync"), Some(json!({}))).await;
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("resume it to run Setup again"), "{v}");
    // Corrected and resumed: Setup runs again and the pipe replicates.
    let (code, v) = srv.call(Method::PATCH, &format!("/v1/pipes/{db}/source"), Some(json!({"password": good["source"]["password"]}))).await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
    assert!(code == 200 || code == 202, "{code} {v}");
    srv.wait_state(&db, "Running", T).await;
    c.query_drop(format!("INSERT INTO {db}.t VALUES (3, 3)")).await.unwrap();
    eventually(T, || async {
        let rows = ch_rows(&format!("SELECT id, v FROM {ch_db}.t FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id")).await?;
        if rows.len() == 3 {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    })
    .await;
    let (_, ev) = srv.call(Method::GET, &format!("/v1/pipes/{db}/events"), None).await;
    assert!(ev.to_string().contains("retry requested after a failed setup"), "{ev}");
}
