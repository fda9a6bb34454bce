//! Workers and pipe leases with fencing tokens: the catalog side of several
//! workers sharing one (Postgres) catalog.
//!
//! A worker registers itself (id, advertised API address) and heartbeats. A
//! pipe is run by the worker holding its lease: a row with the owner, an
//! expiry and a fencing token that grows by one on every acquisition. The
//! holder renews it before it expires; once expired (or released) any worker
//! may acquire it, getting a higher token. Every write of a pipe's made
//! through a handle fenced by its token (`Catalog::fenced`; also the
//! explicit `save_checkpoint_fenced`, `reserve_versions_fenced`,
//! `set_table_state_fenced`, `record_schema_change_fenced`) checks the token
//! in the same transaction as the write and fails with `CatalogError::Fenced`
//! when it is no longer the pipe's: a worker that lost its lease (paused,
//! partitioned, slow) can neither move the checkpoint nor reserve versions
//! after another worker took the pipe over. Times are the catalog
//! database's clock (milliseconds), so workers' clocks need not agree.
//!
//! Placement (which worker acquires which pipe) is the control plane's job;
//! nothing here runs on its own.

use crate::{Backend, Catalog, CatalogError, Tx};
use sqlx::Row;
use std::collections::BTreeMap;
use std::time::Duration;

type Result<T> = std::result::Result<T, CatalogError>;

/// A registered worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRecord {
    pub id: String,
    pub api_address: String,
    /// Unix milliseconds (catalog clock).
    pub started_ms: i64,
    pub heartbeat_ms: i64,
    /// Its labels (`--labels`), matched against pipes' placement constraints.
    pub labels: BTreeMap<String, String>,
}

/// A lease held: its fencing token and when it expires (Unix ms, catalog clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub token: i64,
    pub expires_ms: i64,
}

/// One pipe and its lease as stored (`owner` `None`: never leased, or released).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeLease {
    pub pipe: String,
    pub owner: Option<String>,
    /// 0 when the pipe was never leased.
    pub token: i64,
    /// Unix ms (catalog clock); the lease is live while this is in the future
    /// (once released: when it was released).
    pub expires_ms: i64,
}

impl PipeLease {
    /// Whether someone holds it at `now_ms` (catalog clock).
    pub fn held_at(&self, now_ms: i64) -> Option<&str> {
        self.owner.as_deref().filter(|_| self.expires_ms > now_ms)
    }
}

impl Catalog {
    /// Every pipe with its lease (if any), by pipe name, and the catalog's
    /// clock when read (Unix ms): what a placement round decides from.
    pub async fn pipe_leases(&self) -> Result<(i64, Vec<PipeLease>)> {
        self.detached(|c| async move {
            let now = c.now_ms_sql();
            let now_ms: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {now}"))).fetch_one(&c.reads).await?;
            let rows = sqlx::query(
                "SELECT p.name, l.owner, COALESCE(l.token, 0), COALESCE(l.expires_ms, 0) FROM pipes p \
                 LEFT JOIN pipe_leases l ON l.pipe = p.name ORDER BY p.name",
            )
            .fetch_all(&c.reads)
            .await?;
            let leases =
                rows.into_iter().map(|r| PipeLease { pipe: r.get(0), owner: r.get(1), token: r.get(2), expires_ms: r.get(3) }).collect();
            Ok((now_ms, leases))
        })
        .await
    }

    /// One pipe's lease as stored (token 0 and no owner when never leased)
    /// and the catalog's clock when read; `None` when there is no such pipe.
    pub async fn pipe_lease(&self, pipe: &str) -> Result<Option<(i64, PipeLease)>> {
        let pipe = pipe.to_owned();
        self.detached(move |c| async move {
            let now = c.now_ms_sql();
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT p.name, l.owner, COALESCE(l.token, 0), COALESCE(l.expires_ms, 0), {now} FROM pipes p \
                 LEFT JOIN pipe_leases l ON l.pipe = p.name WHERE p.name = $1"
            )))
            .bind(&pipe)
            .fetch_optional(&c.reads)
            .await?;
            Ok(row.map(|r| (r.get(4), PipeLease { pipe: r.get(0), owner: r.get(1), token: r.get(2), expires_ms: r.get(3) })))
        })
        .await
    }

    /// The catalog database's clock, in Unix milliseconds, as SQL.
    fn now_ms_sql(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// Registers worker `id` (or updates its address and labels), with a first heartbeat.
    pub async fn register_worker(&self, id: &str, api_address: &str, labels: &BTreeMap<String, String>) -> Result<()> {
        let (id, addr) = (id.to_owned(), api_address.to_owned());
        let labels = serde_json::to_string(labels).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
        self.detached(move |c| async move {
            let now = c.now_ms_sql();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO workers (id, api_address, started_ms, heartbeat_ms, labels_json) VALUES ($1, $2, {now}, {now}, $3) \
                 ON CONFLICT (id) DO UPDATE SET api_address = excluded.api_address, started_ms = excluded.started_ms, \
                 heartbeat_ms = excluded.heartbeat_ms, labels_json = excluded.labels_json"
            )))
            .bind(&id)
            .bind(&addr)
            .bind(&labels)
            .execute(&c.writes)
            .await?;
            Ok(())
        })
        .await
    }

    /// Records that worker `id` is alive (`Url` error naming it when it never registered).
    pub async fn heartbeat_worker(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.detached(move |c| async move {
            let now = c.now_ms_sql();
            let done = sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE workers SET heartbeat_ms = {now} WHERE id = $1")))
                .bind(&id)
                .execute(&c.writes)
                .await?;
            if done.rows_affected() == 0 {
                return Err(CatalogError::Corrupt(format!("worker {id:?} is not registered")));
            }
            Ok(())
        })
        .await
    }

    /// Removes worker `id` (a graceful exit); its leases stay until they expire or are released.
    pub async fn unregister_worker(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.detached(move |c| async move {
            sqlx::query("DELETE FROM workers WHERE id = $1").bind(&id).execute(&c.writes).await?;
            Ok(())
        })
        .await
    }

    /// Removes the workers whose last heartbeat is older than `max_age` and
    /// that hold no live lease (gone for good: killed, or their machine lost);
    /// returns their ids.
    pub async fn remove_stale_workers(&self, max_age: Duration) -> Result<Vec<String>> {
        let age = max_age.as_millis() as i64;
        self.detached(move |c| async move {
            let now = c.now_ms_sql();
            let gone: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "DELETE FROM workers WHERE heartbeat_ms < {now} - $1 AND NOT EXISTS \
                 (SELECT 1 FROM pipe_leases l WHERE l.owner = workers.id AND l.expires_ms > {now}) RETURNING id"
            )))
            .bind(age)
            .fetch_all(&c.writes)
            .await?;
            Ok(gone)
        })
        .await
    }

    /// Every registered worker, by id.
    pub async fn workers(&self) -> Result<Vec<WorkerRecord>> {
        self.detached(|c| async move {
            let rows = sqlx::query("SELECT id, api_address, started_ms, heartbeat_ms, labels_json FROM workers ORDER BY id")
                .fetch_all(&c.reads)
                .await?;
            rows.into_iter()
                .map(|r| {
                    let labels = serde_json::from_str(r.get::<&str, _>(4))
                        .map_err(|e| CatalogError::Corrupt(format!("labels of worker {:?}: {e}", r.get::<&str, _>(0))))?;
                    Ok(WorkerRecord { id: r.get(0), api_address: r.get(1), started_ms: r.get(2), heartbeat_ms: r.get(3), labels })
                })
                .collect()
        })
        .await
    }

    /// The holder of `pipe`'s lease and its token, if a live (unexpired) one exists.
    pub async fn lease_holder(&self, pipe: &str) -> Result<Option<(String, Lease)>> {
        let pipe = pipe.to_owned();
        self.detached(move |c| async move {
            let now = c.now_ms_sql();
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT owner, token, expires_ms FROM pipe_leases WHERE pipe = $1 AND owner IS NOT NULL AND expires_ms > {now}"
            )))
            .bind(&pipe)
            .fetch_optional(&c.reads)
            .await?;
            Ok(row.map(|r| (r.get(0), Lease { token: r.get(1), expires_ms: r.get(2) })))
        })
        .await
    }

    /// Acquires `pipe`'s lease for `worker` for `ttl` when nobody holds a live
    /// one (never held, released, or expired): the token grows by one. `None`
    /// when another worker holds it; `NoSuchPipe` when there is no such pipe.
    /// A worker acquiring a lease it still holds gets a new token too (its
    /// older writes are fenced from then on).
    pub async fn acquire_lease(&self, pipe: &str, worker: &str, ttl: Duration) -> Result<Option<Lease>> {
        let (pipe, worker, ttl) = (pipe.to_owned(), worker.to_owned(), ttl.as_millis() as i64);
        self.detached(move |c| async move {
            let now = c.now_ms_sql();
            let mut tx = c.write_tx().await?;
            let exists: Option<String> =
                sqlx::query_scalar("SELECT name FROM pipes WHERE name = $1").bind(&pipe).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Err(CatalogError::NoSuchPipe(pipe));
            }
            let held: Option<(Option<String>, i64)> = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT owner, CAST(CASE WHEN expires_ms > {now} THEN 1 ELSE 0 END AS BIGINT) FROM pipe_leases WHERE pipe = $1"
            )))
            .bind(&pipe)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| (r.get(0), r.get(1)));
            if let Some((Some(owner), 1)) = &held {
                if *owner != worker {
                    return Ok(None);
                }
            }
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO pipe_leases (pipe, owner, expires_ms, token) VALUES ($1, $2, {now} + $3, 1) \
                 ON CONFLICT (pipe) DO UPDATE SET owner = excluded.owner, expires_ms = excluded.expires_ms, \
                 token = pipe_leases.token + 1 RETURNING token, expires_ms"
            )))
            .bind(&pipe)
            .bind(&worker)
            .bind(ttl)
            .fetch_one(&mut *tx)
            .await?;
            let lease = Lease { token: row.get(0), expires_ms: row.get(1) };
            tx.commit().await?;
            Ok(Some(lease))
        })
        .await
    }

    /// Extends `worker`'s lease `token` on `pipe` by `ttl` from now. `Fenced`
    /// when the pipe's lease is no longer that one (another acquisition
    /// happened, or it was released).
    pub async fn renew_lease(&self, pipe: &str, worker: &str, token: i64, ttl: Duration) -> Result<Lease> {
        let (pipe, worker, ttl) = (pipe.to_owned(), worker.to_owned(), ttl.as_millis() as i64);
        self.detached(move |c| async move {
            let now = c.now_ms_sql();
            let mut tx = c.write_tx().await?;
            Self::check_fence(&mut tx, &pipe, token).await?;
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE pipe_leases SET expires_ms = {now} + $1 WHERE pipe = $2 AND owner = $3 AND token = $4 RETURNING token, expires_ms"
            )))
            .bind(ttl)
            .bind(&pipe)
            .bind(&worker)
            .bind(token)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Err(CatalogError::Fenced { pipe, token, current: "held by another worker".into() });
            };
            let lease = Lease { token: row.get(0), expires_ms: row.get(1) };
            tx.commit().await?;
            Ok(lease)
        })
        .await
    }

    /// Gives up `worker`'s lease `token` on `pipe` (a graceful hand-off): any
    /// worker may acquire it at once. Releasing a lease no longer held is a no-op.
    pub async fn release_lease(&self, pipe: &str, worker: &str, token: i64) -> Result<()> {
        let (pipe, worker) = (pipe.to_owned(), worker.to_owned());
        self.detached(move |c| async move {
            // `expires_ms` keeps when it was released: the next holder reports the gap.
            let now = c.now_ms_sql();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE pipe_leases SET owner = NULL, expires_ms = {now} WHERE pipe = $1 AND owner = $2 AND token = $3"
            )))
            .bind(&pipe)
            .bind(&worker)
            .bind(token)
            .execute(&c.writes)
            .await?;
            Ok(())
        })
        .await
    }

    /// Inside a write transaction: fails with `Fenced` unless `token` is the
    /// current token of a held lease on `pipe`. The write lock is held, so no
    /// acquisition can come between this check and the transaction's writes.
    pub(crate) async fn check_fence(tx: &mut Tx, pipe: &str, token: i64) -> Result<()> {
        let row = sqlx::query("SELECT owner, token FROM pipe_leases WHERE pipe = $1").bind(pipe).fetch_optional(&mut **tx).await?;
        let current = row.map(|r| (r.get::<Option<String>, _>(0), r.get::<i64, _>(1)));
        match current {
            Some((Some(_), t)) if t == token => Ok(()),
            Some((Some(owner), t)) => {
                Err(CatalogError::Fenced { pipe: pipe.into(), token, current: format!("token {t}, held by {owner}") })
            }
            Some((None, t)) => Err(CatalogError::Fenced { pipe: pipe.into(), token, current: format!("token {t}, released") }),
            None => Err(CatalogError::Fenced { pipe: pipe.into(), token, current: "no lease".into() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::{on_both, TestCatalog};
    use crate::*;
    use sluice_core::PipeSpec;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn spec(name: &str) -> PipeSpec {
        let mut s = PipeSpec::from_json(
            r#"{"name":"p","source":{"host":"h","user":"u","password":"x"},
                "destination":{"url":"http://127.0.0.1:1","database":"d"},"tables":[{"source":"s.t"}]}"#,
        )
        .unwrap();
        s.name = name.into();
        s
    }

    fn cp(file: &str, pos: u64) -> Checkpoint {
        Checkpoint { position: BinlogPosition::new(file, pos), gtid_set: None }
    }

    /// One holder at a time; an expired lease goes to the next worker with a
    /// higher token, and the old holder's fenced writes and renewals fail and
    /// change nothing, while the new holder's succeed.
    async fn leases_fence_the_previous_holder(t: TestCatalog) {
        let cat = t.open().await;
        let eu: BTreeMap<String, String> = [("region".to_string(), "eu".to_string())].into();
        cat.register_worker("w1", "10.0.0.1:7878", &eu).await.unwrap();
        cat.register_worker("w2", "10.0.0.2:7878", &BTreeMap::new()).await.unwrap();
        cat.heartbeat_worker("w1").await.unwrap();
        assert!(cat.heartbeat_worker("nope").await.is_err());
        let ws = cat.workers().await.unwrap();
        assert_eq!(
            ws.iter().map(|w| (w.id.as_str(), w.api_address.as_str())).collect::<Vec<_>>(),
            [("w1", "10.0.0.1:7878"), ("w2", "10.0.0.2:7878")]
        );
        assert!(ws[0].heartbeat_ms >= ws[0].started_ms && ws[0].started_ms > 1_600_000_000_000, "{ws:?}");
        assert_eq!((&ws[0].labels, ws[1].labels.len()), (&eu, 0), "labels are stored with the worker");
        assert!(matches!(cat.acquire_lease("p", "w1", Duration::from_secs(15)).await, Err(CatalogError::NoSuchPipe(_))));

        cat.create_pipe(&spec("p")).await.unwrap();
        cat.record_setup("p", &[], &cp("binlog.000003", 157), 41).await.unwrap();
        let ttl = Duration::from_millis(400);
        let l1 = cat.acquire_lease("p", "w1", ttl).await.unwrap().expect("free lease");
        assert_eq!(l1.token, 1);
        assert_eq!(cat.acquire_lease("p", "w2", ttl).await.unwrap(), None, "held by w1");
        assert_eq!(cat.lease_holder("p").await.unwrap().map(|(o, l)| (o, l.token)), Some(("w1".to_string(), 1)));
        let renewed = cat.renew_lease("p", "w1", 1, ttl).await.unwrap();
        assert!(renewed.expires_ms >= l1.expires_ms);
        cat.save_checkpoint_fenced("p", &cp("binlog.000003", 200), 1).await.unwrap();
        assert_eq!(cat.reserve_versions_fenced("p", 10, 0, 1).await.unwrap(), 42);

        // w1 stops renewing (paused, partitioned): after the TTL, w2 takes the pipe over.
        tokio::time::sleep(ttl + Duration::from_millis(300)).await;
        assert_eq!(cat.lease_holder("p").await.unwrap(), None, "expired");
        let l2 = cat.acquire_lease("p", "w2", Duration::from_secs(15)).await.unwrap().expect("expired lease");
        assert_eq!(l2.token, 2);
        for e in [
            cat.save_checkpoint_fenced("p", &cp("binlog.000009", 4), 1).await.unwrap_err(),
            cat.reserve_versions_fenced("p", 100, 0, 1).await.unwrap_err(),
            cat.renew_lease("p", "w1", 1, ttl).await.unwrap_err(),
        ] {
            assert!(matches!(&e, CatalogError::Fenced { token: 1, .. }), "{e}");
            assert!(e.to_string().contains("token 2, held by w2"), "{e}");
        }
        let stored = cat.checkpoint("p").await.unwrap().unwrap().checkpoint.position;
        assert_eq!(stored, BinlogPosition::new("binlog.000003", 200), "the fenced checkpoint was not written");
        assert_eq!(cat.next_version("p").await.unwrap(), Some(52), "the fenced reservation moved nothing");
        // The new holder writes; its versions are above every version the old one got.
        cat.save_checkpoint_fenced("p", &cp("binlog.000003", 300), 2).await.unwrap();
        assert_eq!(cat.reserve_versions_fenced("p", 1, 0, 2).await.unwrap(), 52);

        // A graceful hand-off: released, the next acquisition is immediate, with a higher token.
        cat.release_lease("p", "w1", 1).await.unwrap(); // not w1's any more: no effect
        assert_eq!(cat.acquire_lease("p", "w1", ttl).await.unwrap(), None);
        cat.release_lease("p", "w2", 2).await.unwrap();
        let e = cat.save_checkpoint_fenced("p", &cp("binlog.000003", 400), 2).await.unwrap_err();
        assert!(e.to_string().contains("released"), "{e}");
        assert_eq!(cat.acquire_lease("p", "w1", ttl).await.unwrap().map(|l| l.token), Some(3));
        cat.unregister_worker("w2").await.unwrap();
        assert_eq!(cat.workers().await.unwrap().len(), 1);

        // Workers silent for longer than a day are removed, unless they still hold a live lease.
        cat.register_worker("gone", "10.0.0.3:7878", &BTreeMap::new()).await.unwrap();
        cat.register_worker("holder", "10.0.0.4:7878", &BTreeMap::new()).await.unwrap();
        cat.create_pipe(&spec("p2")).await.unwrap();
        cat.acquire_lease("p2", "holder", Duration::from_secs(3600)).await.unwrap().expect("free lease");
        sqlx::query("UPDATE workers SET heartbeat_ms = heartbeat_ms - 90000000 WHERE id IN ('gone', 'holder')")
            .execute(&cat.writes)
            .await
            .unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(cat.remove_stale_workers(day).await.unwrap(), ["gone"]);
        let left: Vec<String> = cat.workers().await.unwrap().into_iter().map(|w| w.id).collect();
        assert_eq!(left, ["holder", "w1"], "a fresh worker and one holding a live lease stay");
        assert!(cat.remove_stale_workers(day).await.unwrap().is_empty());
        // Unfenced writes (a single server, no leases) are unaffected.
        cat.save_checkpoint("p", &cp("binlog.000003", 500)).await.unwrap();
    }
    on_both!(leases_fence_the_previous_holder);

    /// Everything the catalog holds about pipe `p`, to show a fenced write changed nothing.
    async fn everything(cat: &Catalog) -> String {
        let p = cat.pipe("p").await.unwrap().map(|r| (r.state, r.error, r.spec.settings, r.updated_at));
        let tables = cat.tables("p").await.unwrap();
        let mut parts = Vec::new();
        for t in &tables {
            parts.push(cat.partitions("p", &t.mapping.destination).await.unwrap());
        }
        let events = cat.events("p").await.unwrap().len();
        let cp = cat.checkpoint("p").await.unwrap();
        let clock = cat.next_version("p").await.unwrap();
        format!("{p:?}\n{tables:?}\n{parts:?}\n{events}\n{cp:?}\n{clock:?}")
    }

    /// Every write a pipe's engine (and its owner) makes through a handle
    /// fenced by a lease token it no longer holds fails with `Fenced` and
    /// writes nothing; the current holder's handle writes; other pipes are
    /// not fenced by it.
    async fn a_stale_token_cannot_write_anything(t: TestCatalog) {
        use crate::tests::mapping;
        let cat = t.open().await;
        cat.create_pipe(&spec("p")).await.unwrap();
        cat.create_pipe(&spec("q")).await.unwrap();
        let ttl = Duration::from_secs(30);
        let l1 = cat.acquire_lease("p", "w1", ttl).await.unwrap().expect("free lease");
        let old = cat.fenced("p", l1.token);
        old.record_setup("p", &[mapping("t"), mapping("u")], &cp("binlog.000003", 157), 41).await.unwrap();
        old.record_partitions("p", "t", &[(None, None)]).await.unwrap();
        old.note("p", "written while the lease is held").await.unwrap();

        // w1 hands the pipe off and w2 takes it: w1's handle is stale from now on.
        cat.release_lease("p", "w1", l1.token).await.unwrap();
        let l2 = cat.acquire_lease("p", "w2", ttl).await.unwrap().expect("released lease");
        let before = everything(&cat).await;
        let mut changed = spec("p");
        changed.settings.pull_batch_size += 1;
        let change = TableChange { destination: "t".into(), mapping: None, state: Some((TableState::Error, None)), recopy_version: None };
        let attempts: Vec<(&str, std::result::Result<(), CatalogError>)> = vec![
            ("mark_copied", old.mark_copied("p", "t").await.map(drop)),
            ("record_partitions", old.record_partitions("p", "u", &[(None, None)]).await),
            ("record_partition_progress", old.record_partition_progress("p", "t", 0, None, 5, true).await),
            ("set_rows_estimated", old.set_rows_estimated("p", "t", 1000).await),
            ("set_error", old.set_error("p", Some("zombie error")).await),
            ("note", old.note("p", "zombie note").await),
            ("add_tables", old.add_tables("p", &[mapping("v")], TableState::Running, 0).await),
            ("remove_table", old.remove_table("p", "u").await),
            ("begin_resync", old.begin_resync("p", &[mapping("t")], 99, Some(&cp("binlog.000001", 4))).await),
            ("allow_checkpoint_rebase", old.allow_checkpoint_rebase("p", "zombie").await),
            ("update_spec", old.update_spec(&changed).await),
            ("save_checkpoint", old.save_checkpoint("p", &cp("binlog.000009", 4)).await),
            ("reserve_versions", old.reserve_versions("p", 10, 0).await.map(drop)),
            ("set_table_state", old.set_table_state("p", "t", TableState::Error, None).await),
            ("record_schema_change", old.record_schema_change("p", &[change], &cp("binlog.000009", 4), "zombie ddl").await),
            ("transition", old.transition("p", PipeAction::Fail, PipeState::Failed, "zombie", Some("x")).await.map(drop)),
            ("record_setup", old.record_setup("p", &[], &cp("binlog.000001", 4), 7).await),
            ("delete_pipe", old.delete_pipe("p").await),
        ];
        for (what, r) in attempts {
            let e = r.expect_err(what);
            assert!(matches!(&e, CatalogError::Fenced { token, .. } if *token == l1.token), "{what}: {e}");
            assert!(e.to_string().contains(&format!("token {}, held by w2", l2.token)), "{what}: {e}");
        }
        assert_eq!(everything(&cat).await, before, "a fenced write changed the catalog");

        // The holder's handle writes; the stale handle still writes other pipes.
        let new = cat.fenced("p", l2.token);
        new.set_rows_estimated("p", "t", 1000).await.unwrap();
        new.record_partition_progress("p", "t", 0, None, 5, true).await.unwrap();
        assert_eq!(new.mark_copied("p", "t").await.unwrap(), 5);
        new.set_error("p", Some("shown")).await.unwrap();
        new.note("p", "the new holder's note").await.unwrap();
        assert_eq!(cat.pipe("p").await.unwrap().unwrap().error.as_deref(), Some("shown"));
        old.note("q", "another pipe's note").await.unwrap();
        old.set_error("q", Some("q's error")).await.unwrap();
        new.delete_pipe("p").await.unwrap();
        assert!(cat.pipe("p").await.unwrap().is_none());
    }
    on_both!(a_stale_token_cannot_write_anything);

    /// Two workers racing for a free lease: exactly one gets it.
    async fn one_of_two_racing_workers_gets_the_lease(t: TestCatalog) {
        let a = t.open().await;
        let b = t.open().await;
        a.create_pipe(&spec("p")).await.unwrap();
        for round in 0..10 {
            let ttl = Duration::from_secs(15);
            let (x, y) = tokio::join!(a.acquire_lease("p", "wa", ttl), b.acquire_lease("p", "wb", ttl));
            let got = [x.unwrap(), y.unwrap()];
            assert_eq!(got.iter().filter(|l| l.is_some()).count(), 1, "round {round}: {got:?}");
            let (who, lease) = if got[0].is_some() { ("wa", got[0].unwrap()) } else { ("wb", got[1].unwrap()) };
            assert_eq!(lease.token, round + 1);
            a.release_lease("p", who, lease.token).await.unwrap();
        }
    }
    on_both!(one_of_two_racing_workers_gets_the_lease);
}
