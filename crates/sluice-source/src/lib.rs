//! Sluice source: everything that talks to MySQL or MariaDB.
//!
//! - `conn`: connection options, server flavour and version.
//! - `tunnel`: SSH tunnels to the source (`source.ssh`).
//! - `checks`: pre-flight validation of binlog settings and grants.
//! - `discovery`: table patterns → recorded `SourceTable`s from `information_schema`.
//! - `convert`: snapshot values and binlog values → the same `Cell`s.
//! - `wkt`: stored spatial values (SRID + WKB) → WKT text.
//! - `snapshot`: keyset-paged, streaming table reads.
//! - `binlog`: the replication stream, decoded into row changes and commits.
//! - `change_source`: the `ChangeSource` seam the engine uses, and `MySqlSource`.

pub mod binlog;
pub mod change_source;
pub mod checks;
pub mod conn;
pub mod convert;
pub mod ddl;
pub mod discovery;
pub mod gtid;
pub mod snapshot;
pub mod tunnel;
pub mod wkt;

pub use change_source::{ChangeSource, ChangeStream, CopyReader, DescribedTable, HeartbeatWriter, MySqlSource};
pub use conn::{Flavor, ServerInfo, SourceError};
