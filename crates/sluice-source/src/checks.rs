//! Pre-flight checks: is the source configured for row-based CDC?
//!
//! Each failing check says which setting is wrong and the statement that fixes it.
//! Nothing here changes the source.

use crate::conn::{Flavor, ServerInfo, SourceError};
use mysql_async::prelude::*;
use mysql_async::Conn;
use serde::Serialize;

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

/// Runs every server-level check (tables are checked by discovery).
pub async fn run(conn: &mut Conn, info: &ServerInfo) -> Result<Vec<Check>, SourceError> {
    let mut out = Vec::new();
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
pub async fn require(conn: &mut Conn, info: &ServerInfo) -> Result<Vec<Check>, SourceError> {
    let checks = run(conn, info).await?;
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{} (found {}): fix: {}", c.name, c.found, c.fix))
        .collect();
    if failed.is_empty() {
        Ok(checks)
    } else {
        Err(SourceError::Config(format!("source is not ready for CDC: {}", failed.join("; "))))
    }
}
