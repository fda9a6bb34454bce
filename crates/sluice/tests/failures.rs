//! What users see when the source cannot be replicated: misconfigured servers
//! refused before anything is created, and a binlog purged under a paused pipe.

mod common;
use common::workload::*;
use common::*;
use mysql_async::prelude::*;
use reqwest::Method;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

/// A source with `binlog_format=STATEMENT`, and one without a binlog: `sluice check`
/// names the setting and its fix and exits non-zero; `sluice run` fails in Setup
/// with the same message, and no destination database or table is created.
#[tokio::test(flavor = "multi_thread")]
async fn misconfigured_sources_are_refused_before_anything_is_created() {
    for (var, setting) in [("SLUICE_TEST_MARIADB_STATEMENT_URL", "binlog_format"), ("SLUICE_TEST_MARIADB_NOBINLOG_URL", "log_bin")] {
        let url = testbed_url(var);
        let db = unique("preflight");
        let mut c = mysql_url(&url).await;
        create_schema(&mut c, &db).await;
        let ch_db = format!("{db}_ch");
        let spec = spec_for_url(&db, &url, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
        let dir = tempfile::tempdir().unwrap();
        let spec_path = dir.path().join("pipe.json");
        std::fs::write(&spec_path, spec.to_string()).unwrap();

        let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["check", "--config"]).arg(&spec_path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "check passed on {var}:\n{text}");
        let line = text.lines().find(|l| l.contains(setting)).unwrap_or_else(|| panic!("check does not name {setting}:\n{text}"));
        assert!(line.starts_with("FAIL"), "{text}");
        assert!(text.contains("fix:"), "check gives no fix:\n{text}");

        let mut run = SluiceRun::start(&dir.path().join("run"), &spec);
        assert!(!run.wait_exit(Duration::from_secs(60)), "sluice run succeeded on {var}:\n{}", run.log());
        let log = run.log();
        assert!(log.contains("Setup → Failed") && log.contains(setting) && log.contains("fix"), "{log}");
        assert!(!ch_database_exists(&ch_db).await, "{var}: a destination database was created");
    }
}

/// A pipe paused while its binlog is purged fails on resume, naming the purged
/// file and the remedy. Runs on the scratch MariaDB (nothing else reads its binlog).
#[tokio::test(flavor = "multi_thread")]
async fn binlog_purged_while_paused_fails_with_remedy() {
    let url = testbed_url("SLUICE_TEST_MARIADB_SCRATCH_URL");
    let db = unique("purged");
    let ch_db = format!("{db}_ch");
    let mut c = mysql_url(&url).await;
    create_schema(&mut c, &db).await;
    let mut r: rand::rngs::StdRng = rand::SeedableRng::seed_from_u64(1);
    load_orders(&mut c, &db, &mut r, 1, 500).await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let spec = spec_for_url(&db, &url, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", Duration::from_secs(60)).await;
    srv.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
    srv.wait_state(&db, "Paused", Duration::from_secs(60)).await;
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    let file = v["checkpoint"]["binlog_file"].as_str().unwrap().to_string();

    c.query_drop(format!("UPDATE {db}.orders SET qty = 1 WHERE id < 10")).await.unwrap();
    purge_binlogs_through(&mut c, &file).await;

    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
    assert_eq!(code, 200, "{v}");
    srv.wait_state(&db, "Failed", Duration::from_secs(60)).await;
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    let err = v["error"].as_str().unwrap_or_default();
    assert!(err.contains(&file) && err.contains("resync"), "error does not name {file} and the remedy: {v}");
}
