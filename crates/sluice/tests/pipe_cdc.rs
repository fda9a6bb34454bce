//! The core data path end to end against the test bed's real servers:
//! snapshot + binlog CDC from MySQL and MariaDB into ClickHouse, crashes included.

mod common;
use common::workload::*;
use common::*;
use mysql_async::prelude::*;

use rand::SeedableRng;
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(90);

struct Fixture {
    flavor: Flavor,
    db: String,
    ch_db: String,
    dir: tempfile::TempDir,
}

async fn fixture(flavor: Flavor, name: &str) -> Fixture {
    let db = unique(&format!("{name}_{}", flavor.tag()));
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    Fixture { flavor, ch_db: format!("{db}_ch"), db, dir: tempfile::tempdir().unwrap() }
}

impl Fixture {
    fn spec(&self, mode: &str) -> serde_json::Value {
        spec(&self.db, self.flavor, serde_json::json!([{"source": format!("{}.*", self.db)}]), &self.ch_db, mode)
    }
}

/// A 200,000-row snapshot taken while a writer changes the table, then CDC, converges exactly.
async fn snapshot_under_write_load(flavor: Flavor) {
    let f = fixture(flavor, "snapload").await;
    let mut c = mysql(flavor).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    load_orders(&mut c, &f.db, &mut rng, 1, 200_000).await;
    let mut run = SluiceRun::start(f.dir.path(), &f.spec("snapshot_and_cdc"));
    let db = f.db.clone();
    let writer = tokio::spawn(async move {
        let mut c = mysql(flavor).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let mut next_id = 300_000;
        for _ in 0..1500 {
            random_write(&mut c, &db, &mut rng, &mut next_id, 200_000).await;
        }
    });
    writer.await.unwrap();
    eventually(Duration::from_secs(240), || compare(flavor, &f.db, &f.ch_db)).await;
    assert!(run.is_running(), "sluice exited:\n{}", run.log());
    let log = run.log();
    for state in ["Provisioning", "Setup", "Snapshot", "Running"] {
        assert!(log.contains(&format!("→ {state}")), "log lacks the transition to {state}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_snapshot_under_write_load() {
    snapshot_under_write_load(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_snapshot_under_write_load() {
    snapshot_under_write_load(Flavor::MariaDb).await;
}

/// A random workload over two tables while the pipe runs, with a kill -9 during
/// the snapshot and another during CDC, converges with nothing lost.
async fn random_workload_with_crashes(flavor: Flavor) {
    let f = fixture(flavor, "crash").await;
    let mut c = mysql(flavor).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    load_orders(&mut c, &f.db, &mut rng, 1, 60_000).await;
    let mut spec = f.spec("snapshot_and_cdc");
    // Small chunks: the snapshot must still be running when it is killed.
    spec["settings"]["snapshot_rows_per_chunk"] = 500.into();
    let mut run = SluiceRun::start(f.dir.path(), &spec);
    // Kill during the snapshot: wait until some but not all rows arrived.
    eventually(Duration::from_secs(60), || async {
        let n = ch_rows(&format!("SELECT count() FROM {}.orders", f.ch_db)).await.unwrap_or_default();
        match n.first().and_then(|r| r.first()).and_then(|v| v.parse::<u64>().ok()) {
            Some(n) if n > 0 => Ok(()),
            _ => Err("no snapshot rows yet".into()),
        }
    })
    .await;
    run.kill9();
    let mut next_id = 100_000;
    for _ in 0..300 {
        random_write(&mut c, &f.db, &mut rng, &mut next_id, 60_000).await;
    }
    run.restart();
    for _ in 0..600 {
        random_write(&mut c, &f.db, &mut rng, &mut next_id, 60_000).await;
    }
    eventually(CONVERGE, || compare(flavor, &f.db, &f.ch_db)).await;
    // Kill during CDC, with writes before and after the crash.
    for _ in 0..300 {
        random_write(&mut c, &f.db, &mut rng, &mut next_id, 60_000).await;
    }
    run.kill9();
    for _ in 0..300 {
        random_write(&mut c, &f.db, &mut rng, &mut next_id, 60_000).await;
    }
    run.restart();
    eventually(CONVERGE, || compare(flavor, &f.db, &f.ch_db)).await;
    assert!(run.log().contains("resuming after the last acknowledged key"), "snapshot did not resume mid-table:\n{}", run.log());
    // _peerdb_version never goes backwards for a key: the newest row of each key is the one FINAL shows.
    let bad = ch_rows(&format!(
        "SELECT count() FROM (SELECT id, argMax(_peerdb_is_deleted, _peerdb_version) AS d FROM {}.orders GROUP BY id) \
         WHERE d = 0 AND id NOT IN (SELECT id FROM {}.orders FINAL WHERE _peerdb_is_deleted = 0)",
        f.ch_db, f.ch_db
    ))
    .await
    .unwrap();
    assert_eq!(bad[0][0], "0");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_random_workload_with_crashes() {
    random_workload_with_crashes(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_random_workload_with_crashes() {
    random_workload_with_crashes(Flavor::MariaDb).await;
}

/// snapshot_only copies and ends Completed; cdc_only copies nothing old and applies later changes.
async fn modes(flavor: Flavor) {
    let f = fixture(flavor, "modes").await;
    let mut c = mysql(flavor).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    load_orders(&mut c, &f.db, &mut rng, 1, 500).await;
    let mut run = SluiceRun::start(&f.dir.path().join("snap"), &f.spec("snapshot_only"));
    assert!(run.wait_exit(Duration::from_secs(60)), "snapshot_only failed:\n{}", run.log());
    assert!(run.log().contains("→ Completed"), "{}", run.log());
    compare(flavor, &f.db, &f.ch_db).await.unwrap();

    let cdc_db = format!("{}_cdc", f.ch_db);
    let mut cdc_spec = f.spec("cdc_only");
    cdc_spec["name"] = format!("{}_cdc", f.db).into();
    cdc_spec["destination"]["database"] = cdc_db.clone().into();
    let cdc_run = SluiceRun::start(&f.dir.path().join("cdc"), &cdc_spec);
    // Changes count from the position Setup records: write only once the pipe is Running.
    eventually(Duration::from_secs(60), || async {
        if cdc_run.log().contains("→ Running") { Ok(()) } else { Err(format!("cdc_only pipe not Running:\n{}", cdc_run.log())) }
    })
    .await;
    eventually(Duration::from_secs(30), || async {
        let r = ch_rows(&format!("SELECT count() FROM {cdc_db}.orders")).await?;
        if r[0][0] == "0" { Ok(()) } else { Err(format!("cdc_only copied {} old rows", r[0][0])) }
    })
    .await;
    c.query_drop(format!("UPDATE {}.orders SET qty = 4242 WHERE id <= 3", f.db)).await.unwrap();
    c.query_drop(format!("INSERT INTO {}.orders VALUES {}", f.db, order_values(&mut rng, 9999))).await.unwrap();
    eventually(CONVERGE, || async {
        let r = ch_rows(&format!("SELECT id FROM {cdc_db}.orders FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id")).await?;
        let ids: Vec<&str> = r.iter().map(|x| x[0].as_str()).collect();
        if ids == ["1", "2", "3", "9999"] { Ok(()) } else { Err(format!("cdc_only rows {ids:?}; log:\n{}", cdc_run.log())) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_snapshot_only_and_cdc_only() {
    modes(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_snapshot_only_and_cdc_only() {
    modes(Flavor::MariaDb).await;
}

/// A snapshot in parallel partitions while a writer changes the table, killed
/// with -9 after some partitions finished: the restart copies only the
/// unfinished partitions, and the result converges.
async fn partitioned_snapshot_resumes_unfinished_partitions(flavor: Flavor) {
    let f = fixture(flavor, "parts").await;
    let mut c = mysql(flavor).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(31);
    load_orders(&mut c, &f.db, &mut rng, 1, 60_000).await;
    c.query_drop(format!("ANALYZE TABLE {}.orders", f.db)).await.unwrap();
    let mut spec = f.spec("snapshot_and_cdc");
    spec["settings"]["rows_per_partition"] = 5000.into();
    spec["settings"]["parallel_partitions"] = 3.into();
    spec["settings"]["snapshot_rows_per_chunk"] = 250.into();
    let mut run = SluiceRun::start(f.dir.path(), &spec);
    let db = f.db.clone();
    let writer = tokio::spawn(async move {
        let mut c = mysql(flavor).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(32);
        let mut next_id = 200_000;
        for _ in 0..400 {
            random_write(&mut c, &db, &mut rng, &mut next_id, 60_000).await;
        }
    });
    let done_re = |log: &str| -> Vec<(u32, u32)> {
        log.lines()
            .filter_map(|l| {
                let rest = l.split("partition ").nth(1)?;
                let (k, rest) = rest.split_once('/')?;
                let (n, rest) = rest.split_once(" of orders")?;
                if !rest.starts_with(" done") {
                    return None;
                }
                Some((k.parse().ok()?, n.parse().ok()?))
            })
            .collect()
    };
    eventually(Duration::from_secs(120), || async {
        let d = done_re(&run.log());
        if d.len() >= 3 { Ok(()) } else { Err(format!("{} partitions done so far:\n{}", d.len(), run.log())) }
    })
    .await;
    run.kill9();
    let before = run.log();
    let done = done_re(&before);
    let total = done[0].1;
    assert!(total >= 10, "expected about 12 partitions, planned {total}:\n{before}");
    assert!((done.len() as u32) < total, "every partition finished before the kill; nothing to resume:\n{before}");
    run.restart();
    writer.await.unwrap();
    eventually(CONVERGE, || compare(flavor, &f.db, &f.ch_db)).await;
    let after = run.log()[before.len()..].to_string();
    for (k, n) in &done {
        assert!(!after.contains(&format!("copying partition {k}/{n} of orders")), "finished partition {k}/{n} was read again:\n{after}");
    }
    assert!(after.contains("resuming after the last acknowledged keys"), "{after}");
    assert!(after.contains("copying partition"), "no partition was resumed:\n{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_partitioned_snapshot_resumes_unfinished_partitions() {
    partitioned_snapshot_resumes_unfinished_partitions(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_partitioned_snapshot_resumes_unfinished_partitions() {
    partitioned_snapshot_resumes_unfinished_partitions(Flavor::MariaDb).await;
}

/// A user-chosen partition key (an indexed NOT NULL integer column other than
/// the primary key) splits the snapshot; unusable choices are refused at Setup.
#[tokio::test(flavor = "multi_thread")]
async fn partition_key_column_splits_the_snapshot_and_bad_choices_are_refused() {
    let flavor = Flavor::MariaDb;
    let db = unique("pkey");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id VARCHAR(20) PRIMARY KEY, k INT NOT NULL, n INT NULL, plain INT NOT NULL, v TEXT, KEY (k), KEY (n))"
    ))
    .await
    .unwrap();
    let values: Vec<String> = (0..6000).map(|i| format!("('id-{i:05}', {}, {i}, {i}, 'v{i}')", (i * 7919) % 6000)).collect();
    c.query_drop(format!("INSERT INTO {db}.t VALUES {}", values.join(","))).await.unwrap();
    c.query_drop(format!("ANALYZE TABLE {db}.t")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (col, why) in [("plain", "not the first column of any index"), ("n", "must be NOT NULL"), ("v", "must be an integer"), ("nope", "no such column")] {
        let spec = spec(&format!("{db}_{col}"), flavor, serde_json::json!([{"source": format!("{db}.t"), "partition_key": col}]), &format!("{ch_db}_{col}"), "snapshot_only");
        let mut run = SluiceRun::start(&dir.path().join(col), &spec);
        assert!(!run.wait_exit(Duration::from_secs(60)), "partition_key {col} was accepted");
        assert!(run.log().contains(why), "refusal of {col} does not say {why:?}:\n{}", run.log());
    }
    let mut spec = spec(&db, flavor, serde_json::json!([{"source": format!("{db}.t"), "partition_key": "k"}]), &ch_db, "snapshot_and_cdc");
    spec["settings"]["rows_per_partition"] = 1000.into();
    spec["settings"]["snapshot_rows_per_chunk"] = 300.into();
    let run = SluiceRun::start(&dir.path().join("ok"), &spec);
    c.query_drop(format!("UPDATE {db}.t SET v = 'changed' WHERE k < 100")).await.unwrap();
    eventually(CONVERGE, || async {
        let src = src_rows(&mut mysql(flavor).await, &format!("SELECT id, k, n, plain, v FROM {db}.t ORDER BY id")).await;
        let dst = ch_rows(&format!("SELECT id, k, n, plain, v FROM {ch_db}.t FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id")).await?;
        diff(&src, &dst)
    })
    .await;
    let log = run.log();
    assert!(log.contains("6 partition(s)"), "expected 6 partitions of k:\n{log}");
}
