//! Verification runs in the catalog: started, updated with per-table results
//! as a run progresses, finished (`done` or `failed`), listed per pipe.
//! The per-table results are opaque JSON here (their shape belongs to
//! `sluice-verify`); the catalog only stores and returns them.

use crate::{now, Catalog, CatalogError, Result};
use sqlx::Row;

/// The state of a verification run.
pub const VERIFY_RUNNING: &str = "running";
pub const VERIFY_DONE: &str = "done";
pub const VERIFY_FAILED: &str = "failed";

/// One verification run as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerificationRecord {
    pub id: i64,
    pub pipe: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub repair: bool,
    /// The request as given (tables asked for, repair).
    pub request: serde_json::Value,
    /// Per-table results so far (a JSON array).
    pub tables: serde_json::Value,
    pub error: Option<String>,
}

fn record(r: &sqlx::any::AnyRow) -> Result<VerificationRecord> {
    let parse = |s: String| serde_json::from_str(&s).map_err(|e| CatalogError::Corrupt(format!("verification JSON: {e}")));
    Ok(VerificationRecord {
        id: r.get(0),
        pipe: r.get(1),
        started_at: r.get(2),
        finished_at: r.get(3),
        state: r.get(4),
        repair: r.get::<i64, _>(5) != 0,
        request: parse(r.get(6))?,
        tables: parse(r.get(7))?,
        error: r.get(8),
    })
}

impl Catalog {
    /// Records a new run of `pipe` (state `running`) and returns its id.
    pub async fn start_verification(&self, pipe: &str, repair: bool, request: &serde_json::Value) -> Result<i64> {
        let (pipe, request) = (pipe.to_owned(), request.to_string());
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            let exists: Option<String> =
                sqlx::query_scalar("SELECT name FROM pipes WHERE name = $1").bind(&pipe).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Err(CatalogError::NoSuchPipe(pipe));
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO verifications (pipe, started_at, state, repair, request_json) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(&pipe)
            .bind(now())
            .bind(VERIFY_RUNNING)
            .bind(repair as i64)
            .bind(&request)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(id)
        })
        .await
    }

    /// Stores a run's per-table results so far; with `finished` = `Some((state, error))`
    /// the run ends in that state (`done` or `failed`).
    pub async fn update_verification(&self, id: i64, tables: &serde_json::Value, finished: Option<(&str, Option<&str>)>) -> Result<()> {
        let tables = tables.to_string();
        let finished = finished.map(|(s, e)| (s.to_owned(), e.map(str::to_owned)));
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            match finished {
                None => {
                    sqlx::query("UPDATE verifications SET result_json = $1 WHERE id = $2").bind(&tables).bind(id).execute(&mut *tx).await?;
                }
                Some((state, error)) => {
                    sqlx::query("UPDATE verifications SET result_json = $1, state = $2, error = $3, finished_at = $4 WHERE id = $5")
                        .bind(&tables)
                        .bind(&state)
                        .bind(&error)
                        .bind(now())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Marks every run still `running` as `failed`, except those of the pipes
    /// in `elsewhere` (called when a server starts: runs are tasks of the
    /// process that started them, and the pipes another live worker runs have
    /// their runs in that worker).
    pub async fn fail_unfinished_verifications(&self, reason: &str, elsewhere: &[String]) -> Result<u64> {
        let (reason, elsewhere) = (reason.to_owned(), elsewhere.to_vec());
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            let running: Vec<(i64, String)> =
                sqlx::query_as("SELECT id, pipe FROM verifications WHERE state = $1").bind(VERIFY_RUNNING).fetch_all(&mut *tx).await?;
            let mut n = 0;
            for (id, _) in running.into_iter().filter(|(_, p)| !elsewhere.contains(p)) {
                n += sqlx::query("UPDATE verifications SET state = $1, error = $2, finished_at = $3 WHERE id = $4 AND state = $5")
                    .bind(VERIFY_FAILED)
                    .bind(&reason)
                    .bind(now())
                    .bind(id)
                    .bind(VERIFY_RUNNING)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok(n)
        })
        .await
    }

    /// A pipe's runs, newest first (at most `limit`).
    pub async fn verifications(&self, pipe: &str, limit: u32) -> Result<Vec<VerificationRecord>> {
        let pipe = pipe.to_owned();
        self.detached(move |c| async move {
            let rows = sqlx::query("SELECT id, pipe, started_at, finished_at, state, repair, request_json, result_json, error FROM verifications WHERE pipe = $1 ORDER BY id DESC LIMIT $2")
                .bind(&pipe)
                .bind(limit as i64)
                .fetch_all(&c.reads)
                .await?;
            rows.iter().map(record).collect()
        })
        .await
    }

    /// One run of `pipe`, if it exists.
    pub async fn verification(&self, pipe: &str, id: i64) -> Result<Option<VerificationRecord>> {
        let pipe = pipe.to_owned();
        self.detached(move |c| async move {
            let row = sqlx::query("SELECT id, pipe, started_at, finished_at, state, repair, request_json, result_json, error FROM verifications WHERE pipe = $1 AND id = $2")
                .bind(&pipe)
                .bind(id)
                .fetch_optional(&c.reads)
                .await?;
            row.as_ref().map(record).transpose()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_are_stored_updated_listed_and_deleted_with_the_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path()).await.unwrap();
        assert!(matches!(cat.start_verification("nope", false, &serde_json::json!({})).await, Err(CatalogError::NoSuchPipe(_))));
        let spec = sluice_core::PipeSpec::from_json(
            r#"{"name": "p", "source": {"host": "h", "user": "u", "password": "pw"},
                "destination": {"url": "http://c:8123", "database": "d"}, "tables": [{"source": "s.t"}]}"#,
        )
        .unwrap();
        cat.create_pipe(&spec).await.unwrap();
        let a = cat.start_verification("p", true, &serde_json::json!({"tables": ["t"]})).await.unwrap();
        let b = cat.start_verification("p", false, &serde_json::json!({})).await.unwrap();
        cat.update_verification(a, &serde_json::json!([{"destination": "t"}]), None).await.unwrap();
        let ra = cat.verification("p", a).await.unwrap().unwrap();
        assert_eq!((ra.state.as_str(), ra.repair, ra.tables[0]["destination"].as_str()), (VERIFY_RUNNING, true, Some("t")));
        cat.update_verification(a, &serde_json::json!([]), Some((VERIFY_DONE, None))).await.unwrap();
        assert!(cat.verification("p", a).await.unwrap().unwrap().finished_at.is_some());
        // A run of a pipe another worker runs is that worker's: left as it is.
        assert_eq!(cat.fail_unfinished_verifications("restart", &["p".to_string()]).await.unwrap(), 0);
        assert_eq!(cat.fail_unfinished_verifications("restart", &[]).await.unwrap(), 1);
        let list = cat.verifications("p", 10).await.unwrap();
        assert_eq!(list.iter().map(|r| (r.id, r.state.as_str())).collect::<Vec<_>>(), [(b, VERIFY_FAILED), (a, VERIFY_DONE)]);
        assert!(cat.verification("other", a).await.unwrap().is_none());
        cat.delete_pipe("p").await.unwrap();
        assert!(cat.verifications("p", 10).await.unwrap().is_empty());
    }
}
