//! The engine's guarantees, each provoked on purpose against the real servers:
//! whole transactions (a reader of `FINAL` never sees part of one, a pause
//! included), a stalled source connection (bytes held, no reset) detected and
//! recovered, a `snapshot_only` copy consistent as of one position, and a
//! crash at each named failpoint losing nothing.

mod common;
use common::workload::*;
use common::*;
use mysql_async::prelude::*;
use rand::SeedableRng;
use reqwest::Method;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONVERGE: Duration = Duration::from_secs(180);

// ------------------------------------------------------------ whole transactions

const ACCOUNTS: i64 = 100;
const BALANCE: i64 = 1000;
const BULK_ROWS: u64 = 120_000;

/// Transfers keep the sum of balances constant and every bulk transaction
/// inserts `BULK_ROWS` rows of one batch: a reader of `FINAL` that sees another
/// sum or part of a batch saw part of a transaction.
async fn whole_transactions(flavor: Flavor) {
    let db = unique(&format!("txn_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.acct (id INT PRIMARY KEY, balance BIGINT NOT NULL)")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.bulk (id BIGINT PRIMARY KEY, batch INT NOT NULL, pad VARCHAR(40) NOT NULL)")).await.unwrap();
    let values: Vec<String> = (1..=ACCOUNTS).map(|i| format!("({i}, {BALANCE})")).collect();
    c.query_drop(format!("INSERT INTO {db}.acct VALUES {}", values.join(","))).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let mut s = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    s["settings"] = json!({"sync_interval_ms": 200, "pull_batch_size": 100000});
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(s)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", CONVERGE).await;
    eventually(CONVERGE, || async {
        let r = ch_rows(&format!("SELECT count() FROM {ch_db}.acct FINAL WHERE _peerdb_is_deleted = 0")).await?;
        if r[0][0] == ACCOUNTS.to_string() {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    })
    .await;

    // The observer reads the destination as a user would, all along.
    let stop = Arc::new(AtomicBool::new(false));
    let observer = {
        let (stop, ch_db) = (stop.clone(), ch_db.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut reads = 0u64;
            while !stop.load(Ordering::SeqCst) {
                if let Ok(r) = ch_rows(&format!("SELECT sum(balance), count() FROM {ch_db}.acct FINAL WHERE _peerdb_is_deleted = 0")).await
                {
                    reads += 1;
                    if r[0] != vec![(ACCOUNTS * BALANCE).to_string(), ACCOUNTS.to_string()] {
                        seen.push(format!("accounts {r:?}"));
                    }
                }
                if let Ok(r) =
                    ch_rows(&format!("SELECT batch, count() FROM {ch_db}.bulk FINAL WHERE _peerdb_is_deleted = 0 GROUP BY batch")).await
                {
                    for row in r.iter().filter(|row| row[1] != BULK_ROWS.to_string()) {
                        seen.push(format!("batch {} has {} of {BULK_ROWS} rows", row[0], row[1]));
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (seen, reads)
        })
    };

    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    for round in 0..3u64 {
        for _ in 0..30 {
            let (a, b, x) = (
                rand::Rng::gen_range(&mut rng, 1..=ACCOUNTS),
                rand::Rng::gen_range(&mut rng, 1..=ACCOUNTS),
                rand::Rng::gen_range(&mut rng, 1..50),
            );
            c.query_drop(format!(
                "BEGIN; UPDATE {db}.acct SET balance = balance - {x} WHERE id = {a}; UPDATE {db}.acct SET balance = balance + {x} WHERE id = {b}; COMMIT"
            ))
            .await
            .unwrap();
        }
        // A one-row transaction is held, then a large one streams.
        c.query_drop(format!("BEGIN; UPDATE {db}.acct SET balance = balance + 0 WHERE id = 1; COMMIT")).await.unwrap();
        c.query_drop("BEGIN").await.unwrap();
        let mut id = round * 1_000_000;
        while id < round * 1_000_000 + BULK_ROWS {
            let values: Vec<String> = (id..id + 5000).map(|i| format!("({i}, {round}, 'padding-padding-padding-{i}')")).collect();
            c.query_drop(format!("INSERT INTO {db}.bulk VALUES {}", values.join(","))).await.unwrap();
            id += 5000;
        }
        c.query_drop("COMMIT").await.unwrap();
        if round == 1 {
            // Pausing while the large transaction streams writes committed transactions only.
            let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
            assert_eq!(code, 202, "{v}");
            srv.wait_state(&db, "Paused", CONVERGE).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
            assert!(code < 300, "{code} {v}");
            srv.wait_state(&db, "Running", CONVERGE).await;
        }
    }
    eventually(CONVERGE, || async {
        let r = ch_rows(&format!("SELECT count() FROM {ch_db}.bulk FINAL WHERE _peerdb_is_deleted = 0")).await?;
        if r[0][0] == (3 * BULK_ROWS).to_string() {
            Ok(())
        } else {
            Err(format!("bulk rows {r:?}"))
        }
    })
    .await;
    let acct_src = src_rows(&mut c, &format!("SELECT id, balance FROM {db}.acct ORDER BY id")).await;
    eventually(CONVERGE, || async {
        let dst = ch_rows(&format!("SELECT id, balance FROM {ch_db}.acct FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id")).await?;
        diff(&acct_src, &dst)
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let (seen, reads) = observer.await.unwrap();
    assert!(reads > 0, "the observer never read the destination");
    assert!(seen.is_empty(), "readers saw part of a transaction ({} times), e.g. {:?}", seen.len(), &seen[..seen.len().min(5)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_readers_never_see_part_of_a_transaction() {
    whole_transactions(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_readers_never_see_part_of_a_transaction() {
    whole_transactions(Flavor::MariaDb).await;
}

// ------------------------------------------------------------ stalled connections

/// A TCP forwarder whose `stall` freezes every connection open at that moment:
/// the sockets stay open and nothing is forwarded any more, in either
/// direction, and no reset is sent — a hung server or a black-holed path.
/// Connections opened afterwards are forwarded normally.
struct Staller {
    port: u16,
    epoch: Arc<AtomicU64>,
}

impl Staller {
    async fn start(target: std::net::SocketAddr) -> Staller {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let epoch = Arc::new(AtomicU64::new(0));
        let e = epoch.clone();
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { return };
                let born = e.load(Ordering::SeqCst);
                let e = e.clone();
                tokio::spawn(async move {
                    let Ok(out) = tokio::net::TcpStream::connect(target).await else { return };
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = out.into_split();
                    tokio::join!(pump(ri, wo, born, e.clone()), pump(ro, wi, born, e));
                });
            }
        });
        Staller { port, epoch }
    }

    fn stall(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

async fn pump(mut r: tokio::net::tcp::OwnedReadHalf, mut w: tokio::net::tcp::OwnedWriteHalf, born: u64, epoch: Arc<AtomicU64>) {
    let mut buf = vec![0u8; 16384];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if epoch.load(Ordering::SeqCst) > born {
            // Frozen: hold the bytes and the sockets, forever.
            let _keep = (r, w);
            std::future::pending::<()>().await;
            return;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The source connection stalls during CDC: the pipe notices (no event, not even
/// a heartbeat), lag grows meanwhile, and it reconnects by itself.
async fn stalled_source_recovers(flavor: Flavor) {
    let db = unique(&format!("stall_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    load_orders(&mut c, &db, &mut rng, 1, 1000).await;
    let src: url::Url = flavor.url().parse().unwrap();
    let staller = Staller::start(format!("127.0.0.1:{}", src.port().unwrap()).parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let mut s = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    s["source"]["port"] = staller.port.into();
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(s)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", CONVERGE).await;
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
    // The copy may hold every write already: the stall must come once the binlog stream is open
    // and flowing (a stall before it opens is reported as the stream not opening in time).
    eventually_logged(CONVERGE, || srv.log(), "CDC reading the binlog").await;
    let mut next_id = 90_000;
    random_write(&mut c, &db, &mut rng, &mut next_id, 1000).await;
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;

    staller.stall();
    let started = std::time::Instant::now();
    next_id = 100_000;
    for _ in 0..50 {
        random_write(&mut c, &db, &mut rng, &mut next_id, 1000).await;
    }
    let max_lag = std::sync::Mutex::new(0f64);
    eventually(CONVERGE, || async {
        let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
        let lag = v["lag_seconds"].as_f64().unwrap_or(0.0);
        {
            let mut m = max_lag.lock().unwrap();
            *m = m.max(lag);
        }
        compare(flavor, &db, &ch_db).await
    })
    .await;
    let max_lag = *max_lag.lock().unwrap();
    println!(
        "{flavor:?}: stalled source connection recovered after {:.1}s; highest lag seen {max_lag:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(srv.log().contains("stalled"), "the stall was not reported:\n{}", srv.log());
    assert!(max_lag > 0.0, "lag read 0 throughout the stall");
    assert_eq!(srv.state(&db).await, "Running");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_stalled_source_connection_is_detected_and_recovered() {
    stalled_source_recovers(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_stalled_source_connection_is_detected_and_recovered() {
    stalled_source_recovers(Flavor::MariaDb).await;
}

// ------------------------------------------------------------ snapshot_only consistency

/// Rows move, disappear and appear while a `snapshot_only` copy runs (slowed
/// down by a failpoint that sleeps after each chunk); the completed copy equals
/// the source as it stood when the copy ended.
async fn snapshot_only_is_consistent(flavor: Flavor) {
    let db = unique(&format!("snaponly_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    load_orders(&mut c, &db, &mut rng, 1, 20_000).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_only");
    s["settings"] = json!({"snapshot_rows_per_chunk": 500, "rows_per_partition": 1000000, "parallel_partitions": 1});
    let mut run = SluiceRun::start_with_env(dir.path(), &s, &[("FAILPOINTS", "snapshot-after-chunk-before-progress=sleep(100)")]);
    eventually_logged(CONVERGE, || run.log(), "copying partition").await;
    let mut next_id = 100_000;
    for _ in 0..200 {
        random_write(&mut c, &db, &mut rng, &mut next_id, 20_000).await;
    }
    assert!(!run.log().contains("orders done"), "the copy ended before the writes did; the test proves nothing:\n{}", run.log());
    assert!(run.wait_exit(CONVERGE), "sluice run failed:\n{}", run.log());
    assert!(run.log().contains("Completed"), "{}", run.log());
    compare(flavor, &db, &ch_db).await.unwrap_or_else(|e| panic!("the completed copy differs from the source: {e}\n{}", run.log()));
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_snapshot_only_copy_is_consistent() {
    snapshot_only_is_consistent(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_snapshot_only_copy_is_consistent() {
    snapshot_only_is_consistent(Flavor::MariaDb).await;
}

// ------------------------------------------------------------ crashes at failpoints

/// Random writes until `stop`, on their own connection.
fn writer(flavor: Flavor, db: String, seed: u64, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut c = mysql(flavor).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut next_id = 1_000_000 + seed * 100_000;
        while !stop.load(Ordering::SeqCst) {
            random_write(&mut c, &db, &mut rng, &mut next_id, 5000).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

/// A `sluice run` pipe under a write workload crashes at `point` (configured
/// with `actions`, e.g. `2*off->return`), restarts without it, and converges.
/// `during` runs while the workload goes on, before the crash is awaited.
async fn crash_at(flavor: Flavor, point: &str, actions: &str, settings: serde_json::Value, large_txn: bool) {
    let db = unique(&format!("fp_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    load_orders(&mut c, &db, &mut rng, 1, 5000).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    s["settings"] = settings;
    let fp = format!("{point}={actions}");
    let mut run = SluiceRun::start_with_env(dir.path(), &s, &[("FAILPOINTS", &fp)]);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(flavor, db.clone(), 1, stop.clone());
    if large_txn {
        eventually_logged(CONVERGE, || run.log(), "CDC reading the binlog").await;
        c.query_drop("BEGIN").await.unwrap();
        load_orders(&mut c, &db, &mut rng, 500_000, 12_000).await;
        c.query_drop("COMMIT").await.unwrap();
    }
    assert!(!run.wait_exit(CONVERGE), "sluice run ended cleanly instead of crashing");
    let log = run.log();
    assert!(log.contains(&format!("failpoint {point}: crashing")), "crashed elsewhere:\n{log}");
    run.env.clear();
    run.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    w.await.unwrap();
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
    assert!(run.is_running(), "{}", run.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_crash_after_write_before_checkpoint_loses_nothing() {
    crash_at(Flavor::MySql, "cdc-after-write-before-checkpoint", "5*off->return", json!({"sync_interval_ms": 200}), false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_crash_after_write_before_checkpoint_loses_nothing() {
    crash_at(Flavor::MariaDb, "cdc-after-write-before-checkpoint", "5*off->return", json!({"sync_interval_ms": 200}), false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_crash_after_snapshot_chunk_before_progress_loses_nothing() {
    let settings = json!({"snapshot_rows_per_chunk": 500, "rows_per_partition": 2000});
    crash_at(Flavor::MySql, "snapshot-after-chunk-before-progress", "4*off->return", settings, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_crash_after_snapshot_chunk_before_progress_loses_nothing() {
    let settings = json!({"snapshot_rows_per_chunk": 500, "rows_per_partition": 2000});
    crash_at(Flavor::MariaDb, "snapshot-after-chunk-before-progress", "4*off->return", settings, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_crash_mid_large_transaction_loses_nothing() {
    let settings = json!({"sync_interval_ms": 200, "pull_batch_size": 1000});
    crash_at(Flavor::MySql, "cdc-mid-large-transaction", "return", settings, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_crash_mid_large_transaction_loses_nothing() {
    let settings = json!({"sync_interval_ms": 200, "pull_batch_size": 1000});
    crash_at(Flavor::MariaDb, "cdc-mid-large-transaction", "return", settings, true).await;
}

/// A server crashes between `EXCHANGE TABLES` and the catalog update of a
/// resync under a write workload; after a restart the pipe finishes the resync
/// and the destination equals the source.
async fn crash_mid_resync_swap(flavor: Flavor) {
    let db = unique(&format!("fpresync_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    load_orders(&mut c, &db, &mut rng, 1, 5000).await;
    let dir = tempfile::tempdir().unwrap();
    let mut srv = SluiceServer::start(dir.path()).await;
    let s = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(s)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", CONVERGE).await;
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
    // Restart the server with the failpoint armed.
    srv.kill9();
    srv.env = vec![("FAILPOINTS".into(), "resync-after-exchange-before-catalog=return".into())];
    srv.restart().await;
    srv.wait_state(&db, "Running", CONVERGE).await;
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(flavor, db.clone(), 2, stop.clone());
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resync"), None).await;
    assert_eq!(code, 202, "{v}");
    assert_eq!(srv.wait_exit(CONVERGE), Some(86), "the server did not crash at the failpoint:\n{}", srv.log());
    assert!(srv.log().contains("failpoint resync-after-exchange-before-catalog: crashing"), "{}", srv.log());
    srv.env.clear();
    srv.restart().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    w.await.unwrap();
    srv.wait_state(&db, "Running", CONVERGE).await;
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
    let tables = ch_rows(&format!("SELECT name FROM system.tables WHERE database = '{ch_db}' ORDER BY name")).await.unwrap();
    assert_eq!(tables, vec![vec!["items".to_string()], vec!["orders".to_string()]], "resync tables left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_crash_between_exchange_and_catalog_loses_nothing() {
    crash_mid_resync_swap(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_crash_between_exchange_and_catalog_loses_nothing() {
    crash_mid_resync_swap(Flavor::MariaDb).await;
}

/// ClickHouse stalls (bytes held, no reset) during CDC: every request is bounded
/// by `destination.request_timeout_ms`, so the pipe retries on new connections
/// and converges; it stays `Running` throughout.
#[tokio::test(flavor = "multi_thread")]
async fn stalled_clickhouse_connection_is_detected_and_recovered() {
    let flavor = Flavor::MySql;
    let db = unique("chstall");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    load_orders(&mut c, &db, &mut rng, 1, 1000).await;
    let ch: url::Url = testbed().clickhouse_url.parse().unwrap();
    let staller = Staller::start(format!("127.0.0.1:{}", ch.port().unwrap()).parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let mut s = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    s["destination"]["url"] = format!("http://127.0.0.1:{}", staller.port).into();
    s["destination"]["request_timeout_ms"] = 3000.into();
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(s)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", CONVERGE).await;
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
    staller.stall();
    let mut next_id = 100_000;
    for _ in 0..50 {
        random_write(&mut c, &db, &mut rng, &mut next_id, 1000).await;
    }
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
    assert!(srv.log().contains("did not answer within"), "the stall was not reported:\n{}", srv.log());
    assert_eq!(srv.state(&db).await, "Running");
}

/// The source stalls while the snapshot reads it: the chunk query is bounded by
/// `source.query_timeout_ms`, retried on a new connection, and the copy completes.
#[tokio::test(flavor = "multi_thread")]
async fn source_stalled_during_the_snapshot_is_retried() {
    let flavor = Flavor::MariaDb;
    let db = unique("snapstall");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    load_orders(&mut c, &db, &mut rng, 1, 20_000).await;
    let src: url::Url = flavor.url().parse().unwrap();
    let staller = Staller::start(format!("127.0.0.1:{}", src.port().unwrap()).parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    s["source"]["port"] = staller.port.into();
    s["source"]["query_timeout_ms"] = 3000.into();
    s["settings"] = json!({"snapshot_rows_per_chunk": 500, "rows_per_partition": 1000000, "parallel_partitions": 1});
    let run = SluiceRun::start_with_env(dir.path(), &s, &[("FAILPOINTS", "snapshot-after-chunk-before-progress=sleep(100)")]);
    // The orders partition's connection is open (and has read a chunk) before the stall.
    eventually_logged(CONVERGE, || run.log(), "copying partition 1/1 of orders").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    staller.stall();
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
    assert!(run.log().contains("did not answer"), "the stall was not reported:\n{}", run.log());
}

/// A crash between a followed schema change's destination `ALTER` and its
/// record in the catalog, under a write workload: the statement is replayed
/// after the restart (idempotently) and the destination equals the source.
async fn crash_mid_schema_change(flavor: Flavor) {
    let db = unique(&format!("fpddl_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    load_orders(&mut c, &db, &mut rng, 1, 3000).await;
    let dir = tempfile::tempdir().unwrap();
    let s = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    let mut run = SluiceRun::start_with_env(dir.path(), &s, &[("FAILPOINTS", "schema-after-alter-before-record=return")]);
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(flavor, db.clone(), 3, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    // INVISIBLE: the workload's column-less INSERTs keep working.
    c.query_drop(format!("ALTER TABLE {db}.orders ADD COLUMN extra INT NULL INVISIBLE")).await.unwrap();
    assert!(!run.wait_exit(CONVERGE), "sluice run ended cleanly instead of crashing");
    assert!(run.log().contains("failpoint schema-after-alter-before-record: crashing"), "{}", run.log());
    run.env.clear();
    run.restart();
    c.query_drop(format!("UPDATE {db}.orders SET extra = id % 7 WHERE id <= 100")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    w.await.unwrap();
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
    let src = src_rows(&mut c, &format!("SELECT id, extra FROM {db}.orders WHERE extra IS NOT NULL ORDER BY id")).await;
    eventually(CONVERGE, || async {
        let dst =
            ch_rows(&format!("SELECT id, extra FROM {ch_db}.orders FINAL WHERE _peerdb_is_deleted = 0 AND extra IS NOT NULL ORDER BY id"))
                .await?;
        diff(&src, &dst)
    })
    .await;
    assert!(run.is_running(), "{}", run.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_crash_between_alter_and_schema_record_loses_nothing() {
    crash_mid_schema_change(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_crash_between_alter_and_schema_record_loses_nothing() {
    crash_mid_schema_change(Flavor::MariaDb).await;
}
