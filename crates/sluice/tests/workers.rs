//! Several `sluice server` workers sharing one Postgres catalog: pipes are
//! spread over them through leases, and a dead worker's pipes move to the
//! others, with every destination equal to its source afterwards.
//!
//! Needs the test bed's Postgres (`SLUICE_TEST_POSTGRES_URL`); each test makes
//! a database of its own there.

mod common;
use common::*;
use mysql_async::prelude::*;
use reqwest::Method;
use serde_json::json;
use sluice_catalog::Catalog;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(180);
const TTL_S: &str = "3";
/// The key sealing the stored passwords: every worker needs the same one.
const SECRET_KEY: &str = "5eb2c0ffee5eb2c0ffee5eb2c0ffee5eb2c0ffee5eb2c0ffee5eb2c0ffee0042";

/// A fresh Postgres catalog database for this test.
async fn postgres_catalog() -> String {
    let server = postgres_server_url().expect("the workers tests need the test bed's PostgreSQL (SLUICE_TEST_POSTGRES_URL)");
    let name = format!("sluice_it_{}_{:016x}", std::process::id(), rand::random::<u64>());
    sluice_catalog::pg_admin::recreate_database(&server, &name).await.expect("create the test catalog database")
}

/// Worker `id` on `catalog`, in `root/id`, with a short lease TTL.
async fn worker(root: &Path, id: &str, catalog: &str) -> SluiceServer {
    labelled_worker(root, id, catalog, "").await
}

/// Worker `id` with `labels` (`k=v,...`).
async fn labelled_worker(root: &Path, id: &str, catalog: &str, labels: &str) -> SluiceServer {
    SluiceServer::start_with_env(
        &root.join(id),
        Some(catalog.to_string()),
        &[
            ("SLUICE_WORKER_ID", id),
            ("SLUICE_LEASE_TTL_S", TTL_S),
            ("SLUICE_SECRET_KEY", SECRET_KEY),
            ("SLUICE_WORKER_LABELS", labels),
            ("RUST_LOG", "info,sqlx=warn"),
        ],
    )
    .await
}

/// The test's own handle on the workers' catalog (with their secret key).
async fn probe(catalog: &str, root: &Path) -> Catalog {
    let dir = root.join("probe");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret.key"), SECRET_KEY).unwrap();
    Catalog::open_url(catalog, &dir).await.unwrap()
}

/// Each pipe's live lease holder, read from the catalog.
async fn holders(cat: &Catalog) -> BTreeMap<String, String> {
    let (now, leases) = cat.pipe_leases().await.unwrap();
    leases.into_iter().filter_map(|l| l.held_at(now).map(|o| (l.pipe.clone(), o.to_string()))).collect()
}

/// Pipe `db` over `db.t` (a few rows) from `flavor`, created on `srv`.
async fn create_pipe(srv: &SluiceServer, flavor: Flavor, db: &str, ch_db: &str) {
    create_placed_pipe(srv, flavor, db, ch_db, None).await
}

/// `create_pipe` with a placement constraint (`{"labels": {...}}`).
async fn create_placed_pipe(srv: &SluiceServer, flavor: Flavor, db: &str, ch_db: &str, placement: Option<serde_json::Value>) {
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE `{db}`")).await.unwrap();
    c.query_drop(format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(40), n INT NOT NULL)")).await.unwrap();
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (1, 'a', 0), (2, 'b', 0), (3, 'c', 0)")).await.unwrap();
    let mut body = spec(db, flavor, json!([{"source": format!("{db}.t")}]), ch_db, "snapshot_and_cdc");
    if let Some(p) = placement {
        body["placement"] = p;
    }
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(body)).await;
    assert_eq!(code, 201, "{v}");
}

/// Writes to every pipe's table (inserts, updates, deletes) until `stop`.
fn write_load(pipes: Vec<(Flavor, String)>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut conns = Vec::new();
        for (f, db) in &pipes {
            conns.push((mysql(*f).await, db.clone()));
        }
        let mut next = 100;
        let mut writes = 0;
        while !stop.load(Ordering::Relaxed) {
            for (c, db) in conns.iter_mut() {
                c.query_drop(format!("INSERT INTO `{db}`.t VALUES ({next}, 'w{next}', 0)")).await.unwrap();
                c.query_drop(format!("UPDATE `{db}`.t SET n = n + 1, v = 'u{next}' WHERE id IN (1, {})", next - 1)).await.unwrap();
                if next % 5 == 0 {
                    c.query_drop(format!("DELETE FROM `{db}`.t WHERE id = {}", next - 3)).await.unwrap();
                }
                writes += 1;
            }
            next += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        writes
    })
}

/// Every pipe's destination equals its source (FINAL rows, value for value).
async fn all_equal(pipes: &[(Flavor, String)], ch_db: &str) {
    for (f, db) in pipes {
        eventually(T, || async { same_table(f.url(), db, "t", &dest_db(ch_db, db), "t").await }).await;
    }
}

fn dest_db(ch_db: &str, db: &str) -> String {
    format!("{ch_db}_{}", db.rsplit('_').next().unwrap())
}

/// Three workers, twelve pipes (half MySQL, half MariaDB) under a write load:
/// the pipes are spread 4/4/4; after a `kill -9` of one worker its pipes run
/// on the other two once its leases expire, and every destination equals its source.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_workers_pipes_move_to_the_others_and_stay_equal() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = postgres_catalog().await;
    let cat = probe(&catalog, dir.path()).await;
    let mut ws = Vec::new();
    for id in ["w1", "w2", "w3"] {
        ws.push(worker(dir.path(), id, &catalog).await);
    }
    let tag = unique("wk");
    let ch_db = tag.clone();
    let mut pipes = Vec::new();
    for i in 0..12 {
        let flavor = if i % 2 == 0 { Flavor::MySql } else { Flavor::MariaDb };
        let db = format!("{tag}_{i}");
        create_pipe(&ws[i % 3], flavor, &db, &dest_db(&ch_db, &db)).await;
        // Placed one at a time, each on the least-loaded worker.
        eventually(T, || async {
            if holders(&cat).await.contains_key(&db) {
                Ok(())
            } else {
                Err(format!("pipe {db} was not placed"))
            }
        })
        .await;
        pipes.push((flavor, db));
    }
    let held = holders(&cat).await;
    let mut per_worker: BTreeMap<&str, usize> = BTreeMap::new();
    for w in held.values() {
        *per_worker.entry(w).or_default() += 1;
    }
    assert_eq!(per_worker.values().copied().collect::<Vec<_>>(), [4, 4, 4], "{held:?}");
    for (_, db) in &pipes {
        ws[0].wait_state(db, "Running", T).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let load = write_load(pipes.clone(), stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;

    // kill -9 of w2: its pipes move to w1 and w3 once the leases expire.
    let moved: BTreeSet<String> = held.iter().filter(|(_, w)| *w == "w2").map(|(p, _)| p.clone()).collect();
    assert_eq!(moved.len(), 4);
    ws[1].kill9();
    let killed = Instant::now();
    eventually(Duration::from_secs(60), || async {
        let now = holders(&cat).await;
        let missing: Vec<_> = moved.iter().filter(|p| !matches!(now.get(*p).map(String::as_str), Some("w1" | "w3"))).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("not yet taken over: {missing:?} ({now:?})"))
        }
    })
    .await;
    let took = killed.elapsed();
    for p in &moved {
        ws[0].wait_state(p, "Running", Duration::from_secs(60)).await;
    }
    eprintln!("the killed worker's 4 pipes were taken over {took:?} after the kill");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let writes = load.await.unwrap();
    assert!(writes > 0);
    all_equal(&pipes, &ch_db).await;
    // The survivors' logs say which pipes they acquired.
    let logs = ws[0].log() + &ws[2].log();
    for p in &moved {
        assert!(logs.contains(&format!("acquired the lease of pipe {p}")), "{p} not acquired in the logs");
    }
}

/// Sends `sig` (`TERM`, `STOP`, `CONT`) to the worker's process.
fn signal(w: &SluiceServer, sig: &str) {
    let pid = w.child.as_ref().expect("running").id();
    let ok = std::process::Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap().success();
    assert!(ok, "kill -{sig} {pid}");
}

/// Three workers with `n` pipes (alternately MySQL and MariaDB), placed and `Running`; returns the probe, the pipes and the ClickHouse prefix.
async fn cluster(root: &Path, n: usize) -> (Vec<SluiceServer>, Catalog, Vec<(Flavor, String)>, String) {
    let catalog = postgres_catalog().await;
    let cat = probe(&catalog, root).await;
    let mut ws = Vec::new();
    for id in ["w1", "w2", "w3"] {
        ws.push(worker(root, id, &catalog).await);
    }
    let tag = unique("wk");
    let mut pipes = Vec::new();
    for i in 0..n {
        let flavor = if i % 2 == 0 { Flavor::MySql } else { Flavor::MariaDb };
        let db = format!("{tag}_{i}");
        create_pipe(&ws[i % 3], flavor, &db, &dest_db(&tag, &db)).await;
        pipes.push((flavor, db));
    }
    for (_, db) in &pipes {
        ws[0].wait_state(db, "Running", T).await;
    }
    (ws, cat, pipes, tag)
}

/// The log lines of `log` that contain `what`, with their timestamps (tracing's ISO-8601 prefix).
fn lines_with<'a>(log: &'a str, what: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(what)).collect()
}

/// A rolling restart (SIGTERM each worker in turn, start it again) under a
/// write load: each stopping worker releases its leases after stopping its
/// engines, the others acquire them only after that (a pipe never runs on two
/// workers at once), no lease is ever lost to fencing, and every destination
/// equals its source at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_hands_pipes_off_without_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ws, cat, pipes, tag) = cluster(dir.path(), 6).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = write_load(pipes.clone(), stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, w) in ws.iter_mut().enumerate() {
        let id = format!("w{}", i + 1);
        let had: Vec<String> = holders(&cat).await.into_iter().filter(|(_, w)| *w == id).map(|(p, _)| p).collect();
        signal(w, "TERM");
        assert_eq!(w.wait_exit(Duration::from_secs(120)), Some(0), "{id} did not stop cleanly:\n{}", w.log());
        let log = w.log();
        for p in &had {
            assert!(log.contains(&format!("released the lease of pipe {p} ")), "{id} did not release {p}:\n{log}");
        }
        // The others take the pipes over at once (no TTL wait needed, but allow a loaded machine).
        eventually(Duration::from_secs(60), || async {
            let now = holders(&cat).await;
            let left: Vec<_> = had.iter().filter(|p| now.get(*p).is_none_or(|w| *w == id)).collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("not taken over yet: {left:?}"))
            }
        })
        .await;
        w.restart().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // Each worker came back with no pipe: the others handed it its fair share, gracefully.
    eventually(T, || async {
        let mut per: BTreeMap<String, usize> = BTreeMap::new();
        for w in holders(&cat).await.into_values() {
            *per.entry(w).or_default() += 1;
        }
        if per.len() == 3 && per.values().all(|n| *n == 2) {
            Ok(())
        } else {
            Err(format!("pipes per worker: {per:?}"))
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    all_equal(&pipes, &tag).await;
    // Every acquisition of a pipe comes after the release (or first placement) of the token before it.
    let logs: Vec<String> = ws.iter().map(|w| w.log()).collect();
    for (_, p) in &pipes {
        let mut events: Vec<(String, i64, &str)> = Vec::new();
        for log in &logs {
            for l in lines_with(log, &format!("acquired the lease of pipe {p} (token ")) {
                let token = l.split("(token ").nth(1).unwrap().split(')').next().unwrap().parse().unwrap();
                events.push((l.split_whitespace().next().unwrap().to_string(), token, "acquired"));
            }
            for l in lines_with(log, &format!("handing off pipe {p} (token ")) {
                let token = l.split("(token ").nth(1).unwrap().split(')').next().unwrap().parse().unwrap();
                events.push((l.split_whitespace().next().unwrap().to_string(), token, "released"));
            }
        }
        events.sort();
        let mut running: Option<i64> = None;
        for (at, token, what) in &events {
            match *what {
                "acquired" => {
                    assert!(running.is_none(), "pipe {p}: token {token} acquired at {at} while token {running:?} still ran: {events:?}");
                    running = Some(*token);
                }
                _ => {
                    assert_eq!(running, Some(*token), "pipe {p}: {events:?}");
                    running = None;
                }
            }
        }
    }
    for (log, w) in logs.iter().zip(["w1", "w2", "w3"]) {
        assert!(!log.contains("lost the lease"), "{w} lost a lease during a clean rolling restart:\n{log}");
    }
    // Every pipe moved at least once; each pause in its flow is in its history.
    for (_, p) in &pipes {
        let (_, ev) = ws[0].call(Method::GET, &format!("/v1/pipes/{p}/events"), None).await;
        assert!(ev.to_string().contains("took the pipe over (token"), "pipe {p}: no take-over in its history: {ev}");
    }
}

/// A worker paused (SIGSTOP) past its lease TTL loses its pipes to the
/// others; resumed (SIGCONT), it stops them without writing for them (its
/// writes are fenced: no checkpoint or version reservation of its is
/// accepted), and every destination equals its source.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_worker_is_fenced_when_it_wakes_up() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ws, cat, pipes, tag) = cluster(dir.path(), 6).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = write_load(pipes.clone(), stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = holders(&cat).await;
    let moved: Vec<String> = before.iter().filter(|(_, w)| *w == "w2").map(|(p, _)| p.clone()).collect();
    assert!(!moved.is_empty(), "{before:?}");
    signal(&ws[1], "STOP");
    eventually(Duration::from_secs(60), || async {
        let now = holders(&cat).await;
        let left: Vec<_> = moved.iter().filter(|p| !matches!(now.get(*p).map(String::as_str), Some("w1" | "w3"))).collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("not taken over yet: {left:?}"))
        }
    })
    .await;
    for p in &moved {
        ws[0].wait_state(p, "Running", Duration::from_secs(60)).await;
    }
    // The new owners' leases, and each pipe's version clock, before the zombie wakes up.
    let taken = cat.pipe_leases().await.unwrap().1;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asleep = ws[1].log().len();
    signal(&ws[1], "CONT");
    for p in &moved {
        let p2 = p.clone();
        let w2 = &ws[1];
        eventually(Duration::from_secs(60), move || {
            let log = w2.log();
            let p = p2.clone();
            async move {
                if log.contains(&format!("lost the lease of pipe {p}")) {
                    Ok(())
                } else {
                    Err(format!("w2 did not report losing {p}"))
                }
            }
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The zombie's tokens never came back: each lease is the new owner's, or a later
    // acquisition (a fair-share hand-off back to w2, after it stopped them) with a higher token.
    let after = cat.pipe_leases().await.unwrap().1;
    for p in &moved {
        let t = taken.iter().find(|l| &l.pipe == p).unwrap();
        let a = after.iter().find(|l| &l.pipe == p).unwrap();
        assert!((&a.owner, a.token) == (&t.owner, t.token) || a.token > t.token, "pipe {p}: {a:?} after {t:?}");
    }
    // Whatever the zombie tried to write for them with its old tokens (after waking up,
    // before acquiring one of them again) was refused, not written.
    let log = ws[1].log();
    for p in &moved {
        let woke = &log[asleep..];
        let until = woke.find(&format!("acquired the lease of pipe {p} ")).unwrap_or(woke.len());
        for l in lines_with(&woke[..until], p) {
            assert!(!l.contains("checkpoint saved") && !l.contains("Failed"), "{l}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    all_equal(&pipes, &tag).await;
    ws[1].kill9();
}

/// Any worker serves the API: `GET /v1/workers` lists the workers and their
/// pipes, a pipe's view names its worker, and a command sent to a worker that
/// does not run the pipe is carried out by the one that does, with the same
/// answers (202 with the state, 409 on an illegal transition).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_worker_serves_commands_for_any_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, cat, pipes, _tag) = cluster(dir.path(), 3).await;
    let held = holders(&cat).await;
    let (code, v) = ws[0].call(Method::GET, "/v1/workers", None).await;
    assert_eq!(code, 200, "{v}");
    let listed = v.as_array().unwrap();
    assert_eq!(listed.iter().map(|w| w["id"].as_str().unwrap()).collect::<Vec<_>>(), ["w1", "w2", "w3"], "{v}");
    let count: usize = listed.iter().map(|w| w["pipes"].as_array().unwrap().len()).sum();
    assert_eq!(count, 3, "{v}");
    assert!(listed.iter().all(|w| w["heartbeat_age_ms"].as_i64().unwrap() < 60_000), "{v}");
    for (_, db) in &pipes {
        let owner = held[db].clone();
        let other = ws.iter().zip(["w1", "w2", "w3"]).find(|(_, id)| *id != owner).unwrap().0;
        let (code, view) = other.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
        assert_eq!((code, view["worker"].as_str()), (200, Some(owner.as_str())), "{view}");
        let (code, v) = other.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
        assert_eq!((code, v["state"].as_str()), (409, Some("Running")), "{v}");
        let (code, v) = other.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
        assert_eq!((code, v["state"].as_str()), (202, Some("Pausing")), "{v}");
        other.wait_state(db, "Paused", T).await;
        let (code, v) = other.call(Method::PATCH, &format!("/v1/pipes/{db}/settings"), Some(json!({"sync_interval_ms": 700}))).await;
        assert_eq!((code, v["sync_interval_ms"].as_u64()), (200, Some(700)), "{v}");
        let (code, v) = other.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
        assert_eq!((code, v["state"].as_str()), (200, Some("Running")), "{v}");
        other.wait_state(db, "Running", T).await;
    }
    assert_eq!(holders(&cat).await, held, "commands moved no pipe");
}

/// Two workers with different labels: pipes constrained to `region=eu` or
/// `region=us` run only on the worker with that label (whichever worker they
/// were created through), an unconstrained one anywhere, and one constrained
/// to a region no worker has stays unplaced: its view says what it waits for,
/// and a command for it is answered 503 with `Retry-After`, not 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipes_run_only_on_workers_whose_labels_match_their_placement() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = postgres_catalog().await;
    let cat = probe(&catalog, dir.path()).await;
    let mut eu = labelled_worker(dir.path(), "weu", &catalog, "region=eu,zone=a").await;
    let us = labelled_worker(dir.path(), "wus", &catalog, "region=us").await;
    let tag = unique("wl");
    let db = |s: &str| format!("{tag}_{s}");
    let region = |r: &str| Some(json!({"labels": {"region": r}}));
    // Created through the other region's worker on purpose.
    create_placed_pipe(&us, Flavor::MySql, &db("eu1"), &dest_db(&tag, &db("eu1")), region("eu")).await;
    create_placed_pipe(&us, Flavor::MariaDb, &db("eu2"), &dest_db(&tag, &db("eu2")), region("eu")).await;
    create_placed_pipe(&eu, Flavor::MySql, &db("us1"), &dest_db(&tag, &db("us1")), region("us")).await;
    create_placed_pipe(&eu, Flavor::MariaDb, &db("any"), &dest_db(&tag, &db("any")), None).await;
    create_placed_pipe(&eu, Flavor::MySql, &db("ap1"), &dest_db(&tag, &db("ap1")), region("ap")).await;

    let want = |h: &BTreeMap<String, String>| {
        h.get(&db("eu1")).map(String::as_str) == Some("weu")
            && h.get(&db("eu2")).map(String::as_str) == Some("weu")
            && h.get(&db("us1")).map(String::as_str) == Some("wus")
            && h.contains_key(&db("any"))
    };
    eventually(T, || async {
        let h = holders(&cat).await;
        if want(&h) {
            Ok(())
        } else {
            Err(format!("not placed as constrained yet: {h:?}"))
        }
    })
    .await;
    for p in ["eu1", "eu2", "us1", "any"] {
        eu.wait_state(&db(p), "Running", T).await;
    }
    // Several placement rounds later (TTL 3 s: a round a second) nothing moved, and ap1 is still nowhere.
    let before = cat.pipe_leases().await.unwrap().1;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let h = holders(&cat).await;
    assert!(want(&h) && !h.contains_key(&db("ap1")), "{h:?}");
    let after = cat.pipe_leases().await.unwrap().1;
    for p in ["eu1", "eu2", "us1"] {
        let token = |ls: &[sluice_catalog::PipeLease]| ls.iter().find(|l| l.pipe == db(p)).map(|l| l.token);
        assert_eq!(token(&before), token(&after), "{p} was not handed back and forth");
    }

    // The workers list shows each worker's labels.
    let (code, ws) = eu.call(Method::GET, "/v1/workers", None).await;
    assert_eq!(code, 200, "{ws}");
    let labels: BTreeMap<String, serde_json::Value> =
        ws.as_array().unwrap().iter().map(|w| (w["id"].as_str().unwrap().to_string(), w["labels"].clone())).collect();
    assert_eq!(labels["weu"], json!({"region": "eu", "zone": "a"}), "{ws}");
    assert_eq!(labels["wus"], json!({"region": "us"}), "{ws}");

    // The unplaceable pipe: its view says what it waits for; commands are 503 with Retry-After.
    for w in [&eu, &us] {
        let (code, v) = w.call(Method::GET, &format!("/v1/pipes/{}", db("ap1")), None).await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["worker"], serde_json::Value::Null, "{v}");
        let note = v["placement"].as_str().unwrap_or_default();
        assert!(note.contains("waiting for a live worker with labels region=ap"), "{v}");
        let resp = w.http.post(format!("{}/v1/pipes/{}/pause", w.base(), db("ap1"))).bearer_auth(&w.token).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 503);
        let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry >= 1, "{retry}");
        let body: serde_json::Value = resp.json().await.unwrap();
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(&db("ap1")) && error.contains("region=ap") && error.ends_with("retry"), "{body}");
        // The placed pipes show no placement note.
        let (_, v) = w.call(Method::GET, &format!("/v1/pipes/{}", db("eu1")), None).await;
        assert_eq!((v["worker"].as_str(), &v["placement"]), (Some("weu"), &serde_json::Value::Null), "{v}");
    }
    // The list through either worker has the live figures of every running pipe (asked of its worker);
    // `local=true` lists only the asked worker's own pipes.
    for w in [&eu, &us] {
        eventually(T, || async {
            let (code, list) = w.call(Method::GET, "/v1/pipes", None).await;
            assert_eq!(code, 200, "{list}");
            let lagless: Vec<_> = list
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| v["name"] != db("ap1").as_str() && v["lag_seconds"].is_null())
                .map(|v| v["name"].clone())
                .collect();
            if lagless.is_empty() {
                Ok(())
            } else {
                Err(format!("no live figures for {lagless:?}"))
            }
        })
        .await;
    }
    let (_, local) = us.call(Method::GET, "/v1/pipes?local=true", None).await;
    let h = holders(&cat).await;
    let mut names: Vec<String> = local.as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    let mut want_names: Vec<String> = h.iter().filter(|(_, w)| *w == "wus").map(|(p, _)| p.clone()).collect();
    want_names.sort();
    assert_eq!(names, want_names, "{local}");

    // The unplaceable pipe can still be deleted (from whichever worker receives the request).
    let (code, v) = us.call(Method::DELETE, &format!("/v1/pipes/{}", db("ap1")), None).await;
    assert_eq!(code, 204, "{v}");
    let (code, _) = eu.call(Method::GET, &format!("/v1/pipes/{}", db("ap1")), None).await;
    assert_eq!(code, 404);

    // A pipe that does not exist is still 404.
    let (code, _) = eu.call(Method::POST, &format!("/v1/pipes/{}/pause", db("nope")), None).await;
    assert_eq!(code, 404);
    // A bad constraint is refused naming the field.
    let mut bad = spec(&db("bad"), Flavor::MySql, json!([{"source": "x.t"}]), &tag, "snapshot_and_cdc");
    bad["placement"] = json!({"labels": {"region": "e u"}});
    let (code, v) = eu.call(Method::POST, "/v1/pipes?skip_checks=true", Some(bad)).await;
    assert!(code == 400 || code == 422, "{code} {v}");
    assert!(v["error"].as_str().unwrap_or_default().contains("placement.labels"), "{v}");

    // The only eu worker stops (SIGTERM: it releases its leases): wus may not run the eu pipes, so
    // they wait, saying so; when weu is back it takes them again and they run.
    signal(&eu, "TERM");
    assert_eq!(eu.wait_exit(Duration::from_secs(120)), Some(0), "weu did not stop cleanly:\n{}", eu.log());
    tokio::time::sleep(Duration::from_secs(3)).await; // a few of wus's placement rounds
    let h = holders(&cat).await;
    assert!(!h.contains_key(&db("eu1")) && !h.contains_key(&db("eu2")), "an eu pipe ran on wus: {h:?}");
    let (code, v) = us.call(Method::GET, &format!("/v1/pipes/{}", db("eu1")), None).await;
    assert_eq!(code, 200, "{v}");
    assert!(v["placement"].as_str().unwrap_or_default().contains("waiting for a live worker with labels region=eu"), "{v}");
    let (code, v) = us.call(Method::POST, &format!("/v1/pipes/{}/pause", db("eu1")), None).await;
    assert_eq!(code, 503, "{v}");
    eu.restart().await;
    eventually(T, || async {
        let h = holders(&cat).await;
        if want(&h) {
            Ok(())
        } else {
            Err(format!("the eu pipes are not back on weu: {h:?}"))
        }
    })
    .await;
    for p in ["eu1", "eu2"] {
        us.wait_state(&db(p), "Running", T).await;
    }
}
