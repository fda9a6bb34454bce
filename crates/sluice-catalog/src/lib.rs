//! Sluice catalog: the durable state of every pipe, in an embedded SQLite
//! file (the default) or in a Postgres database that several workers share.
//!
//! Holds pipe specs and states, each table's recorded schema and snapshot
//! progress, the CDC checkpoint, and the history of state transitions.
//! Writes that must agree (a state and its history row, a table's progress)
//! happen in one transaction. Migrations are versioned, one directory per
//! backend with the same numbering (`migrations/` for SQLite,
//! `migrations/postgres/` for Postgres): a new migration is a file added to
//! both. Every query is written once, in the SQL both backends accept (`$1`
//! placeholders, `ON CONFLICT`, `RETURNING`, explicit casts of aggregates).
//!
//! Guarantees the store enforces itself, whatever its callers do:
//! - the checkpoint only moves forward in the binlog (`save_checkpoint`,
//!   `record_schema_change`); a resync's restart and an explicit
//!   `allow_checkpoint_rebase` (fail-over to another server) are the only ways
//!   to move it elsewhere, and the rebase is written to the pipe's history;
//! - pipe states follow `sluice_core::state::transition`, table states
//!   `TableState::next_states`;
//! - catalog operations never wait on each other for long: each runs to the
//!   end on a task of its own (a caller that stops polling its future — one
//!   branch of a `select!`, a future in a `FuturesUnordered` — cannot hold
//!   the write lock while another caller waits for it), and writes go
//!   through a single connection, so they queue in order in the process
//!   instead of contending for a lock. Every write transaction touches
//!   nothing but the catalog and holds the catalog's write lock from its
//!   first statement: on SQLite `BEGIN IMMEDIATE` (the file's write lock), on
//!   Postgres a transaction-scoped advisory lock (`WRITE_LOCK`) taken first,
//!   so the read-modify-write transactions (version clock reservations, the
//!   forward-only checkpoint check, state transitions) run one at a time
//!   across every process sharing the database, exactly as on SQLite. Reads
//!   never wait for it (WAL readers; Postgres snapshots).

mod alerts;
mod copy;
mod error;
mod leases;
pub mod pg_admin;
pub mod secrets;
pub mod series;
mod store;
mod verifications;

pub use alerts::{AlertDelivery, AlertNotice, AlertState, SealedSecrets};
pub use copy::CopyReport;
pub use error::CatalogError;
pub use leases::{Lease, PipeLease, WorkerRecord};
pub use series::SeriesSample;
pub use store::{CatalogStore, KeyRange};
pub use verifications::{VerificationRecord, VERIFY_DONE, VERIFY_FAILED, VERIFY_RUNNING};

use chrono::Utc;
use secrets::SecretBox;
use sluice_core::state::table_transition;
use sluice_core::types::TableMapping;
use sluice_core::{BinlogPosition, Checkpoint, PipeAction, PipeSpec, PipeState, TableState};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Executor, Row};
use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

type Result<T> = std::result::Result<T, CatalogError>;

/// How long a write waits for SQLite's file lock. Writes of this process
/// never contend for it (one writer connection); only another process can
/// hold it.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an operation waits for a connection of its pool (writes queue
/// for the single writer connection; each holds it for milliseconds).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections for reads (WAL readers never wait for the writer).
const READ_CONNECTIONS: u32 = 4;
/// The Postgres advisory lock every write transaction takes first (an
/// arbitrary constant: "sluice" in ASCII).
const WRITE_LOCK: i64 = 0x736c_7569_6365;
/// The Postgres advisory lock a server holds for as long as it runs on a
/// catalog (session-scoped, on a connection of its own).
const SERVER_LOCK: i64 = 0x736c_7569_6366;

/// Which database holds the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a catalog URL names: `sqlite://PATH` or `postgres://...`
    /// (`postgresql://` too); anything else is refused with a clear error.
    pub fn of_url(url: &str) -> Result<Backend> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("sqlite") => Ok(Backend::Sqlite),
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            _ => Err(CatalogError::Url(format!(
                "{:?} is not a catalog URL: use sqlite://PATH (a file) or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                redact_url(url)
            ))),
        }
    }
}

/// The file a `sqlite://` URL names (`None` for other URLs).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    if Backend::of_url(url).ok()? != Backend::Sqlite {
        return None;
    }
    SqliteConnectOptions::from_str(url).ok().map(|o| o.get_filename().to_owned())
}

/// A URL with its password replaced by `***` (for messages and logs).
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

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

/// The catalog. Cheap to clone (the clones share the connections).
#[derive(Clone)]
pub struct Catalog {
    /// Reads only.
    reads: AnyPool,
    /// Every write: one connection, so writes are serialised in the process.
    writes: AnyPool,
    backend: Backend,
    /// Where the catalog is (with its password: for new connections only, never shown).
    url: std::sync::Arc<str>,
    secrets: SecretBox,
    /// Set on the handle given to a pipe's engine while a worker runs it under
    /// a lease (see `Catalog::fenced`): every write of that pipe's made
    /// through the handle is checked against the lease token in its transaction.
    fence: Option<std::sync::Arc<(String, i64)>>,
}

/// Held by the one server process using a Postgres catalog (see
/// `Catalog::lock_for_server`); released when dropped.
pub struct ServerLock {
    _conn: Option<sqlx::AnyConnection>,
    /// SQLite: the open `<catalog file>.lock`, holding the OS's advisory lock.
    _file: Option<std::fs::File>,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn corrupt(e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Corrupt(e.to_string())
}

/// A pool of `n` connections that never hands out a connection left inside a
/// transaction. SQLite rolls a transaction back by itself on some errors (a
/// full disk, I/O errors); sqlx's own `ROLLBACK` then fails and its
/// transaction depth stays at 1, so that connection would refuse every later
/// `BEGIN` ("attempted to call begin_with at non-zero transaction depth") and
/// the catalog would stay unwritable after the space was freed. Such a
/// connection is closed on release instead (a new one is opened when needed).
/// SQLite connections get their settings (WAL, full sync, foreign keys, the
/// busy timeout) when opened.
fn pool_options(backend: Backend, n: u32, busy_timeout: Duration) -> AnyPoolOptions {
    let opts = AnyPoolOptions::new().max_connections(n).acquire_timeout(ACQUIRE_TIMEOUT).after_release(|conn, _| {
        Box::pin(async move {
            use sqlx::Connection;
            // Lets a rollback queued by a dropped transaction run first.
            conn.ping().await?;
            Ok(!conn.is_in_transaction())
        })
    });
    match backend {
        Backend::Postgres => opts,
        Backend::Sqlite => opts.after_connect(move |conn, _| {
            Box::pin(async move {
                let ms = busy_timeout.as_millis();
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA busy_timeout = {ms}; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
                )))
                .await?;
                Ok(())
            })
        }),
    }
}

/// Checks one table's move against the transition table.
fn check_move(name: &str, destination: &str, from: TableState, to: TableState) -> Result<()> {
    table_transition(destination, Some(from), to).map_err(|source| CatalogError::IllegalTableTransition { pipe: name.into(), source })?;
    Ok(())
}

/// How a write may move the stored checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckpointMove {
    /// Only forward (or to the same position), unless a rebase was allowed.
    Forward,
    /// Anywhere: a new start (Setup, a whole-pipe resync's restart).
    Restart,
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

impl Catalog {
    /// Opens (creating if needed) `catalog.db` in `data_dir` and applies migrations.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        Self::open_with(data_dir, BUSY_TIMEOUT).await
    }

    /// The URL of the default catalog: `catalog.db` in `data_dir`.
    pub fn default_url(data_dir: &Path) -> String {
        SqliteConnectOptions::new().filename(data_dir.join("catalog.db")).to_url_lossy().to_string()
    }

    /// Opens the catalog `url` names (`sqlite://PATH`, created if missing, or
    /// `postgres://...`, whose database must exist) and applies migrations.
    /// The key that seals stored secrets comes from `SLUICE_SECRET_KEY` or
    /// `secret.key` in `data_dir`, whichever the backend (every worker
    /// sharing a Postgres catalog needs the same key).
    pub async fn open_url(url: &str, data_dir: &Path) -> Result<Self> {
        Self::open_url_with(url, data_dir, BUSY_TIMEOUT).await
    }

    async fn open_with(data_dir: &Path, busy_timeout: Duration) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| CatalogError::DataDir(data_dir.display().to_string(), e))?;
        Self::open_url_with(&Self::default_url(data_dir), data_dir, busy_timeout).await
    }

    async fn open_url_with(url: &str, data_dir: &Path, busy_timeout: Duration) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let opts = match backend {
            Backend::Sqlite => {
                // Parsed as SQLite options first: the file is created if missing.
                let sqlite = SqliteConnectOptions::from_str(url).map_err(|e| CatalogError::Url(format!("{}: {e}", redact_url(url))))?;
                let file = sqlite.get_filename().to_owned();
                if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| CatalogError::DataDir(dir.display().to_string(), e))?;
                }
                let url = sqlite.create_if_missing(true).to_url_lossy();
                AnyConnectOptions::from_url(&url)?
            }
            Backend::Postgres => AnyConnectOptions::from_str(url).map_err(|e| CatalogError::Url(format!("{}: {e}", redact_url(url))))?,
        };
        let opts = opts.disable_statement_logging();
        let writes = pool_options(backend, 1, busy_timeout).connect_with(opts.clone()).await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations").run(&writes).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&writes).await?,
        }
        let reads = pool_options(backend, READ_CONNECTIONS, busy_timeout).connect_with(opts).await?;
        let secrets = SecretBox::load(data_dir).map_err(CatalogError::Corrupt)?;
        Ok(Self { reads, writes, backend, url: url.into(), secrets, fence: None })
    }

    /// The catalog's URL with its password hidden (for logs and messages).
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }

    /// Claims the catalog for one process alone (`sluice run`, a catalog
    /// copy) until the returned lock is dropped: on Postgres an exclusive
    /// session advisory lock on a connection of its own (refused with
    /// `CatalogError::InUse` while another such process or any `sluice server`
    /// worker, see `lock_for_worker`, holds it; a crashed process's lock goes
    /// with its connection); on SQLite the catalog file's lock (see `server_lock`).
    pub async fn lock_for_server(&self) -> Result<ServerLock> {
        self.server_lock(false).await
    }

    /// The server lock, exclusive or `shared`: on Postgres a session advisory
    /// lock held by a connection of its own (it goes with that connection,
    /// so with a crashed process); on SQLite the OS's advisory lock on
    /// `<catalog file>.lock`, always exclusive (a SQLite catalog has one user
    /// at a time, wherever its file is: the data dir's lock covers only a
    /// catalog inside the data dir), released with the process however it ends.
    async fn server_lock(&self, shared: bool) -> Result<ServerLock> {
        match self.backend {
            Backend::Sqlite => Ok(ServerLock { _conn: None, _file: self.lock_sqlite_file()? }),
            Backend::Postgres => {
                use sqlx::Connection;
                let mut conn = sqlx::AnyConnection::connect(&self.url).await?;
                let sql = if shared { "SELECT pg_try_advisory_lock_shared($1)" } else { "SELECT pg_try_advisory_lock($1)" };
                let got: bool = sqlx::query_scalar(sql).bind(SERVER_LOCK).fetch_one(&mut conn).await?;
                if !got {
                    return Err(CatalogError::InUse(self.display_url()));
                }
                Ok(ServerLock { _conn: Some(conn), _file: None })
            }
        }
    }

    /// Takes `<catalog file>.lock` (none for an in-memory database).
    fn lock_sqlite_file(&self) -> Result<Option<std::fs::File>> {
        let Some(file) = sqlite_path(&self.url).filter(|f| !f.as_os_str().is_empty() && f.as_os_str() != ":memory:") else {
            return Ok(None);
        };
        let mut name = file.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let path = file.with_file_name(name);
        let io = |e: std::io::Error| CatalogError::Lock(path.display().to_string(), e);
        let lock = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match lock.try_lock() {
            Ok(()) => Ok(Some(lock)),
            Err(std::fs::TryLockError::WouldBlock) => Err(CatalogError::SqliteInUse(file.display().to_string())),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// This handle, with every write it makes for `pipe` (checkpoints, version
    /// reservations, Setup, state transitions, table states, copy and
    /// partition progress, row estimates, schema records, tables added,
    /// removed or resynced, spec changes, errors, history notes, checkpoint
    /// rebases, deletion) fenced by the lease `token`: it checks the token in
    /// the write's own transaction and fails with `CatalogError::Fenced`,
    /// writing nothing, once the pipe's lease is no longer that one. Other
    /// pipes' writes are unaffected.
    pub fn fenced(&self, pipe: &str, token: i64) -> Catalog {
        Catalog { fence: Some(std::sync::Arc::new((pipe.to_owned(), token))), ..self.clone() }
    }

    /// The lease token this handle's writes for `pipe` are fenced by, if any.
    pub fn fence_of(&self, pipe: &str) -> Option<i64> {
        self.fence.as_deref().filter(|(p, _)| p == pipe).map(|(_, t)| *t)
    }

    /// Inside a write transaction: when this handle is fenced for `pipe`,
    /// fails with `Fenced` unless its token is still the pipe's (see `check_fence`).
    async fn fence_in(&self, tx: &mut Tx, pipe: &str) -> Result<()> {
        match self.fence_of(pipe) {
            Some(token) => Self::check_fence(tx, pipe, token).await,
            None => Ok(()),
        }
    }

    /// Claims the catalog for one of several `sluice server` workers until
    /// the returned lock is dropped: on Postgres a *shared* session advisory
    /// lock on the server lock (any number of workers hold it together; a
    /// process that needs the catalog alone, `lock_for_server`, is refused
    /// while any worker runs, and the other way round); on SQLite nothing (the
    /// data dir's lock file does this job). Which worker runs which pipe is
    /// decided by the pipes' leases.
    pub async fn lock_for_worker(&self) -> Result<ServerLock> {
        self.server_lock(true).await
    }

    /// Which database holds this catalog.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs one catalog operation to its end on a task of its own, whatever
    /// happens to the caller's future meanwhile (not polled, or dropped): a
    /// transaction, once begun, always commits or rolls back within its own
    /// few statements, so no caller can hold the write lock while suspended.
    async fn detached<T, Fut>(&self, op: impl FnOnce(Catalog) -> Fut) -> Result<T>
    where
        T: Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        match tokio::spawn(op(self.clone())).await {
            Ok(r) => r,
            Err(e) => Err(CatalogError::Task(e.to_string())),
        }
    }

    /// A write transaction on the writer connection, holding the catalog's
    /// write lock from its start. On SQLite `BEGIN IMMEDIATE` takes the file's
    /// write lock up front (a deferred transaction that reads and then writes
    /// cannot wait for the lock: SQLite refuses at once). On Postgres the
    /// transaction first takes the advisory lock `WRITE_LOCK` (released at
    /// commit or rollback), so that two processes' read-modify-writes of the
    /// same rows (a version reservation, the forward-only checkpoint check, a
    /// transition) cannot interleave: each sees the other's committed result.
    async fn write_tx(&self) -> Result<Tx> {
        match self.backend {
            Backend::Sqlite => Ok(self.writes.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.writes.begin().await?;
                sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock($1)) AS l").bind(WRITE_LOCK).execute(&mut *tx).await?;
                Ok(tx)
            }
        }
    }

    /// The spec as stored: passwords sealed.
    /// The spec as stored: every secret it holds (passwords, the SSH key) encrypted.
    fn seal_spec(&self, spec: &PipeSpec) -> Result<String> {
        let mut s = spec.clone();
        for secret in s.secrets_mut() {
            secret.0 = self.secrets.seal(&secret.0);
        }
        serde_json::to_string(&s).map_err(corrupt)
    }

    fn open_spec(&self, stored: &str) -> Result<PipeSpec> {
        let mut s: PipeSpec = serde_json::from_str(stored).map_err(corrupt)?;
        for secret in s.secrets_mut() {
            secret.0 = self.secrets.open(&secret.0).map_err(CatalogError::Corrupt)?;
        }
        Ok(s)
    }

    pub async fn pipe(&self, name: &str) -> Result<Option<PipeRecord>> {
        let name = name.to_owned();
        self.detached(move |c| async move {
            let row = sqlx::query("SELECT spec_json, state, error, created_at, updated_at FROM pipes WHERE name = $1")
                .bind(&name)
                .fetch_optional(&c.reads)
                .await?;
            row.map(|r| {
                Ok(PipeRecord {
                    spec: c.open_spec(r.get::<&str, _>(0))?,
                    state: PipeState::from_str(r.get::<&str, _>(1)).map_err(corrupt)?,
                    error: r.get(2),
                    created_at: r.get(3),
                    updated_at: r.get(4),
                })
            })
            .transpose()
        })
        .await
    }

    pub async fn pipe_names(&self) -> Result<Vec<String>> {
        self.detached(|c| async move { Ok(sqlx::query_scalar("SELECT name FROM pipes ORDER BY name").fetch_all(&c.reads).await?) }).await
    }

    /// Records a new pipe in `Provisioning`. A name already in the catalog is
    /// `CatalogError::Exists`; any other failure keeps its own error.
    pub async fn create_pipe(&self, spec: &PipeSpec) -> Result<()> {
        let spec = spec.clone();
        self.detached(move |c| async move {
            let sealed = c.seal_spec(&spec)?;
            let mut tx = c.write_tx().await?;
            let t = now();
            let inserted = sqlx::query("INSERT INTO pipes (name, spec_json, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&spec.name)
                .bind(sealed)
                .bind(PipeState::Provisioning.as_str())
                .bind(&t)
                .bind(&t)
                .execute(&mut *tx)
                .await;
            match inserted {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(CatalogError::Exists(spec.name.clone())),
                r => r?,
            };
            Self::event_in(&mut tx, &spec.name, None, PipeState::Provisioning.as_str(), "pipe created").await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    pub async fn update_spec(&self, spec: &PipeSpec) -> Result<()> {
        let spec = spec.clone();
        self.detached(move |c| async move {
            let sealed = c.seal_spec(&spec)?;
            let mut tx = c.write_tx().await?;
            c.fence_in(&mut tx, &spec.name).await?;
            sqlx::query("UPDATE pipes SET spec_json = $1, updated_at = $2 WHERE name = $3")
                .bind(sealed)
                .bind(now())
                .bind(&spec.name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Applies `action` to the pipe, moving it to `to` if the transition table
    /// allows it (checked and written in one transaction), and records the
    /// transition with its reason. Returns the state it left.
    pub async fn transition(&self, name: &str, action: PipeAction, to: PipeState, reason: &str, error: Option<&str>) -> Result<PipeState> {
        let (name, reason, error) = (name.to_owned(), reason.to_owned(), error.map(str::to_owned));
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            if let Some(token) = c.fence_of(&name) {
                Self::check_fence(&mut tx, &name, token).await?;
            }
            let from: Option<String> =
                sqlx::query_scalar("SELECT state FROM pipes WHERE name = $1").bind(&name).fetch_optional(&mut *tx).await?;
            let Some(from) = from else {
                return Err(CatalogError::NoSuchPipe(name));
            };
            let from_state = PipeState::from_str(&from).map_err(corrupt)?;
            sluice_core::state::transition(from_state, action, to)?;
            let t = now();
            sqlx::query("UPDATE pipes SET state = $1, error = $2, updated_at = $3 WHERE name = $4")
                .bind(to.as_str())
                .bind(&error)
                .bind(&t)
                .bind(&name)
                .execute(&mut *tx)
                .await?;
            Self::event_in(&mut tx, &name, Some(&from), to.as_str(), &reason).await?;
            tx.commit().await?;
            Ok(from_state)
        })
        .await
    }

    /// Inserts a history row inside `tx`.
    async fn event_in(tx: &mut Tx, name: &str, from: Option<&str>, to: &str, reason: &str) -> Result<()> {
        sqlx::query("INSERT INTO pipe_events (pipe, at, from_state, to_state, reason) VALUES ($1, $2, $3, $4, $5)")
            .bind(name)
            .bind(now())
            .bind(from)
            .bind(to)
            .bind(reason)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Inserts a history row that keeps the pipe's state, inside `tx`.
    async fn note_in(tx: &mut Tx, name: &str, reason: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO pipe_events (pipe, at, from_state, to_state, reason) SELECT name, $1, state, state, $2 FROM pipes WHERE name = $3",
        )
        .bind(now())
        .bind(reason)
        .bind(name)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Records something that happened to the pipe without changing its state
    /// (a schema change followed, a table added or removed), in its event history.
    pub async fn note(&self, name: &str, reason: &str) -> Result<()> {
        let (name, reason) = (name.to_owned(), reason.to_owned());
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            c.fence_in(&mut tx, &name).await?;
            Self::note_in(&mut tx, &name, &reason).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Sets or clears the pipe's last error without changing its state.
    pub async fn set_error(&self, name: &str, error: Option<&str>) -> Result<()> {
        let (name, error) = (name.to_owned(), error.map(str::to_owned));
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            c.fence_in(&mut tx, &name).await?;
            sqlx::query("UPDATE pipes SET error = $1, updated_at = $2 WHERE name = $3")
                .bind(&error)
                .bind(now())
                .bind(&name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    pub async fn events(&self, name: &str) -> Result<Vec<PipeEvent>> {
        let name = name.to_owned();
        self.detached(move |c| async move {
            let rows = sqlx::query("SELECT id, at, from_state, to_state, reason FROM pipe_events WHERE pipe = $1 ORDER BY id")
                .bind(&name)
                .fetch_all(&c.reads)
                .await?;
            Ok(rows
                .into_iter()
                .map(|r| PipeEvent { id: r.get(0), at: r.get(1), from_state: r.get(2), to_state: r.get(3), reason: r.get(4) })
                .collect())
        })
        .await
    }

    /// Records the result of Setup in one transaction: the tables (state
    /// `Setup`) with their schemas, and the checkpoint CDC will start from.
    /// A new start: replaces any earlier tables, partitions and checkpoint.
    pub async fn record_setup(&self, name: &str, tables: &[TableMapping], start: &Checkpoint, snapshot_version: i64) -> Result<()> {
        let (name, tables, start) = (name.to_owned(), tables.to_vec(), start.clone());
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            if let Some(token) = c.fence_of(&name) {
                Self::check_fence(&mut tx, &name, token).await?;
            }
            sqlx::query("DELETE FROM pipe_tables WHERE pipe = $1").bind(&name).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM snapshot_partitions WHERE pipe = $1").bind(&name).execute(&mut *tx).await?;
            Self::insert_tables(&mut tx, &name, &tables, TableState::Setup, None).await?;
            Self::put_checkpoint(&mut tx, &name, &start, Some(snapshot_version), CheckpointMove::Restart).await?;
            sqlx::query("UPDATE checkpoints SET next_version = $1 WHERE pipe = $2")
                .bind(snapshot_version + 1)
                .bind(&name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Where the pipe's version clock stands: every version handed out so far
    /// is below it (`None`: a pipe from before the clock, or no checkpoint yet).
    pub async fn next_version(&self, name: &str) -> Result<Option<i64>> {
        let name = name.to_owned();
        self.detached(move |c| async move {
            let v: Option<Option<i64>> =
                sqlx::query_scalar("SELECT next_version FROM checkpoints WHERE pipe = $1").bind(&name).fetch_optional(&c.reads).await?;
            Ok(v.flatten())
        })
        .await
    }

    /// Reserves `n` versions: returns the first, `max(clock, floor)`, and moves
    /// the clock `n` past it, durably, before any of them is used. A restart
    /// therefore never hands out a version at or below one already written.
    pub async fn reserve_versions(&self, name: &str, n: i64, floor: i64) -> Result<i64> {
        self.reserve_versions_with(name, n, floor, None).await
    }

    /// `reserve_versions` by the holder of the pipe's lease `token` (`Fenced` otherwise, nothing reserved).
    pub async fn reserve_versions_fenced(&self, name: &str, n: i64, floor: i64, token: i64) -> Result<i64> {
        self.reserve_versions_with(name, n, floor, Some(token)).await
    }

    async fn reserve_versions_with(&self, name: &str, n: i64, floor: i64, fence: Option<i64>) -> Result<i64> {
        let name = name.to_owned();
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            if let Some(token) = fence.or_else(|| c.fence_of(&name)) {
                Self::check_fence(&mut tx, &name, token).await?;
            }
            let stored: Option<Option<i64>> =
                sqlx::query_scalar("SELECT next_version FROM checkpoints WHERE pipe = $1").bind(&name).fetch_optional(&mut *tx).await?;
            let Some(stored) = stored else {
                return Err(CatalogError::NoSuchPipe(name));
            };
            let first = stored.unwrap_or(floor).max(floor);
            sqlx::query("UPDATE checkpoints SET next_version = $1 WHERE pipe = $2")
                .bind(first + n.max(1))
                .bind(&name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(first)
        })
        .await
    }

    pub async fn tables(&self, name: &str) -> Result<Vec<TableRecord>> {
        let name = name.to_owned();
        self.detached(move |c| async move {
            let rows = sqlx::query(
                "SELECT mapping_json, state, snapshot_done, rows_copied, rows_estimated, error, snapshot_version, copy_started_at \
                 FROM pipe_tables WHERE pipe = $1 ORDER BY source_schema, source_table",
            )
            .bind(&name)
            .fetch_all(&c.reads)
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
        })
        .await
    }

    /// A table's stored state, inside `tx` (`NoSuchTable` when the pipe has no such table).
    async fn table_state_in(tx: &mut Tx, name: &str, destination: &str) -> Result<TableState> {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM pipe_tables WHERE pipe = $1 AND destination = $2")
            .bind(name)
            .bind(destination)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(state) = state else {
            return Err(CatalogError::NoSuchTable { pipe: name.into(), table: destination.into() });
        };
        TableState::from_str(&state).map_err(corrupt)
    }

    /// Checks a table's move from its stored state to `to` against the
    /// transition table, inside `tx`; returns the state it leaves.
    async fn check_table_move(tx: &mut Tx, name: &str, destination: &str, to: TableState) -> Result<TableState> {
        let from = Self::table_state_in(tx, name, destination).await?;
        check_move(name, destination, from, to)?;
        Ok(from)
    }

    async fn insert_tables(
        tx: &mut Tx,
        name: &str,
        tables: &[TableMapping],
        state: TableState,
        snapshot_version: Option<i64>,
    ) -> Result<()> {
        for t in tables {
            table_transition(&t.destination, None, state)
                .map_err(|source| CatalogError::IllegalTableTransition { pipe: name.into(), source })?;
            let inserted = sqlx::query(
                "INSERT INTO pipe_tables (pipe, destination, source_schema, source_table, mapping_json, state, snapshot_version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(name)
            .bind(&t.destination)
            .bind(&t.source.id.schema)
            .bind(&t.source.id.table)
            .bind(serde_json::to_string(t).map_err(corrupt)?)
            .bind(state.as_str())
            .bind(snapshot_version)
            .execute(&mut **tx)
            .await;
            match inserted {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Err(CatalogError::TableExists { pipe: name.into(), table: t.destination.clone() })
                }
                r => r?,
            };
        }
        Ok(())
    }

    /// Marks a table's copy complete (every partition acknowledged) and returns
    /// the rows it copied. A table of the initial snapshot (`Setup`/`Snapshot`)
    /// becomes `Snapshotted`; an added or resynced one keeps its state.
    pub async fn mark_copied(&self, name: &str, destination: &str) -> Result<u64> {
        let (name, destination) = (name.to_owned(), destination.to_owned());
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            c.fence_in(&mut tx, &name).await?;
            let from = Self::table_state_in(&mut tx, &name, &destination).await?;
            let to = if matches!(from, TableState::Setup | TableState::Snapshot) { TableState::Snapshotted } else { from };
            check_move(&name, &destination, from, to)?;
            sqlx::query("UPDATE pipe_tables SET snapshot_done = 1, state = $1 WHERE pipe = $2 AND destination = $3")
                .bind(to.as_str())
                .bind(&name)
                .bind(&destination)
                .execute(&mut *tx)
                .await?;
            let rows: i64 = sqlx::query_scalar("SELECT rows_copied FROM pipe_tables WHERE pipe = $1 AND destination = $2")
                .bind(&name)
                .bind(&destination)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(rows as u64)
        })
        .await
    }

    /// Moves a table to `state` (with its error, `None` clears it) if the
    /// transition table allows it: `IllegalTableTransition` otherwise,
    /// `NoSuchTable` when the pipe has no such table. Checked and written in
    /// one transaction.
    pub async fn set_table_state(&self, name: &str, destination: &str, state: TableState, error: Option<&str>) -> Result<()> {
        self.set_table_state_with(name, destination, state, error, None).await
    }

    /// `set_table_state` by the holder of the pipe's lease `token` (`Fenced` otherwise, nothing written).
    pub async fn set_table_state_fenced(
        &self,
        name: &str,
        destination: &str,
        state: TableState,
        error: Option<&str>,
        token: i64,
    ) -> Result<()> {
        self.set_table_state_with(name, destination, state, error, Some(token)).await
    }

    async fn set_table_state_with(
        &self,
        name: &str,
        destination: &str,
        state: TableState,
        error: Option<&str>,
        fence: Option<i64>,
    ) -> Result<()> {
        let (name, destination, error) = (name.to_owned(), destination.to_owned(), error.map(str::to_owned));
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            if let Some(token) = fence.or_else(|| c.fence_of(&name)) {
                Self::check_fence(&mut tx, &name, token).await?;
            }
            Self::check_table_move(&mut tx, &name, &destination, state).await?;
            sqlx::query("UPDATE pipe_tables SET state = $1, error = $2 WHERE pipe = $3 AND destination = $4")
                .bind(state.as_str())
                .bind(&error)
                .bind(&name)
                .bind(&destination)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Adds tables to a live pipe in `state`: `Adding` (to be copied with
    /// `snapshot_version`) or `Running` (CDC-only pipes); any other state is
    /// `IllegalTableTransition`, a destination the pipe already has `TableExists`.
    pub async fn add_tables(&self, name: &str, tables: &[TableMapping], state: TableState, snapshot_version: i64) -> Result<()> {
        let (name, tables) = (name.to_owned(), tables.to_vec());
        self.detached(move |c| async move {
            if state == TableState::Setup {
                // `Setup` is for the pipe's own Setup (`record_setup`) only.
                let t = tables.first().map(|t| t.destination.clone()).unwrap_or_default();
                return Err(CatalogError::IllegalTableTransition {
                    pipe: name,
                    source: sluice_core::state::IllegalTableTransition { table: t, from: None, to: state },
                });
            }
            let mut tx = c.write_tx().await?;
            c.fence_in(&mut tx, &name).await?;
            Self::insert_tables(&mut tx, &name, &tables, state, Some(snapshot_version)).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Forgets one table of a pipe (its changes are no longer applied).
    pub async fn remove_table(&self, name: &str, destination: &str) -> Result<()> {
        let (name, destination) = (name.to_owned(), destination.to_owned());
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            c.fence_in(&mut tx, &name).await?;
            for sql in [
                "DELETE FROM pipe_tables WHERE pipe = $1 AND destination = $2",
                "DELETE FROM snapshot_partitions WHERE pipe = $1 AND destination = $2",
            ] {
                sqlx::query(sql).bind(&name).bind(&destination).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Starts a resync of `tables` (their definitions as the source has them
    /// now): each is copied again from scratch (state `Resync`, allowed from
    /// every state) with `snapshot_version`; with `restart_at`, CDC also starts
    /// over from that position (a whole-pipe resync) — the one caller-visible
    /// way, besides `allow_checkpoint_rebase`, to move the checkpoint anywhere.
    /// One transaction.
    pub async fn begin_resync(
        &self,
        name: &str,
        tables: &[TableMapping],
        snapshot_version: i64,
        restart_at: Option<&Checkpoint>,
    ) -> Result<()> {
        let (name, tables, restart_at) = (name.to_owned(), tables.to_vec(), restart_at.cloned());
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            c.fence_in(&mut tx, &name).await?;
            for t in &tables {
                Self::check_table_move(&mut tx, &name, &t.destination, TableState::Resync).await?;
                sqlx::query(
                    "UPDATE pipe_tables SET state = $1, snapshot_version = $2, snapshot_done = 0, rows_copied = 0, \
                     rows_estimated = 0, error = NULL, mapping_json = $3 WHERE pipe = $4 AND destination = $5",
                )
                .bind(TableState::Resync.as_str())
                .bind(snapshot_version)
                .bind(serde_json::to_string(t).map_err(corrupt)?)
                .bind(&name)
                .bind(&t.destination)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM snapshot_partitions WHERE pipe = $1 AND destination = $2")
                    .bind(&name)
                    .bind(&t.destination)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(cp) = &restart_at {
                Self::put_checkpoint(&mut tx, &name, cp, None, CheckpointMove::Restart).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Records the effect of a DDL statement from the binlog together with the
    /// checkpoint just after it, in one transaction: after a crash the statement
    /// is either entirely behind the pipe or replayed against the old definitions.
    /// Table states are checked against the transition table and the
    /// checkpoint only moves forward, as in `set_table_state` and `save_checkpoint`.
    pub async fn record_schema_change(&self, name: &str, changes: &[TableChange], after: &Checkpoint, note: &str) -> Result<()> {
        self.record_schema_change_with(name, changes, after, note, None).await
    }

    /// `record_schema_change` by the holder of the pipe's lease `token` (`Fenced` otherwise, nothing written).
    pub async fn record_schema_change_fenced(
        &self,
        name: &str,
        changes: &[TableChange],
        after: &Checkpoint,
        note: &str,
        token: i64,
    ) -> Result<()> {
        self.record_schema_change_with(name, changes, after, note, Some(token)).await
    }

    async fn record_schema_change_with(
        &self,
        name: &str,
        changes: &[TableChange],
        after: &Checkpoint,
        note: &str,
        fence: Option<i64>,
    ) -> Result<()> {
        let (name, changes, after, note) = (name.to_owned(), changes.to_vec(), after.clone(), note.to_owned());
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            if let Some(token) = fence.or_else(|| c.fence_of(&name)) {
                Self::check_fence(&mut tx, &name, token).await?;
            }
            for ch in &changes {
                // Every change concerns a table of the pipe.
                Self::table_state_in(&mut tx, &name, &ch.destination).await?;
                if let Some(m) = &ch.mapping {
                    sqlx::query(
                        "UPDATE pipe_tables SET mapping_json = $1, source_schema = $2, source_table = $3 WHERE pipe = $4 AND destination = $5",
                    )
                    .bind(serde_json::to_string(m).map_err(corrupt)?)
                    .bind(&m.source.id.schema)
                    .bind(&m.source.id.table)
                    .bind(&name)
                    .bind(&ch.destination)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some((state, error)) = &ch.state {
                    Self::check_table_move(&mut tx, &name, &ch.destination, *state).await?;
                    sqlx::query("UPDATE pipe_tables SET state = $1, error = $2 WHERE pipe = $3 AND destination = $4")
                        .bind(state.as_str())
                        .bind(error)
                        .bind(&name)
                        .bind(&ch.destination)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(v) = ch.recopy_version {
                    sqlx::query(
                        "UPDATE pipe_tables SET snapshot_version = $1, snapshot_done = 0, rows_copied = 0, rows_estimated = 0 \
                         WHERE pipe = $2 AND destination = $3",
                    )
                    .bind(v)
                    .bind(&name)
                    .bind(&ch.destination)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM snapshot_partitions WHERE pipe = $1 AND destination = $2")
                        .bind(&name)
                        .bind(&ch.destination)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            Self::put_checkpoint(&mut tx, &name, &after, None, CheckpointMove::Forward).await?;
            Self::note_in(&mut tx, &name, &note).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The table's snapshot partitions (empty until planned).
    pub async fn partitions(&self, name: &str, destination: &str) -> Result<Vec<PartitionRecord>> {
        let (name, destination) = (name.to_owned(), destination.to_owned());
        self.detached(move |c| async move {
            let rows = sqlx::query(
                "SELECT idx, lo_json, hi_json, last_key_json, rows_copied, done FROM snapshot_partitions \
                 WHERE pipe = $1 AND destination = $2 ORDER BY idx",
            )
            .bind(&name)
            .bind(&destination)
            .fetch_all(&c.reads)
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
        })
        .await
    }

    /// Records a table's partition plan (replacing any earlier one); a table
    /// of the initial snapshot goes `Setup → Snapshot`.
    pub async fn record_partitions(
        &self,
        name: &str,
        destination: &str,
        ranges: &[(Option<serde_json::Value>, Option<serde_json::Value>)],
    ) -> Result<()> {
        let (name, destination, ranges) = (name.to_owned(), destination.to_owned(), ranges.to_vec());
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            c.fence_in(&mut tx, &name).await?;
            let from = Self::table_state_in(&mut tx, &name, &destination).await?;
            let to = if from == TableState::Setup { TableState::Snapshot } else { from };
            check_move(&name, &destination, from, to)?;
            sqlx::query("DELETE FROM snapshot_partitions WHERE pipe = $1 AND destination = $2")
                .bind(&name)
                .bind(&destination)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE pipe_tables SET copy_started_at = $1, rows_copied = 0, state = $2 WHERE pipe = $3 AND destination = $4")
                .bind(now())
                .bind(to.as_str())
                .bind(&name)
                .bind(&destination)
                .execute(&mut *tx)
                .await?;
            for (i, (lo, hi)) in ranges.iter().enumerate() {
                sqlx::query("INSERT INTO snapshot_partitions (pipe, destination, idx, lo_json, hi_json) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&name)
                    .bind(&destination)
                    .bind(i as i64)
                    .bind(lo.as_ref().map(|v| v.to_string()))
                    .bind(hi.as_ref().map(|v| v.to_string()))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
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
        let (name, destination, last_key) = (name.to_owned(), destination.to_owned(), last_key.map(|k| k.to_string()));
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            c.fence_in(&mut tx, &name).await?;
            sqlx::query(
                "UPDATE snapshot_partitions SET last_key_json = COALESCE($1, last_key_json), rows_copied = $2, done = $3 \
                 WHERE pipe = $4 AND destination = $5 AND idx = $6",
            )
            .bind(&last_key)
            .bind(rows_copied as i64)
            .bind(done as i64)
            .bind(&name)
            .bind(&destination)
            .bind(idx as i64)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE pipe_tables SET rows_copied = (SELECT COALESCE(SUM(rows_copied), 0) FROM snapshot_partitions \
                 WHERE pipe = $1 AND destination = $2) WHERE pipe = $3 AND destination = $4",
            )
            .bind(&name)
            .bind(&destination)
            .bind(&name)
            .bind(&destination)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// (partitions done, partitions planned) of a table.
    pub async fn partition_counts(&self, name: &str, destination: &str) -> Result<(u32, u32)> {
        let (name, destination) = (name.to_owned(), destination.to_owned());
        self.detached(move |c| async move {
            let r = sqlx::query(
                "SELECT CAST(COALESCE(SUM(done), 0) AS BIGINT), COUNT(*) FROM snapshot_partitions WHERE pipe = $1 AND destination = $2",
            )
            .bind(&name)
            .bind(&destination)
            .fetch_one(&c.reads)
            .await?;
            Ok((r.get::<i64, _>(0) as u32, r.get::<i64, _>(1) as u32))
        })
        .await
    }

    pub async fn set_rows_estimated(&self, name: &str, destination: &str, rows: u64) -> Result<()> {
        let (name, destination) = (name.to_owned(), destination.to_owned());
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            c.fence_in(&mut tx, &name).await?;
            sqlx::query("UPDATE pipe_tables SET rows_estimated = $1 WHERE pipe = $2 AND destination = $3")
                .bind(rows as i64)
                .bind(&name)
                .bind(&destination)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    pub async fn checkpoint(&self, name: &str) -> Result<Option<StoredCheckpoint>> {
        let name = name.to_owned();
        self.detached(move |c| async move {
            let row = sqlx::query("SELECT binlog_file, binlog_pos, gtid_set, snapshot_version FROM checkpoints WHERE pipe = $1")
                .bind(&name)
                .fetch_optional(&c.reads)
                .await?;
            Ok(row.map(|r| StoredCheckpoint {
                checkpoint: Checkpoint {
                    position: BinlogPosition::new(r.get::<String, _>(0), r.get::<i64, _>(1) as u64),
                    gtid_set: r.get(2),
                },
                snapshot_version: r.get(3),
            }))
        })
        .await
    }

    /// Makes a CDC checkpoint durable. Call only after ClickHouse acknowledged
    /// every change before it.
    ///
    /// The checkpoint only moves forward: a position earlier in the same
    /// binlog (same file name base, lower file sequence or same file and lower
    /// offset, see `BinlogPosition::progress_cmp`) is refused with
    /// `CheckpointBackwards` and nothing is written. The same position is
    /// accepted (its GTID set is updated). After `allow_checkpoint_rebase`,
    /// this one save may go anywhere; the move is recorded in the history.
    pub async fn save_checkpoint(&self, name: &str, cp: &Checkpoint) -> Result<()> {
        self.save_checkpoint_with(name, cp, None).await
    }

    /// `save_checkpoint` by the holder of the pipe's lease `token` (`Fenced` otherwise, nothing written).
    pub async fn save_checkpoint_fenced(&self, name: &str, cp: &Checkpoint, token: i64) -> Result<()> {
        self.save_checkpoint_with(name, cp, Some(token)).await
    }

    async fn save_checkpoint_with(&self, name: &str, cp: &Checkpoint, fence: Option<i64>) -> Result<()> {
        let (name, cp) = (name.to_owned(), cp.clone());
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            if let Some(token) = fence.or_else(|| c.fence_of(&name)) {
                Self::check_fence(&mut tx, &name, token).await?;
            }
            Self::put_checkpoint(&mut tx, &name, &cp, None, CheckpointMove::Forward).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Lets the NEXT saved checkpoint (`save_checkpoint` or
    /// `record_schema_change`) be anywhere, once: for a pipe whose source
    /// moved to another server (fail-over), whose binlog file numbers are
    /// unrelated to the stored ones. `reason` goes to the pipe's history, now
    /// and again with the positions when the rebased checkpoint is saved.
    /// A pipe without a checkpoint yet has nothing to rebase (its first
    /// checkpoint may be anywhere anyway).
    pub async fn allow_checkpoint_rebase(&self, name: &str, reason: &str) -> Result<()> {
        let (name, reason) = (name.to_owned(), reason.to_owned());
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            c.fence_in(&mut tx, &name).await?;
            let exists: Option<String> =
                sqlx::query_scalar("SELECT name FROM pipes WHERE name = $1").bind(&name).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Err(CatalogError::NoSuchPipe(name));
            }
            sqlx::query("UPDATE checkpoints SET rebase_reason = $1 WHERE pipe = $2").bind(&reason).bind(&name).execute(&mut *tx).await?;
            Self::note_in(&mut tx, &name, &format!("the next checkpoint may move anywhere in the binlog (rebase): {reason}")).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Writes the checkpoint inside `tx`, enforcing `how` against the stored one.
    async fn put_checkpoint(tx: &mut Tx, name: &str, cp: &Checkpoint, snapshot_version: Option<i64>, how: CheckpointMove) -> Result<()> {
        let stored = sqlx::query("SELECT binlog_file, binlog_pos, rebase_reason FROM checkpoints WHERE pipe = $1")
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
        let mut rebased = None;
        if let Some(row) = stored {
            let at = BinlogPosition::new(row.get::<String, _>(0), row.get::<i64, _>(1) as u64);
            let rebase: Option<String> = row.get(2);
            match (how, rebase) {
                (CheckpointMove::Restart, _) => {}
                (CheckpointMove::Forward, Some(reason)) => rebased = Some((at, reason)),
                (CheckpointMove::Forward, None) if cp.position.is_before(&at) => {
                    return Err(CatalogError::CheckpointBackwards { pipe: name.into(), stored: at, new: cp.position.clone() });
                }
                (CheckpointMove::Forward, None) => {}
            }
        }
        sqlx::query(
            "INSERT INTO checkpoints (pipe, binlog_file, binlog_pos, gtid_set, snapshot_version, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT(pipe) DO UPDATE SET binlog_file = excluded.binlog_file, binlog_pos = excluded.binlog_pos, \
             gtid_set = excluded.gtid_set, updated_at = excluded.updated_at, rebase_reason = NULL, \
             snapshot_version = CASE WHEN $7 IS NULL THEN checkpoints.snapshot_version ELSE excluded.snapshot_version END",
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
        if let Some((from, reason)) = rebased {
            Self::note_in(tx, name, &format!("checkpoint rebased from {from} to {} ({reason})", cp.position)).await?;
        }
        Ok(())
    }

    pub async fn delete_pipe(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            c.fence_in(&mut tx, &name).await?;
            for sql in [
                "DELETE FROM pipe_tables WHERE pipe = $1",
                "DELETE FROM snapshot_partitions WHERE pipe = $1",
                "DELETE FROM checkpoints WHERE pipe = $1",
                "DELETE FROM pipe_events WHERE pipe = $1",
                "DELETE FROM pipes WHERE name = $1",
            ] {
                sqlx::query(sql).bind(&name).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests;
