//! Sluice catalog: the durable state of every pipe, in an embedded SQLite file.
//!
//! Holds pipe specs and states, each table's recorded schema and snapshot
//! progress, the CDC checkpoint, and the history of state transitions.
//! Writes that must agree (a state and its history row, a table's progress)
//! happen in one transaction. Migrations are versioned (`migrations/`).

pub mod secrets;

use chrono::Utc;
use secrets::SecretBox;
use sluice_core::types::TableMapping;
use sluice_core::{BinlogPosition, Checkpoint, PipeAction, PipeSpec, PipeState, TableState};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("catalog migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("catalog holds unreadable data: {0}")]
    Corrupt(String),
    #[error("pipe {0:?} does not exist")]
    NoSuchPipe(String),
    #[error(transparent)]
    Illegal(#[from] sluice_core::state::IllegalTransition),
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
}

type Result<T> = std::result::Result<T, CatalogError>;

/// A pipe as stored.
#[derive(Debug, Clone)]
pub struct PipeRecord {
    pub spec: PipeSpec,
    pub state: PipeState,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A table of a pipe as stored, with its snapshot progress.
#[derive(Debug, Clone)]
pub struct TableRecord {
    pub mapping: TableMapping,
    pub state: TableState,
    /// The version this table's current copy writes (`None`: the pipe's initial snapshot version).
    pub snapshot_version: Option<i64>,
    /// When the table's current copy started (RFC 3339).
    pub copy_started_at: Option<String>,
    pub snapshot_done: bool,
    pub rows_copied: u64,
    pub rows_estimated: u64,
    pub error: Option<String>,
}

/// What a schema change does to one table of a pipe (see `record_schema_change`).
#[derive(Debug, Clone)]
pub struct TableChange {
    pub destination: String,
    /// The table's new recorded definition, when it changed.
    pub mapping: Option<TableMapping>,
    /// The table's new sync state and error, when it changed.
    pub state: Option<(TableState, Option<String>)>,
    /// Start a fresh copy with this version (progress reset).
    pub recopy_version: Option<i64>,
}

/// One snapshot partition of a table: a key range and its copy progress.
#[derive(Debug, Clone)]
pub struct PartitionRecord {
    pub idx: u32,
    pub lo: Option<serde_json::Value>,
    pub hi: Option<serde_json::Value>,
    pub last_key: Option<serde_json::Value>,
    pub rows_copied: u64,
    pub done: bool,
}

/// A recorded state transition.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PipeEvent {
    pub id: i64,
    pub at: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub reason: String,
}

/// The checkpoint row: where CDC resumes, and the version given to snapshot rows.
#[derive(Debug, Clone)]
pub struct StoredCheckpoint {
    pub checkpoint: Checkpoint,
    pub snapshot_version: i64,
}

#[derive(Clone)]
pub struct Catalog {
    pool: SqlitePool,
    secrets: SecretBox,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl CatalogError {
    /// SQLite was busy (another writer held the lock longer than the busy timeout):
    /// nothing was written, and the same write can be tried again.
    pub fn is_busy(&self) -> bool {
        match self {
            CatalogError::Db(sqlx::Error::Database(e)) => matches!(e.code().as_deref(), Some("5" | "6" | "517")),
            _ => false,
        }
    }
}

fn corrupt(e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Corrupt(e.to_string())
}

impl Catalog {
    /// Opens (creating if needed) `catalog.db` in `data_dir` and applies migrations.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| CatalogError::DataDir(data_dir.display().to_string(), e))?;
        let opts = SqliteConnectOptions::new()
            .filename(data_dir.join("catalog.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let secrets = SecretBox::load(data_dir).map_err(CatalogError::Corrupt)?;
        Ok(Self { pool, secrets })
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes SQLite's write lock up front:
    /// a deferred transaction that reads and then writes cannot wait for the lock
    /// (SQLite refuses at once with "database is locked" to avoid a deadlock), which
    /// two pipes writing their checkpoints at the same time run into.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The spec as stored: passwords sealed.
    fn seal_spec(&self, spec: &PipeSpec) -> Result<String> {
        let mut s = spec.clone();
        s.source.password.0 = self.secrets.seal(&spec.source.password.0);
        s.destination.password.0 = self.secrets.seal(&spec.destination.password.0);
        serde_json::to_string(&s).map_err(corrupt)
    }

    fn open_spec(&self, stored: &str) -> Result<PipeSpec> {
        let mut s: PipeSpec = serde_json::from_str(stored).map_err(corrupt)?;
        s.source.password.0 = self.secrets.open(&s.source.password.0).map_err(CatalogError::Corrupt)?;
        s.destination.password.0 = self.secrets.open(&s.destination.password.0).map_err(CatalogError::Corrupt)?;
        Ok(s)
    }

    pub async fn pipe(&self, name: &str) -> Result<Option<PipeRecord>> {
        let row = sqlx::query("SELECT spec_json, state, error, created_at, updated_at FROM pipes WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(PipeRecord {
                spec: self.open_spec(r.get::<&str, _>(0))?,
                state: PipeState::from_str(r.get::<&str, _>(1)).map_err(corrupt)?,
                error: r.get(2),
                created_at: r.get(3),
                updated_at: r.get(4),
            })
        })
        .transpose()
    }

    pub async fn pipe_names(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT name FROM pipes ORDER BY name").fetch_all(&self.pool).await?)
    }

    /// Records a new pipe in `Provisioning`.
    pub async fn create_pipe(&self, spec: &PipeSpec) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let t = now();
        sqlx::query("INSERT INTO pipes (name, spec_json, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&spec.name)
            .bind(self.seal_spec(spec)?)
            .bind(PipeState::Provisioning.as_str())
            .bind(&t)
            .bind(&t)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO pipe_events (pipe, at, from_state, to_state, reason) VALUES (?, ?, NULL, ?, ?)")
            .bind(&spec.name)
            .bind(&t)
            .bind(PipeState::Provisioning.as_str())
            .bind("pipe created")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_spec(&self, spec: &PipeSpec) -> Result<()> {
        sqlx::query("UPDATE pipes SET spec_json = ?, updated_at = ? WHERE name = ?")
            .bind(self.seal_spec(spec)?)
            .bind(now())
            .bind(&spec.name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Applies `action` to the pipe, moving it to `to` if the transition table
    /// allows it (checked and written in one transaction), and records the
    /// transition with its reason. Returns the state it left.
    pub async fn transition(&self, name: &str, action: PipeAction, to: PipeState, reason: &str, error: Option<&str>) -> Result<PipeState> {
        let mut tx = self.write_tx().await?;
        let from: Option<String> = sqlx::query_scalar("SELECT state FROM pipes WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(from) = from else { return Err(CatalogError::NoSuchPipe(name.into())) };
        let from_state = PipeState::from_str(&from).map_err(corrupt)?;
        sluice_core::state::transition(from_state, action, to)?;
        let t = now();
        sqlx::query("UPDATE pipes SET state = ?, error = ?, updated_at = ? WHERE name = ?")
            .bind(to.as_str())
            .bind(error)
            .bind(&t)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO pipe_events (pipe, at, from_state, to_state, reason) VALUES (?, ?, ?, ?, ?)")
            .bind(name)
            .bind(&t)
            .bind(from)
            .bind(to.as_str())
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(from_state)
    }

    /// Records something that happened to the pipe without changing its state
    /// (a schema change followed, a table added or removed), in its event history.
    pub async fn note(&self, name: &str, reason: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO pipe_events (pipe, at, from_state, to_state, reason) SELECT name, ?, state, state, ? FROM pipes WHERE name = ?",
        )
        .bind(now())
        .bind(reason)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets or clears the pipe's last error without changing its state.
    pub async fn set_error(&self, name: &str, error: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE pipes SET error = ?, updated_at = ? WHERE name = ?")
            .bind(error)
            .bind(now())
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn events(&self, name: &str) -> Result<Vec<PipeEvent>> {
        let rows = sqlx::query("SELECT id, at, from_state, to_state, reason FROM pipe_events WHERE pipe = ? ORDER BY id")
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| PipeEvent { id: r.get(0), at: r.get(1), from_state: r.get(2), to_state: r.get(3), reason: r.get(4) })
            .collect())
    }

    /// Records the result of Setup in one transaction: the tables with their
    /// schemas, and the checkpoint CDC will start from.
    pub async fn record_setup(&self, name: &str, tables: &[TableMapping], start: &Checkpoint, snapshot_version: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM pipe_tables WHERE pipe = ?").bind(name).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM snapshot_partitions WHERE pipe = ?").bind(name).execute(&mut *tx).await?;
        for t in tables {
            sqlx::query(
                "INSERT INTO pipe_tables (pipe, destination, source_schema, source_table, mapping_json, state) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(name)
            .bind(&t.destination)
            .bind(&t.source.id.schema)
            .bind(&t.source.id.table)
            .bind(serde_json::to_string(t).map_err(corrupt)?)
            .bind(TableState::Setup.as_str())
            .execute(&mut *tx)
            .await?;
        }
        Self::put_checkpoint(&mut tx, name, start, Some(snapshot_version)).await?;
        sqlx::query("UPDATE checkpoints SET next_version = ? WHERE pipe = ?").bind(snapshot_version + 1).bind(name).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Where the pipe's version clock stands: every version handed out so far
    /// is below it (`None`: a pipe from before the clock, or no checkpoint yet).
    pub async fn next_version(&self, name: &str) -> Result<Option<i64>> {
        let v: Option<Option<i64>> =
            sqlx::query_scalar("SELECT next_version FROM checkpoints WHERE pipe = ?").bind(name).fetch_optional(&self.pool).await?;
        Ok(v.flatten())
    }

    /// Reserves `n` versions: returns the first, `max(clock, floor)`, and moves
    /// the clock `n` past it, durably, before any of them is used. A restart
    /// therefore never hands out a version at or below one already written.
    pub async fn reserve_versions(&self, name: &str, n: i64, floor: i64) -> Result<i64> {
        let mut tx = self.write_tx().await?;
        let stored: Option<Option<i64>> =
            sqlx::query_scalar("SELECT next_version FROM checkpoints WHERE pipe = ?").bind(name).fetch_optional(&mut *tx).await?;
        let Some(stored) = stored else { return Err(CatalogError::NoSuchPipe(name.to_string())) };
        let first = stored.unwrap_or(floor).max(floor);
        sqlx::query("UPDATE checkpoints SET next_version = ? WHERE pipe = ?").bind(first + n.max(1)).bind(name).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(first)
    }

    pub async fn tables(&self, name: &str) -> Result<Vec<TableRecord>> {
        let rows = sqlx::query(
            "SELECT mapping_json, state, snapshot_done, rows_copied, rows_estimated, error, snapshot_version, copy_started_at \
             FROM pipe_tables WHERE pipe = ? ORDER BY source_schema, source_table",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(TableRecord {
                    mapping: serde_json::from_str(r.get::<&str, _>(0)).map_err(corrupt)?,
                    state: TableState::from_str(r.get::<&str, _>(1)).map_err(corrupt)?,
                    snapshot_version: r.get(6),
                    copy_started_at: r.get(7),
                    snapshot_done: r.get::<i64, _>(2) != 0,
                    rows_copied: r.get::<i64, _>(3) as u64,
                    rows_estimated: r.get::<i64, _>(4) as u64,
                    error: r.get(5),
                })
            })
            .collect()
    }

    /// Marks a table's copy complete (every partition acknowledged) and returns
    /// the rows it copied.
    pub async fn mark_copied(&self, name: &str, destination: &str) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE pipe_tables SET snapshot_done = 1, \
             state = CASE WHEN state IN ('Setup', 'Snapshot') THEN 'Snapshotted' ELSE state END \
             WHERE pipe = ? AND destination = ?",
        )
        .bind(name)
        .bind(destination)
        .execute(&mut *tx)
        .await?;
        let rows: i64 = sqlx::query_scalar("SELECT rows_copied FROM pipe_tables WHERE pipe = ? AND destination = ?")
            .bind(name)
            .bind(destination)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows as u64)
    }

    pub async fn set_table_state(&self, name: &str, destination: &str, state: TableState, error: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE pipe_tables SET state = ?, error = ? WHERE pipe = ? AND destination = ?")
            .bind(state.as_str())
            .bind(error)
            .bind(name)
            .bind(destination)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Adds tables to a live pipe in `state` (`Adding`: to be copied with `snapshot_version`).
    pub async fn add_tables(&self, name: &str, tables: &[TableMapping], state: TableState, snapshot_version: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for t in tables {
            sqlx::query(
                "INSERT INTO pipe_tables (pipe, destination, source_schema, source_table, mapping_json, state, snapshot_version) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(name)
            .bind(&t.destination)
            .bind(&t.source.id.schema)
            .bind(&t.source.id.table)
            .bind(serde_json::to_string(t).map_err(corrupt)?)
            .bind(state.as_str())
            .bind(snapshot_version)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets one table of a pipe (its changes are no longer applied).
    pub async fn remove_table(&self, name: &str, destination: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for sql in ["DELETE FROM pipe_tables WHERE pipe = ? AND destination = ?", "DELETE FROM snapshot_partitions WHERE pipe = ? AND destination = ?"] {
            sqlx::query(sql).bind(name).bind(destination).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Starts a resync of `tables` (their definitions as the source has them
    /// now): each is copied again from scratch (state `Resync`) with `snapshot_version`; with `restart_at`, CDC also starts over
    /// from that position (a whole-pipe resync). One transaction.
    pub async fn begin_resync(&self, name: &str, tables: &[TableMapping], snapshot_version: i64, restart_at: Option<&Checkpoint>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for t in tables {
            sqlx::query(
                "UPDATE pipe_tables SET state = ?, snapshot_version = ?, snapshot_done = 0, rows_copied = 0, \
                 rows_estimated = 0, error = NULL, mapping_json = ? WHERE pipe = ? AND destination = ?",
            )
            .bind(TableState::Resync.as_str())
            .bind(snapshot_version)
            .bind(serde_json::to_string(t).map_err(corrupt)?)
            .bind(name)
            .bind(&t.destination)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM snapshot_partitions WHERE pipe = ? AND destination = ?").bind(name).bind(&t.destination).execute(&mut *tx).await?;
        }
        if let Some(cp) = restart_at {
            Self::put_checkpoint(&mut tx, name, cp, None).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records the effect of a DDL statement from the binlog together with the
    /// checkpoint just after it, in one transaction: after a crash the statement
    /// is either entirely behind the pipe or replayed against the old definitions.
    pub async fn record_schema_change(&self, name: &str, changes: &[TableChange], after: &Checkpoint, note: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for c in changes {
            if let Some(m) = &c.mapping {
                sqlx::query("UPDATE pipe_tables SET mapping_json = ?, source_schema = ?, source_table = ? WHERE pipe = ? AND destination = ?")
                    .bind(serde_json::to_string(m).map_err(corrupt)?)
                    .bind(&m.source.id.schema)
                    .bind(&m.source.id.table)
                    .bind(name)
                    .bind(&c.destination)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some((state, error)) = &c.state {
                sqlx::query("UPDATE pipe_tables SET state = ?, error = ? WHERE pipe = ? AND destination = ?")
                    .bind(state.as_str())
                    .bind(error)
                    .bind(name)
                    .bind(&c.destination)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(v) = c.recopy_version {
                sqlx::query(
                    "UPDATE pipe_tables SET snapshot_version = ?, snapshot_done = 0, rows_copied = 0, rows_estimated = 0 \
                     WHERE pipe = ? AND destination = ?",
                )
                .bind(v)
                .bind(name)
                .bind(&c.destination)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM snapshot_partitions WHERE pipe = ? AND destination = ?").bind(name).bind(&c.destination).execute(&mut *tx).await?;
            }
        }
        Self::put_checkpoint(&mut tx, name, after, None).await?;
        sqlx::query("INSERT INTO pipe_events (pipe, at, from_state, to_state, reason) SELECT name, ?, state, state, ? FROM pipes WHERE name = ?")
            .bind(now())
            .bind(note)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The table's snapshot partitions (empty until planned).
    pub async fn partitions(&self, name: &str, destination: &str) -> Result<Vec<PartitionRecord>> {
        let rows = sqlx::query(
            "SELECT idx, lo_json, hi_json, last_key_json, rows_copied, done FROM snapshot_partitions \
             WHERE pipe = ? AND destination = ? ORDER BY idx",
        )
        .bind(name)
        .bind(destination)
        .fetch_all(&self.pool)
        .await?;
        let json = |v: Option<&str>| v.map(serde_json::from_str).transpose().map_err(corrupt);
        rows.into_iter()
            .map(|r| {
                Ok(PartitionRecord {
                    idx: r.get::<i64, _>(0) as u32,
                    lo: json(r.get(1))?,
                    hi: json(r.get(2))?,
                    last_key: json(r.get(3))?,
                    rows_copied: r.get::<i64, _>(4) as u64,
                    done: r.get::<i64, _>(5) != 0,
                })
            })
            .collect()
    }

    /// Records a table's partition plan (replacing any earlier one).
    pub async fn record_partitions(&self, name: &str, destination: &str, ranges: &[(Option<serde_json::Value>, Option<serde_json::Value>)]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM snapshot_partitions WHERE pipe = ? AND destination = ?").bind(name).bind(destination).execute(&mut *tx).await?;
        sqlx::query(
            "UPDATE pipe_tables SET copy_started_at = ?, rows_copied = 0, state = CASE WHEN state = 'Setup' THEN 'Snapshot' ELSE state END \
             WHERE pipe = ? AND destination = ?",
        )
            .bind(now())
            .bind(name)
            .bind(destination)
            .execute(&mut *tx)
            .await?;
        for (i, (lo, hi)) in ranges.iter().enumerate() {
            sqlx::query("INSERT INTO snapshot_partitions (pipe, destination, idx, lo_json, hi_json) VALUES (?, ?, ?, ?, ?)")
                .bind(name)
                .bind(destination)
                .bind(i as i64)
                .bind(lo.as_ref().map(|v| v.to_string()))
                .bind(hi.as_ref().map(|v| v.to_string()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a partition's progress after ClickHouse acknowledged its rows;
    /// the table's `rows_copied` is the sum over its partitions (same transaction).
    pub async fn record_partition_progress(
        &self,
        name: &str,
        destination: &str,
        idx: u32,
        last_key: Option<&serde_json::Value>,
        rows_copied: u64,
        done: bool,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE snapshot_partitions SET last_key_json = COALESCE(?, last_key_json), rows_copied = ?, done = ? \
             WHERE pipe = ? AND destination = ? AND idx = ?",
        )
        .bind(last_key.map(|k| k.to_string()))
        .bind(rows_copied as i64)
        .bind(done as i64)
        .bind(name)
        .bind(destination)
        .bind(idx as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE pipe_tables SET rows_copied = (SELECT COALESCE(SUM(rows_copied), 0) FROM snapshot_partitions \
             WHERE pipe = ? AND destination = ?) WHERE pipe = ? AND destination = ?",
        )
        .bind(name)
        .bind(destination)
        .bind(name)
        .bind(destination)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// (partitions done, partitions planned) of a table.
    pub async fn partition_counts(&self, name: &str, destination: &str) -> Result<(u32, u32)> {
        let r = sqlx::query("SELECT COALESCE(SUM(done), 0), COUNT(*) FROM snapshot_partitions WHERE pipe = ? AND destination = ?")
            .bind(name)
            .bind(destination)
            .fetch_one(&self.pool)
            .await?;
        Ok((r.get::<i64, _>(0) as u32, r.get::<i64, _>(1) as u32))
    }

    pub async fn set_rows_estimated(&self, name: &str, destination: &str, rows: u64) -> Result<()> {
        sqlx::query("UPDATE pipe_tables SET rows_estimated = ? WHERE pipe = ? AND destination = ?")
            .bind(rows as i64)
            .bind(name)
            .bind(destination)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn checkpoint(&self, name: &str) -> Result<Option<StoredCheckpoint>> {
        let row = sqlx::query("SELECT binlog_file, binlog_pos, gtid_set, snapshot_version FROM checkpoints WHERE pipe = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| StoredCheckpoint {
            checkpoint: Checkpoint {
                position: BinlogPosition::new(r.get::<String, _>(0), r.get::<i64, _>(1) as u64),
                gtid_set: r.get(2),
            },
            snapshot_version: r.get(3),
        }))
    }

    /// Makes a CDC checkpoint durable. Call only after ClickHouse acknowledged every change before it.
    pub async fn save_checkpoint(&self, name: &str, cp: &Checkpoint) -> Result<()> {
        let mut tx = self.write_tx().await?;
        Self::put_checkpoint(&mut tx, name, cp, None).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn put_checkpoint(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        name: &str,
        cp: &Checkpoint,
        snapshot_version: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO checkpoints (pipe, binlog_file, binlog_pos, gtid_set, snapshot_version, updated_at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT(pipe) DO UPDATE SET binlog_file = excluded.binlog_file, binlog_pos = excluded.binlog_pos, \
             gtid_set = excluded.gtid_set, updated_at = excluded.updated_at, \
             snapshot_version = CASE WHEN ? IS NULL THEN checkpoints.snapshot_version ELSE excluded.snapshot_version END",
        )
        .bind(name)
        .bind(&cp.position.file)
        .bind(cp.position.pos as i64)
        .bind(&cp.gtid_set)
        .bind(snapshot_version.unwrap_or(0))
        .bind(now())
        .bind(snapshot_version)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn delete_pipe(&self, name: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for sql in [
            "DELETE FROM pipe_tables WHERE pipe = ?",
            "DELETE FROM snapshot_partitions WHERE pipe = ?",
            "DELETE FROM checkpoints WHERE pipe = ?",
            "DELETE FROM pipe_events WHERE pipe = ?",
            "DELETE FROM pipes WHERE name = ?",
        ] {
            sqlx::query(sql).bind(name).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::schema::{SourceColumn, SourceTable, TableId};

    fn spec() -> PipeSpec {
        PipeSpec::from_json(
            r#"{"name":"p","source":{"host":"h","user":"u","password":"secret"},
                "destination":{"url":"http://127.0.0.1:1","database":"d"},"tables":[{"source":"s.t"}]}"#,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn pipe_lifecycle_and_checkpoints_persist() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path()).await.unwrap();
        cat.create_pipe(&spec()).await.unwrap();
        assert!(cat.create_pipe(&spec()).await.is_err(), "duplicate names are refused");
        cat.transition("p", PipeAction::Provisioned, PipeState::Setup, "setting up", None).await.unwrap();
        let illegal = cat.transition("p", PipeAction::Resume, PipeState::Running, "x", None).await.unwrap_err();
        assert!(matches!(illegal, CatalogError::Illegal(_)), "{illegal}");
        let col = SourceColumn {
            name: "id".into(),
            ordinal: 1,
            data_type: "int".into(),
            column_type: "int".into(),
            nullable: false,
            numeric_precision: Some(10),
            numeric_scale: Some(0),
            datetime_precision: None,
            charset: None,
            extra: String::new(),
        };
        let table = SourceTable { id: TableId::new("s", "t"), columns: vec![col], primary_key: vec!["id".into()], charset: None };
        let mapping = TableMapping::new(table, "t".into());
        let start = Checkpoint { position: BinlogPosition::new("binlog.000003", 157), gtid_set: None };
        cat.record_setup("p", &[mapping.clone()], &start, 41).await.unwrap();
        cat.record_partitions("p", "t", &[(None, None)]).await.unwrap();
        cat.record_partition_progress("p", "t", 0, Some(&serde_json::json!([{"i": 9}])), 10, false).await.unwrap();
        let later = Checkpoint { position: BinlogPosition::new("binlog.000004", 4), gtid_set: Some("x".into()) };
        cat.save_checkpoint("p", &later).await.unwrap();
        drop(cat);

        let cat = Catalog::open(dir.path()).await.unwrap();
        let p = cat.pipe("p").await.unwrap().unwrap();
        assert_eq!(p.state, PipeState::Setup);
        let t = &cat.tables("p").await.unwrap()[0];
        assert_eq!((t.rows_copied, t.snapshot_done, &t.mapping), (10, false, &mapping));
        let parts = cat.partitions("p", "t").await.unwrap();
        assert_eq!((parts.len(), &parts[0].last_key, parts[0].done), (1, &Some(serde_json::json!([{"i": 9}])), false));
        let cp = cat.checkpoint("p").await.unwrap().unwrap();
        assert_eq!((cp.checkpoint, cp.snapshot_version), (later, 41));
        // The version clock survives the reopen and only moves forward.
        assert_eq!(cat.next_version("p").await.unwrap(), Some(42));
        assert_eq!(cat.reserve_versions("p", 100, 0).await.unwrap(), 42);
        assert_eq!(cat.reserve_versions("p", 1, 0).await.unwrap(), 142);
        assert_eq!(cat.reserve_versions("p", 10, 1000).await.unwrap(), 1000, "a floor above the clock wins");
        assert_eq!(cat.reserve_versions("p", 1, 5).await.unwrap(), 1010, "a floor below the clock is ignored");
        assert!(matches!(cat.reserve_versions("nope", 1, 0).await, Err(CatalogError::NoSuchPipe(_))));
        let ev = cat.events("p").await.unwrap();
        assert_eq!(ev.iter().map(|e| e.to_state.as_str()).collect::<Vec<_>>(), ["Provisioning", "Setup"]);
        assert_eq!(p.spec.source.password.0, "secret");
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let f = f.unwrap();
            let raw = std::fs::read(f.path()).unwrap();
            assert!(!raw.windows(6).any(|w| w == b"secret"), "password in clear text in {:?}", f.file_name());
        }
        cat.delete_pipe("p").await.unwrap();
        assert!(cat.pipe("p").await.unwrap().is_none());
    }
}
