//! Sluice verification: proves that a pipe's ClickHouse tables equal its
//! source tables, names the rows that differ, and optionally repairs them.
//!
//! Per table, the key space is split into ranges (the snapshot's partition
//! planning); each range's checksum is computed inside each database over a
//! canonical text of every row (`canon`), so only a few numbers per range
//! cross the network. A range whose checksums differ is bisected (`range`)
//! down to a small range whose rows are fetched from both sides and compared
//! value by value (`rows`). Columns that cannot be rendered identically by
//! both databases are compared by fetching them (`TableResult::fetched_columns`).
//! On a live pipe, a difference is checked again once the pipe's checkpoint
//! has passed the source position read with it; only differences that persist
//! are reported (`run`). Repair re-copies the differing rows (`repair`).

pub mod canon;
pub mod range;
mod repair;
mod rows;
mod run;
mod sides;

pub use run::{select_tables, summary, verify, RepairGate, Request};

use serde::{Deserialize, Serialize};

/// Differing keys listed per table at most; `TableResult::differences_capped` says when more differ.
pub const MAX_KEYS_LISTED: usize = 1000;

/// Errors of a verification.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("source: {0}")]
    Source(#[from] sluice_source::SourceError),
    #[error("destination: {0}")]
    Sink(#[from] sluice_sink::SinkError),
    #[error("catalog: {0}")]
    Catalog(#[from] sluice_catalog::CatalogError),
    #[error("{0}")]
    Invalid(String),
    #[error("the verification was cancelled")]
    Cancelled,
}

impl From<mysql_async::Error> for VerifyError {
    fn from(e: mysql_async::Error) -> Self {
        VerifyError::Source(e.into())
    }
}

/// How a row differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// In the source, not in the destination.
    Missing,
    /// In the destination, not in the source.
    Extra,
    /// In both, with different values in `columns`.
    Differs,
}

/// One differing row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyDiff {
    /// The key, as `col=value, ...` (source key column names).
    pub key: String,
    pub kind: DiffKind,
    /// Destination columns whose values differ (`differs` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
}

/// The result of verifying one table.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TableResult {
    /// `schema.table` of the source.
    pub source: String,
    /// Destination table name.
    pub destination: String,
    /// `pending`, `running`, `done` or `failed`.
    pub state: String,
    /// Ranges whose checksums were compared (bisected halves and re-checks included).
    pub ranges_checked: u64,
    /// Source rows covered by the comparison.
    pub rows_compared: u64,
    /// Rows that differ after the live re-checks (and after repair, when asked).
    pub rows_differing: u64,
    /// The differing rows, at most `MAX_KEYS_LISTED`.
    pub differences: Vec<KeyDiff>,
    /// More rows differ than are listed.
    pub differences_capped: bool,
    /// Columns compared by fetching their values (not in the in-database checksum).
    pub fetched_columns: Vec<String>,
    /// Rows re-copied by a repair (upserts and delete markers written).
    pub rows_repaired: u64,
    /// Rows found differing before the repair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differing_before_repair: Option<u64>,
    /// How the table was checked, when it matters (one range, no live re-check, ...).
    #[serde(default)]
    pub notes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TableResult {
    /// Counts a differing row, listing it unless the list is full.
    pub(crate) fn add(&mut self, d: KeyDiff) {
        self.rows_differing += 1;
        if self.differences.len() < MAX_KEYS_LISTED {
            self.differences.push(d);
        } else {
            self.differences_capped = true;
        }
    }
}
