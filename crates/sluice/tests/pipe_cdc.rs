//! The core data path end to end against the test bed's real servers:
//! snapshot + binlog CDC from MySQL and MariaDB into ClickHouse, crashes included.

mod common;
use common::*;
use mysql_async::prelude::*;
use mysql_async::Conn;
use rand::{Rng, SeedableRng};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(90);

async fn create_schema(c: &mut Conn, db: &str) {
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!(
        "CREATE TABLE {db}.orders (id BIGINT PRIMARY KEY, customer VARCHAR(64) NOT NULL, qty INT NULL, \
         price DECIMAL(12,2) NOT NULL, created DATETIME(6) NOT NULL, score DOUBLE NULL, \
         status ENUM('new','paid','shipped') NOT NULL, doc JSON NULL, ts TIMESTAMP(3) NULL, big BIGINT UNSIGNED NOT NULL)"
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "CREATE TABLE {db}.items (order_id BIGINT, line INT, sku VARBINARY(32) NOT NULL, note TEXT, PRIMARY KEY (order_id, line))"
    ))
    .await
    .unwrap();
}

const STATUSES: [&str; 3] = ["new", "paid", "shipped"];

fn order_values(rng: &mut impl Rng, id: u64) -> String {
    let qty = if rng.gen_bool(0.2) { "NULL".to_string() } else { rng.gen_range(-5..1000).to_string() };
    let score = if rng.gen_bool(0.2) { "NULL".to_string() } else { format!("{}", rng.gen_range(-1e6..1e6f64)) };
    let doc = if rng.gen_bool(0.3) {
        "NULL".to_string()
    } else {
        format!("'{{\"k\": {}, \"tags\": [\"a\", \"b\"], \"s\": \"é\"}}'", rng.gen_range(0..100))
    };
    let ts = if rng.gen_bool(0.2) { "NULL".to_string() } else { format!("'2024-03-{:02} 10:11:12.{:03}'", rng.gen_range(1..28), rng.gen_range(0..1000)) };
    format!(
        "({id}, 'cust-{}-ü', {qty}, {}.{:02}, '2023-{:02}-{:02} 01:02:03.{:06}', {score}, '{}', {doc}, {ts}, {})",
        rng.gen_range(0..1000),
        rng.gen_range(0..100000),
        rng.gen_range(0..100),
        rng.gen_range(1..13),
        rng.gen_range(1..29),
        rng.gen_range(0..1_000_000),
        STATUSES[rng.gen_range(0..3)],
        if rng.gen_bool(0.1) { u64::MAX } else { rng.gen::<u32>() as u64 },
    )
}

async fn load_orders(c: &mut Conn, db: &str, rng: &mut impl Rng, from: u64, n: u64) {
    let mut id = from;
    while id < from + n {
        let end = (id + 2000).min(from + n);
        let values: Vec<String> = (id..end).map(|i| order_values(rng, i)).collect();
        c.query_drop(format!("INSERT INTO {db}.orders VALUES {}", values.join(","))).await.unwrap();
        id = end;
    }
}

/// One random write: insert, update, PK update, delete, or a multi-row transaction over both tables.
async fn random_write(c: &mut Conn, db: &str, rng: &mut impl Rng, next_id: &mut u64, max_id: u64) {
    let id = rng.gen_range(1..max_id.max(2));
    match rng.gen_range(0..7) {
        0 => {
            let v = order_values(rng, *next_id);
            *next_id += 1;
            c.query_drop(format!("INSERT INTO {db}.orders VALUES {v}")).await.unwrap();
        }
        1 => {
            c.query_drop(format!(
                "UPDATE {db}.orders SET qty = {}, status = '{}', doc = JSON_OBJECT('u', {}) WHERE id = {id}",
                rng.gen_range(0..50),
                STATUSES[rng.gen_range(0..3)],
                rng.gen_range(0..9)
            ))
            .await
            .unwrap();
        }
        2 => {
            // Primary-key change: the old key must disappear from FINAL.
            let new_id = *next_id;
            *next_id += 1;
            c.query_drop(format!("UPDATE {db}.orders SET id = {new_id} WHERE id = {id}")).await.unwrap();
        }
        3 => {
            c.query_drop(format!("DELETE FROM {db}.orders WHERE id = {id}")).await.unwrap();
        }
        4 => {
            c.query_drop(format!("UPDATE {db}.orders SET price = price + 1.25, score = NULL WHERE id BETWEEN {id} AND {}", id + 20))
                .await
                .unwrap();
        }
        _ => {
            let mut tx = c.start_transaction(Default::default()).await.unwrap();
            let oid = rng.gen_range(1..200u64);
            for line in 0..rng.gen_range(1..6) {
                tx.query_drop(format!(
                    "INSERT INTO {db}.items VALUES ({oid}, {line}, X'00{:02x}00', 'n{}') ON DUPLICATE KEY UPDATE note = CONCAT(note, '+')",
                    rng.gen::<u8>(),
                    rng.gen::<u16>()
                ))
                .await
                .unwrap();
            }
            tx.query_drop(format!("DELETE FROM {db}.items WHERE order_id = {} AND line = 0", rng.gen_range(1..200u64))).await.unwrap();
            tx.query_drop(format!("UPDATE {db}.items SET line = line + 100 WHERE order_id = {oid} AND line = 1")).await.unwrap();
            tx.query_drop(format!("UPDATE {db}.orders SET customer = 'tx' WHERE id = {id}")).await.unwrap();
            tx.commit().await.unwrap();
        }
    }
}

fn normalise_decimal(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

fn normalise_json(s: &str) -> String {
    serde_json::from_str::<serde_json::Value>(s).map(|v| v.to_string()).unwrap_or_else(|_| s.to_string())
}

/// Both tables of `src_db` equal their destinations' `FINAL` rows (deletes hidden), value for value.
async fn compare(flavor: Flavor, src_db: &str, ch_db: &str) -> Result<(), String> {
    let mut c = mysql(flavor).await;
    let orders_src = src_rows(
        &mut c,
        &format!(
            "SELECT id, customer, qty, CAST(price AS CHAR), DATE_FORMAT(created, '%Y-%m-%d %H:%i:%s.%f'), score, CAST(status AS CHAR), \
             doc, LEFT(DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f'), 23), big FROM {src_db}.orders ORDER BY id"
        ),
    )
    .await;
    let items_src = src_rows(&mut c, &format!("SELECT order_id, line, HEX(sku), note FROM {src_db}.items ORDER BY order_id, line")).await;
    let _ = c.disconnect().await;
    let orders_dst = ch_rows(&format!(
        "SELECT id, customer, qty, toString(price), toString(created), score, status, doc, toString(ts), big \
         FROM {ch_db}.orders FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id"
    ))
    .await?;
    let items_dst = ch_rows(&format!(
        "SELECT order_id, line, hex(sku), note FROM {ch_db}.items FINAL WHERE _peerdb_is_deleted = 0 ORDER BY order_id, line"
    ))
    .await?;
    let fix = |rows: Vec<Vec<String>>| -> Vec<Vec<String>> {
        rows.into_iter()
            .map(|mut r| {
                r[3] = normalise_decimal(&r[3]);
                r[7] = normalise_json(&r[7]);
                r
            })
            .collect()
    };
    diff(&fix(orders_src), &fix(orders_dst)).map_err(|e| format!("orders: {e}"))?;
    diff(&items_src, &items_dst).map_err(|e| format!("items: {e}"))
}

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
    spec["settings"]["snapshot_rows_per_chunk"] = 5000.into();
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
    let _run = SluiceRun::start(&f.dir.path().join("cdc"), &cdc_spec);
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
        if ids == ["1", "2", "3", "9999"] { Ok(()) } else { Err(format!("cdc_only rows {ids:?}")) }
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
