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

/// A TCP forwarder to ClickHouse that the test can cut and restore.
struct Flaky {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Flaky {
    async fn start(target: std::net::SocketAddr) -> Flaky {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (u, cs) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if !u.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                cs.lock().unwrap().push(task.abort_handle());
            }
        });
        Flaky { port, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// ClickHouse unreachable while a pipe runs: the pipe stays `Running`, shows
/// the error it is retrying, and converges once ClickHouse is back.
#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_outage_is_retried_with_the_error_visible() {
    let flavor = Flavor::MySql;
    let db = unique("outage");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng: rand::rngs::StdRng = rand::SeedableRng::seed_from_u64(41);
    load_orders(&mut c, &db, &mut rng, 1, 1000).await;
    let ch: url::Url = testbed().clickhouse_url.parse().unwrap();
    let flaky = Flaky::start(format!("127.0.0.1:{}", ch.port().unwrap()).parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let mut spec = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    spec["destination"]["url"] = format!("http://127.0.0.1:{}", flaky.port).into();
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", Duration::from_secs(60)).await;
    eventually(Duration::from_secs(60), || compare(flavor, &db, &ch_db)).await;

    flaky.cut();
    let mut next_id = 100_000;
    for _ in 0..50 {
        random_write(&mut c, &db, &mut rng, &mut next_id, 1000).await;
    }
    eventually(Duration::from_secs(60), || async {
        let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
        let err = v["error"].as_str().unwrap_or_default().to_string();
        if v["state"] == "Running" && err.contains("ClickHouse") && err.contains("retrying") {
            Ok(())
        } else {
            Err(format!("{v}"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(srv.state(&db).await, "Running", "a transient outage changed the state:\n{}", srv.log());

    flaky.restore();
    eventually(Duration::from_secs(90), || compare(flavor, &db, &ch_db)).await;
    eventually(Duration::from_secs(30), || async {
        let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
        if v["error"].is_null() {
            Ok(())
        } else {
            Err(format!("error not cleared: {v}"))
        }
    })
    .await;
}

/// `sluice check --json` on a ready source passes every check, tables included;
/// a table without a usable key and a short binlog retention each fail with
/// their fix, and the exit status says so.
#[tokio::test(flavor = "multi_thread")]
async fn check_reports_every_check_with_its_fix() {
    let url = testbed_url("SLUICE_TEST_MARIADB_SCRATCH_URL");
    let db = unique("check");
    let mut c = mysql_url(&url).await;
    create_schema(&mut c, &db).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |spec: serde_json::Value| {
        let path = dir.path().join(format!("{}.json", rand::random::<u32>()));
        std::fs::write(&path, spec.to_string()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["check", "--json", "--config"]).arg(&path).output().unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        (out.status.success(), v)
    };
    let failing = |v: &serde_json::Value| -> Vec<String> {
        v["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).map(|c| c["name"].as_str().unwrap().to_string()).collect()
    };
    let spec_all = spec_for_url(&db, &url, json!([{"source": format!("{db}.*")}]), "unused", "snapshot_and_cdc");
    let (ok, v) = run(spec_all.clone());
    assert!(ok && v["ok"] == true, "{v}");
    let names: Vec<&str> = v["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    for want in [
        "replication_mechanism",
        "log_bin",
        "binlog_format",
        "binlog_row_image",
        "binlog_row_metadata",
        "binlog_retention",
        "grants",
        "tls",
    ] {
        assert!(names.contains(&want), "no {want} check: {v}");
    }
    assert!(v["checks"][0]["found"].as_str().unwrap().contains("resumes by GTIDs"), "{v}");
    assert!(names.iter().any(|n| n.starts_with("table ") && n.contains("orders")), "{v}");

    c.query_drop(format!("CREATE TABLE {db}.nokey (a INT, b INT)")).await.unwrap();
    // Matched by `db.*`, a table without a key is skipped by the pipe: a warning naming the options.
    let (ok, v) = run(spec_all);
    let nokey = v["checks"].as_array().unwrap().iter().find(|c| c["name"].as_str().unwrap().contains("nokey")).unwrap().clone();
    assert!(ok && nokey["ok"] == true && nokey["warning"] == true, "{v}");
    assert!(nokey["fix"].as_str().unwrap().contains("ADD PRIMARY KEY"), "{nokey}");
    // Named, it cannot be replicated with the default engine: a failure.
    let (ok, v) = run(spec_for_url(&db, &url, json!([{"source": format!("{db}.nokey")}]), "unused", "snapshot_and_cdc"));
    assert!(!ok && failing(&v).iter().any(|n| n.contains("nokey")), "{v}");

    // Retention below 24 h (set and reset on the scratch server only).
    let spec_orders = spec_for_url(&db, &url, json!([{"source": format!("{db}.orders")}]), "unused", "snapshot_and_cdc");
    c.query_drop("SET GLOBAL binlog_expire_logs_seconds = 3600").await.unwrap();
    let (ok, v) = run(spec_orders.clone());
    c.query_drop("SET GLOBAL binlog_expire_logs_seconds = 0").await.unwrap();
    assert!(!ok && failing(&v) == ["binlog_retention"], "{v}");
    let (ok, v) = run(spec_orders);
    assert!(ok, "{v}");
}

/// A second pipe with the server_id of a running one is held back with a
/// clear error instead of disconnecting the first one in a loop.
#[tokio::test(flavor = "multi_thread")]
async fn duplicate_server_id_is_reported_not_fought_over() {
    let flavor = Flavor::MySql;
    let db = unique("sid");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let first = spec(&db, flavor, json!([{"source": format!("{db}.orders")}]), &format!("{db}_ch"), "snapshot_and_cdc");
    let mut second = spec(&format!("{db}_2"), flavor, json!([{"source": format!("{db}.items")}]), &format!("{db}_ch2"), "snapshot_and_cdc");
    second["source"]["server_id"] = first["source"]["server_id"].clone();
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(first)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", Duration::from_secs(60)).await;
    // The first pipe's binlog connection is registered once it reads.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(second)).await;
    assert_eq!(code, 201, "{v}");
    let name2 = format!("{db}_2");
    eventually(Duration::from_secs(60), || async {
        let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{name2}"), None).await;
        let err = v["error"].as_str().unwrap_or_default();
        if err.contains("already used by another replica") {
            Ok(())
        } else {
            Err(format!("{v}"))
        }
    })
    .await;
    // The first pipe keeps applying changes.
    let mut rng: rand::rngs::StdRng = rand::SeedableRng::seed_from_u64(61);
    c.query_drop(format!("INSERT INTO {db}.orders VALUES {}", order_values(&mut rng, 4242))).await.unwrap();
    eventually(Duration::from_secs(60), || async {
        let r = ch_rows(&format!("SELECT count() FROM {db}_ch.orders FINAL WHERE id = 4242")).await?;
        if r[0][0] == "1" {
            Ok(())
        } else {
            Err("the first pipe stopped applying changes".into())
        }
    })
    .await;
    assert!(!srv.log().contains("Failed"), "{}", srv.log());
}
