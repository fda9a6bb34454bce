//! Online schema changes as users run them, against a table of a running pipe
//! under a steady write workload, on MySQL 9.7, MariaDB 10.11 and MariaDB 11.8:
//!
//! - Percona's real `pt-online-schema-change` (Debian's `percona-toolkit`, installed
//!   by the test bed): ADD COLUMN, MODIFY, DROP COLUMN and ADD INDEX, each a shadow
//!   table `_t_new` filled by chunked copies and triggers, then swapped in with
//!   `RENAME TABLE t TO _t_old, _t_new TO t` and `_t_old` dropped;
//! - gh-ost's cut-over written as gh-ost does it: a changelog table `_t_ghc` with
//!   heartbeats, a ghost table `_t_gho` filled by a row copy plus the writes made
//!   meanwhile, a sentry table `_t_del`, `LOCK TABLES t WRITE, _t_del WRITE`, the
//!   blocked `RENAME TABLE t TO _t_del, _t_gho TO t`, the sentry dropped, `UNLOCK`,
//!   and finally the old table dropped.
//!
//! After each change the destination equals the source (columns and `FINAL`
//! rows), every table of the pipe is `Running` and the pipe's history names the
//! online schema change.

mod common;
use common::*;
use mysql_async::prelude::*;
use mysql_async::Conn;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(180);

/// Random single-row writes to `db.t` (and, while `mirror` is set, the same
/// write to the gh-ost ghost table in the same transaction, as gh-ost's binlog
/// applier would) until `stop`; writes pause while `hold` is set. Only `id`
/// and `v` are written, so every step's shape accepts them. A write refused
/// during a cut-over (lock wait, table briefly missing) is simply not made.
struct Workload {
    stop: Arc<AtomicBool>,
    hold: Arc<AtomicBool>,
    mirror: Arc<AtomicBool>,
    done: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Workload {
    fn start(url: &str, db: &str, first_id: u32) -> Workload {
        let (stop, hold, mirror): (Arc<AtomicBool>, Arc<AtomicBool>, Arc<AtomicBool>) = Default::default();
        let done: Arc<AtomicU32> = Arc::default();
        let (s, h, m, d) = (Arc::clone(&stop), Arc::clone(&hold), Arc::clone(&mirror), Arc::clone(&done));
        let (url, db) = (url.to_string(), db.to_string());
        let task = tokio::spawn(async move {
            let mut c = mysql_url(&url).await;
            let mut next = first_id;
            let mut rng = rand::rngs::StdRng::from_entropy();
            while !s.load(Ordering::SeqCst) {
                if h.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                let id = rng.gen_range(1..next);
                let stmt = match rng.gen_range(0..4) {
                    0 | 1 => {
                        next += 1;
                        format!("INSERT INTO {{t}} (id, v) VALUES ({}, 'w{}')", next - 1, rng.gen::<u16>())
                    }
                    2 => format!("UPDATE {{t}} SET v = 'u{}' WHERE id = {id}", rng.gen::<u16>()),
                    _ => format!("DELETE FROM {{t}} WHERE id = {id}"),
                };
                let main = stmt.replace("{t}", &format!("`{db}`.t"));
                let sql = if m.load(Ordering::SeqCst) {
                    let ghost = stmt.replace("INSERT INTO", "REPLACE INTO").replace("{t}", &format!("`{db}`._t_gho"));
                    format!("START TRANSACTION; {main}; {ghost}; COMMIT")
                } else {
                    main
                };
                if c.query_drop(&sql).await.is_err() {
                    // Leave no transaction half open behind a refused statement.
                    let _ = c.query_drop("ROLLBACK").await;
                } else {
                    d.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Workload { stop, hold, mirror, done, task }
    }

    /// Waits until at least `n` more writes are made.
    async fn wait_writes(&self, n: u32) {
        let from = self.done.load(Ordering::SeqCst);
        eventually(T, || async {
            let now = self.done.load(Ordering::SeqCst);
            if now >= from + n {
                Ok(())
            } else {
                Err(format!("the workload made {} of {n} writes", now - from))
            }
        })
        .await;
    }

    async fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
    }
}

/// Checks, with the workload held, that the destination equals the source and the
/// pipe and all its tables are `Running`; then lets the workload go on.
async fn converged(srv: &SluiceServer, w: &Workload, url: &str, db: &str, ch_db: &str, after: &str) {
    w.hold.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    eventually(T, || async { same_table(url, db, "t", ch_db, "t").await.map_err(|e| format!("after {after}: {e}\n{}", srv.log())) }).await;
    srv.wait_state(db, "Running", T).await;
    let (_, p) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    for t in p["tables"].as_array().unwrap() {
        assert_eq!(t["state"], "Running", "after {after}: {p}");
    }
    w.hold.store(false, Ordering::SeqCst);
}

/// Creates `db.t` with 3,000 rows and a running pipe over it.
async fn setup(flavor: Flavor, prefix: &str) -> (String, String, Conn, SluiceServer, tempfile::TempDir) {
    let db = unique(&format!("{prefix}_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20), n INT NOT NULL DEFAULT 1)")).await.unwrap();
    for chunk in 0..3 {
        let values: Vec<String> = (1..=1000).map(|i| chunk * 1000 + i).map(|i| format!("({i}, 'v{i}', {})", i % 13)).collect();
        c.query_drop(format!("INSERT INTO {db}.t (id, v, n) VALUES {}", values.join(", "))).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let (code, v) = srv
        .call(Method::POST, "/v1/pipes", Some(spec(&db, flavor, json!([{"source": format!("{db}.t")}]), &ch_db, "snapshot_and_cdc")))
        .await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    (db, ch_db, c, srv, dir)
}

/// Runs Debian's `pt-online-schema-change` with `alter` on `db.t`.
async fn pt_osc(url: &str, db: &str, alter: &str) {
    let u = url::Url::parse(url).unwrap();
    let dsn = format!("D={db},t=t,h={},P={},u={},p={}", u.host_str().unwrap(), u.port().unwrap(), u.username(), u.password().unwrap_or(""));
    // --recursion-method=none: MySQL 9 has no SHOW SLAVE HOSTS (toolkit 3.2 asks for it to find replicas);
    // --noversion-check: no call home from a test.
    let out = tokio::process::Command::new("pt-online-schema-change")
        .args(["--recursion-method=none", "--noversion-check", "--chunk-size=500", "--alter", alter, &dsn, "--execute"])
        .output()
        .await
        .unwrap_or_else(|e| panic!("pt-online-schema-change (Debian's percona-toolkit; `scripts/testbed up` installs it): {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("Successfully altered"), "pt-online-schema-change --alter {alter:?} failed:\n{text}");
}

async fn percona_osc(flavor: Flavor) {
    let url = flavor.url();
    let (db, ch_db, _c, srv, _dir) = setup(flavor, "ptosc").await;
    let w = Workload::start(url, &db, 3001);
    w.wait_writes(50).await;
    for alter in ["ADD COLUMN c INT NOT NULL DEFAULT 7", "MODIFY v VARCHAR(64)", "DROP COLUMN n", "ADD INDEX by_v (v)"] {
        pt_osc(url, &db, alter).await;
        w.wait_writes(50).await;
        converged(&srv, &w, url, &db, &ch_db, alter).await;
    }
    w.finish().await;
    let (_, ev) = srv.call(Method::GET, &format!("/v1/pipes/{db}/events"), None).await;
    assert!(ev.to_string().contains("online schema change"), "{ev}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_pt_online_schema_change_is_followed() {
    percona_osc(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_pt_online_schema_change_is_followed() {
    percona_osc(Flavor::MariaDb).await;
}

async fn ghost_osc(flavor: Flavor) {
    let url = flavor.url();
    let (db, ch_db, mut c, srv, _dir) = setup(flavor, "ghost").await;
    let w = Workload::start(url, &db, 3001);
    w.wait_writes(50).await;

    // The changelog table, with gh-ost's heartbeat and state rows.
    c.query_drop(format!(
        "CREATE TABLE {db}._t_ghc (id BIGINT AUTO_INCREMENT, last_update TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, \
         hint VARCHAR(64) NOT NULL, value VARCHAR(4096) NOT NULL, PRIMARY KEY (id), UNIQUE KEY hint_uidx (hint))"
    ))
    .await
    .unwrap();
    let changelog = |hint: &str, value: &str| {
        format!("INSERT INTO {db}._t_ghc (hint, value) VALUES ('{hint}', '{value}') ON DUPLICATE KEY UPDATE value = VALUES(value)")
    };
    c.query_drop(changelog("state", "GhostTableMigrated")).await.unwrap();
    // The ghost table with the new shape; the writes made from now on go to it too.
    c.query_drop(format!("CREATE TABLE {db}._t_gho LIKE {db}.t")).await.unwrap();
    c.query_drop(format!("ALTER TABLE {db}._t_gho ADD COLUMN w INT NOT NULL DEFAULT 5, MODIFY v VARCHAR(50)")).await.unwrap();
    w.mirror.store(true, Ordering::SeqCst);
    // The row copy, in chunks, writes going on between them.
    for lo in (0..6000).step_by(1000) {
        c.query_drop(format!(
            "INSERT IGNORE INTO {db}._t_gho (id, v, n) SELECT id, v, n FROM {db}.t FORCE INDEX (PRIMARY) WHERE id > {lo} AND id <= {} LOCK IN SHARE MODE",
            lo + 1000
        ))
        .await
        .unwrap();
        c.query_drop(changelog("heartbeat", &lo.to_string())).await.unwrap();
        w.wait_writes(10).await;
    }
    // Rows inserted beyond the copied range while copying.
    c.query_drop(format!("INSERT IGNORE INTO {db}._t_gho (id, v, n) SELECT id, v, n FROM {db}.t WHERE id > 6000")).await.unwrap();
    c.query_drop(changelog("state", "AllEventsUpToLockProcessed")).await.unwrap();

    // The atomic cut-over: sentry table, locks, the blocked rename, sentry dropped, unlock.
    c.query_drop(format!("CREATE TABLE {db}._t_del (id INT AUTO_INCREMENT PRIMARY KEY) COMMENT='ghost-cut-over-sentry'")).await.unwrap();
    c.query_drop(format!("LOCK TABLES {db}.t WRITE, {db}._t_del WRITE")).await.unwrap();
    let rename = {
        let (url, db) = (url.to_string(), db.clone());
        tokio::spawn(async move {
            let mut r = mysql_url(&url).await;
            r.query_drop(format!("RENAME TABLE {db}.t TO {db}._t_del, {db}._t_gho TO {db}.t")).await
        })
    };
    // gh-ost waits until the rename is seen waiting on the lock before it drops the sentry.
    eventually(T, || async {
        let waiting: Vec<String> = mysql(flavor)
            .await
            .query("SELECT INFO FROM information_schema.PROCESSLIST WHERE INFO LIKE 'RENAME TABLE%\\_t\\_gho%'")
            .await
            .map_err(|e| e.to_string())?;
        if waiting.is_empty() {
            Err("the RENAME is not waiting yet".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    c.query_drop(format!("DROP TABLE IF EXISTS {db}._t_del")).await.unwrap();
    c.query_drop("UNLOCK TABLES").await.unwrap();
    rename.await.unwrap().expect("the cut-over RENAME");
    w.mirror.store(false, Ordering::SeqCst);
    c.query_drop(changelog("state", "Migrated")).await.unwrap();
    w.wait_writes(50).await;
    converged(&srv, &w, url, &db, &ch_db, "the gh-ost cut-over").await;

    // gh-ost then drops the old table and its changelog; the pipe stays healthy.
    c.query_drop(format!("DROP TABLE IF EXISTS {db}._t_del")).await.unwrap();
    c.query_drop(format!("DROP TABLE IF EXISTS {db}._t_ghc")).await.unwrap();
    w.wait_writes(50).await;
    converged(&srv, &w, url, &db, &ch_db, "dropping gh-ost's leftovers").await;
    w.finish().await;
    let (_, ev) = srv.call(Method::GET, &format!("/v1/pipes/{db}/events"), None).await;
    assert!(ev.to_string().contains("online schema change"), "{ev}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_gh_ost_cutover_is_followed() {
    ghost_osc(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_gh_ost_cutover_is_followed() {
    ghost_osc(Flavor::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb118_pt_online_schema_change_is_followed() {
    percona_osc(Flavor::MariaDb118).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb118_gh_ost_cutover_is_followed() {
    ghost_osc(Flavor::MariaDb118).await;
}
