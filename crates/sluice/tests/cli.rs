//! The `sluice pipe` / `sluice check` command line as a user drives it against a
//! running server: a degraded pipe is visible in `list` and `show`, settings are
//! shown and all of them settable, an unknown table is named as such, dropping
//! tables needs a confirmation, and output piped into `head` ends quietly.
//! Source-independent behaviour, so one flavour.

mod common;
use common::*;
use mysql_async::prelude::*;
use reqwest::Method;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// Runs `sluice pipe ARGS` against the server: (success, stdout + stderr).
fn pipe(srv: &SluiceServer, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("pipe")
        .args(args)
        .args(["--server", &srv.base()])
        .env("SLUICE_API_TOKEN", &srv.token)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_says_what_is_wrong_and_asks_before_dropping() {
    let flavor = Flavor::MariaDb;
    let db = unique("cli");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.a (id INT PRIMARY KEY, v INT)")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.b (id INT PRIMARY KEY, v INT)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.a VALUES (1, 1), (2, 2)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.b VALUES (1, 1)")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let spec = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec.clone())).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;

    // Settings: shown with what each does; every one of them can be changed.
    let (ok, out) = pipe(&srv, &["settings", &db]);
    assert!(ok, "{out}");
    for name in ["sync_interval_ms", "parallel_tables", "heartbeat_interval_ms", "verify_rows_per_second", "verify_interval_hours"] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    let (ok, out) = pipe(&srv, &["settings", &db, "--parallel-tables", "3", "--verify-interval-hours", "12"]);
    assert!(ok, "{out}");
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    assert_eq!((v["settings"]["parallel_tables"].as_u64(), v["settings"]["verify_interval_hours"].as_u64()), (Some(3), Some(12)), "{v}");

    // An unknown table is named as a table of the pipe, with the ones it has.
    let (ok, out) = pipe(&srv, &["resync", &db, "--table", "nosuch"]);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("table \"nosuch\" is not in pipe \"{db}\"")) && out.contains("its tables: a, b"), "{out}");

    // A table in Error shows in the list and in show.
    c.query_drop(format!("ALTER TABLE {db}.b MODIFY COLUMN v TINYINT")).await.unwrap();
    eventually(T, || async {
        let (_, out) = pipe(&srv, &["list"]);
        let line = out.lines().find(|l| l.starts_with(&db)).unwrap_or_default().to_string();
        if line.contains("1 ok, 1 error") && line.contains("DEGRADED: b:") {
            Ok(())
        } else {
            Err(format!("pipe list does not show the degraded pipe:\n{out}"))
        }
    })
    .await;
    let (ok, out) = pipe(&srv, &["show", &db]);
    assert!(ok && out.contains("DEGRADED 1 of 2 tables in Error"), "{out}");
    let lag_line = out.lines().find(|l| l.starts_with("lag")).unwrap();
    assert!(lag_line.split_whitespace().nth(1).is_some_and(|l| l == "-" || l.ends_with('s') && l.matches('.').count() <= 1), "{lag_line}");

    // `check --json` piped into a reader that stops early: no panic.
    let path = dir.path().join("spec.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["check", "--json", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before the first line
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");

    // Dropping the destination tables needs a confirmation: refused without a terminal or --yes.
    let (ok, out) = pipe(&srv, &["delete", &db, "--drop-tables"]);
    assert!(!ok && out.contains("add --yes"), "{out}");
    assert_eq!(srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await.0, 200);
    let (ok, out) = pipe(&srv, &["delete", &db, "--drop-tables", "--yes"]);
    assert!(ok, "{out}");
    assert_eq!(srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await.0, 404);
    assert!(!ch_database_tables_exist(&ch_db).await);
}

/// Whether the ClickHouse database still holds the pipe's tables.
async fn ch_database_tables_exist(ch_db: &str) -> bool {
    ch_rows(&format!("SELECT count() FROM system.tables WHERE database = '{ch_db}' AND name IN ('a', 'b')"))
        .await
        .map(|r| r[0][0] != "0")
        .unwrap_or(false)
}
