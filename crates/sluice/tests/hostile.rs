//! Server settings that break CDC are detected before they break it, each
//! with its fix: by `sluice check` and by Setup (`ChangeSource::check`), and,
//! for MariaDB's compressed events, by the binlog reader itself.
//!
//! Settings are changed with `SET GLOBAL` only on the test bed's scratch
//! MariaDB (nothing else depends on its settings), one at a time inside one
//! test function, and restored at once. MySQL's
//! `binlog_transaction_compression` is a session setting: compressed
//! transactions are written by the test's own session on the shared MySQL.

mod common;
use common::workload::*;
use common::*;
use mysql_async::prelude::*;
use rand::SeedableRng;
use serde_json::json;
use sluice_source::ChangeSource;
use std::process::Command;
use std::time::Duration;

fn check_json(spec: &serde_json::Value, dir: &std::path::Path) -> (bool, serde_json::Value) {
    let path = dir.join(format!("check-{}.json", rand::random::<u32>()));
    std::fs::write(&path, spec.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["check", "--json", "--config"]).arg(&path).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.success(), v)
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_hostile_settings_are_refused_with_their_fix() {
    let url = testbed_url("SLUICE_TEST_MARIADB_SCRATCH_URL");
    let db = unique("hostile");
    let mut c = mysql_url(&url).await;
    create_schema(&mut c, &db).await;
    let spec_json = spec_for_url(&db, &url, json!([{"source": format!("{db}.orders")}]), "unused", "snapshot_and_cdc");
    let spec = sluice_core::PipeSpec::from_json(&spec_json.to_string()).unwrap();
    let source = sluice_source::MySqlSource::new(&spec);
    let dir = tempfile::tempdir().unwrap();

    let (ok, v) = check_json(&spec_json, dir.path());
    assert!(ok, "the scratch server should pass as configured: {v}");

    for (var, value, name, fix) in [
        ("binlog_row_image", "MINIMAL", "binlog_row_image", "binlog_row_image = 'FULL'"),
        ("binlog_row_image", "NOBLOB", "binlog_row_image", "binlog_row_image = 'FULL'"),
        ("binlog_row_metadata", "MINIMAL", "binlog_row_metadata", "binlog_row_metadata = 'FULL'"),
        ("log_bin_compress", "ON", "log_bin_compress", "log_bin_compress = OFF"),
    ] {
        let before: String = c.query_first(format!("SELECT @@GLOBAL.{var}")).await.unwrap().unwrap();
        c.query_drop(format!("SET GLOBAL {var} = '{value}'")).await.unwrap();
        let checked = check_json(&spec_json, dir.path());
        let setup = source.check().await;
        c.query_drop(format!("SET GLOBAL {var} = {}", sql_value(&before))).await.unwrap();

        let (ok, v) = checked;
        let failed: Vec<&serde_json::Value> = v["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).collect();
        assert!(!ok && failed.len() == 1 && failed[0]["name"] == name, "{var}={value}: {v}");
        assert!(failed[0]["fix"].as_str().unwrap().contains(fix), "{var}={value}: {v}");
        assert!(failed[0]["found"].as_str().unwrap().contains(value), "{var}={value}: {v}");
        let e = setup.expect_err("Setup accepted a hostile setting").to_string();
        assert!(e.contains(name) && e.contains(fix), "{var}={value}: {e}");
    }
    let (ok, v) = check_json(&spec_json, dir.path());
    assert!(ok, "settings restored: {v}");
    // Serially, as it changes a setting too.
    compressed_events_stop_the_stream_clearly(&url, &db, &spec).await;
}

/// A value as SQL: numbers bare (MariaDB shows booleans as 0/1), words quoted.
fn sql_value(v: &str) -> String {
    if v.parse::<i64>().is_ok() {
        v.to_string()
    } else {
        format!("'{v}'")
    }
}

/// A compressed event the reader meets (log_bin_compress switched on after
/// the check) stops the stream with the fix instead of being skipped.
async fn compressed_events_stop_the_stream_clearly(url: &str, db: &str, spec: &sluice_core::PipeSpec) {
    use sluice_source::binlog::{BinlogReader, ResumeBy};
    let mut c = mysql_url(url).await;
    let mut meta = sluice_source::conn::connect(&spec.source).await.unwrap();
    let info = sluice_source::conn::server_info(&mut meta).await.unwrap();
    let (position, gtid_set) = sluice_source::conn::current_position(&mut meta, &info).await.unwrap();
    let from = sluice_core::Checkpoint { position, gtid_set };
    let bin = sluice_source::conn::connect(&spec.source).await.unwrap();
    let mut reader =
        BinlogReader::start(bin, info.flavor, spec.server_id(), "sluice-test:compressed", &from, ResumeBy::FilePos, vec![]).await.unwrap();

    let before: String = c.query_first("SELECT @@GLOBAL.log_bin_compress").await.unwrap().unwrap();
    c.query_drop("SET GLOBAL log_bin_compress = ON").await.unwrap();
    // Only sessions opened now compress; a long row is compressed (log_bin_compress_min_len).
    let mut w = mysql_url(url).await;
    let written = w.query_drop(format!("INSERT INTO {db}.items VALUES (1, 1, 'sku', '{}')", "compress me ".repeat(200))).await;
    c.query_drop(format!("SET GLOBAL log_bin_compress = {}", sql_value(&before))).await.unwrap();
    written.unwrap();

    let e = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match reader.next().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without an error"),
                Err(e) => return e,
            }
        }
    })
    .await
    .expect("the compressed event was not refused");
    assert!(!e.is_transient(), "{e}");
    assert!(e.to_string().contains("log_bin_compress = OFF"), "{e}");
}

/// MySQL's compressed transactions (`binlog_transaction_compression=ON`, a
/// TRANSACTION_PAYLOAD event per transaction) are read: the pipe converges,
/// including after a restart from a checkpoint taken inside the compressed stretch.
#[tokio::test(flavor = "multi_thread")]
async fn mysql_compressed_transactions_are_replicated() {
    let flavor = Flavor::MySql;
    let db = unique("zstd_my");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(81);
    load_orders(&mut c, &db, &mut rng, 1, 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    let mut run = SluiceRun::start(dir.path(), &spec);
    eventually(Duration::from_secs(90), || compare(flavor, &db, &ch_db)).await;

    c.query_drop("SET SESSION binlog_transaction_compression = ON").await.unwrap();
    let mut next_id = 100_000;
    for i in 0..300 {
        if i % 50 == 0 {
            // Multi-statement transactions are one compressed payload each.
            c.query_drop("BEGIN").await.unwrap();
            for _ in 0..20 {
                random_write(&mut c, &db, &mut rng, &mut next_id, 1_000).await;
            }
            c.query_drop("COMMIT").await.unwrap();
        }
        random_write(&mut c, &db, &mut rng, &mut next_id, 1_000).await;
        if i == 150 {
            run.kill9();
            run.restart();
        }
    }
    eventually(Duration::from_secs(120), || compare(flavor, &db, &ch_db)).await;
    assert!(run.is_running(), "{}", run.log());
}

/// A session that writes partial row images (`SET SESSION binlog_row_image =
/// MINIMAL`, which no global check can see) puts that table in Error with the
/// fix instead of shifting values into the wrong columns; other tables go on.
async fn partial_row_images_stop_only_their_table(flavor: Flavor) {
    let db = unique(&format!("minimal_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(91);
    load_orders(&mut c, &db, &mut rng, 1, 200).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    let mut run = SluiceRun::start(dir.path(), &spec);
    eventually(Duration::from_secs(90), || compare(flavor, &db, &ch_db)).await;

    let mut minimal = mysql(flavor).await;
    minimal.query_drop("SET SESSION binlog_row_image = 'MINIMAL'").await.unwrap();
    minimal.query_drop(format!("UPDATE {db}.orders SET qty = 4242 WHERE id = 7")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.items VALUES (9, 1, 'after', 'still flowing')")).await.unwrap();
    eventually(Duration::from_secs(90), || async {
        let log = run.log();
        if log.contains("binlog_row_image MINIMAL or NOBLOB") {
            Ok(())
        } else {
            Err("no error naming binlog_row_image yet".to_string())
        }
    })
    .await;
    eventually(Duration::from_secs(90), || async {
        let rows = ch_rows(&format!("SELECT note FROM {ch_db}.items FINAL WHERE order_id = 9 AND _peerdb_is_deleted = 0")).await?;
        if rows == vec![vec!["still flowing".to_string()]] {
            Ok(())
        } else {
            Err(format!("items: {rows:?}"))
        }
    })
    .await;
    // The partial update was not applied as a row (its other columns would be wrong).
    let qty = ch_rows(&format!("SELECT qty FROM {ch_db}.orders FINAL WHERE id = 7")).await.unwrap();
    assert_ne!(qty, vec![vec!["4242".to_string()]], "{}", run.log());
    assert!(run.is_running(), "{}", run.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_partial_row_images_stop_only_their_table() {
    partial_row_images_stop_only_their_table(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_partial_row_images_stop_only_their_table() {
    partial_row_images_stop_only_their_table(Flavor::MariaDb).await;
}

/// `gtid_mode` lowered while a pipe follows MySQL by GTIDs (on the test bed's
/// scratch MySQL, which nothing else uses): `sluice check` warns during the
/// transition, and the first transaction written without a GTID stops the
/// pipe with the fix — it is never skipped, and the checkpoint stays before it.
/// The scratch server was initialised with `lower_case_table_names=1`:
/// `sluice check` warns of it, and the pipe replicates all the same.
#[tokio::test(flavor = "multi_thread")]
async fn mysql_gtid_mode_lowered_while_a_pipe_runs_stops_it_clearly() {
    let url = testbed_url("SLUICE_TEST_MYSQL_SCRATCH_URL");
    let mut c = mysql_url(&url).await;
    // Only this test uses the scratch MySQL; a run interrupted while gtid_mode was lowered left it
    // there, so it is raised back to ON step by step first (MySQL allows one step at a time).
    let mode: String = c.query_first("SELECT @@GLOBAL.gtid_mode").await.unwrap().unwrap();
    let steps = ["OFF", "OFF_PERMISSIVE", "ON_PERMISSIVE", "ON"];
    let at = steps.iter().position(|s| *s == mode).unwrap_or_else(|| panic!("unknown gtid_mode {mode}"));
    for step in &steps[at + 1..] {
        c.query_drop(format!("SET GLOBAL gtid_mode = {step}")).await.unwrap();
    }
    let db = unique("gtidmode");
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(83);
    load_orders(&mut c, &db, &mut rng, 1, 300).await;
    let ch_db = format!("{db}_ch");
    let spec = spec_for_url(&db, &url, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    let dir = tempfile::tempdir().unwrap();
    let (ok, v) = check_json(&spec, dir.path());
    let lctn: Vec<&serde_json::Value> = v["checks"].as_array().unwrap().iter().filter(|c| c["name"] == "lower_case_table_names").collect();
    assert!(
        ok && lctn.len() == 1
            && lctn[0]["warning"] == true
            && lctn[0]["found"].as_str().unwrap().contains("lower_case_table_names=1")
            && !lctn[0]["fix"].as_str().unwrap().is_empty(),
        "sluice check on a server with lower_case_table_names=1: {v}"
    );
    let mut run = SluiceRun::start(dir.path(), &spec);
    let mut next_id = 100_000;
    for _ in 0..50 {
        random_write(&mut c, &db, &mut rng, &mut next_id, 300).await;
    }
    eventually(Duration::from_secs(180), || compare_url(&url, &db, &ch_db)).await;
    // The copy may hold every write already: the stream must be following the source by GTIDs
    // (gtid_mode ON when it connected) before gtid_mode is lowered. A stream that connects after
    // it was lowered is positioned by file and offset, and rightly goes on (with a warning).
    eventually_logged(Duration::from_secs(180), || run.log(), "CDC reading the binlog after GTID set ").await;
    random_write(&mut c, &db, &mut rng, &mut next_id, 300).await;
    eventually(Duration::from_secs(180), || compare_url(&url, &db, &ch_db)).await;

    // Lowered step by step, as MySQL allows; new transactions are anonymous at OFF_PERMISSIVE.
    c.query_drop("SET GLOBAL gtid_mode = ON_PERMISSIVE").await.unwrap();
    let (ok, v) = check_json(&spec, dir.path());
    let warned = v["checks"].as_array().unwrap().iter().any(|c| c["name"] == "replication_mechanism" && c["warning"] == true);
    c.query_drop("SET GLOBAL gtid_mode = OFF_PERMISSIVE").await.unwrap();
    for _ in 0..5 {
        random_write(&mut c, &db, &mut rng, &mut next_id, 300).await;
    }
    let stopped = run.wait_exit(Duration::from_secs(180));
    // Back to ON for the next run of the suite, before asserting anything.
    c.query_drop("SET GLOBAL gtid_mode = ON_PERMISSIVE").await.unwrap();
    c.query_drop("SET GLOBAL gtid_mode = ON").await.unwrap();

    assert!(ok && warned, "sluice check during ON_PERMISSIVE: {v}");
    let log = run.log();
    assert!(!stopped, "sluice run should fail, not finish:\n{log}");
    assert!(
        // Met in the stream, or refused by the server itself (MySQL 9.7: "Cannot replicate anonymous
        // transaction when AUTO_POSITION = 1"): either way the same fix.
        (log.contains("the source wrote a transaction without a GTID at") || log.contains("the source stopped the stream at"))
            && log.contains("gtid_mode was lowered from ON")
            && log.contains("SET PERSIST gtid_mode = ON"),
        "no clear error:\n{log}"
    );
}
