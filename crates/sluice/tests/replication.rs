//! Replication mechanisms end to end against the test bed: moving a pipe to
//! another server of the replication topology (a fail-over, resumed by GTIDs)
//! on MySQL and MariaDB, tagged GTIDs (MySQL 8.4+), and `file_pos`.

mod common;
use common::workload::*;
use common::*;
use mysql_async::prelude::*;
use rand::SeedableRng;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

fn fo_urls(flavor: Flavor) -> (String, String) {
    match flavor {
        Flavor::MySql => (testbed_url("SLUICE_TEST_MYSQL_FO_PRIMARY_URL"), testbed_url("SLUICE_TEST_MYSQL_FO_REPLICA_URL")),
        Flavor::MariaDb => (testbed_url("SLUICE_TEST_MARIADB_FO_PRIMARY_URL"), testbed_url("SLUICE_TEST_MARIADB_FO_REPLICA_URL")),
        Flavor::MariaDb118 => (testbed_url("SLUICE_TEST_MARIADB118_FO_PRIMARY_URL"), testbed_url("SLUICE_TEST_MARIADB118_FO_REPLICA_URL")),
    }
}

/// Waits until the replica holds exactly the primary's rows of `db`.
async fn replica_caught_up(primary: &str, replica: &str, db: &str) {
    let sql = format!(
        "SELECT (SELECT CONCAT(COUNT(*), ' ', COALESCE(SUM(CRC32(CONCAT_WS('|', id, customer, qty, price, created, score, status, doc, ts, big))), 0)) \
         FROM `{db}`.orders), (SELECT CONCAT(COUNT(*), ' ', COALESCE(SUM(CRC32(CONCAT_WS('|', order_id, line, sku, note))), 0)) FROM `{db}`.items)"
    );
    eventually(T, || async {
        let a = src_rows(&mut mysql_url(primary).await, &sql).await;
        let b = match mysql_url(replica).await.query::<mysql_async::Row, _>(&sql).await {
            Ok(rows) => rows.into_iter().map(|r| r.unwrap().iter().map(render).collect::<Vec<_>>()).collect::<Vec<_>>(),
            Err(e) => return Err(e.to_string()),
        };
        if a == b {
            Ok(())
        } else {
            Err(format!("replica {b:?} vs primary {a:?}"))
        }
    })
    .await;
}

/// A pipe on the primary is paused, moved to the replica with
/// `PATCH /v1/pipes/{name}/source`, and resumed: CDC continues from its
/// checkpoint's GTIDs on a server whose binlog files and offsets differ (the
/// primary's binlog numbers are pushed ahead first, so versions derived from
/// positions would go backwards). Changes made while paused and after the move
/// arrive; the destination equals the source.
async fn failover_to_replica(flavor: Flavor) {
    let (primary, replica) = fo_urls(flavor);
    let db = unique(&format!("fo_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut p = mysql_url(&primary).await;
    create_schema(&mut p, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    load_orders(&mut p, &db, &mut rng, 1, 2000).await;
    for _ in 0..3 {
        p.query_drop("FLUSH BINARY LOGS").await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let spec = spec_for_url(&db, &primary, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    let mut next_id = 10_000;
    for _ in 0..300 {
        random_write(&mut p, &db, &mut rng, &mut next_id, 2000).await;
    }
    eventually(T, || compare_url(&primary, &db, &ch_db)).await;
    let before = max_version(&format!("{ch_db}.orders")).await;
    let (_, view) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    let primary_file = view["checkpoint"]["binlog_file"].as_str().unwrap().to_string();

    // Refused while running: the source can only change on a paused pipe.
    let patch = json!({"port": url::Url::parse(&replica).unwrap().port().unwrap()});
    let (code, v) = srv.call(Method::PATCH, &format!("/v1/pipes/{db}/source"), Some(patch.clone())).await;
    assert_eq!(code, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("pause it first"), "{v}");

    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
    assert_eq!(code, 202, "{v}");
    srv.wait_state(&db, "Paused", T).await;
    for _ in 0..300 {
        random_write(&mut p, &db, &mut rng, &mut next_id, 2000).await;
    }
    replica_caught_up(&primary, &replica, &db).await;
    let (code, v) = srv.call(Method::PATCH, &format!("/v1/pipes/{db}/source"), Some(json!({"replication_mechanism": "tcp"}))).await;
    assert_eq!(code, 400, "a bad mechanism is refused: {v}");
    let (code, v) = srv.call(Method::PATCH, &format!("/v1/pipes/{db}/source"), Some(patch)).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["port"], url::Url::parse(&replica).unwrap().port().unwrap(), "{v}");
    assert_eq!(v["replication_mechanism"], "auto", "{v}");
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
    assert_eq!(code, 200, "{v}");

    // Changes made while paused arrive through the replica, then later ones too.
    eventually(T, || compare_url(&primary, &db, &ch_db)).await;
    for _ in 0..300 {
        random_write(&mut p, &db, &mut rng, &mut next_id, 2000).await;
    }
    eventually(T, || compare_url(&primary, &db, &ch_db)).await;
    assert_eq!(srv.state(&db).await, "Running");
    assert!(max_version(&format!("{ch_db}.orders")).await > before, "versions did not grow across the move");
    let log = srv.log();
    assert!(log.contains("CDC reading the binlog after GTID set"), "CDC did not resume by GTIDs:\n{log}");
    let (_, ev) = srv.call(Method::GET, &format!("/v1/pipes/{db}/events"), None).await;
    assert!(ev.to_string().contains("source changed"), "{ev}");
    let (_, view) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    let cp = &view["checkpoint"];
    assert!(cp["gtid_set"].as_str().is_some_and(|g| !g.is_empty()), "{view}");
    // The replica's binlog numbering is its own (behind the primary's by the three flushes).
    assert_ne!(cp["binlog_file"].as_str().unwrap(), primary_file, "{view}");
    let (code, _) = srv.call(Method::DELETE, &format!("/v1/pipes/{db}?drop_tables=true"), None).await;
    assert_eq!(code, 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_failover_to_replica_resumes_by_gtid() {
    failover_to_replica(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_failover_to_replica_resumes_by_gtid() {
    failover_to_replica(Flavor::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb118_failover_to_replica_resumes_by_gtid() {
    failover_to_replica(Flavor::MariaDb118).await;
}

/// Transactions with tagged GTIDs (`uuid:tag:n`, MySQL 8.4+) are applied, the
/// checkpoint records the tag, and a restart resumes from a set holding it.
#[tokio::test(flavor = "multi_thread")]
async fn mysql_tagged_gtids_are_tracked_and_resumed_from() {
    let flavor = Flavor::MySql;
    let db = unique("gtidtag");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE `{db}`")).await.unwrap();
    c.query_drop(format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v INT)")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = SluiceRun::start(dir.path(), &spec(&db, flavor, json!([{"source": format!("{db}.t")}]), &ch_db, "snapshot_and_cdc"));
    let sql = format!("SELECT id, v FROM {ch_db}.t FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id");
    let expect = |want: Vec<Vec<String>>| {
        let sql = sql.clone();
        async move {
            eventually(T, || async {
                let got = ch_rows(&sql).await?;
                if got == want {
                    Ok(())
                } else {
                    Err(format!("got {got:?}, want {want:?}"))
                }
            })
            .await
        }
    };
    let row = |id: i32, v: i32| vec![id.to_string(), v.to_string()];
    c.query_drop("SET gtid_next = 'AUTOMATIC:sluice_tag'").await.unwrap();
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (1, 1), (2, 2)")).await.unwrap();
    c.query_drop(format!("UPDATE `{db}`.t SET v = 10 WHERE id = 1")).await.unwrap();
    c.query_drop("SET gtid_next = 'AUTOMATIC'").await.unwrap();
    expect(vec![row(1, 10), row(2, 2)]).await;
    // The catalog's checkpoint now holds the tagged interval; a restart resumes from it.
    run.kill9();
    let cat = sluice_catalog::Catalog::open(&dir.path().join("data")).await.unwrap();
    let gtids = cat.checkpoint(&db).await.unwrap().unwrap().checkpoint.gtid_set.unwrap_or_default();
    drop(cat);
    assert!(gtids.contains(":sluice_tag:"), "checkpoint GTID set without the tag: {gtids}");
    run.restart();
    c.query_drop("SET gtid_next = 'AUTOMATIC:sluice_tag'").await.unwrap();
    c.query_drop(format!("UPDATE `{db}`.t SET v = 20 WHERE id = 2")).await.unwrap();
    c.query_drop("SET gtid_next = 'AUTOMATIC'").await.unwrap();
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (3, 3)")).await.unwrap();
    expect(vec![row(1, 10), row(2, 20), row(3, 3)]).await;
    let log = run.log();
    assert!(log.contains("CDC reading the binlog after GTID set") && log.contains(":sluice_tag:"), "no resume by a tagged set:\n{log}");
}

/// `replication_mechanism: file_pos` resumes by file and offset (after a kill -9
/// too), and the pipe converges under a random workload.
async fn file_pos_resume(flavor: Flavor) {
    let db = unique(&format!("filepos_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    load_orders(&mut c, &db, &mut rng, 1, 1000).await;
    let mut spec = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    spec["source"]["replication_mechanism"] = "file_pos".into();
    let dir = tempfile::tempdir().unwrap();
    let mut run = SluiceRun::start(dir.path(), &spec);
    let mut next_id = 10_000;
    for _ in 0..200 {
        random_write(&mut c, &db, &mut rng, &mut next_id, 1000).await;
    }
    eventually(T, || compare(flavor, &db, &ch_db)).await;
    // The copy may hold every write already: wait for CDC's own start before the crash.
    eventually_logged(T, || run.log(), "CDC reading the binlog from ").await;
    run.kill9();
    for _ in 0..200 {
        random_write(&mut c, &db, &mut rng, &mut next_id, 1000).await;
    }
    run.restart();
    eventually(T, || compare(flavor, &db, &ch_db)).await;
    let log = run.log();
    assert!(!log.contains("after GTID set"), "file_pos pipe resumed by GTIDs:\n{log}");
    assert!(log.matches("CDC reading the binlog from ").count() >= 2, "expected a start and a resume by position:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_file_pos_mechanism_resumes_by_position() {
    file_pos_resume(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_file_pos_mechanism_resumes_by_position() {
    file_pos_resume(Flavor::MariaDb).await;
}

/// `source.heartbeat_table`: while the tracked table is quiet, Sluice upserts
/// its row in the heartbeat table every `heartbeat_interval_ms`, the
/// checkpoint keeps up with the source's position, the heartbeat table is not
/// replicated, and lag stays low. A heartbeat table that cannot be written
/// (no such schema) is a warning with the fix, not a pipe failure.
async fn heartbeat_table(flavor: Flavor) {
    let (url, _) = fo_urls(flavor);
    let db = unique(&format!("hb_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql_url(&url).await;
    c.query_drop(format!("CREATE DATABASE `{db}`")).await.unwrap();
    c.query_drop(format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v INT)")).await.unwrap();
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (1, 1), (2, 2)")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let mut spec = spec_for_url(&db, &url, json!([{"source": format!("{db}.t")}]), &ch_db, "snapshot_and_cdc");
    spec["source"]["heartbeat_table"] = format!("{db}.beat").into();
    spec["settings"]["heartbeat_interval_ms"] = 300.into();
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec.clone())).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    let beat_sql = format!("SELECT CAST(beat_at AS CHAR(26)) FROM `{db}`.beat WHERE pipe = '{db}'");
    eventually(T, || async {
        let r = mysql_url(&url).await.query_first::<String, _>(&beat_sql).await.map_err(|e| e.to_string())?;
        r.map(|_| ()).ok_or_else(|| "no heartbeat row yet".to_string())
    })
    .await;
    let first: String = mysql_url(&url).await.query_first(&beat_sql).await.unwrap().unwrap();
    eventually(T, || async {
        let now = mysql_url(&url).await.query_first::<String, _>(&beat_sql).await.map_err(|e| e.to_string())?.unwrap_or_default();
        if now > first {
            Ok(())
        } else {
            Err(format!("heartbeat still at {now}"))
        }
    })
    .await;
    // The checkpoint reaches the source's current position (past the latest heartbeats).
    let info_sql = if flavor == Flavor::MySql { "SHOW BINARY LOG STATUS" } else { "SHOW MASTER STATUS" };
    let row: mysql_async::Row = mysql_url(&url).await.query_first(info_sql).await.unwrap().unwrap();
    let (file, pos): (String, u64) = (row.get(0).unwrap(), row.get(1).unwrap());
    eventually(T, || async {
        let (_, view) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
        let cp = &view["checkpoint"];
        let (f, p) = (cp["binlog_file"].as_str().unwrap_or_default().to_string(), cp["binlog_pos"].as_u64().unwrap_or(0));
        if f > file || (f == file && p >= pos) {
            Ok(())
        } else {
            Err(format!("checkpoint {f}:{p} behind the source's {file}:{pos}"))
        }
    })
    .await;
    let (_, view) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    let lag = view["lag_seconds"].as_f64().expect("lag is known");
    eprintln!("lag with heartbeats every 300 ms: {lag}s");
    assert_eq!(view["source"]["heartbeat_table"], format!("{db}.beat"));
    let tables = ch_rows(&format!("SELECT name FROM system.tables WHERE database = '{ch_db}' ORDER BY name")).await.unwrap();
    assert_eq!(tables, vec![vec!["t".to_string()]], "the heartbeat table is not replicated");

    // A heartbeat table the pipe cannot write: a warning naming the fix; data still flows.
    let bad = format!("{db}_b");
    let mut spec = spec_for_url(&bad, &url, json!([{"source": format!("{db}.t")}]), &format!("{bad}_ch"), "snapshot_and_cdc");
    spec["source"]["heartbeat_table"] = format!("nosuchschema_{bad}.beat").into();
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&bad, "Running", T).await;
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (3, 3)")).await.unwrap();
    eventually(T, || async {
        let n = ch_rows(&format!("SELECT count() FROM {bad}_ch.t FINAL")).await?;
        if n[0][0] == "3" {
            Ok(())
        } else {
            Err(format!("{n:?} rows"))
        }
    })
    .await;
    let log = srv.log();
    assert!(log.contains("cannot write the heartbeat") && log.contains("GRANT CREATE, INSERT, UPDATE"), "no heartbeat warning:\n{log}");
    assert_eq!(srv.state(&bad).await, "Running");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_heartbeat_table_keeps_a_quiet_pipe_moving() {
    heartbeat_table(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_heartbeat_table_keeps_a_quiet_pipe_moving() {
    heartbeat_table(Flavor::MariaDb).await;
}

/// On an idle server the binlog stream's heartbeat events (every 5 s) carry
/// the server's position, which the reader offers as a checkpoint.
async fn heartbeat_event_checkpoint(url: &str) {
    use sluice_source::binlog::{BinlogEvent, BinlogReader, ResumeBy};
    let u = url::Url::parse(url).unwrap();
    let spec: sluice_core::PipeSpec =
        sluice_core::PipeSpec::from_json(&spec_for_url("hbevent", url, json!([{"source": "x.y"}]), "unused", "cdc_only").to_string())
            .unwrap();
    let mut c = sluice_source::conn::connect(&spec.source).await.unwrap();
    let info = sluice_source::conn::server_info(&mut c).await.unwrap();
    for attempt in 0..4 {
        let (position, gtid_set) = sluice_source::conn::current_position(&mut c, &info).await.unwrap();
        let from = sluice_core::Checkpoint { position: position.clone(), gtid_set };
        let bin = sluice_source::conn::connect(&spec.source).await.unwrap();
        let mut reader =
            BinlogReader::start(bin, info.flavor, spec.server_id(), "sluice-test:hb", &from, ResumeBy::FilePos, vec![]).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if let Ok(Ok(Some(BinlogEvent::Heartbeat { checkpoint }))) = tokio::time::timeout(Duration::from_secs(15), reader.next()).await
            {
                let cp = checkpoint.expect("an idle stream's heartbeat offers a checkpoint");
                let (now, _) = sluice_source::conn::current_position(&mut c, &info).await.unwrap();
                if cp.position == now {
                    return;
                }
                // Someone wrote meanwhile; the heartbeat may not be the newest position: try again.
                assert!(cp.position >= position, "heartbeat position {} before the start {position}", cp.position);
                break;
            }
        }
        eprintln!("attempt {attempt} on {}: no quiet heartbeat", u.port().unwrap());
    }
    panic!("no heartbeat with the server's position on {url}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_heartbeat_events_carry_a_checkpoint() {
    heartbeat_event_checkpoint(&testbed_url("SLUICE_TEST_MARIADB_FO_REPLICA_URL")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_heartbeat_events_carry_a_checkpoint() {
    heartbeat_event_checkpoint(&testbed_url("SLUICE_TEST_MYSQL_FO_REPLICA_URL")).await;
}
