//! How far an error reaches, decided where it is raised: the engine retries a
//! transient error, puts one table in `Error` for a table-level one while the
//! other tables keep flowing, and fails the pipe only for a fatal one.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Waiting and trying the same thing again may succeed (network, timeouts,
    /// a server restarting or overloaded, a lock). Retried with backoff.
    Transient,
    /// Only the table the error concerns is affected (a value that cannot be
    /// decoded or written, a destination table that was dropped or changed
    /// under the pipe). That table goes to `Error` with the message; others go on.
    Table,
    /// The pipe cannot go on without a user's action (credentials, grants, a
    /// purged binlog, a misconfigured server). The pipe goes to `Failed`.
    Fatal,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Transient => "transient",
            Severity::Table => "table",
            Severity::Fatal => "fatal",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
