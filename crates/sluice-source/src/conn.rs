//! Connections to the source server and what it is (MySQL or MariaDB, which version).

use crate::tunnel::Endpoint;
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, SslOpts};
use sluice_core::spec::{SourceSpec, TlsMode};
use sluice_core::{BinlogPosition, Severity};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The server rejected a statement or the connection broke.
    #[error("source MySQL error: {}", mysql_text(.0))]
    Mysql(#[from] mysql_async::Error),
    /// The source is not configured for CDC; the message says how to fix it.
    #[error("{0}")]
    Config(String),
    /// Data arrived that Sluice cannot decode or map; the message names table and column.
    #[error("{0}")]
    Decode(String),
    /// The binlog position to resume from no longer exists on the source.
    #[error("{0}")]
    BinlogPurged(String),
    /// Another replica uses this pipe's server id (retried: it may go away).
    #[error("{0}")]
    ServerIdInUse(String),
    /// The source did not answer within `source.query_timeout_ms`.
    #[error("the source did not answer {what} within {secs} s (source.query_timeout_ms); retrying on a new connection")]
    Timeout { what: String, secs: u64 },
    /// The binlog stream went silent or was closed by the server.
    #[error("{0}; reconnecting")]
    Stalled(String),
    /// The SSH tunnel to the source could not be opened or broke (network, the
    /// SSH server restarting); retried on a new SSH session.
    #[error("SSH tunnel: {0}; reconnecting")]
    Tunnel(String),
    /// A binlog event is larger than a `max_allowed_packet` limit (the
    /// source's, or the client's); the message names the variable and the fix.
    #[error("{0}")]
    PacketTooLarge(String),
    /// The source's `gtid_mode` no longer serves a stream positioned by GTIDs
    /// (it wrote a transaction without a GTID); the message says what to do.
    #[error("{0}")]
    GtidModeChanged(String),
    /// An error while working on one source table, named.
    #[error("table {table}: {source}")]
    InTable { table: String, source: Box<SourceError> },
}

/// The driver's text of an error. The driver words an I/O error twice
/// (`Input/output error: Input/output error: ...`, its error and the inner
/// one's each naming the kind): said once here.
fn mysql_text(e: &mysql_async::Error) -> String {
    const IO: &str = "Input/output error: ";
    let text = e.to_string();
    match text.strip_prefix(IO) {
        Some(rest) if rest.starts_with(IO) => rest.to_string(),
        _ => text,
    }
}

impl SourceError {
    /// How far the error reaches. Server errors are classified by code:
    /// connection-level and load conditions are transient (too many
    /// connections 1040, shutdown 1053, lock wait 1205, deadlock 1213,
    /// net read/write errors 1158–1161, interrupted 1317, connection killed
    /// 1927, lost connection 2013, query timeout 3024, server busy 1203/1226
    /// (user resource limits), out of memory 1037/1038/1041); everything else
    /// the server says (access denied, unknown table, a purged binlog, a
    /// replication protocol error) needs a user's action: fatal. Errors below
    /// the protocol (I/O, a dropped TLS session, a driver error on a broken
    /// packet) are transient, and so is a broken or unreachable SSH tunnel. A
    /// value that cannot be decoded concerns one table.
    pub fn severity(&self) -> Severity {
        match self {
            SourceError::Mysql(mysql_async::Error::Server(e)) => {
                if matches!(e.code, 1037 | 1038 | 1040 | 1041 | 1053 | 1158..=1161 | 1203 | 1205 | 1213 | 1226 | 1317 | 1927 | 2013 | 3024)
                {
                    Severity::Transient
                } else {
                    Severity::Fatal
                }
            }
            SourceError::Mysql(mysql_async::Error::Url(_)) => Severity::Fatal,
            SourceError::Mysql(_)
            | SourceError::ServerIdInUse(_)
            | SourceError::Timeout { .. }
            | SourceError::Stalled(_)
            | SourceError::Tunnel(_) => Severity::Transient,
            SourceError::Decode(_) => Severity::Table,
            SourceError::Config(_) | SourceError::BinlogPurged(_) | SourceError::PacketTooLarge(_) | SourceError::GtidModeChanged(_) => {
                Severity::Fatal
            }
            SourceError::InTable { source, .. } => source.severity(),
        }
    }

    /// This error, naming the table it concerns (unless it already does).
    pub fn in_table(self, table: impl std::fmt::Display) -> Self {
        match self {
            e @ SourceError::InTable { .. } => e,
            e => SourceError::InTable { table: table.to_string(), source: Box::new(e) },
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        self.severity() == Severity::Transient
    }
}

/// Runs one request to the source, bounded by `source.query_timeout_ms`: a
/// source that does not answer (a hung server, a network path that holds the
/// bytes) becomes a transient `Timeout` instead of a silent stall. The
/// request's connection is dropped with the future, never reused half-read.
pub async fn bounded<T, F>(spec: &SourceSpec, what: &str, fut: F) -> Result<T, SourceError>
where
    F: std::future::Future<Output = Result<T, SourceError>>,
{
    let limit = Duration::from_millis(spec.query_timeout_ms);
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(SourceError::Timeout { what: what.to_string(), secs: limit.as_secs() }),
    }
}

/// The largest packet the MySQL protocol carries (1 GiB), the client's `max_allowed_packet`.
pub const MAX_PACKET: usize = 1 << 30;

/// MySQL or MariaDB: they differ in binlog events, GTIDs and status statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MySql,
    MariaDb,
}

#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub flavor: Flavor,
    pub version: String,
    /// GTIDs on every transaction (MySQL `gtid_mode=ON`; MariaDB always).
    pub gtid_mode: bool,
    /// MySQL's `@@GLOBAL.gtid_mode` as it reads (`ON`, `ON_PERMISSIVE`, ...); `None` on MariaDB.
    pub gtid_mode_text: Option<String>,
}

/// Connection options for connecting at `at` (the source, or an SSH tunnel's
/// local end: see `tunnel::endpoint`); `tls` false leaves TLS off whatever the
/// spec says (the plain-TCP fallback of `preferred`). Through a tunnel, TLS
/// still verifies the certificate against the source's name (`tls_host` or
/// `host`), never against the tunnel's 127.0.0.1.
pub fn opts(spec: &SourceSpec, at: &Endpoint, tls: bool) -> Opts {
    let b = OptsBuilder::default()
        .ip_or_hostname(at.host.clone())
        .tcp_port(at.port)
        .user(Some(spec.user.clone()))
        .pass(Some(spec.password.0.clone()))
        .prefer_socket(false)
        // The protocol's largest packet: the client never refuses what the server
        // sends (a binlog event of a big row is larger than the server's default
        // max_allowed_packet); the server's own limits still apply to it.
        .max_allowed_packet(Some(MAX_PACKET))
        .conn_ttl(Some(Duration::from_secs(3600)))
        .tcp_keepalive(Some(Duration::from_secs(30)));
    let t = &spec.tls;
    let ssl = match t.mode {
        _ if !tls => None,
        TlsMode::Disabled => None,
        TlsMode::Preferred | TlsMode::Required => {
            Some(SslOpts::default().with_danger_accept_invalid_certs(true).with_danger_skip_domain_validation(true))
        }
        TlsMode::VerifyCa | TlsMode::VerifyIdentity => {
            let mut o = SslOpts::default();
            if let Some(pem) = &t.ca_cert {
                o = o.with_root_certs(vec![pem.as_bytes().to_vec().into()]).with_disable_built_in_roots(true);
            }
            if t.mode == TlsMode::VerifyCa {
                o = o.with_danger_skip_domain_validation(true);
            } else if let Some(h) = &t.tls_host {
                o = o.with_danger_tls_hostname_override(Some(h.clone()));
            } else if at.tunneled {
                o = o.with_danger_tls_hostname_override(Some(spec.host.clone()));
            }
            Some(o)
        }
    };
    b.ssl_opts(ssl).into()
}

/// Connects as the spec says: through `source.ssh` when set, TLS per
/// `source.tls` (a `preferred` connection falls back to plain TCP when the
/// server offers no TLS).
pub async fn connect(spec: &SourceSpec) -> Result<Conn, SourceError> {
    bounded(spec, "connecting", connect_unbounded(spec)).await
}

async fn connect_unbounded(spec: &SourceSpec) -> Result<Conn, SourceError> {
    let at = crate::tunnel::endpoint(spec).await?;
    let conn = match Conn::new(opts(spec, &at, true)).await {
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)) if spec.tls.mode == TlsMode::Preferred => {
            Conn::new(opts(spec, &at, false)).await
        }
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)) => {
            return Err(SourceError::Config(format!(
                "source.tls.mode is {:?} but the server at {}:{} does not offer TLS; configure TLS on the server or choose mode preferred/disabled",
                spec.tls.mode, spec.host, spec.port
            )))
        }
        other => other,
    };
    if conn.is_err() && at.tunneled {
        // The handshake broke because the SSH server would not reach the source: say that instead.
        if let Some(e) = crate::tunnel::explain(spec) {
            return Err(e);
        }
    }
    let mut conn = conn.map_err(|e| match e {
        mysql_async::Error::Io(io) if io.to_string().to_ascii_lowercase().contains("certificate") => {
            SourceError::Config(format!("TLS to the source failed: {io}; check source.tls.ca_cert (and tls_host for verify_identity)"))
        }
        e => SourceError::Mysql(e),
    })?;
    // Every value Sluice reads as text or DATETIME must be in UTC (TIMESTAMP snapshot = binlog epoch).
    // Text arrives as stored (no charset conversion), as in the binlog; `convert` transcodes both alike.
    conn.query_drop("SET time_zone = '+00:00', SESSION sql_mode = '', character_set_results = NULL").await?;
    Ok(conn)
}

pub async fn server_info(conn: &mut Conn) -> Result<ServerInfo, SourceError> {
    let version: String = conn.query_first("SELECT VERSION()").await?.unwrap_or_default();
    let flavor = if version.to_ascii_lowercase().contains("mariadb") { Flavor::MariaDb } else { Flavor::MySql };
    let (gtid_mode, gtid_mode_text) = match flavor {
        Flavor::MySql => {
            let m: Option<String> = conn.query_first("SELECT @@GLOBAL.gtid_mode").await?;
            (m.as_deref() == Some("ON"), m)
        }
        // MariaDB always writes GTIDs to its binlog.
        Flavor::MariaDb => (true, None),
    };
    Ok(ServerInfo { flavor, version, gtid_mode, gtid_mode_text })
}

/// The server's current binlog write position and executed GTID set.
pub async fn current_position(conn: &mut Conn, info: &ServerInfo) -> Result<(BinlogPosition, Option<String>), SourceError> {
    let stmt = match info.flavor {
        Flavor::MySql => "SHOW BINARY LOG STATUS",
        Flavor::MariaDb => "SHOW MASTER STATUS",
    };
    let row: Option<mysql_async::Row> = match conn.query_first(stmt).await {
        Ok(r) => r,
        // MySQL before 8.2 only knows SHOW MASTER STATUS.
        Err(_) if info.flavor == Flavor::MySql => conn.query_first("SHOW MASTER STATUS").await?,
        Err(e) => return Err(e.into()),
    };
    let row = row.ok_or_else(|| {
        SourceError::Config("the source has binary logging turned off (SHOW BINARY LOG STATUS is empty): start it with --log-bin".into())
    })?;
    let file: String = row.get(0).unwrap_or_default();
    let pos: u64 = row.get(1).unwrap_or(4);
    let gtid = match info.flavor {
        Flavor::MySql if info.gtid_mode => row.get::<Option<String>, _>(4).flatten().map(|s| s.replace('\n', "")),
        Flavor::MySql => None,
        // The GTID position exactly at (file, pos), not @@gtid_binlog_pos, which a commit
        // between the two statements would move past the position.
        Flavor::MariaDb => match conn.exec_first::<Option<String>, _, _>("SELECT BINLOG_GTID_POS(?, ?)", (&file, pos)).await?.flatten() {
            Some(g) => Some(g),
            // MariaDB answers NULL when it cannot read the file up to the position (an
            // event larger than its max_allowed_packet before it): @@gtid_binlog_pos read
            // between two equal positions is the set at that position.
            None => return mariadb_position_by_status(conn, BinlogPosition::new(file, pos)).await,
        },
    };
    Ok((BinlogPosition::new(file, pos), gtid))
}

/// MariaDB's position and `@@gtid_binlog_pos` read together: the GTID set
/// belongs to the position when `SHOW MASTER STATUS` gives the same position
/// before and after it (no commit in between). Tries a few times, as commits
/// keep coming on a busy server; then the position without a GTID set.
async fn mariadb_position_by_status(conn: &mut Conn, mut at: BinlogPosition) -> Result<(BinlogPosition, Option<String>), SourceError> {
    for _ in 0..20 {
        let gtid: Option<String> = conn.query_first("SELECT @@GLOBAL.gtid_binlog_pos").await?;
        let row: Option<mysql_async::Row> = conn.query_first("SHOW MASTER STATUS").await?;
        let Some(row) = row else { break };
        let now = BinlogPosition::new(row.get::<String, _>(0).unwrap_or_default(), row.get::<u64, _>(1).unwrap_or(4));
        if now == at {
            return Ok((at, gtid.filter(|g| !g.is_empty())));
        }
        at = now;
    }
    tracing::warn!("the source's GTID position at {at:?} cannot be read (BINLOG_GTID_POS is NULL and commits keep coming)");
    Ok((at, None))
}

#[cfg(test)]
mod error_text_tests {
    use super::*;

    #[test]
    fn an_io_error_is_worded_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        let e = SourceError::from(mysql_async::Error::Io(mysql_async::IoError::Io(io)));
        assert_eq!(e.to_string(), "source MySQL error: Input/output error: connection reset by peer");
    }
}
