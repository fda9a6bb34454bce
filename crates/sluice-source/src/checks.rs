//! Pre-flight checks: is the source configured for row-based CDC?
//!
//! Each failing check says which setting is wrong and the statement that fixes it.
//! Nothing here changes the source.

use crate::conn::{Flavor, ServerInfo, SourceError};
use mysql_async::prelude::*;
use mysql_async::Conn;
use serde::Serialize;
use sluice_core::spec::ReplicationMechanism;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was found.
    pub found: String,
    /// How to fix it when not ok.
    pub fix: String,
}

async fn var(conn: &mut Conn, name: &str) -> Result<Option<String>, SourceError> {
    let row: Option<(String, String)> = conn.exec_first("SHOW GLOBAL VARIABLES WHERE Variable_name = ?", (name,)).await?;
    Ok(row.map(|r| r.1))
}

fn check(name: &str, ok: bool, found: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name: name.into(), ok, found: found.into(), fix: if ok { String::new() } else { fix.into() } }
}

/// How CDC will position itself with `mechanism` on this server; refused when
/// `gtid` is asked of a server with GTIDs off.
pub fn replication(info: &ServerInfo, mechanism: ReplicationMechanism) -> Check {
    let gtid = if info.gtid_mode { "GTIDs on" } else { "GTIDs off" };
    let fix = "turn GTIDs on (SET PERSIST enforce_gtid_consistency = ON; then SET PERSIST gtid_mode = OFF_PERMISSIVE, \
               ON_PERMISSIVE, ON in turn) or use replication_mechanism auto or file_pos";
    match mechanism {
        ReplicationMechanism::Gtid => check("replication_mechanism", info.gtid_mode, format!("gtid requested, {gtid}"), fix),
        ReplicationMechanism::FilePos => {
            check("replication_mechanism", true, format!("file_pos ({gtid}); a move to another server needs a resync"), "")
        }
        ReplicationMechanism::Auto if info.gtid_mode => check("replication_mechanism", true, "auto: resumes by GTIDs", ""),
        ReplicationMechanism::Auto => {
            check("replication_mechanism", true, "auto: resumes by file/position (GTIDs off; a move to another server needs a resync)", "")
        }
    }
}

/// Runs every server-level check (tables are checked by `tables`).
pub async fn run(conn: &mut Conn, info: &ServerInfo, mechanism: ReplicationMechanism) -> Result<Vec<Check>, SourceError> {
    let mut out = vec![replication(info, mechanism)];
    let log_bin = var(conn, "log_bin").await?.unwrap_or_default();
    out.push(check(
        "log_bin",
        log_bin.eq_ignore_ascii_case("ON") || log_bin == "1",
        format!("log_bin={log_bin}"),
        "binary logging is off: start the server with --log-bin (e.g. log_bin=binlog in my.cnf) and restart it",
    ));
    for (name, want) in [("binlog_format", "ROW"), ("binlog_row_image", "FULL")] {
        let v = var(conn, name).await?.unwrap_or_default();
        out.push(check(
            name,
            v.eq_ignore_ascii_case(want),
            format!("{name}={v}"),
            format!("SET PERSIST {name} = '{want}'; (MariaDB: SET GLOBAL {name} = '{want}' and add it to my.cnf); existing sessions keep the old value until they reconnect"),
        ));
    }
    let meta = var(conn, "binlog_row_metadata").await?.unwrap_or_default();
    out.push(check(
        "binlog_row_metadata",
        meta.eq_ignore_ascii_case("FULL"),
        format!("binlog_row_metadata={meta}"),
        "SET PERSIST binlog_row_metadata = 'FULL'; (MariaDB: SET GLOBAL binlog_row_metadata = 'FULL' and add it to my.cnf)",
    ));
    if info.flavor == Flavor::MySql {
        let opts = var(conn, "binlog_row_value_options").await?.unwrap_or_default();
        out.push(check(
            "binlog_row_value_options",
            opts.is_empty(),
            format!("binlog_row_value_options={opts}"),
            "SET PERSIST binlog_row_value_options = ''; (PARTIAL_JSON updates cannot be applied without the old document)",
        ));
    }
    // Retention: the binlog must outlive an initial load and a pause (24 h at least).
    let secs: u64 = var(conn, "binlog_expire_logs_seconds").await?.and_then(|v| v.parse().ok()).unwrap_or(0);
    let days: f64 = var(conn, "expire_logs_days").await?.and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let retention = if secs > 0 {
        Some(secs as f64)
    } else if days > 0.0 {
        Some(days * 86400.0)
    } else {
        None
    };
    out.push(check(
        "binlog_retention",
        retention.is_none_or(|r| r >= 86400.0),
        match retention {
            Some(r) => format!("binlogs kept {:.1} h", r / 3600.0),
            None => "binlogs never expire".to_string(),
        },
        "SET PERSIST binlog_expire_logs_seconds = 604800; (MariaDB: SET GLOBAL binlog_expire_logs_seconds = 604800 and add it to my.cnf); \
         a purged binlog forces a resync",
    ));
    // A source that is itself a replica must write what it replicates to its own binlog.
    let replica_status = match info.flavor {
        Flavor::MySql => "SHOW REPLICA STATUS",
        Flavor::MariaDb => "SHOW SLAVE STATUS",
    };
    let is_replica = conn.query_first::<mysql_async::Row, _>(replica_status).await.ok().flatten().is_some();
    if is_replica {
        let (name, v) = match info.flavor {
            Flavor::MySql => ("log_replica_updates", var(conn, "log_replica_updates").await?),
            Flavor::MariaDb => ("log_slave_updates", var(conn, "log_slave_updates").await?),
        };
        let v = v.unwrap_or_default();
        out.push(check(
            name,
            v.eq_ignore_ascii_case("ON") || v == "1",
            format!("the source is a replica; {name}={v}"),
            format!(
                "start the server with --{} (it is not dynamic); without it, changes it replicates never reach its binlog",
                name.replace('_', "-")
            ),
        ));
    }
    let cipher: Option<(String, String)> = conn.query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'").await?;
    let cipher = cipher.map(|c| c.1).filter(|c| !c.is_empty());
    out.push(check(
        "tls",
        true,
        match &cipher {
            Some(c) => format!("connection encrypted ({c})"),
            None => "connection not encrypted (source.tls.mode)".to_string(),
        },
        "",
    ));
    let grants: Vec<String> = conn.query("SHOW GRANTS").await?;
    let all = grants.join("\n").to_ascii_uppercase();
    let has = |p: &str| all.contains("ALL PRIVILEGES ON *.*") || all.contains(p);
    let repl_ok = has("REPLICATION SLAVE") || has("REPLICATION REPLICA");
    let client_ok = has("REPLICATION CLIENT") || has("BINLOG MONITOR") || has("SLAVE MONITOR");
    out.push(check(
        "grants",
        repl_ok && client_ok,
        format!("{} grant line(s)", grants.len()),
        "GRANT SELECT, REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO '<user>'@'<host>'; (MariaDB 10.5+: REPLICATION SLAVE, BINLOG MONITOR)",
    ));
    Ok(out)
}

/// Fails with every failing check's message, or returns the checks when all pass.
pub async fn require(conn: &mut Conn, info: &ServerInfo, mechanism: ReplicationMechanism) -> Result<Vec<Check>, SourceError> {
    let checks = run(conn, info, mechanism).await?;
    let failed: Vec<String> = checks.iter().filter(|c| !c.ok).map(|c| format!("{} (found {}): fix: {}", c.name, c.found, c.fix)).collect();
    if failed.is_empty() {
        Ok(checks)
    } else {
        Err(SourceError::Config(format!("source is not ready for CDC: {}", failed.join("; "))))
    }
}

/// Checks that every table the spec names exists and has a usable key (and a
/// usable `partition_key` where one is given).
pub async fn tables(conn: &mut Conn, specs: &[sluice_core::TableSpec]) -> Result<Vec<Check>, SourceError> {
    let expanded = match crate::discovery::expand(conn, specs).await {
        Ok(e) => e,
        Err(SourceError::Config(msg)) => {
            return Ok(vec![check("tables", false, msg, "fix the table list, or create the table, or GRANT SELECT on it")])
        }
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in expanded {
        let id = e.id.clone();
        let name = format!("table {id}");
        let t = match crate::discovery::describe(conn, &id).await {
            Ok(t) => t,
            Err(SourceError::Config(msg)) => {
                out.push(check(&name, false, msg, "GRANT SELECT on the table to the pipe's user"));
                continue;
            }
            Err(e) => return Err(e),
        };
        if t.primary_key.is_empty() {
            out.push(check(
                &name,
                false,
                "no primary key and no unique key on NOT NULL columns",
                format!("ALTER TABLE {id} ADD PRIMARY KEY (...); or leave the table out"),
            ));
            continue;
        }
        let spec = &specs[e.index];
        if let Err(err) = spec.options().check(&t, spec.partition_key.as_deref(), e.index) {
            out.push(check(&name, false, err, "fix the table's options in the spec"));
            continue;
        }
        if let Some(pk) = &spec.partition_key {
            if let Err(SourceError::Config(msg)) = crate::discovery::check_partition_key(conn, &t, pk).await {
                out.push(check(&name, false, msg, format!("CREATE INDEX ... ON {id} ({pk}); or choose another partition_key")));
                continue;
            }
        }
        out.push(check(&name, true, format!("key ({})", t.primary_key.join(", ")), ""));
    }
    Ok(out)
}
