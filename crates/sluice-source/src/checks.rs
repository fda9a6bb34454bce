//! Pre-flight checks: is the source configured for row-based CDC?
//!
//! Each failing check says which setting is wrong and the statement that fixes it.
//! A check that cannot be made with the grants the README lists (a managed
//! service hides a setting or a status) degrades to a warning saying what to
//! verify by hand, never to a failure. Nothing here changes the source.

use crate::conn::{Flavor, ServerInfo, SourceError};
use mysql_async::prelude::*;
use mysql_async::Conn;
use serde::Serialize;
use sluice_core::spec::ReplicationMechanism;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    /// False: CDC cannot work (or would lose data) until `fix` is applied.
    pub ok: bool,
    /// True (with `ok`): nothing is broken, but something could not be
    /// checked or deserves attention; `fix` says what to verify or do.
    pub warning: bool,
    /// What was found.
    pub found: String,
    /// How to fix it when not ok; what to verify or do for a warning.
    pub fix: String,
}

impl Check {
    /// `PASS`, `WARN` or `FAIL`.
    pub fn verdict(&self) -> &'static str {
        match (self.ok, self.warning) {
            (false, _) => "FAIL",
            (true, true) => "WARN",
            (true, false) => "PASS",
        }
    }
}

/// A global variable; `None` when the server does not have it or does not show it to this user.
async fn var(conn: &mut Conn, name: &str) -> Result<Option<String>, SourceError> {
    match conn.exec_first::<(String, String), _, _>("SHOW GLOBAL VARIABLES WHERE Variable_name = ?", (name,)).await {
        Ok(row) => Ok(row.map(|r| r.1)),
        Err(mysql_async::Error::Server(e)) if is_denied(e.code) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Access denied / a privilege is missing (1227, 1142, 1044, 1370, 1045).
fn is_denied(code: u16) -> bool {
    matches!(code, 1044 | 1045 | 1142 | 1227 | 1370)
}

fn check(name: &str, ok: bool, found: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name: name.into(), ok, warning: false, found: found.into(), fix: if ok { String::new() } else { fix.into() } }
}

/// A passing check with something to verify or do (`advice`).
fn warn(name: &str, found: impl Into<String>, advice: impl Into<String>) -> Check {
    Check { name: name.into(), ok: true, warning: true, found: found.into(), fix: advice.into() }
}

/// Where the source runs, when it is a managed service whose settings differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Managed {
    /// Amazon RDS for MySQL/MariaDB or Aurora MySQL: binlog retention is set by
    /// `mysql.rds_set_configuration`, not by `binlog_expire_logs_seconds`.
    Rds,
}

/// Recognises RDS/Aurora: `@@basedir` under `/rdsdbbin`, or `rds_*` / `aurora_*` variables.
async fn managed(conn: &mut Conn) -> Result<Option<Managed>, SourceError> {
    let basedir = var(conn, "basedir").await?.unwrap_or_default();
    let rds_vars: Vec<(String, String)> =
        match conn.query("SHOW GLOBAL VARIABLES WHERE Variable_name LIKE 'rds\\_%' OR Variable_name LIKE 'aurora\\_%'").await {
            Ok(v) => v,
            Err(mysql_async::Error::Server(e)) if is_denied(e.code) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
    Ok((basedir.starts_with("/rdsdbbin") || !rds_vars.is_empty()).then_some(Managed::Rds))
}

/// RDS's `binlog retention hours` (`CALL mysql.rds_show_configuration`): `Ok(None)`
/// when it is NULL (binlogs purged as soon as possible), `Err` when it cannot be read.
async fn rds_retention_hours(conn: &mut Conn) -> Result<Option<f64>, String> {
    let rows: Vec<mysql_async::Row> = conn.query("CALL mysql.rds_show_configuration").await.map_err(|e| e.to_string())?;
    for row in rows {
        let name: Option<String> = row.get::<Option<String>, _>(0).flatten();
        if name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case("binlog retention hours")) {
            let value: Option<String> = row.get::<Option<String>, _>(1).flatten();
            return Ok(value.and_then(|v| v.trim().parse().ok()));
        }
    }
    Err("mysql.rds_show_configuration has no 'binlog retention hours' row".into())
}

const RDS_RETENTION_FIX: &str =
    "CALL mysql.rds_set_configuration('binlog retention hours', 168); (RDS/Aurora keep binlogs only as long as \
     this says, whatever binlog_expire_logs_seconds is; NULL, the default, purges them within minutes; 168 h = 7 days covers an \
     initial load and a pause)";

/// The binlog retention check. `secs`/`days`: `binlog_expire_logs_seconds` /
/// `expire_logs_days` (0 or absent = never). On RDS/Aurora `rds_hours` is what
/// `mysql.rds_show_configuration` said (`Err`: it could not be read).
pub fn retention_check(managed: Option<Managed>, rds_hours: Result<Option<f64>, String>, secs: u64, days: f64) -> Check {
    const NAME: &str = "binlog_retention";
    if managed == Some(Managed::Rds) {
        return match rds_hours {
            Ok(Some(h)) if h >= 24.0 => check(NAME, true, format!("RDS/Aurora: binlog retention hours = {h}"), ""),
            Ok(Some(h)) => check(NAME, false, format!("RDS/Aurora: binlog retention hours = {h} (less than 24 h)"), RDS_RETENTION_FIX),
            Ok(None) => check(NAME, false, "RDS/Aurora: binlog retention hours is NULL (binlogs purged within minutes)", RDS_RETENTION_FIX),
            Err(e) => warn(
                NAME,
                format!("RDS/Aurora: binlog retention could not be read ({e})"),
                format!("make sure it is at least 24 h: {RDS_RETENTION_FIX}"),
            ),
        };
    }
    let retention = if secs > 0 {
        Some(secs as f64)
    } else if days > 0.0 {
        Some(days * 86400.0)
    } else {
        None
    };
    check(
        NAME,
        retention.is_none_or(|r| r >= 86400.0),
        match retention {
            Some(r) => format!("binlogs kept {:.1} h", r / 3600.0),
            None => "binlogs never expire".to_string(),
        },
        "SET PERSIST binlog_expire_logs_seconds = 604800; (MariaDB: SET GLOBAL binlog_expire_logs_seconds = 604800 and add it to my.cnf); \
         a purged binlog forces a resync",
    )
}

/// `binlog_row_metadata`: FULL passes; MINIMAL fails (row events then carry no
/// column names, so a column added or dropped without Sluice seeing the DDL maps
/// values onto the wrong columns); absent (a server before MySQL 8.0.14 /
/// MariaDB 10.5, or hidden) is a warning.
pub fn row_metadata_check(v: Option<&str>) -> Check {
    let fix = "SET PERSIST binlog_row_metadata = 'FULL'; (MariaDB: SET GLOBAL binlog_row_metadata = 'FULL' and add it to my.cnf); \
               existing sessions keep the old value until they reconnect";
    match v {
        Some(v) if v.eq_ignore_ascii_case("FULL") => check("binlog_row_metadata", true, "binlog_row_metadata=FULL", ""),
        Some(v) => check(
            "binlog_row_metadata",
            false,
            format!("binlog_row_metadata={v}: row events carry no column names, so rows cannot be matched to columns by name"),
            fix,
        ),
        None => warn(
            "binlog_row_metadata",
            "binlog_row_metadata is not visible (server older than MySQL 8.0.14 / MariaDB 10.5, or hidden)",
            "without FULL row metadata, rows are matched to columns by position only: every schema change must be made while the \
             pipe runs (so Sluice follows it); on a newer server set binlog_row_metadata = 'FULL'",
        ),
    }
}

/// `binlog_row_image`: FULL passes; MINIMAL/NOBLOB (and MariaDB's FULL_NODUP)
/// leave columns out of row images, so updated rows could not be rebuilt.
pub fn row_image_check(v: Option<&str>) -> Check {
    let fix = "SET PERSIST binlog_row_image = 'FULL'; (MariaDB: SET GLOBAL binlog_row_image = 'FULL' and add it to my.cnf); \
               existing sessions keep the old value until they reconnect";
    match v {
        Some(v) if v.eq_ignore_ascii_case("FULL") => check("binlog_row_image", true, "binlog_row_image=FULL", ""),
        Some(v) => check(
            "binlog_row_image",
            false,
            format!("binlog_row_image={v}: updates and deletes would carry only some columns, so rows could not be rebuilt"),
            fix,
        ),
        None => warn("binlog_row_image", "binlog_row_image is not visible", format!("make sure it is FULL: {fix}")),
    }
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
        ReplicationMechanism::Auto if matches!(info.gtid_mode_text.as_deref(), Some("ON_PERMISSIVE" | "OFF_PERMISSIVE")) => warn(
            "replication_mechanism",
            format!(
                "auto: resumes by file/position; gtid_mode is {} (a transition): the source may write transactions with and \
                 without GTIDs, and a pipe that was following it by GTIDs stops at the first one without",
                info.gtid_mode_text.as_deref().unwrap_or_default()
            ),
            "finish the transition (SET PERSIST gtid_mode = ON, or OFF), or use replication_mechanism file_pos",
        ),
        ReplicationMechanism::Auto => {
            check("replication_mechanism", true, "auto: resumes by file/position (GTIDs off; a move to another server needs a resync)", "")
        }
    }
}

/// How the source is reached when `source.ssh` is set (the tunnel is up by
/// the time any check runs): a warning when host keys are not checked.
pub fn ssh_tunnel(source: &sluice_core::spec::SourceSpec) -> Option<Check> {
    let ssh = source.ssh.as_ref()?;
    let through = format!("through {}@{}:{} to {}:{}", ssh.user, ssh.host, ssh.port, source.host, source.port);
    Some(if ssh.insecure_skip_host_key_check {
        warn(
            "ssh_tunnel",
            format!("{through}; the SSH server's host key is NOT checked"),
            "set source.ssh.known_host_key (ssh-keyscan prints it) and drop insecure_skip_host_key_check: without it a man in the \
             middle can read the source's data",
        )
    } else {
        check("ssh_tunnel", true, format!("{through}; host key checked"), "")
    })
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
    let format = var(conn, "binlog_format").await?;
    out.push(match format.as_deref() {
        Some(v) => check(
            "binlog_format",
            v.eq_ignore_ascii_case("ROW"),
            format!("binlog_format={v}"),
            "SET PERSIST binlog_format = 'ROW'; (MariaDB: SET GLOBAL binlog_format = 'ROW' and add it to my.cnf); existing sessions keep \
             the old value until they reconnect",
        ),
        None => warn("binlog_format", "binlog_format is not visible", "make sure it is ROW"),
    });
    out.push(row_image_check(var(conn, "binlog_row_image").await?.as_deref()));
    out.push(row_metadata_check(var(conn, "binlog_row_metadata").await?.as_deref()));
    if info.flavor == Flavor::MySql {
        let opts = var(conn, "binlog_row_value_options").await?.unwrap_or_default();
        out.push(check(
            "binlog_row_value_options",
            opts.is_empty(),
            if opts.is_empty() {
                "binlog_row_value_options=''".to_string()
            } else {
                format!("binlog_row_value_options={opts}: JSON updates would be logged as partial diffs")
            },
            "SET PERSIST binlog_row_value_options = ''; (PARTIAL_JSON updates cannot be applied without the old document)",
        ));
        if let Some(c) = var(conn, "binlog_transaction_compression").await? {
            let on = c.eq_ignore_ascii_case("ON") || c == "1";
            out.push(check(
                "binlog_transaction_compression",
                true,
                if on {
                    "binlog_transaction_compression=ON: compressed transactions are decompressed by the reader".to_string()
                } else {
                    format!("binlog_transaction_compression={c}")
                },
                "",
            ));
        }
    } else if let Some(c) = var(conn, "log_bin_compress").await? {
        // MariaDB's compressed events (QUERY_COMPRESSED, *_ROWS_COMPRESSED) are not decoded.
        let on = c.eq_ignore_ascii_case("ON") || c == "1";
        out.push(check(
            "log_bin_compress",
            !on,
            format!("log_bin_compress={c}{}", if on { ": MariaDB writes compressed row events, which Sluice cannot read" } else { "" }),
            "SET GLOBAL log_bin_compress = OFF; and remove log_bin_compress from my.cnf (compressed events written before that \
             cannot be read: start the pipe, or resync, after the change)",
        ));
    }
    // Retention: the binlog must outlive an initial load and a pause (24 h at least).
    let secs: u64 = var(conn, "binlog_expire_logs_seconds").await?.and_then(|v| v.parse().ok()).unwrap_or(0);
    let days: f64 = var(conn, "expire_logs_days").await?.and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let managed = managed(conn).await?;
    let rds_hours = match managed {
        Some(Managed::Rds) => rds_retention_hours(conn).await,
        None => Err(String::new()),
    };
    out.push(retention_check(managed, rds_hours, secs, days));
    if let Some(v) = var(conn, "lower_case_table_names").await? {
        out.push(if v == "0" {
            check("lower_case_table_names", true, "lower_case_table_names=0 (names are case-sensitive)", "")
        } else {
            warn(
                "lower_case_table_names",
                format!("lower_case_table_names={v}: table names are case-insensitive"),
                "spell table names in DDL as they are defined: DDL that names a replicated table in another case is not recognised \
                 (it is recorded, not followed; resync the table after such a change)",
            )
        });
    }
    // A source that is itself a replica must write what it replicates to its own binlog.
    let replica_status = match info.flavor {
        Flavor::MySql => "SHOW REPLICA STATUS",
        Flavor::MariaDb => "SHOW SLAVE STATUS",
    };
    let is_replica = match conn.query_first::<mysql_async::Row, _>(replica_status).await {
        Ok(row) => Some(row.is_some()),
        Err(mysql_async::Error::Server(e)) if is_denied(e.code) => None,
        Err(e) => return Err(e.into()),
    };
    if is_replica.is_none() {
        let (grant, var) = match info.flavor {
            Flavor::MySql => ("REPLICATION CLIENT", "log_replica_updates"),
            Flavor::MariaDb => ("SLAVE MONITOR", "log_slave_updates"),
        };
        out.push(warn(
            "replica",
            format!("cannot tell whether the source is a replica ({replica_status} needs {grant})"),
            format!("if the source is a replica, make sure {var} is ON, or changes it replicates never reach its binlog"),
        ));
    }
    if is_replica == Some(true) {
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
    let grants: Vec<String> = match conn.query("SHOW GRANTS").await {
        Ok(g) => g,
        Err(mysql_async::Error::Server(e)) if is_denied(e.code) => {
            out.push(warn("grants", "SHOW GRANTS is not allowed", "the user needs SELECT, REPLICATION CLIENT, REPLICATION SLAVE"));
            return Ok(out);
        }
        Err(e) => return Err(e.into()),
    };
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
    for c in checks.iter().filter(|c| c.ok && c.warning) {
        tracing::warn!("source check {}: {}; {}", c.name, c.found, c.fix);
    }
    let failed: Vec<String> = checks.iter().filter(|c| !c.ok).map(|c| format!("{} (found {}): fix: {}", c.name, c.found, c.fix)).collect();
    if failed.is_empty() {
        Ok(checks)
    } else {
        Err(SourceError::Config(format!("source is not ready for CDC: {}", failed.join("; "))))
    }
}

/// Checks that every table the spec names exists and has a usable key (and a
/// usable `partition_key` where one is given). A table without a key fails when
/// named and is a warning when a `schema.*` entry matches it (the pipe skips
/// it); a declared `key_columns` fails with a NULL in it and warns on duplicates.
/// On MariaDB 11.x, generated columns the pipe does not exclude are a warning
/// (`generated_columns_check`).
pub async fn tables(conn: &mut Conn, info: &ServerInfo, specs: &[sluice_core::TableSpec]) -> Result<Vec<Check>, SourceError> {
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
        let spec = &specs[e.index];
        let options = spec.options();
        if options.keyless_refusal(&t).is_some() {
            let entry = format!("{}.{}", t.id.schema, t.id.table);
            let fix = format!(
                "add an entry {{\"source\": \"{entry}\", \"key_columns\": [...]}} (columns that identify a row), or \
                 {{\"source\": \"{entry}\", \"engine\": \"merge_tree\"}} (a change log); or ALTER TABLE {id} ADD PRIMARY KEY (...)"
            );
            let found = "no primary key and no unique key on NOT NULL columns; the default engine (replacing) needs a key";
            if e.named {
                out.push(check(&name, false, found, fix));
            } else {
                out.push(warn(&name, format!("{found}: skipped by the pipe ({} matches it)", spec.source), fix));
            }
            continue;
        }
        if let Some(w) = generated_columns_check(info, &t, &options.exclude_columns) {
            out.push(w);
        }
        if let Err(err) = options.check(&t, spec.partition_key.as_deref(), e.index) {
            out.push(check(&name, false, err, "fix the table's options in the spec"));
            continue;
        }
        if let Some(pk) = &spec.partition_key {
            if let Err(SourceError::Config(msg)) = crate::discovery::check_partition_key(conn, &t, pk).await {
                out.push(check(&name, false, msg, format!("CREATE INDEX ... ON {id} ({pk}); or choose another partition_key")));
                continue;
            }
        }
        if t.primary_key.is_empty() {
            let Some(key) = &spec.key_columns else {
                let engine = if options.engine == sluice_core::types::TableEngine::Null { "null" } else { "merge_tree" };
                out.push(check(&name, true, format!("no key: engine {engine} keeps every change as a row"), ""));
                continue;
            };
            if let Some((column, rows)) = crate::discovery::null_in_key(conn, &t, key).await? {
                out.push(check(
                    &name,
                    false,
                    format!("key_columns ({}): column {column:?} holds NULL in {rows} row(s)", key.join(", ")),
                    "choose NOT NULL key_columns, or fill the NULLs (and make the column NOT NULL) on the source",
                ));
                continue;
            }
            match crate::discovery::duplicate_keys(conn, &t, key).await? {
                Some((n, example)) => out.push(warn(
                    &name,
                    format!("key_columns ({}): {n} value(s) occur in more than one row, e.g. ({example})", key.join(", ")),
                    "rows sharing a key value collapse into one in ClickHouse (FINAL keeps the last change); \
                     declare key_columns that identify every row",
                )),
                None => out.push(check(&name, true, format!("declared key ({}), no NULL, no duplicates", key.join(", ")), "")),
            }
            continue;
        }
        out.push(check(&name, true, format!("key ({})", t.primary_key.join(", ")), ""));
    }
    Ok(out)
}

/// MariaDB 11.x leaves generated columns out of UPDATE and DELETE row images
/// even with `binlog_row_image=FULL`, so a table that replicates one goes to
/// `Error` at its first update: warn before, naming the columns and the fix.
pub fn generated_columns_check(info: &ServerInfo, t: &sluice_core::schema::SourceTable, excluded: &[String]) -> Option<Check> {
    let major: u32 = info.version.split('.').next().and_then(|m| m.trim().parse().ok()).unwrap_or(0);
    if info.flavor != Flavor::MariaDb || major < 11 {
        return None;
    }
    let generated: Vec<&str> = t
        .columns
        .iter()
        .filter(|c| c.extra.to_ascii_uppercase().contains("GENERATED") && !excluded.contains(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    if generated.is_empty() {
        return None;
    }
    let id = format!("{}.{}", t.id.schema, t.id.table);
    Some(warn(
        &format!("table {id} generated columns"),
        format!(
            "generated column(s) {}: MariaDB {} leaves them out of UPDATE and DELETE row images, so the table would go to \
             Error at its first update",
            generated.join(", "),
            info.version
        ),
        format!(
            "add {} to the table's exclude_columns ({{\"source\": \"{id}\", \"exclude_columns\": [...]}}) and compute them in \
             ClickHouse (e.g. an ALIAS or MATERIALIZED column)",
            generated.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_columns_warn_on_mariadb_11_only() {
        let mut t: sluice_core::schema::SourceTable = serde_json::from_value(serde_json::json!({
            "id": {"schema": "s", "table": "t"},
            "columns": [],
            "primary_key": ["id"]
        }))
        .unwrap();
        let col = |name: &str, extra: &str| {
            serde_json::from_value::<sluice_core::schema::SourceColumn>(serde_json::json!({
                "name": name, "ordinal": 1, "data_type": "int", "column_type": "int", "nullable": true,
                "numeric_precision": null, "numeric_scale": null, "datetime_precision": null, "charset": null, "extra": extra
            }))
            .unwrap()
        };
        t.columns = vec![col("id", ""), col("v", "VIRTUAL GENERATED"), col("s", "STORED GENERATED")];
        let info = |flavor, version: &str| ServerInfo { flavor, version: version.into(), gtid_mode: true, gtid_mode_text: None };
        let w = generated_columns_check(&info(Flavor::MariaDb, "11.8.3-MariaDB-1"), &t, &[]).unwrap();
        assert!(w.ok && w.warning && w.found.contains("v, s") && w.fix.contains("exclude_columns"), "{w:?}");
        let w = generated_columns_check(&info(Flavor::MariaDb, "11.8.3-MariaDB-1"), &t, &["v".into()]).unwrap();
        assert!(w.found.contains("column(s) s:") && !w.found.contains("v,"), "{w:?}");
        assert!(generated_columns_check(&info(Flavor::MariaDb, "11.8.3-MariaDB-1"), &t, &["v".into(), "s".into()]).is_none());
        assert!(generated_columns_check(&info(Flavor::MariaDb, "10.11.14-MariaDB"), &t, &[]).is_none());
        assert!(generated_columns_check(&info(Flavor::MySql, "9.7.0"), &t, &[]).is_none());
    }

    #[test]
    fn rds_retention_prints_the_rds_fix() {
        let c = retention_check(Some(Managed::Rds), Ok(None), 2_592_000, 0.0);
        assert!(!c.ok && c.fix.contains("CALL mysql.rds_set_configuration('binlog retention hours', 168)"), "{c:?}");
        let c = retention_check(Some(Managed::Rds), Ok(Some(12.0)), 0, 0.0);
        assert!(!c.ok && c.found.contains("12"), "{c:?}");
        assert!(retention_check(Some(Managed::Rds), Ok(Some(168.0)), 0, 0.0).ok);
        let c = retention_check(Some(Managed::Rds), Err("denied".into()), 0, 0.0);
        assert!(c.ok && c.warning && c.fix.contains("rds_set_configuration"), "{c:?}");
        assert!(!retention_check(None, Err(String::new()), 3600, 0.0).ok);
        assert!(retention_check(None, Err(String::new()), 0, 0.0).ok);
        assert!(retention_check(None, Err(String::new()), 0, 7.0).ok);
    }

    #[test]
    fn a_gtid_mode_transition_is_a_warning_naming_it() {
        use crate::conn::Flavor;
        let info = |text: &str| ServerInfo {
            flavor: Flavor::MySql,
            version: "9.7.0".into(),
            gtid_mode: text == "ON",
            gtid_mode_text: Some(text.into()),
        };
        for mode in ["ON_PERMISSIVE", "OFF_PERMISSIVE"] {
            let c = replication(&info(mode), ReplicationMechanism::Auto);
            assert!(c.ok && c.warning && c.found.contains(mode) && c.fix.contains("gtid_mode = ON"), "{c:?}");
            let c = replication(&info(mode), ReplicationMechanism::Gtid);
            assert!(!c.ok && c.fix.contains("gtid_mode"), "{c:?}");
        }
        assert_eq!(replication(&info("ON"), ReplicationMechanism::Auto).verdict(), "PASS");
        assert_eq!(replication(&info("OFF"), ReplicationMechanism::Auto).verdict(), "PASS");
    }

    #[test]
    fn hostile_row_settings_fail_with_their_fix() {
        for v in ["MINIMAL", "NOBLOB", "FULL_NODUP"] {
            let c = row_image_check(Some(v));
            assert!(!c.ok && c.found.contains(v) && c.fix.contains("binlog_row_image = 'FULL'"), "{c:?}");
        }
        assert!(row_image_check(Some("full")).ok);
        let c = row_metadata_check(Some("MINIMAL"));
        assert!(!c.ok && c.fix.contains("binlog_row_metadata = 'FULL'"), "{c:?}");
        let c = row_metadata_check(None);
        assert!(c.ok && c.warning && c.verdict() == "WARN", "{c:?}");
        assert_eq!(row_metadata_check(Some("FULL")).verdict(), "PASS");
    }
}
