//! Sluice core: the vocabulary every other crate speaks.
//!
//! Nothing in here does I/O. It defines the pipe spec users write, the pipe
//! lifecycle, binlog positions and the `_peerdb_version` derived from them,
//! the recorded shape of a source table, the values that flow through a pipe
//! and how MySQL/MariaDB column types map to ClickHouse types.

pub mod change;
pub mod position;
pub mod rows;
pub mod schema;
pub mod severity;
pub mod spec;
pub mod state;
pub mod types;
pub mod value;

pub use change::{ChangeOp, RowChange};
pub use position::{BinlogPosition, Checkpoint};
pub use rows::{RowRejected, RowSink, Rows};
pub use schema::{SourceColumn, SourceTable, TableId};
pub use severity::Severity;
pub use spec::{PipeMode, PipeSpec, SpecError, SyncSettings, TableSpec};
pub use state::{PipeAction, PipeState, TableState};
pub use types::{ChType, ColumnMapping};
pub use value::Cell;
