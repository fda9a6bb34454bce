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

#[tokio::test(flavor = "multi_thread")]
async fn mariadb118_snapshot_under_write_load() {
    snapshot_under_write_load(Flavor::MariaDb118).await;
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
    // Kill during the snapshot: wait until some but not all rows arrived — more than one
    // chunk per parallel reader (4 × 500), so that some partition wrote a chunk after its
    // first one, i.e. after the first chunk's progress was recorded (a resume point exists
    // whatever the machine's speed).
    eventually(Duration::from_secs(60), || async {
        let n = ch_rows(&format!("SELECT count() FROM {}.orders", f.ch_db)).await.unwrap_or_default();
        match n.first().and_then(|r| r.first()).and_then(|v| v.parse::<u64>().ok()) {
            Some(n) if n > 4 * 500 => Ok(()),
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

#[tokio::test(flavor = "multi_thread")]
async fn mariadb118_random_workload_with_crashes() {
    random_workload_with_crashes(Flavor::MariaDb118).await;
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
    eventually_logged(Duration::from_secs(60), || cdc_run.log(), "→ Running").await;
    eventually(Duration::from_secs(30), || async {
        let r = ch_rows(&format!("SELECT count() FROM {cdc_db}.orders")).await?;
        if r[0][0] == "0" {
            Ok(())
        } else {
            Err(format!("cdc_only copied {} old rows", r[0][0]))
        }
    })
    .await;
    c.query_drop(format!("UPDATE {}.orders SET qty = 4242 WHERE id <= 3", f.db)).await.unwrap();
    c.query_drop(format!("INSERT INTO {}.orders VALUES {}", f.db, order_values(&mut rng, 9999))).await.unwrap();
    eventually(CONVERGE, || async {
        let r = ch_rows(&format!("SELECT id FROM {cdc_db}.orders FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id")).await?;
        let ids: Vec<&str> = r.iter().map(|x| x[0].as_str()).collect();
        if ids == ["1", "2", "3", "9999"] {
            Ok(())
        } else {
            Err(format!("cdc_only rows {ids:?}; log:\n{}", cdc_run.log()))
        }
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

#[tokio::test(flavor = "multi_thread")]
async fn mariadb118_snapshot_only_and_cdc_only() {
    modes(Flavor::MariaDb118).await;
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
        if d.len() >= 3 {
            Ok(())
        } else {
            Err(format!("{} partitions done so far:\n{}", d.len(), run.log()))
        }
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

#[tokio::test(flavor = "multi_thread")]
async fn mariadb118_partitioned_snapshot_resumes_unfinished_partitions() {
    partitioned_snapshot_resumes_unfinished_partitions(Flavor::MariaDb118).await;
}

/// Words in several scripts (2-, 3- and 4-byte UTF-8): each group of three
/// rows spells one in lower, upper and title case, equal under a
/// case-insensitive collation.
const WORDS: [&str; 4] = ["été", "ωmega", "日本語", "🙂smile"];
/// The same for a latin1 column.
const LATIN1_WORDS: [&str; 4] = ["été", "ærø", "naïve", "zoë"];

fn spelling(word: &str, j: usize) -> String {
    match j {
        0 => word.to_lowercase(),
        1 => word.to_uppercase(),
        _ => word.chars().take(1).flat_map(char::to_uppercase).chain(word.chars().skip(1)).collect(),
    }
}

/// Every column of `table` in the source and in the destination (FINAL, not
/// deleted), ordered by `key`: row count and every value must be equal.
async fn same_rows(flavor: Flavor, db: &str, ch_db: &str, table: &str, cols: &str, key: &str) -> Result<(), String> {
    let mut c = mysql(flavor).await;
    c.query_drop("SET time_zone = '+00:00'").await.map_err(|e| e.to_string())?;
    let src = src_rows(&mut c, &format!("SELECT {cols} FROM {db}.{table} ORDER BY {key}")).await;
    let dst = ch_rows(&format!("SELECT {cols} FROM {ch_db}.{table} FINAL WHERE _peerdb_is_deleted = 0 ORDER BY {key}")).await?;
    if src.len() < 1000 {
        return Err(format!("{table}: only {} source rows", src.len()));
    }
    diff(&src, &dst).map_err(|e| format!("{ch_db}.{table}: {e}"))
}

/// The "`db`.`table` → table: N partition(s)" line of a copy.
fn partitions_logged(log: &str, db: &str, table: &str) -> Option<u64> {
    let marker = format!("copying `{db}`.`{table}` → {table}: ");
    let rest = &log[log.find(&marker)? + marker.len()..];
    rest.split(' ').next()?.parse().ok()
}

/// User-chosen partition keys split the snapshot: an integer, a DATE, a
/// TIMESTAMP(6) (equal-width ranges: as many partitions as the row estimate
/// asks for), a case- and accent-insensitive utf8mb4 VARCHAR and a latin1
/// VARCHAR with values equal under the collation but not in bytes (bounds
/// sampled from the index); a table keyed by a DATETIME is split without a
/// partition_key. Each copy equals the source value for value. Unusable
/// choices are refused at Setup with the reason.
async fn partition_key_columns(flavor: Flavor) {
    let db = unique(&format!("pkey_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    c.query_drop("SET time_zone = '+00:00'").await.unwrap();
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id VARCHAR(20) PRIMARY KEY, k INT NOT NULL, n INT NULL, plain INT NOT NULL, v TEXT, \
         d DATE NOT NULL, ts TIMESTAMP(6) NOT NULL DEFAULT '2000-01-01 00:00:00', \
         s VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL, \
         l VARCHAR(40) CHARACTER SET latin1 COLLATE latin1_swedish_ci NOT NULL, \
         f DOUBLE NOT NULL, sp VARCHAR(40) NOT NULL, \
         KEY (k), KEY (n), KEY (d), KEY (ts), KEY (s), KEY (l), KEY (f), KEY (sp(4)), KEY (v(10)))"
    ))
    .await
    .unwrap();
    let values: Vec<String> = (0..6000)
        .map(|i| {
            let (g, j) = (i / 3, i % 3);
            format!(
                "('id-{i:05}', {}, {i}, {i}, 'v{i}', '2020-01-01' + INTERVAL {} DAY, \
                 TIMESTAMP('2024-03-10 01:02:03.500001') + INTERVAL {} MICROSECOND, '{}-{g:05}', '{}-{g:05}', {i}.5, 'sp{i}')",
                (i * 7919) % 6000,
                i % 600,
                i as u64 * 3_712_345,
                spelling(WORDS[g % 4], j),
                spelling(LATIN1_WORDS[g % 4], j),
            )
        })
        .collect();
    c.query_drop(format!("INSERT INTO {db}.t VALUES {}", values.join(","))).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.e (at DATETIME(3) NOT NULL, id INT NOT NULL, note VARCHAR(20), PRIMARY KEY (at, id))"))
        .await
        .unwrap();
    let values: Vec<String> =
        (0..3000).map(|i| format!("('2023-05-01 00:00:00' + INTERVAL {} MICROSECOND, {i}, 'e{i}')", i as u64 * 60_001_000)).collect();
    c.query_drop(format!("INSERT INTO {db}.e VALUES {}", values.join(","))).await.unwrap();
    // Keyed by a latin1 string with non-ASCII values: paging and partition bounds compare in its collation.
    c.query_drop(format!("CREATE TABLE {db}.g (id VARCHAR(20) CHARACTER SET latin1 PRIMARY KEY, val INT NOT NULL)")).await.unwrap();
    let values: Vec<String> = (0..1500).map(|i| format!("('{}-{i:04}', {i})", spelling(LATIN1_WORDS[i % 4], i % 3))).collect();
    c.query_drop(format!("INSERT INTO {db}.g VALUES {}", values.join(","))).await.unwrap();
    c.query_drop(format!("ANALYZE TABLE {db}.t, {db}.e, {db}.g")).await.unwrap();
    // Equal-width splits give ceil(estimate / rows_per_partition) ranges; read the estimate Sluice reads.
    let estimate = |table: &'static str| {
        let db = db.clone();
        async move {
            let n: Option<u64> = mysql(flavor)
                .await
                .exec_first("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", (&db, table))
                .await
                .unwrap();
            n.unwrap().div_ceil(1000)
        }
    };
    let (est_t, est_e, est_g) = (estimate("t").await, estimate("e").await, estimate("g").await);
    assert!(est_t > 1 && est_e > 1 && est_g > 1, "estimates {est_t}, {est_e}, {est_g}: nothing to split");

    let dir = tempfile::tempdir().unwrap();
    for (col, why) in [
        ("plain", "is not the first column of any index"),
        ("n", "must be NOT NULL"),
        ("v", "text columns can only be indexed by a prefix"),
        ("f", "must be an integer, date/datetime/timestamp or string (CHAR/VARCHAR/BINARY/VARBINARY) column, not double"),
        ("sp", "is indexed only by a prefix of its value"),
        ("nope", "no such column"),
    ] {
        let spec = spec(
            &format!("{db}_{col}"),
            flavor,
            serde_json::json!([{"source": format!("{db}.t"), "partition_key": col}]),
            &format!("{ch_db}_{col}"),
            "snapshot_only",
        );
        let mut run = SluiceRun::start(&dir.path().join(col), &spec);
        assert!(!run.wait_exit(Duration::from_secs(60)), "partition_key {col} was accepted");
        let want = format!("partition_key \"{col}\" of `{db}`.`t`: ");
        assert!(run.log().contains(&format!("{want}{why}")), "refusal of {col} does not say {want}{why}:\n{}", run.log());
    }

    let all = "id, k, n, plain, v, d, ts, s, l, f, sp";
    // Snapshot-only copies keyed by the date, timestamp and string columns (the source does not change meanwhile).
    // Strings: 6000 rows in groups of 3 equal values, a bound every 1000 rows strictly above the last: 5 bounds.
    for (col, want) in [("d", est_t), ("ts", est_t), ("s", 6), ("l", 6)] {
        let ch = format!("{ch_db}_{col}");
        let mut spec = spec(
            &format!("{db}_{col}"),
            flavor,
            serde_json::json!([{"source": format!("{db}.t"), "partition_key": col}]),
            &ch,
            "snapshot_only",
        );
        spec["settings"]["rows_per_partition"] = 1000.into();
        spec["settings"]["snapshot_rows_per_chunk"] = 300.into();
        let mut run = SluiceRun::start(&dir.path().join(format!("ok_{col}")), &spec);
        assert!(run.wait_exit(Duration::from_secs(120)), "snapshot keyed by {col} failed:\n{}", run.log());
        let log = run.log();
        assert_eq!(partitions_logged(&log, &db, "t"), Some(want), "partitions of {col}:\n{log}");
        same_rows(flavor, &db, &ch, "t", all, "id").await.unwrap();
        eprintln!("{flavor:?}: partition_key {col}: {want} partitions, copy equal to the source");
    }

    // Zero dates (lax sql_mode) do not count as MIN: the ranges span the real dates, none is empty,
    // and the zero-date rows (NULL in ClickHouse) are copied in the first, open-ended range.
    c.query_drop("SET SESSION sql_mode = ''").await.unwrap();
    c.query_drop(format!(
        "CREATE TABLE {db}.z (id INT PRIMARY KEY, at DATETIME NOT NULL, ts TIMESTAMP NOT NULL DEFAULT '2000-01-01', KEY (at), KEY (ts))"
    ))
    .await
    .unwrap();
    let values: Vec<String> =
        (0..900).map(|i| format!("({i}, '2024-01-01' + INTERVAL {i} HOUR, '2024-01-01' + INTERVAL {i} HOUR)")).collect();
    c.query_drop(format!(
        "INSERT INTO {db}.z VALUES (-1, '0000-00-00', '0000-00-00'), (-2, '0000-00-00', '0000-00-00'), {}",
        values.join(",")
    ))
    .await
    .unwrap();
    c.query_drop(format!("ANALYZE TABLE {db}.z")).await.unwrap();
    for col in ["at", "ts"] {
        let ch = format!("{ch_db}_z{col}");
        let mut spec = spec(
            &format!("{db}_z{col}"),
            flavor,
            serde_json::json!([{"source": format!("{db}.z"), "partition_key": col}]),
            &ch,
            "snapshot_only",
        );
        spec["settings"]["rows_per_partition"] = 100.into();
        spec["settings"]["snapshot_rows_per_chunk"] = 50.into();
        let mut run = SluiceRun::start(&dir.path().join(format!("z_{col}")), &spec);
        assert!(run.wait_exit(Duration::from_secs(120)), "snapshot keyed by {col} failed:\n{}", run.log());
        let log = run.log();
        let parts = partitions_logged(&log, &db, "z").unwrap_or(0);
        assert!(parts >= 5, "z by {col}: {parts} partitions:\n{log}");
        let sizes: Vec<u64> = log.split("done (").skip(1).filter_map(|r| r.split(' ').next()?.parse().ok()).collect();
        assert_eq!(sizes.len() as u64, parts, "{log}");
        assert!(sizes.iter().all(|n| *n > 0), "z by {col}: an empty partition (ranges stretched to the zero date?): {sizes:?}");
        assert_eq!(sizes.iter().sum::<u64>(), 902, "{sizes:?}");
        let got = ch_rows(&format!("SELECT count(), countIf(isNull({col})), uniqExact(id) FROM {ch}.z FINAL")).await.unwrap();
        assert_eq!(got, [["902", "2", "902"]], "z by {col}");
    }

    // snapshot_and_cdc keyed by the integer k, with e (primary key led by a DATETIME(3)) and g (latin1
    // VARCHAR primary key), split without a partition_key.
    let tables = serde_json::json!([{"source": format!("{db}.t"), "partition_key": "k"}, {"source": format!("{db}.e")}, {"source": format!("{db}.g")}]);
    let mut spec = spec(&db, flavor, tables, &ch_db, "snapshot_and_cdc");
    spec["settings"]["rows_per_partition"] = 1000.into();
    spec["settings"]["snapshot_rows_per_chunk"] = 300.into();
    let run = SluiceRun::start(&dir.path().join("ok"), &spec);
    c.query_drop(format!("UPDATE {db}.t SET v = 'changed' WHERE k < 100")).await.unwrap();
    let converged = || async {
        same_rows(flavor, &db, &ch_db, "t", all, "id").await?;
        same_rows(flavor, &db, &ch_db, "e", "at, id, note", "at, id").await?;
        same_rows(flavor, &db, &ch_db, "g", "id, val", "val").await
    };
    eventually(CONVERGE, converged).await;
    // Rows outside the planned ranges (below the first bound, above the last) arrive by CDC.
    c.query_drop(format!("INSERT INTO {db}.e VALUES ('2019-01-01 00:00:00.001', 1, 'before'), ('2030-01-01', 2, 'after')")).await.unwrap();
    c.query_drop(format!("UPDATE {db}.t SET s = 'ÉTÉ-99999', l = 'ÆRØ-99999' WHERE id = 'id-00000'")).await.unwrap();
    c.query_drop(format!("UPDATE {db}.g SET val = -val WHERE id LIKE 'ÆRØ%'")).await.unwrap();
    eventually(CONVERGE, converged).await;
    let log = run.log();
    assert_eq!(partitions_logged(&log, &db, "t"), Some(est_t), "partitions of k:\n{log}");
    assert_eq!(partitions_logged(&log, &db, "e"), Some(est_e), "partitions of e (DATETIME primary key):\n{log}");
    // 1500 distinct values, a bound every 1000 rows: one bound.
    assert_eq!(partitions_logged(&log, &db, "g"), Some(2), "partitions of g (latin1 VARCHAR primary key):\n{log}");
    eprintln!("{flavor:?}: partition_key k: {est_t} partitions; e by its DATETIME key: {est_e} partitions; g by its latin1 key: 2");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_partition_key_columns_split_the_snapshot_and_bad_choices_are_refused() {
    partition_key_columns(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_partition_key_columns_split_the_snapshot_and_bad_choices_are_refused() {
    partition_key_columns(Flavor::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb118_partition_key_columns_split_the_snapshot_and_bad_choices_are_refused() {
    partition_key_columns(Flavor::MariaDb118).await;
}
