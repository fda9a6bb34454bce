//! Placement: which worker runs which pipe, through the catalog's pipe leases.
//!
//! Every `sluice server` is a worker (an id, an advertised API address, a
//! lease TTL). Its placement loop, every TTL/3 (and at once when woken):
//! - heartbeats its worker row (registering again if the row went away);
//! - renews the lease of every pipe it runs; a renewal refused as fenced
//!   (another worker acquired the pipe: this one was paused, partitioned or
//!   too slow) stops that pipe's engine at once and says so in the log, and so
//!   does a lease this worker could not renew for a whole TTL (it has expired:
//!   another worker may hold it);
//! - acquires pipes nobody holds a live lease on (never leased, released, or
//!   expired) when it is the least-loaded live worker eligible for them
//!   (fewest live leases, ties broken by id; a worker is live while its
//!   heartbeat is younger than the TTL; eligible when its labels include
//!   every pair of the pipe's placement constraint), counting each pipe it
//!   assigns in its plan to the worker it chose, so that several free pipes
//!   are spread in one round; a pipe no live worker is eligible for stays
//!   unplaced (and says so: `unplaced`);
//! - takes back at once the unexpired leases that carry its own id but that
//!   it does not run (it restarted): no TTL wait for a restarted worker; one
//!   its labels no longer satisfy is released instead, for an eligible worker;
//! - hands one pipe off gracefully when it runs more than its fair share and
//!   at least two more than the least-loaded live worker, both counted among
//!   the workers eligible for that pipe (a worker joined or came back): the
//!   engine stops as at a clean stop, then the lease is released and the
//!   least-loaded eligible worker acquires it.
//!
//! A pipe's owner task (and engine) only runs on the worker holding its
//! lease, with a catalog handle fenced by the lease token (`Catalog::fenced`).

use crate::manager::{Manager, ManagerError};
use sluice_catalog::PipeLease;
use sluice_core::spec::PlacementSpec;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// This server as a worker.
#[derive(Debug, Clone)]
pub struct WorkerConf {
    /// Unique among the workers sharing the catalog, stable across restarts.
    pub id: String,
    /// Where the other workers and clients reach this worker's API.
    pub advertise_url: String,
    /// How long a lease lasts without renewal.
    pub lease_ttl: Duration,
    /// This worker's labels (`--labels`), matched against pipes' placement constraints.
    pub labels: BTreeMap<String, String>,
}

impl WorkerConf {
    /// How often leases are renewed and placement runs.
    pub fn tick(&self) -> Duration {
        (self.lease_ttl / 3).max(Duration::from_millis(100))
    }
}

/// The worker id stored in `<data-dir>/worker-id` (created on first start:
/// the host name and a random suffix), so that a restarted worker keeps it.
pub fn default_worker_id(data_dir: &std::path::Path) -> std::io::Result<String> {
    let path = data_dir.join("worker-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let host = if host.is_empty() { "worker".to_string() } else { host };
    let id = format!("{host}-{}", &hex::encode(rand::random::<[u8; 4]>()));
    let tmp = data_dir.join(".worker-id.tmp");
    std::fs::write(&tmp, format!("{id}\n"))?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

/// Registers the worker and runs a first placement round (so that the pipes
/// it held before a restart run again before its API answers), then spawns
/// the loop; it ends when `stop` is cancelled.
pub async fn start(manager: &Manager, stop: CancellationToken) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let conf = manager.worker().cloned().ok_or_else(|| anyhow::anyhow!("the manager has no worker identity"))?;
    manager.catalog().register_worker(&conf.id, &conf.advertise_url, &conf.labels).await?;
    info!(
        "worker {} registered (API {}, lease TTL {:?}, labels {:?})",
        conf.id,
        conf.advertise_url,
        conf.lease_ttl,
        sluice_core::spec::format_labels(&conf.labels)
    );
    round(manager, &conf).await;
    let m = manager.clone();
    Ok(tokio::spawn(async move {
        let mut pruned: Option<std::time::Instant> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(conf.tick()) => {}
                _ = m.wake.notified() => {}
            }
            round(&m, &conf).await;
            if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned = Some(std::time::Instant::now());
                match m.catalog().remove_stale_workers(STALE_WORKER).await {
                    Ok(gone) if !gone.is_empty() => {
                        info!(
                            "removed workers silent for more than {} h and holding no lease: {}",
                            STALE_WORKER.as_secs() / 3600,
                            gone.join(", ")
                        )
                    }
                    Ok(_) => {}
                    Err(e) => warn!("cannot remove stale workers: {e}"),
                }
            }
        }
    }))
}

/// A worker whose heartbeat is older than this and that holds no live lease is removed from `workers`.
const STALE_WORKER: Duration = Duration::from_secs(24 * 3600);
/// How often a worker looks for stale workers to remove.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// One round: heartbeat, renewals, acquisitions. Errors are logged; the next round tries again.
async fn round(m: &Manager, conf: &WorkerConf) {
    let cat = m.catalog();
    match cat.heartbeat_worker(&conf.id).await {
        Ok(()) => {}
        Err(e) => {
            warn!("worker heartbeat failed ({e}); registering again");
            if let Err(e) = cat.register_worker(&conf.id, &conf.advertise_url, &conf.labels).await {
                warn!("cannot register worker {}: {e}", conf.id);
            }
        }
    }
    renew(m, conf).await;
    if let Err(e) = acquire(m, conf, None).await {
        warn!("placement round failed: {e}");
    }
    if let Err(e) = rebalance(m, conf).await {
        warn!("fair-share round failed: {e}");
    }
}

/// Whether a worker running `mine` pipes hands one off, given the live
/// workers' loads: when it runs more than its fair share (the pipes held,
/// divided by the live workers, rounded up) and at least two more than the
/// least-loaded live worker (so that loads one apart never swap back and forth).
fn over_fair_share(mine: usize, load: &HashMap<String, usize>) -> bool {
    let total: usize = load.values().sum();
    let fair = total.div_ceil(load.len().max(1));
    let least = load.values().min().copied().unwrap_or(0);
    mine > fair && mine >= least + 2
}

/// Fair share: a worker running more than its share among the workers
/// eligible for one of its pipes (e.g. after another worker joined or came
/// back) hands that pipe off per round, gracefully (see `Manager::hand_off`);
/// the least-loaded eligible worker acquires it.
async fn rebalance(m: &Manager, conf: &WorkerConf) -> Result<(), ManagerError> {
    let cat = m.catalog();
    let (now, leases) = cat.pipe_leases().await?;
    let workers = cat.workers().await?;
    let load = loads(conf, now, &workers, &leases);
    let labels = live_labels(conf, &workers);
    let mine = load.get(&conf.id).copied().unwrap_or(0);
    let Some((pipe, among)) = to_hand_off(&conf.id, mine, &load, &labels, m.held_leases()) else {
        return Ok(());
    };
    let _placing = m.placing.lock().await;
    if m.held_leases().iter().any(|(p, _, c)| *p == pipe && !c.as_ref().is_none_or(|c| c.admits(&conf.labels))) {
        info!(pipe = pipe.as_str(), "worker {}'s labels do not satisfy the placement of pipe {pipe}: handing it off", conf.id);
    } else {
        info!(
            pipe = pipe.as_str(),
            "worker {} runs {mine} pipes, more than its fair share among the {among} workers eligible for pipe {pipe}", conf.id
        );
    }
    m.hand_off(&pipe).await;
    Ok(())
}

/// Which held pipe (name, token, constraint) worker `me` hands off, with the
/// number of workers eligible for it: first one whose constraint `me`'s
/// labels do not satisfy (should one run here), else the most recently
/// acquired one (highest token) for which `me`, running `mine`, is over its
/// fair share among the live workers eligible for that pipe.
fn to_hand_off(
    me: &str,
    mine: usize,
    load: &HashMap<String, usize>,
    labels: &HashMap<String, BTreeMap<String, String>>,
    mut held: Vec<(String, i64, Option<PlacementSpec>)>,
) -> Option<(String, usize)> {
    held.sort_by_key(|(_, t, _)| std::cmp::Reverse(*t));
    let admits_me = |c: &Option<PlacementSpec>| c.as_ref().is_none_or(|c| labels.get(me).is_some_and(|l| c.admits(l)));
    if let Some((pipe, _, c)) = held.iter().find(|(_, _, c)| !admits_me(c)) {
        return Some((pipe.clone(), eligible(load, labels, c.as_ref()).len()));
    }
    held.into_iter().find_map(|(pipe, _, constraint)| {
        let among = eligible(load, labels, constraint.as_ref());
        over_fair_share(mine, &among).then_some((pipe, among.len()))
    })
}

/// Every registered worker's labels (this one's from its own configuration).
fn live_labels(conf: &WorkerConf, workers: &[sluice_catalog::WorkerRecord]) -> HashMap<String, BTreeMap<String, String>> {
    let mut labels: HashMap<_, _> = workers.iter().map(|w| (w.id.clone(), w.labels.clone())).collect();
    labels.insert(conf.id.clone(), conf.labels.clone());
    labels
}

/// `load` restricted to the workers a pipe with `constraint` may run on.
fn eligible(
    load: &HashMap<String, usize>,
    labels: &HashMap<String, BTreeMap<String, String>>,
    constraint: Option<&PlacementSpec>,
) -> HashMap<String, usize> {
    load.iter()
        .filter(|(id, _)| constraint.is_none_or(|c| labels.get(*id).is_some_and(|l| c.admits(l))))
        .map(|(id, n)| (id.clone(), *n))
        .collect()
}

/// Renews every lease this worker runs a pipe under.
async fn renew(m: &Manager, conf: &WorkerConf) {
    let cat = m.catalog();
    for (pipe, token, renewed) in m.renewals() {
        match cat.renew_lease(&pipe, &conf.id, token, conf.lease_ttl).await {
            Ok(_) => m.renewed(&pipe, token),
            Err(sluice_catalog::CatalogError::Fenced { current, .. }) => {
                let holder = match cat.lease_holder(&pipe).await {
                    Ok(Some((w, l))) => format!("worker {w} (token {})", l.token),
                    Ok(None) => format!("nobody ({current})"),
                    Err(_) => current,
                };
                if m.lose(&pipe, token) {
                    error!(pipe = pipe.as_str(), "lost the lease of pipe {pipe} to {holder}; stopped it");
                }
            }
            Err(sluice_catalog::CatalogError::NoSuchPipe(_)) => {}
            Err(e) => {
                warn!(pipe = pipe.as_str(), "cannot renew the lease (token {token}): {e}");
                if renewed.elapsed() >= conf.lease_ttl && m.lose(&pipe, token) {
                    error!(
                        pipe = pipe.as_str(),
                        "lost the lease of pipe {pipe}: not renewed for {:?} (it expired; another worker may take it); stopped it",
                        conf.lease_ttl
                    );
                }
            }
        }
    }
}

/// The live workers' loads: live leases per worker, every live worker (and this one) present.
fn loads(conf: &WorkerConf, now: i64, workers: &[sluice_catalog::WorkerRecord], leases: &[PipeLease]) -> HashMap<String, usize> {
    let ttl = conf.lease_ttl.as_millis() as i64;
    let mut load: HashMap<String, usize> =
        workers.iter().filter(|w| now - w.heartbeat_ms < ttl || w.id == conf.id).map(|w| (w.id.clone(), 0)).collect();
    load.entry(conf.id.clone()).or_insert(0);
    for l in leases {
        if let Some(owner) = l.held_at(now) {
            if let Some(n) = load.get_mut(owner) {
                *n += 1;
            }
        }
    }
    load
}

/// The least-loaded worker (ties: the smallest id).
fn least_loaded(load: &HashMap<String, usize>) -> Option<String> {
    load.iter().min_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0))).map(|(id, _)| id.clone())
}

/// Acquires the free pipes this worker should run (`only`: just that pipe).
async fn acquire(m: &Manager, conf: &WorkerConf, only: Option<&str>) -> Result<(), ManagerError> {
    let _placing = m.placing.lock().await;
    let cat = m.catalog();
    let (now, leases) = cat.pipe_leases().await?;
    let workers = cat.workers().await?;
    let mut load = loads(conf, now, &workers, &leases);
    let labels = live_labels(conf, &workers);
    for l in &leases {
        if only.is_some_and(|p| p != l.pipe) || m.runs(&l.pipe) {
            continue;
        }
        let held = l.held_at(now);
        if held.is_some_and(|owner| owner != conf.id) {
            continue;
        }
        // Free, or this worker's own: where may it run? (Read only for these pipes.)
        let constraint = match cat.pipe(&l.pipe).await? {
            Some(rec) => rec.spec.placement,
            None => continue,
        };
        let mine = match held {
            // Held by this worker's id but not run here: it restarted; take it back at once,
            // unless its labels no longer satisfy the pipe's constraint (then an eligible worker takes it).
            Some(_) if !constraint.as_ref().is_none_or(|c| c.admits(&conf.labels)) => {
                let c = constraint.as_ref().map(PlacementSpec::describe).unwrap_or_default();
                info!(pipe = l.pipe.as_str(), "releasing pipe {}: this worker's labels no longer satisfy its placement ({c})", l.pipe);
                if let Err(e) = cat.release_lease(&l.pipe, &conf.id, l.token).await {
                    warn!(pipe = l.pipe.as_str(), "cannot release the lease: {e}; it expires by itself");
                }
                continue;
            }
            Some(_) => true,
            None => {
                let chosen = least_loaded(&eligible(&load, &labels, constraint.as_ref()));
                if let Some(c) = &chosen {
                    *load.entry(c.clone()).or_insert(0) += 1;
                }
                chosen.as_deref() == Some(conf.id.as_str())
            }
        };
        if !mine {
            continue;
        }
        match cat.acquire_lease(&l.pipe, &conf.id, conf.lease_ttl).await {
            Ok(Some(lease)) => {
                info!(pipe = l.pipe.as_str(), "acquired the lease of pipe {} (token {})", l.pipe, lease.token);
                if let Err(e) = m.adopt(&l.pipe, lease.token).await {
                    warn!(pipe = l.pipe.as_str(), "cannot start the pipe after acquiring its lease: {e}; releasing it");
                    let _ = cat.release_lease(&l.pipe, &conf.id, lease.token).await;
                } else if let Some(gap) = take_over_note(l, now, &conf.id, lease.token) {
                    // The pause in the pipe's flow, in its history.
                    if let Err(e) = cat.note(&l.pipe, &gap).await {
                        warn!(pipe = l.pipe.as_str(), "cannot record the take-over: {e}");
                    }
                }
            }
            Ok(None) => {} // another worker was faster
            Err(sluice_catalog::CatalogError::NoSuchPipe(_)) => {}
            Err(e) => warn!(pipe = l.pipe.as_str(), "cannot acquire the lease: {e}"),
        }
    }
    Ok(())
}

/// What the history says when `worker` takes `l` over (token `token`) at
/// `now`: since when the pipe ran nowhere (its lease released, or expired
/// after its holder stopped renewing it). `None` for a pipe never leased.
fn take_over_note(l: &PipeLease, now: i64, worker: &str, token: i64) -> Option<String> {
    if l.token == 0 {
        return None;
    }
    let ago = (now - l.expires_ms).max(0) as f64 / 1000.0;
    let from = match &l.owner {
        Some(w) if w == worker && l.expires_ms > now => return None, // taken back after a restart, within its lease
        Some(w) => format!("the lease of worker {w} (token {}) expired {ago:.1} s ago, after it stopped renewing it", l.token),
        None => format!("the lease (token {}) was released {ago:.1} s ago", l.token),
    };
    Some(format!("worker {worker} took the pipe over (token {token}): {from}; the pipe ran nowhere in between"))
}

/// Why a pipe of the catalog runs on no worker right now (see `unplaced`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unplaced {
    /// Names the pipe and why, and when a worker takes it; ends with "retry".
    pub message: String,
    /// When to ask again: the placement round (TTL/3), whole seconds, at least 1.
    pub retry_after_s: u64,
    /// No live worker's labels satisfy the pipe's placement constraint: it
    /// waits for one to start (and can only be deleted meanwhile: `delete_unplaceable`).
    pub no_eligible_worker: bool,
}

/// Why `pipe` runs nowhere right now, `None` when it does not exist or runs
/// on this worker; on a pipe another live worker holds (a request reached
/// this worker after the pipe moved) it says where it is now.
pub(crate) async fn unplaced(m: &Manager, pipe: &str) -> Result<Option<Unplaced>, ManagerError> {
    let Some(conf) = m.worker().cloned() else {
        return Ok(None);
    };
    if m.runs(pipe) {
        return Ok(None);
    }
    let Some((now, lease)) = m.catalog().pipe_lease(pipe).await? else {
        return Ok(None);
    };
    let mut gap = unplaced_because(&conf, &lease, now);
    if lease.held_at(now).is_none() {
        // Nobody holds it: is any live worker eligible for it at all?
        if let Some(c) = m.catalog().pipe(pipe).await?.and_then(|r| r.spec.placement).filter(|c| !c.labels.is_empty()) {
            let workers = m.catalog().workers().await?;
            let ttl = conf.lease_ttl.as_millis() as i64;
            let live: Vec<_> = workers.iter().filter(|w| now - w.heartbeat_ms < ttl).collect();
            if !live.iter().any(|w| c.admits(&w.labels)) {
                gap.no_eligible_worker = true;
                gap.message = format!(
                    "pipe {pipe} is waiting for a live worker with labels {}: none of the {} live workers has them; \
                     start one with --labels {}, then retry",
                    c.describe(),
                    live.len(),
                    c.describe()
                );
            }
        }
    }
    Ok(Some(gap))
}

/// `unplaced` from what the catalog says (pure, for tests).
fn unplaced_because(conf: &WorkerConf, l: &PipeLease, now: i64) -> Unplaced {
    let round = conf.tick();
    let retry_after_s = round.as_secs_f64().ceil().max(1.0) as u64;
    let ago = (now - l.expires_ms).max(0) as f64 / 1000.0;
    let p = &l.pipe;
    let within = format!("a live worker takes it at its next placement round (within {:.1} s); retry", round.as_secs_f64());
    let message = match (l.held_at(now), &l.owner) {
        (Some(w), _) if w == conf.id => format!("pipe {p} is being started on worker {w} (token {}); retry", l.token),
        (Some(w), _) => format!("pipe {p} moved to worker {w} (token {}) while the request was on its way; retry", l.token),
        _ if l.token == 0 => format!("pipe {p} is between workers: no worker has taken it yet; {within}"),
        (None, Some(w)) => {
            format!("pipe {p} is between workers: the lease of worker {w} (token {}) expired {ago:.1} s ago; {within}", l.token)
        }
        (None, None) => format!("pipe {p} is between workers: its lease (token {}) was released {ago:.1} s ago; {within}", l.token),
    };
    Unplaced { message, retry_after_s, no_eligible_worker: false }
}

/// Deletes a pipe no live worker may run (see `Unplaced::no_eligible_worker`),
/// from this worker, without running it: takes its lease (fencing any former
/// holder), drops its destination tables if asked, and deletes it with the
/// fenced handle. Held against this worker's own placement rounds. A pipe
/// another worker took meanwhile is `Unplaced` (retry: the request is then
/// forwarded to it).
pub(crate) async fn delete_unplaceable(m: &Manager, pipe: &str, drop_tables: bool) -> Result<(), ManagerError> {
    let Some(conf) = m.worker().cloned() else {
        return Err(ManagerError::NotFound(pipe.into()));
    };
    let _placing = m.placing.lock().await;
    let cat = m.catalog();
    let Some(lease) = cat.acquire_lease(pipe, &conf.id, conf.lease_ttl).await? else {
        let message = format!("pipe {pipe} was just taken by another worker; retry");
        return Err(ManagerError::Unplaced { message, retry_after_s: 1 });
    };
    let fenced = cat.fenced(pipe, lease.token);
    let done = async {
        if drop_tables {
            let rec = fenced.pipe(pipe).await?.ok_or_else(|| ManagerError::NotFound(pipe.into()))?;
            let sink = sluice_sink::ClickHouseSink::new(&rec.spec.destination);
            for t in fenced.tables(pipe).await? {
                for d in [t.mapping.destination.clone(), sluice_core::state::resync_table_name(&t.mapping.destination)] {
                    sink.drop_table(&d).await.map_err(|e| ManagerError::Internal(format!("dropping {d}: {e}")))?;
                }
            }
        }
        fenced.delete_pipe(pipe).await?;
        Ok::<_, ManagerError>(())
    }
    .await;
    match &done {
        Ok(()) => info!(pipe, "pipe {pipe} deleted by worker {} (no live worker was eligible to run it)", conf.id),
        Err(e) => {
            warn!(pipe, "deleting pipe {pipe} failed: {e}; releasing its lease");
            let _ = cat.release_lease(pipe, &conf.id, lease.token).await;
        }
    }
    done
}

/// A pipe just created on this worker: acquired here at once if this is the
/// least-loaded live worker; otherwise left to the loop of the worker that is.
pub(crate) async fn place_new(m: &Manager, pipe: &str) -> Result<(), ManagerError> {
    let Some(conf) = m.worker().cloned() else {
        return Ok(());
    };
    acquire(m, &conf, Some(pipe)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(id: &str) -> WorkerConf {
        WorkerConf { id: id.into(), advertise_url: "http://x".into(), lease_ttl: Duration::from_secs(15), labels: BTreeMap::new() }
    }

    fn worker(id: &str, heartbeat_ms: i64) -> sluice_catalog::WorkerRecord {
        sluice_catalog::WorkerRecord { id: id.into(), api_address: String::new(), started_ms: 0, heartbeat_ms, labels: BTreeMap::new() }
    }

    fn lease(pipe: &str, owner: Option<&str>, expires_ms: i64) -> PipeLease {
        PipeLease { pipe: pipe.into(), owner: owner.map(Into::into), token: 1, expires_ms }
    }

    #[test]
    fn a_worker_over_its_fair_share_hands_off_until_loads_are_within_one() {
        let load = |v: &[usize]| -> HashMap<String, usize> { v.iter().enumerate().map(|(i, n)| (format!("w{i}"), *n)).collect() };
        // A worker came back empty: the others give it pipes, one round at a time.
        assert!(over_fair_share(6, &load(&[0, 6, 6])));
        assert!(over_fair_share(5, &load(&[2, 5, 5])));
        // Within one of each other (or of the share): nobody moves.
        assert!(!over_fair_share(4, &load(&[4, 4, 4])));
        assert!(!over_fair_share(5, &load(&[4, 4, 5])));
        assert!(!over_fair_share(34, &load(&[33, 33, 34])));
        // One worker alone keeps everything.
        assert!(!over_fair_share(12, &load(&[12])));
    }

    #[test]
    fn a_take_over_says_how_long_the_pipe_ran_nowhere() {
        let released = PipeLease { pipe: "p".into(), owner: None, token: 3, expires_ms: 10_000 };
        assert_eq!(
            take_over_note(&released, 10_400, "w2", 4).as_deref(),
            Some("worker w2 took the pipe over (token 4): the lease (token 3) was released 0.4 s ago; the pipe ran nowhere in between")
        );
        let expired = PipeLease { pipe: "p".into(), owner: Some("w1".into()), token: 3, expires_ms: 10_000 };
        assert!(take_over_note(&expired, 12_000, "w2", 4).unwrap().contains("the lease of worker w1 (token 3) expired 2.0 s ago"));
        assert_eq!(take_over_note(&expired, 9_000, "w1", 4), None, "its own live lease, after a restart");
        let never = PipeLease { pipe: "p".into(), owner: None, token: 0, expires_ms: 0 };
        assert_eq!(take_over_note(&never, 1, "w1", 1), None);
    }

    #[test]
    fn a_pipe_between_workers_says_why_and_when_to_retry() {
        let c = conf("w2"); // TTL 15 s: a round every 5 s
        let released = PipeLease { pipe: "p".into(), owner: None, token: 3, expires_ms: 10_000 };
        let u = unplaced_because(&c, &released, 10_400);
        assert_eq!(u.retry_after_s, 5);
        assert_eq!(
            u.message,
            "pipe p is between workers: its lease (token 3) was released 0.4 s ago; \
             a live worker takes it at its next placement round (within 5.0 s); retry"
        );
        let expired = PipeLease { pipe: "p".into(), owner: Some("w1".into()), token: 3, expires_ms: 10_000 };
        assert!(unplaced_because(&c, &expired, 12_000).message.contains("the lease of worker w1 (token 3) expired 2.0 s ago"));
        let never = PipeLease { pipe: "p".into(), owner: None, token: 0, expires_ms: 0 };
        assert!(unplaced_because(&c, &never, 1).message.contains("no worker has taken it yet"));
        let elsewhere = PipeLease { pipe: "p".into(), owner: Some("w1".into()), token: 4, expires_ms: 20_000 };
        assert!(unplaced_because(&c, &elsewhere, 12_000).message.contains("moved to worker w1 (token 4)"));
        let fast = WorkerConf { lease_ttl: Duration::from_millis(900), ..conf("w2") };
        assert_eq!(unplaced_because(&fast, &released, 10_400).retry_after_s, 1, "at least 1 s");
    }

    fn labels(text: &str) -> BTreeMap<String, String> {
        sluice_core::spec::parse_labels(text).unwrap()
    }

    fn constraint(text: &str) -> Option<PlacementSpec> {
        Some(PlacementSpec { labels: labels(text) })
    }

    #[test]
    fn only_workers_with_every_label_of_the_constraint_are_eligible_and_the_least_loaded_of_them_gets_the_pipe() {
        let load: HashMap<String, usize> = [("eu1", 5), ("eu2", 3), ("us1", 0), ("bare", 0)].map(|(w, n)| (w.to_string(), n)).into();
        let lbl: HashMap<String, BTreeMap<String, String>> =
            [("eu1", "region=eu,tier=gold"), ("eu2", "region=eu"), ("us1", "region=us,tier=gold"), ("bare", "")]
                .map(|(w, l)| (w.to_string(), labels(l)))
                .into();
        let ids = |m: HashMap<String, usize>| {
            let mut v: Vec<String> = m.into_keys().collect();
            v.sort();
            v
        };
        assert_eq!(ids(eligible(&load, &lbl, None)), ["bare", "eu1", "eu2", "us1"], "no constraint: every live worker");
        assert_eq!(ids(eligible(&load, &lbl, constraint("").as_ref())), ["bare", "eu1", "eu2", "us1"]);
        assert_eq!(ids(eligible(&load, &lbl, constraint("region=eu").as_ref())), ["eu1", "eu2"]);
        assert_eq!(ids(eligible(&load, &lbl, constraint("region=eu,tier=gold").as_ref())), ["eu1"]);
        assert!(eligible(&load, &lbl, constraint("region=ap").as_ref()).is_empty(), "nobody: the pipe stays unplaced");
        // The least loaded among the eligible, not among all: us1 and bare are idle but not eligible.
        assert_eq!(least_loaded(&eligible(&load, &lbl, constraint("region=eu").as_ref())).as_deref(), Some("eu2"));
        assert_eq!(least_loaded(&eligible(&load, &lbl, constraint("region=ap").as_ref())), None);
    }

    #[test]
    fn fair_share_counts_only_the_workers_eligible_for_the_pipe_handed_off() {
        let lbl: HashMap<String, BTreeMap<String, String>> =
            [("w1", "region=eu"), ("w2", "region=us")].map(|(w, l)| (w.to_string(), labels(l))).into();
        let load: HashMap<String, usize> = [("w1", 6), ("w2", 0)].map(|(w, n)| (w.to_string(), n)).into();
        // Six pipes only w1 may run: nothing moves although w2 is idle (it would come straight back).
        let eu_only: Vec<_> = (1..=6).map(|i| (format!("p{i}"), i, constraint("region=eu"))).collect();
        assert_eq!(to_hand_off("w1", 6, &load, &lbl, eu_only.clone()), None);
        // A pipe this worker is not eligible for goes first, whatever the loads.
        let astray = vec![("p1".to_string(), 1, None), ("p9".to_string(), 9, constraint("region=us"))];
        assert_eq!(to_hand_off("w1", 2, &load, &lbl, astray), Some(("p9".to_string(), 1)));
        // One of them may run anywhere: that one moves, although it is not the most recent.
        let mut mixed = eu_only;
        mixed[1].2 = None;
        assert_eq!(to_hand_off("w1", 6, &load, &lbl, mixed), Some(("p2".to_string(), 2)));
        // Unconstrained pipes: the most recently acquired (highest token) moves first, as before.
        let free: Vec<_> = (1..=6).map(|i| (format!("p{i}"), i, None)).collect();
        assert_eq!(to_hand_off("w1", 6, &load, &lbl, free.clone()), Some(("p6".to_string(), 2)));
        let even: HashMap<String, usize> = [("w1", 3), ("w2", 3)].map(|(w, n)| (w.to_string(), n)).into();
        assert_eq!(to_hand_off("w1", 3, &even, &lbl, free), None);
    }

    #[test]
    fn loads_count_live_leases_of_live_workers_and_ties_go_to_the_smallest_id() {
        let now = 100_000;
        let workers = [worker("a", now - 1000), worker("b", now - 1000), worker("dead", now - 60_000)];
        let leases = [
            lease("p1", Some("a"), now + 5000),
            lease("p2", Some("a"), now - 1), // expired
            lease("p3", Some("dead"), now + 5000),
            lease("p4", None, 0),
        ];
        let load = loads(&conf("c"), now, &workers, &leases);
        assert_eq!(load.len(), 3, "{load:?}"); // a, b, and this worker c; not the dead one
        assert_eq!((load["a"], load["b"], load["c"]), (1, 0, 0));
        assert_eq!(least_loaded(&load).as_deref(), Some("b"));
    }
}
