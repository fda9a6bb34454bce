//! Binlog positions and checkpoints.
//!
//! `BinlogPosition::version` is the `_peerdb_version` scheme of pipes created
//! before the version clock (see `sluice-engine`'s `versions`):
//! `(file sequence << 43) + (event start offset << 11) + i`. It is kept only
//! to seed such a pipe's clock above every version it wrote.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Number of bits reserved for the in-event row counter.
const ROW_BITS: u32 = 11;
/// Bits for the byte offset inside a binlog file (v4 headers carry 32-bit positions).
const POS_BITS: u32 = 32;
/// Largest binlog file sequence number the version scheme can encode (2^20 - 1).
pub const MAX_FILE_SEQUENCE: u64 = (1 << (63 - ROW_BITS - POS_BITS)) - 1;

/// A file/offset position in the source's binary log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BinlogPosition {
    pub file: String,
    pub pos: u64,
}

impl BinlogPosition {
    pub fn new(file: impl Into<String>, pos: u64) -> Self {
        Self { file: file.into(), pos }
    }

    /// The numeric suffix of the binlog file name (`binlog.000042` → 42).
    pub fn file_sequence(&self) -> Result<u64, VersionError> {
        let digits = self.file.rsplit('.').next().unwrap_or("");
        let seq: u64 = digits.parse().map_err(|_| VersionError::BadFileName(self.file.clone()))?;
        if seq > MAX_FILE_SEQUENCE {
            return Err(VersionError::FileSequenceTooLarge(self.file.clone()));
        }
        Ok(seq)
    }

    /// The file name without its numeric suffix (`binlog.000042` → `binlog`);
    /// the whole name when it has no `.digits` suffix.
    pub fn file_base(&self) -> &str {
        match self.file.rsplit_once('.') {
            Some((base, digits)) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => base,
            _ => &self.file,
        }
    }

    /// Where `self` stands relative to `other` in one server's binlog:
    /// `Some(Less)` when `self` comes before `other` (a lower file sequence, or
    /// the same file and a lower offset), `Some(Equal)` for the same position,
    /// `Some(Greater)` after it. `None` when the two cannot be compared: the
    /// file name bases differ (`binlog` vs `mysql-bin`, typically another
    /// server) or a name does not end in a sequence number.
    ///
    /// File sequences of two different servers are unrelated even under the
    /// same base name; only the caller knows whether both come from one server.
    pub fn progress_cmp(&self, other: &BinlogPosition) -> Option<std::cmp::Ordering> {
        if self.file_base() != other.file_base() {
            return None;
        }
        // Parsed without the version scheme's limit: ordering needs no encoding.
        let seq = |p: &BinlogPosition| p.file.rsplit_once('.').and_then(|(_, d)| d.parse::<u64>().ok());
        Some((seq(self)?, self.pos).cmp(&(seq(other)?, other.pos)))
    }

    /// Whether moving a checkpoint from `stored` to `self` would move it
    /// backwards in the same binlog (see [`BinlogPosition::progress_cmp`]).
    pub fn is_before(&self, stored: &BinlogPosition) -> bool {
        self.progress_cmp(stored) == Some(std::cmp::Ordering::Less)
    }

    /// Version of the `row_index`-th row change of the event starting at this position.
    pub fn version(&self, row_index: u64) -> Result<i64, VersionError> {
        let seq = self.file_sequence()?;
        if self.pos >= (1 << POS_BITS) {
            return Err(VersionError::PositionTooLarge(self.pos));
        }
        let v = (seq << (POS_BITS + ROW_BITS)) + (self.pos << ROW_BITS) + row_index;
        Ok(v as i64)
    }

    /// Version given to rows copied by a snapshot that starts reading the binlog here.
    pub fn snapshot_version(&self) -> Result<i64, VersionError> {
        Ok(self.version(0)? - 1)
    }
}

impl PartialOrd for BinlogPosition {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BinlogPosition {
    /// Orders by file sequence (falling back to the name) and then offset.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let a = self.file_sequence().ok();
        let b = other.file_sequence().ok();
        (a, &self.file, self.pos).cmp(&(b, &other.file, other.pos))
    }
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    #[error("binlog file name {0:?} does not end in a numeric sequence")]
    BadFileName(String),
    #[error("binlog file {0:?} has a sequence number above {MAX_FILE_SEQUENCE}; _peerdb_version cannot encode it")]
    FileSequenceTooLarge(String),
    #[error("binlog offset {0} does not fit 32 bits")]
    PositionTooLarge(u64),
}

/// A durable resume point: the start of the first transaction not yet
/// acknowledged by ClickHouse, plus the GTID set executed before it (when the
/// source runs with GTIDs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub position: BinlogPosition,
    pub gtid_set: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_binlog_order() {
        let a = BinlogPosition::new("binlog.000001", 4_000_000_000);
        let b = BinlogPosition::new("binlog.000002", 4);
        assert!(a.version(5000).unwrap() < b.version(0).unwrap());
        let c = BinlogPosition::new("binlog.000002", 200);
        assert!(b.version(2 * 196 - 1).unwrap() < c.version(0).unwrap());
        assert!(a < b && b < c);
    }

    #[test]
    fn progress_compares_sequence_then_offset_within_one_base() {
        use std::cmp::Ordering::*;
        let p = |f: &str, pos| BinlogPosition::new(f, pos);
        assert_eq!(p("binlog.000042", 100).progress_cmp(&p("binlog.000042", 100)), Some(Equal));
        assert_eq!(p("binlog.000042", 99).progress_cmp(&p("binlog.000042", 100)), Some(Less));
        assert_eq!(p("binlog.000043", 4).progress_cmp(&p("binlog.000042", 9_000_000)), Some(Greater));
        assert_eq!(p("binlog.000041", 9_000_000).progress_cmp(&p("binlog.000042", 4)), Some(Less));
        // Sequences compare as numbers, not strings (a rollover past 999999 adds a digit).
        assert_eq!(p("binlog.1000000", 4).progress_cmp(&p("binlog.999999", 4)), Some(Greater));
        // Another base name or no sequence: not comparable.
        assert_eq!(p("mysql-bin.000001", 4).progress_cmp(&p("binlog.000042", 4)), None);
        assert_eq!(p("binlog", 4).progress_cmp(&p("binlog", 8)), None);
        assert_eq!(p("binlog.", 4).progress_cmp(&p("binlog.", 8)), None);
        assert_eq!(p("binlog.9999999", 4).progress_cmp(&p("binlog.9999998", 4)), Some(Greater), "beyond the version scheme's limit");
        assert_eq!(p("a.b.000002", 4).file_base(), "a.b");
        assert_eq!(p("nonumber", 4).file_base(), "nonumber");
        assert!(p("binlog.000042", 99).is_before(&p("binlog.000042", 100)));
        assert!(!p("binlog.000042", 100).is_before(&p("binlog.000042", 100)));
        assert!(!p("binlog.000043", 4).is_before(&p("binlog.000042", 100)));
        assert!(!p("other.000001", 4).is_before(&p("binlog.000042", 100)));
    }

    #[test]
    fn mariadb_names_and_limits() {
        let p = BinlogPosition::new("mariadb-bin.000123", 77);
        assert_eq!(p.file_sequence().unwrap(), 123);
        assert!(BinlogPosition::new("nonumber", 4).version(0).is_err());
        assert!(BinlogPosition::new("b.9999999", 4).version(0).is_err());
        let max = BinlogPosition::new("b.1048575", u32::MAX as u64).version(2047).unwrap();
        assert!(max > 0);
    }
}
