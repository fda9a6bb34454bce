//! Copying a whole catalog to another backend (`sluice catalog migrate`):
//! every row of every catalog table, verbatim — specs with their secrets
//! still sealed (the same key opens them), checkpoints, version clocks,
//! table progress, history, alerts, verifications — into an empty catalog,
//! in one transaction on the target, then row counts compared.
//!
//! `TABLES` lists the catalog's tables and columns; a test checks it against
//! the migrated schema, so a migration that adds a table or a column fails
//! that test until the column is listed here too.

use crate::{redact_url, Backend, Catalog, CatalogError};
use sqlx::{AnyPool, Row};

type Result<T> = std::result::Result<T, CatalogError>;

/// How a column is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Text,
    Int,
    Real,
}

use Col::{Int, Real, Text};

/// Every catalog table with its columns, parents before children (foreign keys).
pub(crate) const TABLES: &[(&str, &[(&str, Col)])] = &[
    ("pipes", &[("name", Text), ("spec_json", Text), ("state", Text), ("error", Text), ("created_at", Text), ("updated_at", Text)]),
    (
        "pipe_tables",
        &[
            ("pipe", Text),
            ("destination", Text),
            ("source_schema", Text),
            ("source_table", Text),
            ("mapping_json", Text),
            ("state", Text),
            ("snapshot_done", Int),
            ("last_key_json", Text),
            ("rows_copied", Int),
            ("rows_estimated", Int),
            ("error", Text),
            ("snapshot_version", Int),
            ("copy_started_at", Text),
        ],
    ),
    (
        "checkpoints",
        &[
            ("pipe", Text),
            ("binlog_file", Text),
            ("binlog_pos", Int),
            ("gtid_set", Text),
            ("snapshot_version", Int),
            ("updated_at", Text),
            ("next_version", Int),
            ("rebase_reason", Text),
        ],
    ),
    ("pipe_events", &[("id", Int), ("pipe", Text), ("at", Text), ("from_state", Text), ("to_state", Text), ("reason", Text)]),
    (
        "snapshot_partitions",
        &[
            ("pipe", Text),
            ("destination", Text),
            ("idx", Int),
            ("lo_json", Text),
            ("hi_json", Text),
            ("last_key_json", Text),
            ("rows_copied", Int),
            ("done", Int),
        ],
    ),
    (
        "verifications",
        &[
            ("id", Int),
            ("pipe", Text),
            ("started_at", Text),
            ("finished_at", Text),
            ("state", Text),
            ("repair", Int),
            ("request_json", Text),
            ("result_json", Text),
            ("error", Text),
        ],
    ),
    ("alert_config", &[("id", Int), ("config_json", Text), ("updated_at", Text)]),
    ("pipe_alerts", &[("pipe", Text), ("config_json", Text), ("updated_at", Text)]),
    (
        "alert_states",
        &[("pipe", Text), ("rule", Text), ("subject", Text), ("since", Text), ("firing", Int), ("fired_at", Text), ("summary", Text)],
    ),
    (
        "alert_outbox",
        &[
            ("id", Int),
            ("channel", Text),
            ("payload_json", Text),
            ("created_at", Text),
            ("next_at", Text),
            ("attempts", Int),
            ("last_error", Text),
        ],
    ),
    ("workers", &[("id", Text), ("api_address", Text), ("started_ms", Int), ("heartbeat_ms", Int), ("labels_json", Text)]),
    ("pipe_leases", &[("pipe", Text), ("owner", Text), ("expires_ms", Int), ("token", Int)]),
    ("series_points", &[("pipe", Text), ("subject", Text), ("metric", Text), ("resolution", Int), ("at", Int), ("value", Real)]),
    ("pipe_counters", &[("pipe", Text), ("name", Text), ("value", Int)]),
];

/// Tables whose `id` is generated (a Postgres sequence to move past the copied ids).
const SERIAL_TABLES: &[&str] = &["pipe_events", "verifications", "alert_outbox"];

/// What a copy moved: rows per table, the same on both sides.
#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    pub tables: Vec<(String, u64)>,
}

impl CopyReport {
    pub fn total(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

async fn count(pool: &AnyPool, table: &str) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"))).fetch_one(pool).await?;
    Ok(n as u64)
}

impl Catalog {
    /// Copies every row of this catalog into `to`, which must be empty (no
    /// pipe, no alert configuration: `CatalogError::Url` otherwise), in one
    /// transaction on `to`; then compares the row counts of every table.
    /// The caller makes sure no server uses either catalog meanwhile.
    pub async fn copy_to(&self, to: &Catalog) -> Result<CopyReport> {
        for table in ["pipes", "alert_config"] {
            if count(&to.reads, table).await? > 0 {
                return Err(CatalogError::Url(format!(
                    "the target catalog {} is not empty (its table {table} has rows); migrate into a new, empty catalog",
                    to.display_url()
                )));
            }
        }
        let mut tx = to.write_tx().await?;
        let mut report = CopyReport::default();
        for (table, cols) in TABLES {
            let names = cols.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ");
            let params = (1..=cols.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {names} FROM {table}"))).fetch_all(&self.reads).await?;
            let insert = format!("INSERT INTO {table} ({names}) VALUES ({params})");
            for row in &rows {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
                for (i, (_, col)) in cols.iter().enumerate() {
                    q = match col {
                        Text => q.bind(row.try_get::<Option<String>, _>(i)?),
                        Int => q.bind(row.try_get::<Option<i64>, _>(i)?),
                        Real => q.bind(row.try_get::<Option<f64>, _>(i)?),
                    };
                }
                q.execute(&mut *tx).await?;
            }
            report.tables.push((table.to_string(), rows.len() as u64));
        }
        if to.backend == Backend::Postgres {
            for table in SERIAL_TABLES {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                )))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        for (table, n) in &report.tables {
            let (from_n, to_n) = (count(&self.reads, table).await?, count(&to.reads, table).await?);
            if from_n != *n || to_n != *n {
                return Err(CatalogError::Corrupt(format!(
                    "after copying {} to {}: table {table} has {from_n} rows in the source and {to_n} in the target (copied {n}); \
                     was a server using the source meanwhile?",
                    redact_url(&self.url),
                    to.display_url()
                )));
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::TestCatalog;

    /// `TABLES` names every column of every catalog table (SQLite's schema after all migrations).
    #[tokio::test]
    async fn every_catalog_column_is_copied() {
        let t = TestCatalog::sqlite().await;
        let cat = t.open().await;
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%' ORDER BY name")
                .fetch_all(&cat.reads)
                .await
                .unwrap();
        let mut listed: Vec<String> = TABLES.iter().map(|(t, _)| t.to_string()).collect();
        listed.sort();
        assert_eq!(tables, listed, "a catalog table is missing from copy::TABLES (or listed but gone)");
        for (table, cols) in TABLES {
            let mut actual: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT name FROM pragma_table_info('{table}')")))
                .fetch_all(&cat.reads)
                .await
                .unwrap();
            actual.sort();
            let mut want: Vec<String> = cols.iter().map(|(c, _)| c.to_string()).collect();
            want.sort();
            assert_eq!(actual, want, "columns of {table} in copy::TABLES");
        }
    }
}
