//! Catalog errors: what went wrong in words a user can act on, and how far
//! each reaches (`severity`), decided here where SQLite reports it.

use sluice_core::state::{IllegalTableTransition, IllegalTransition};
use sluice_core::{BinlogPosition, Severity};

/// SQLite primary result codes the catalog tells apart (the extended code's low byte).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_IOERR: i32 = 10;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A database error other than the ones below; its text says what happened
    /// (a full disk, an I/O error, a locked file are named as such).
    #[error("catalog database error: {}", describe_db(.0))]
    Db(#[from] sqlx::Error),
    #[error("catalog migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("catalog holds unreadable data: {0}")]
    Corrupt(String),
    #[error("pipe {0:?} does not exist")]
    NoSuchPipe(String),
    /// `create_pipe` with a name already in the catalog.
    #[error("pipe {0:?} already exists")]
    Exists(String),
    #[error("pipe {pipe:?} has no table {table:?}")]
    NoSuchTable { pipe: String, table: String },
    /// `add_tables` with a destination table the pipe already has.
    #[error("pipe {pipe:?} already has a table {table:?}")]
    TableExists { pipe: String, table: String },
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    /// A table-state change the table of `TableState::next_states` refuses.
    #[error("pipe {pipe:?}: {source}")]
    IllegalTableTransition { pipe: String, source: IllegalTableTransition },
    /// A checkpoint earlier in the same binlog than the stored one: saving it
    /// would replay (or, after a crash, skip) changes. Nothing was written.
    #[error(
        "refusing to move pipe {pipe:?}'s checkpoint backwards from {stored} to {new}: \
         the source's binlog was reset, or another server answers under the same binlog file names; resync the pipe"
    )]
    CheckpointBackwards { pipe: String, stored: BinlogPosition, new: BinlogPosition },
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    /// The task running a catalog operation panicked or was cancelled (runtime shutdown).
    #[error("catalog operation ended abnormally: {0}")]
    Task(String),
    #[error("{0}")]
    Url(String),
    #[error(
        "pipe {pipe:?}: this worker's lease (fencing token {token}) is no longer the pipe's ({current}): \
         another worker owns the pipe now; nothing was written"
    )]
    Fenced { pipe: String, token: i64, current: String },
    #[error("the catalog {0} is in use by another sluice process (a `sluice run` or a catalog copy needs it alone; `sluice server` workers share it)")]
    InUse(String),
    #[error(
        "the catalog {0} is in use by another sluice process: a SQLite catalog has one user at a time; stop the other \
         process, or give several workers a Postgres catalog"
    )]
    SqliteInUse(String),
    #[error("cannot lock the catalog with {0}: {1}")]
    Lock(String, std::io::Error),
}

/// The SQLite primary result code of a database error (`None`: not one).
/// SQLite's primary result code of a SQLite error (`None` for any other error).
fn primary_code(e: &sqlx::Error) -> Option<i32> {
    let db = e.as_database_error()?;
    db.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    db.code()?.parse::<i32>().ok().map(|c| c & 0xff)
}

/// What a Postgres error's SQLSTATE says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgKind {
    /// Disk full (53100).
    DiskFull,
    /// A lock or serialization conflict (40001, 40P01, 55P03): retrying helps.
    Busy,
    /// The connection or the server went away (class 08, 57P0x), or the server ran out of
    /// resources (class 53): transient.
    Unavailable,
    Other,
}

fn pg_kind(e: &sqlx::Error) -> Option<PgKind> {
    let db = e.as_database_error()?;
    let code = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?.code();
    Some(match code {
        "53100" => PgKind::DiskFull,
        "40001" | "40P01" | "55P03" => PgKind::Busy,
        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P0") => PgKind::Unavailable,
        _ => PgKind::Other,
    })
}

/// The text of a database error, naming the conditions a user can act on.
fn describe_db(e: &sqlx::Error) -> String {
    match (primary_code(e), e) {
        (Some(SQLITE_FULL), _) => format!("the disk holding the catalog is full ({e}); free space on it"),
        (Some(SQLITE_IOERR), _) => format!("cannot read or write the catalog file ({e}); check the disk holding the data directory"),
        (Some(SQLITE_CANTOPEN), _) => format!("cannot open the catalog file ({e}); check the data directory's disk space and permissions"),
        (Some(SQLITE_BUSY | SQLITE_LOCKED), _) => {
            format!("the catalog file stayed locked by another writer past the busy timeout ({e}); is another Sluice process using the same data directory?")
        }
        _ if pg_kind(e) == Some(PgKind::DiskFull) => format!("the disk holding the Postgres catalog is full ({e}); free space on it"),
        _ if pg_kind(e) == Some(PgKind::Unavailable) => format!("the Postgres catalog is unavailable ({e})"),
        (_, sqlx::Error::PoolTimedOut) => "no catalog connection became free in time (catalog writes are queued behind a slow one)".into(),
        _ => e.to_string(),
    }
}

impl CatalogError {
    /// SQLite was busy (the file stayed locked past the busy timeout, or no
    /// connection became free in time): nothing was written, and the same
    /// write can be tried again.
    pub fn is_busy(&self) -> bool {
        match self {
            CatalogError::Db(sqlx::Error::PoolTimedOut) => true,
            CatalogError::Db(e) => matches!(primary_code(e), Some(SQLITE_BUSY | SQLITE_LOCKED)) || pg_kind(e) == Some(PgKind::Busy),
            _ => false,
        }
    }

    /// The disk holding the catalog is full (SQLite's `SQLITE_FULL`).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, CatalogError::Db(e) if primary_code(e) == Some(SQLITE_FULL) || pg_kind(e) == Some(PgKind::DiskFull))
    }

    /// How far the error reaches. Busy/locked, a full disk, I/O errors and a
    /// file that cannot be opened are `Transient`: nothing was written, and
    /// the same write succeeds once the lock is free or space is freed. No
    /// catalog error concerns one table only. Everything else (illegal
    /// transitions, a backwards checkpoint, missing pipes or tables, corrupt
    /// data, constraint violations) is `Fatal`: retrying cannot help.
    pub fn severity(&self) -> Severity {
        match self {
            CatalogError::Db(e) if matches!(pg_kind(e), Some(PgKind::DiskFull | PgKind::Busy | PgKind::Unavailable)) => Severity::Transient,
            CatalogError::Db(e) if pg_kind(e).is_some() => Severity::Fatal,
            CatalogError::Db(e) => match (primary_code(e), e) {
                (Some(SQLITE_BUSY | SQLITE_LOCKED | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN), _) => Severity::Transient,
                (Some(_), _) => Severity::Fatal,
                (None, sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed) => Severity::Transient,
                (None, _) => Severity::Fatal,
            },
            _ => Severity::Fatal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_database_errors_are_fatal_and_name_what_they_concern() {
        let back = CatalogError::CheckpointBackwards {
            pipe: "p".into(),
            stored: BinlogPosition::new("binlog.000042", 100),
            new: BinlogPosition::new("binlog.000041", 4),
        };
        let text = back.to_string();
        assert!(text.contains("binlog.000042:100") && text.contains("binlog.000041:4"), "{text}");
        assert_eq!(back.severity(), Severity::Fatal);
        assert!(!back.is_busy());
        let illegal = CatalogError::IllegalTableTransition {
            pipe: "p".into(),
            source: IllegalTableTransition {
                table: "t".into(),
                from: Some(sluice_core::TableState::Running),
                to: sluice_core::TableState::Swapping,
            },
        };
        assert_eq!(illegal.to_string(), "pipe \"p\": table t cannot go from Running to Swapping");
        assert_eq!(illegal.severity(), Severity::Fatal);
        assert_eq!(CatalogError::Exists("p".into()).to_string(), "pipe \"p\" already exists");
        let timed_out = CatalogError::Db(sqlx::Error::PoolTimedOut);
        assert!(timed_out.is_busy());
        assert_eq!(timed_out.severity(), Severity::Transient);
    }
}
