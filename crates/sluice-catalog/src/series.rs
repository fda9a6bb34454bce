//! Time series in the catalog: points of each pipe's and each table's metrics
//! (lag, changes/s, batch duration, snapshot rows/s...) as the server's
//! sampler records them, and the pipe counters that outlive the process.
//!
//! Two resolutions, so that the size stays bounded whatever the uptime:
//! - `FINE` (10 s) points, written by the sampler, kept for `FINE_KEEP` (a day);
//! - `COARSE` (5 min) points, each the downsampling of the fine points of its
//!   5 minutes (their mean; their maximum for `lag_seconds`, so that a spike
//!   stays visible), kept for `COARSE_KEEP` (30 days).
//!
//! Every write of fine points also refreshes the coarse points of the buckets
//! they fall in (an idempotent upsert), so the coarse series is current up to
//! the last sample. `prune_series` deletes what is older than its resolution
//! keeps. A pipe's points and counters go with the pipe (foreign keys).

use crate::{Catalog, Result};
use sqlx::Row;

/// Seconds between two fine points.
pub const FINE: i64 = 10;
/// How long fine points are kept (seconds).
pub const FINE_KEEP: i64 = 24 * 3600;
/// Seconds covered by one coarse point.
pub const COARSE: i64 = 300;
/// How long coarse points are kept (seconds).
pub const COARSE_KEEP: i64 = 30 * 24 * 3600;

/// The metric downsampled by its maximum instead of its mean.
const MAX_METRIC: &str = "lag_seconds";

/// One value of one metric of a pipe (`subject` "") or of one of its tables (`subject`: the destination table).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSample {
    pub subject: String,
    pub metric: String,
    pub value: f64,
}

impl SeriesSample {
    pub fn new(subject: impl Into<String>, metric: impl Into<String>, value: f64) -> Self {
        Self { subject: subject.into(), metric: metric.into(), value }
    }
}

impl Catalog {
    /// Records one sample of a pipe taken at `at` (epoch seconds; stored at
    /// the start of its 10 s slot, a later sample of the same slot replacing
    /// it), sets the pipe's persistent counters, and refreshes the coarse
    /// points of the slot's bucket. Non-finite values are skipped. A pipe that
    /// no longer exists is an error (`NoSuchPipe`) and nothing is written.
    pub async fn record_series(&self, pipe: &str, at: i64, samples: Vec<SeriesSample>, counters: Vec<(String, u64)>) -> Result<()> {
        let pipe = pipe.to_owned();
        let slot = at - at.rem_euclid(FINE);
        let bucket = at - at.rem_euclid(COARSE);
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            let exists: Option<String> =
                sqlx::query_scalar("SELECT name FROM pipes WHERE name = $1").bind(&pipe).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Err(crate::CatalogError::NoSuchPipe(pipe));
            }
            for s in samples.iter().filter(|s| s.value.is_finite()) {
                sqlx::query(
                    "INSERT INTO series_points (pipe, subject, metric, resolution, at, value) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (pipe, subject, metric, resolution, at) DO UPDATE SET value = excluded.value",
                )
                .bind(&pipe)
                .bind(&s.subject)
                .bind(&s.metric)
                .bind(FINE)
                .bind(slot)
                .bind(s.value)
                .execute(&mut *tx)
                .await?;
            }
            // The bucket's coarse points, from its fine points so far.
            sqlx::query(
                "INSERT INTO series_points (pipe, subject, metric, resolution, at, value) \
                 SELECT pipe, subject, metric, $1, $2, CASE WHEN metric = $3 THEN MAX(value) ELSE AVG(value) END \
                 FROM series_points WHERE pipe = $4 AND resolution = $5 AND at >= $6 AND at < $7 \
                 GROUP BY pipe, subject, metric \
                 ON CONFLICT (pipe, subject, metric, resolution, at) DO UPDATE SET value = excluded.value",
            )
            .bind(COARSE)
            .bind(bucket)
            .bind(MAX_METRIC)
            .bind(&pipe)
            .bind(FINE)
            .bind(bucket)
            .bind(bucket + COARSE)
            .execute(&mut *tx)
            .await?;
            for (name, value) in &counters {
                sqlx::query(
                    "INSERT INTO pipe_counters (pipe, name, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (pipe, name) DO UPDATE SET value = excluded.value",
                )
                .bind(&pipe)
                .bind(name)
                .bind(i64::try_from(*value).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Deletes the points older than their resolution keeps, as of `now` (epoch seconds); returns how many.
    pub async fn prune_series(&self, now: i64) -> Result<u64> {
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            let mut n = 0;
            for (resolution, keep) in [(FINE, FINE_KEEP), (COARSE, COARSE_KEEP)] {
                n += sqlx::query("DELETE FROM series_points WHERE resolution = $1 AND at < $2")
                    .bind(resolution)
                    .bind(now - keep)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok(n)
        })
        .await
    }

    /// The points `(at, value)` of one metric of a pipe (`subject` "") or of
    /// one of its tables at `resolution`, from `since` (epoch seconds) on, oldest first.
    pub async fn series(&self, pipe: &str, subject: &str, metric: &str, resolution: i64, since: i64) -> Result<Vec<(i64, f64)>> {
        let (pipe, subject, metric) = (pipe.to_owned(), subject.to_owned(), metric.to_owned());
        self.detached(move |c| async move {
            let rows = sqlx::query(
                "SELECT at, value FROM series_points WHERE pipe = $1 AND subject = $2 AND metric = $3 AND resolution = $4 AND at >= $5 \
                 ORDER BY at",
            )
            .bind(&pipe)
            .bind(&subject)
            .bind(&metric)
            .bind(resolution)
            .bind(since)
            .fetch_all(&c.reads)
            .await?;
            Ok(rows.into_iter().map(|r| (r.get::<i64, _>(0), r.get::<f64, _>(1))).collect())
        })
        .await
    }

    /// A persistent counter of a pipe (`None`: never recorded).
    pub async fn pipe_counter(&self, pipe: &str, name: &str) -> Result<Option<u64>> {
        let (pipe, name) = (pipe.to_owned(), name.to_owned());
        self.detached(move |c| async move {
            let v: Option<i64> = sqlx::query_scalar("SELECT value FROM pipe_counters WHERE pipe = $1 AND name = $2")
                .bind(&pipe)
                .bind(&name)
                .fetch_optional(&c.reads)
                .await?;
            Ok(v.map(|v| v.max(0) as u64))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CatalogError;

    async fn catalog_with_pipe(dir: &std::path::Path) -> Catalog {
        let cat = Catalog::open(dir).await.unwrap();
        let spec = sluice_core::PipeSpec::from_json(
            r#"{"name":"p","source":{"host":"h","user":"u","password":"x"},
                "destination":{"url":"http://127.0.0.1:1","database":"d"},"tables":[{"source":"s.t"}]}"#,
        )
        .unwrap();
        cat.create_pipe(&spec).await.unwrap();
        cat
    }

    #[tokio::test]
    async fn series_are_downsampled_pruned_and_go_with_the_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog_with_pipe(dir.path()).await;
        let t0 = 1_700_000_100; // a multiple of 300
        assert_eq!(t0 % COARSE, 0);
        // 30 samples 10 s apart (5 minutes: one coarse bucket), lag 0..29, changes/s 2 every time.
        for i in 0..30 {
            let s = vec![
                SeriesSample::new("", "lag_seconds", i as f64),
                SeriesSample::new("", "changes_per_second", 2.0),
                SeriesSample::new("t", "deletes_per_second", 1.0),
                SeriesSample::new("", "bad", f64::NAN),
            ];
            cat.record_series("p", t0 + i * FINE + 3, s, vec![("changes_applied".into(), 100 + i as u64)]).await.unwrap();
        }
        let fine = cat.series("p", "", "lag_seconds", FINE, t0).await.unwrap();
        assert_eq!(fine.len(), 30);
        assert_eq!(fine[0], (t0, 0.0), "points sit at the start of their 10 s slot");
        assert_eq!(fine[29], (t0 + 290, 29.0));
        assert_eq!(cat.series("p", "", "lag_seconds", COARSE, 0).await.unwrap(), vec![(t0, 29.0)], "lag keeps its maximum");
        assert_eq!(cat.series("p", "", "changes_per_second", COARSE, 0).await.unwrap(), vec![(t0, 2.0)], "rates their mean");
        assert_eq!(cat.series("p", "t", "deletes_per_second", COARSE, 0).await.unwrap(), vec![(t0, 1.0)]);
        assert!(cat.series("p", "", "bad", FINE, 0).await.unwrap().is_empty(), "non-finite values are skipped");
        assert_eq!(cat.pipe_counter("p", "changes_applied").await.unwrap(), Some(129));
        assert_eq!(cat.pipe_counter("p", "other").await.unwrap(), None);
        // A sample in the same slot replaces the earlier one.
        cat.record_series("p", t0 + 5, vec![SeriesSample::new("", "lag_seconds", 7.0)], vec![]).await.unwrap();
        assert_eq!(cat.series("p", "", "lag_seconds", FINE, t0).await.unwrap()[0], (t0, 7.0));

        // A day later the fine points are gone, the coarse ones stay; after 30 days those go too.
        let n = cat.prune_series(t0 + FINE_KEEP + 300).await.unwrap();
        assert_eq!(n, 30 * 3);
        assert!(cat.series("p", "", "lag_seconds", FINE, 0).await.unwrap().is_empty());
        assert_eq!(cat.series("p", "", "lag_seconds", COARSE, 0).await.unwrap().len(), 1);
        cat.prune_series(t0 + COARSE_KEEP + 300).await.unwrap();
        assert!(cat.series("p", "", "lag_seconds", COARSE, 0).await.unwrap().is_empty());

        // Unknown pipes are refused; a deleted pipe's points and counters go with it.
        let e = cat.record_series("nope", t0, vec![SeriesSample::new("", "lag_seconds", 1.0)], vec![]).await.unwrap_err();
        assert!(matches!(e, CatalogError::NoSuchPipe(_)), "{e}");
        cat.record_series("p", t0, vec![SeriesSample::new("", "lag_seconds", 1.0)], vec![]).await.unwrap();
        cat.delete_pipe("p").await.unwrap();
        assert!(cat.series("p", "", "lag_seconds", FINE, 0).await.unwrap().is_empty());
        assert_eq!(cat.pipe_counter("p", "changes_applied").await.unwrap(), None);
    }
}
