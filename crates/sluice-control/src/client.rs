//! `sluice pipe ...`: the CLI client of the REST API. Human-readable tables by
//! default, `--json` for scripts. The token comes from `SLUICE_API_TOKEN` or
//! the data dir's `api-token` file.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::Value;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum PipeCommand {
    /// Create a pipe from a spec file.
    Create {
        #[arg(short = 'f', long)]
        file: PathBuf,
    },
    /// List pipes.
    List,
    /// Show one pipe (state, tables, checkpoint, lag).
    Show {
        name: String,
        /// Refresh every second until interrupted.
        #[arg(long)]
        watch: bool,
    },
    /// Pause a pipe (flushes and checkpoints the batch in flight).
    Pause { name: String },
    /// Resume a paused pipe.
    Resume { name: String },
    /// Show a pipe's settings, or change them on the live pipe (no restart needed).
    Settings {
        name: String,
        #[command(flatten)]
        set: Box<SettingsFlags>,
    },
    /// Change how a paused pipe reaches its source (e.g. another server after a fail-over).
    SetSource {
        name: String,
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        port: Option<u16>,
        #[arg(long)]
        user: Option<String>,
        /// Name of an environment variable holding the new password.
        #[arg(long)]
        password_env: Option<String>,
        #[arg(long)]
        server_id: Option<u32>,
        /// auto, gtid or file_pos.
        #[arg(long)]
        replication_mechanism: Option<String>,
        /// `schema.table` to write heartbeats to ("" to stop).
        #[arg(long)]
        heartbeat_table: Option<String>,
        #[command(flatten)]
        ssh: Box<SshFlags>,
    },
    /// List a pipe's state transitions and table/schema changes.
    Events { name: String },
    /// Copy tables again into `<table>_resync` and swap them in (all tables unless --table).
    Resync {
        name: String,
        /// A table to resync (destination name or schema.table); repeatable.
        #[arg(long = "table")]
        tables: Vec<String>,
    },
    /// Add tables to a running or paused pipe.
    AddTables {
        name: String,
        /// `schema.table`, `schema.*`, or `schema.table=destination`; repeatable.
        #[arg(long = "table", required = true)]
        tables: Vec<String>,
    },
    /// Remove a table (destination name or schema.table) from a pipe.
    RemoveTable {
        name: String,
        table: String,
        /// Also drop the destination table.
        #[arg(long)]
        drop: bool,
    },
    /// Delete a pipe (destination tables are kept unless --drop-tables).
    Delete {
        name: String,
        /// Also drop the pipe's ClickHouse tables (asks to type the pipe's name unless --yes).
        #[arg(long)]
        drop_tables: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(server: &str, token: Option<String>, data_dir: Option<PathBuf>) -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let token = match token.or_else(|| std::env::var("SLUICE_API_TOKEN").ok()) {
            Some(t) => t,
            None => {
                let path = data_dir.unwrap_or_else(|| PathBuf::from("./sluice-data")).join("api-token");
                std::fs::read_to_string(&path)
                    .with_context(|| format!("no API token: set SLUICE_API_TOKEN or pass --data-dir (tried {})", path.display()))?
                    .trim()
                    .to_string()
            }
        };
        Ok(Self { http: reqwest::Client::builder().build()?, base: server.trim_end_matches('/').to_string(), token })
    }

    pub(crate) async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.with_context(|| format!("cannot reach the sluice server at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await?;
        let value: Value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if !status.is_success() {
            let msg = value.get("error").and_then(|e| e.as_str()).map(str::to_string).unwrap_or_else(|| value.to_string());
            bail!("{} {}: {msg}", status.as_u16(), status.canonical_reason().unwrap_or(""));
        }
        Ok(value)
    }

    pub async fn run(&self, cmd: PipeCommand, json: bool) -> Result<()> {
        use reqwest::Method;
        let out = match cmd {
            PipeCommand::Create { file } => {
                let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
                let spec: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
                self.call(Method::POST, "/v1/pipes", Some(spec)).await?
            }
            PipeCommand::List => self.call(Method::GET, "/v1/pipes", None).await?,
            PipeCommand::Show { name, watch } => {
                if watch && !json {
                    let mut last: Option<(f64, std::time::Instant)> = None;
                    loop {
                        let v = self.call(Method::GET, &format!("/v1/pipes/{name}"), None).await?;
                        print!("\x1b[2J\x1b[H");
                        print_pipe(&v);
                        // Live CDC throughput from the change counter between refreshes.
                        let applied = v.get("changes_applied").and_then(|c| c.as_f64()).unwrap_or(0.0);
                        if let Some((prev, at)) = last {
                            println!("throughput {:.0} changes/s", (applied - prev).max(0.0) / at.elapsed().as_secs_f64());
                        }
                        last = Some((applied, std::time::Instant::now()));
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
                self.call(Method::GET, &format!("/v1/pipes/{name}"), None).await?
            }
            PipeCommand::Pause { name } => self.call(Method::POST, &format!("/v1/pipes/{name}/pause"), None).await?,
            PipeCommand::Resume { name } => self.call(Method::POST, &format!("/v1/pipes/{name}/resume"), None).await?,
            PipeCommand::Settings { name, set } => {
                let body = set.patch();
                if body.is_empty() {
                    let v = self.call(Method::GET, &format!("/v1/pipes/{name}"), None).await?;
                    let settings = v.get("spec").and_then(|s| s.get("settings")).or_else(|| v.get("settings")).cloned();
                    let settings = settings.context("the server's answer has no settings")?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&settings)?);
                    } else {
                        print_settings(&settings);
                    }
                    return Ok(());
                }
                self.call(Method::PATCH, &format!("/v1/pipes/{name}/settings"), Some(Value::Object(body))).await?
            }
            PipeCommand::SetSource { name, host, port, user, password_env, server_id, replication_mechanism, heartbeat_table, ssh } => {
                let mut body = serde_json::Map::new();
                let password = match password_env {
                    Some(var) => Some(std::env::var(&var).with_context(|| format!("environment variable {var} is not set"))?),
                    None => None,
                };
                let fields: [(&str, Option<Value>); 7] = [
                    ("host", host.map(Value::from)),
                    ("port", port.map(Value::from)),
                    ("user", user.map(Value::from)),
                    ("password", password.map(Value::from)),
                    ("server_id", server_id.map(Value::from)),
                    ("replication_mechanism", replication_mechanism.map(Value::from)),
                    ("heartbeat_table", heartbeat_table.map(Value::from)),
                ];
                for (k, v) in fields {
                    if let Some(v) = v {
                        body.insert(k.into(), v);
                    }
                }
                if let Some(v) = ssh.patch()? {
                    body.insert("ssh".into(), v);
                }
                if body.is_empty() {
                    bail!(
                        "nothing to change: give at least one of --host, --port, --user, --password-env, --server-id, \
                         --replication-mechanism, --heartbeat-table, --ssh-host, --ssh-port, --ssh-user, --ssh-private-key-file, \
                         --ssh-password-env, --ssh-known-host-key, --no-ssh"
                    );
                }
                self.call(Method::PATCH, &format!("/v1/pipes/{name}/source"), Some(Value::Object(body))).await?
            }
            PipeCommand::Events { name } => self.call(Method::GET, &format!("/v1/pipes/{name}/events"), None).await?,
            PipeCommand::Resync { name, tables } => {
                self.call(Method::POST, &format!("/v1/pipes/{name}/resync"), Some(serde_json::json!({ "tables": tables }))).await?
            }
            PipeCommand::AddTables { name, tables } => {
                let entries: Vec<Value> = tables
                    .iter()
                    .map(|t| match t.split_once('=') {
                        Some((src, dest)) => serde_json::json!({"source": src, "destination": dest}),
                        None => serde_json::json!({ "source": t }),
                    })
                    .collect();
                self.call(Method::POST, &format!("/v1/pipes/{name}/tables"), Some(serde_json::json!({ "tables": entries }))).await?
            }
            PipeCommand::RemoveTable { name, table, drop } => {
                let t = url::form_urlencoded::byte_serialize(table.as_bytes()).collect::<String>().replace('+', "%20");
                self.call(Method::DELETE, &format!("/v1/pipes/{name}/tables/{t}?drop={drop}"), None).await?
            }
            PipeCommand::Delete { name, drop_tables, yes } => {
                if drop_tables && !yes {
                    confirm_drop(&name)?;
                }
                self.call(Method::DELETE, &format!("/v1/pipes/{name}?drop_tables={drop_tables}"), None).await?;
                serde_json::json!({"deleted": name})
            }
        };
        if json {
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            print_human(&out);
        }
        Ok(())
    }
}

impl Client {
    /// `sluice verify`: starts a verification run, polls it until it ends and
    /// prints a per-table summary and the differing keys (or the run as JSON).
    /// Returns whether the pipe verified clean (no differing row, no error).
    pub async fn verify(&self, name: &str, tables: &[String], repair: bool, json: bool) -> Result<bool> {
        use reqwest::Method;
        let started = self
            .call(Method::POST, &format!("/v1/pipes/{name}/verify"), Some(serde_json::json!({"tables": tables, "repair": repair})))
            .await?;
        let id = started.get("id").and_then(Value::as_i64).context("the server did not return a verification id")?;
        if !json {
            eprintln!("verification #{id} of pipe {name} started{}", if repair { " (with repair)" } else { "" });
        }
        let mut shown = String::new();
        let run = loop {
            let v = self.call(Method::GET, &format!("/v1/pipes/{name}/verifications/{id}"), None).await?;
            if s(&v, "state") != "running" {
                break v;
            }
            if !json {
                let line = progress_line(&v);
                if line != shown {
                    eprintln!("{line}");
                    shown = line;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        if json {
            println!("{}", serde_json::to_string_pretty(&run)?);
        } else {
            print_verification(&run);
        }
        Ok(run.get("clean").and_then(Value::as_bool).unwrap_or(false))
    }
}

fn progress_line(v: &Value) -> String {
    let tables = v.get("tables").and_then(Value::as_array).cloned().unwrap_or_default();
    let parts: Vec<String> = tables
        .iter()
        .filter(|t| s(t, "state") != "pending")
        .map(|t| format!("{} {} ({} ranges)", s(t, "destination"), s(t, "state"), s(t, "ranges_checked")))
        .collect();
    format!("  {}", parts.join(", "))
}

/// The result of a verification run, one block per table.
pub fn print_verification(v: &Value) {
    println!(
        "verification #{} of {}: {}{}",
        s(v, "id"),
        s(v, "pipe"),
        s(v, "state"),
        match v.get("error") {
            Some(Value::String(e)) => format!(" ({e})"),
            _ => String::new(),
        }
    );
    for t in v.get("tables").and_then(Value::as_array).cloned().unwrap_or_default() {
        let differing = t.get("rows_differing").and_then(Value::as_u64).unwrap_or(0);
        println!(
            "{:<28} {:<7} rows {:>10}  ranges {:>6}  differing {}{}",
            s(&t, "destination"),
            s(&t, "state"),
            s(&t, "rows_compared"),
            s(&t, "ranges_checked"),
            differing,
            match t.get("rows_repaired").and_then(Value::as_u64) {
                Some(n) if n > 0 => format!("  repaired {n}"),
                _ => String::new(),
            }
        );
        let fetched: Vec<String> = t
            .get("fetched_columns")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if !fetched.is_empty() {
            println!("    compared by fetching: {}", fetched.join(", "));
        }
        if let Some(Value::String(e)) = t.get("error") {
            println!("    error: {e}");
        }
        for d in t.get("differences").and_then(Value::as_array).cloned().unwrap_or_default() {
            let cols: Vec<String> = d
                .get("columns")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            println!(
                "    {:<8} {}{}",
                s(&d, "kind"),
                s(&d, "key"),
                if cols.is_empty() { String::new() } else { format!("  ({})", cols.join(", ")) }
            );
        }
        if t.get("differences_capped").and_then(Value::as_bool) == Some(true) {
            println!("    ... more rows differ than are listed ({differing} in all)");
        }
    }
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn print_pipe(v: &Value) {
    println!("pipe     {}\nstate    {}\nmode     {}", s(v, "name"), s(v, "state"), s(v, "mode"));
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        println!("error    {e}");
    }
    if let Some(w) = v.get("warning").and_then(|e| e.as_str()) {
        println!("warning  {w}");
    }
    let (errors, total) = table_counts(v);
    if errors > 0 {
        println!("DEGRADED {errors} of {total} tables in Error (not replicated until resynced; see below)");
    }
    if let Some(cp) = v.get("checkpoint").filter(|c| !c.is_null()) {
        println!("position {}:{}  gtid {}", s(cp, "binlog_file"), s(cp, "binlog_pos"), s(cp, "gtid_set"));
    }
    println!("lag      {}   changes applied {}", lag(v), s(v, "changes_applied"));
    println!("{:<40} {:<30} {:<12} {:>12} {:>12}", "SOURCE", "DESTINATION", "STATE", "ROWS COPIED", "ESTIMATED");
    for t in v.get("tables").and_then(|t| t.as_array()).into_iter().flatten() {
        println!(
            "{:<40} {:<30} {:<12} {:>12} {:>12}",
            s(t, "source"),
            s(t, "destination"),
            s(t, "state"),
            s(t, "rows_copied"),
            s(t, "rows_estimated")
        );
        if let Some(line) = copy_progress(t) {
            println!("  {line}");
        }
        if let Some(e) = t.get("error").and_then(|e| e.as_str()) {
            println!("  error: {e}");
        }
    }
}

/// The pipe's lag for people: one decimal, or `-` before CDC ran.
fn lag(p: &Value) -> String {
    match p.get("lag_seconds").and_then(Value::as_f64) {
        Some(l) => format!("{l:.1}s"),
        None => "-".into(),
    }
}

/// (tables in `Error`, all tables) of a pipe view.
fn table_counts(p: &Value) -> (usize, usize) {
    let tables = p.get("tables").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    (tables.iter().filter(|t| s(t, "state") == "Error").count(), tables.len())
}

/// `5` or `4 ok, 1 error` for the pipe list.
fn tables_summary(p: &Value) -> String {
    match table_counts(p) {
        (0, n) => n.to_string(),
        (e, n) => format!("{} ok, {e} error", n - e),
    }
}

/// What is wrong with a pipe, for the pipe list: its error, else its warning, else its first table error.
fn problem(p: &Value) -> Option<String> {
    let first = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    first("error").or_else(|| first("warning")).or_else(|| {
        let tables = p.get("tables").and_then(Value::as_array)?;
        let t = tables.iter().find(|t| s(t, "state") == "Error")?;
        Some(format!("DEGRADED: {}: {}", s(t, "destination"), t.get("error").and_then(Value::as_str).unwrap_or("in Error")))
    })
}

/// `[=====>    ]  45%  12345/27000 rows  5100 rows/s  ETA 3s  partitions 4/10` for a table being copied.
fn copy_progress(t: &Value) -> Option<String> {
    let n = |k: &str| t.get(k).and_then(|x| x.as_f64());
    if t.get("snapshot_done").and_then(|d| d.as_bool()) != Some(false) || n("partitions_total")? == 0.0 {
        return None;
    }
    let (copied, est) = (n("rows_copied")?, n("rows_estimated")?.max(n("rows_copied")?).max(1.0));
    let frac = (copied / est).clamp(0.0, 1.0);
    let width = 30;
    let filled = (frac * width as f64) as usize;
    let bar: String = "=".repeat(filled) + if filled < width { ">" } else { "" } + &" ".repeat(width.saturating_sub(filled + 1));
    let rate = n("rows_per_second").map(|r| format!("{r:.0} rows/s")).unwrap_or_else(|| "- rows/s".into());
    let eta = n("eta_seconds").map(|e| format!("ETA {e:.0}s")).unwrap_or_else(|| "ETA -".into());
    Some(format!(
        "[{bar}] {:>3.0}%  {copied:.0}/{est:.0} rows  {rate}  {eta}  partitions {}/{}",
        frac * 100.0,
        s(t, "partitions_done"),
        s(t, "partitions_total")
    ))
}

fn print_human(v: &Value) {
    match v {
        Value::Array(items) if items.first().is_some_and(|i| i.get("to_state").is_some()) => {
            for e in items {
                println!("{}  {:>12} → {:<12} {}", s(e, "at"), s(e, "from_state"), s(e, "to_state"), s(e, "reason"));
            }
        }
        Value::Array(items) => {
            println!("{:<24} {:<12} {:<18} {:>8} {:<16} PROBLEM", "NAME", "STATE", "MODE", "LAG", "TABLES");
            for p in items {
                println!(
                    "{:<24} {:<12} {:<18} {:>8} {:<16} {}",
                    s(p, "name"),
                    s(p, "state"),
                    s(p, "mode"),
                    lag(p),
                    tables_summary(p),
                    problem(p).unwrap_or_else(|| "-".into())
                );
            }
        }
        Value::Object(o) if o.contains_key("tables") => print_pipe(v),
        Value::Object(o) => {
            for (k, val) in o {
                println!(
                    "{k}: {}",
                    match val {
                        Value::String(x) => x.clone(),
                        other => other.to_string(),
                    }
                );
            }
        }
        other => println!("{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::copy_progress;
    use serde_json::json;

    #[test]
    fn copy_progress_line() {
        let t = json!({"snapshot_done": false, "rows_copied": 500, "rows_estimated": 1000, "partitions_done": 2,
                       "partitions_total": 4, "rows_per_second": 250.0, "eta_seconds": 2.0});
        let line = copy_progress(&t).unwrap();
        assert!(line.starts_with("[===============>"), "{line}");
        assert!(line.contains(" 50%  500/1000 rows  250 rows/s  ETA 2s  partitions 2/4"), "{line}");
        assert!(copy_progress(&json!({"snapshot_done": true, "partitions_total": 4})).is_none());
    }
}

/// `pipe set-source` flags that change the SSH tunnel (`source.ssh`).
#[derive(clap::Args, Debug, Default)]
pub struct SshFlags {
    /// SSH server (bastion) to tunnel through; with --ssh-user and a key or password, adds a tunnel.
    #[arg(long)]
    ssh_host: Option<String>,
    #[arg(long)]
    ssh_port: Option<u16>,
    #[arg(long)]
    ssh_user: Option<String>,
    /// File holding the SSH private key (PEM or OpenSSH, unencrypted).
    #[arg(long)]
    ssh_private_key_file: Option<std::path::PathBuf>,
    /// Name of an environment variable holding the SSH password.
    #[arg(long)]
    ssh_password_env: Option<String>,
    /// The server's host key as a known_hosts line (`ssh-ed25519 AAAA...`).
    #[arg(long)]
    ssh_known_host_key: Option<String>,
    /// Remove the tunnel: connect to the source directly.
    #[arg(long, conflicts_with_all = ["ssh_host", "ssh_port", "ssh_user", "ssh_private_key_file", "ssh_password_env", "ssh_known_host_key"])]
    no_ssh: bool,
}

impl SshFlags {
    /// The `ssh` member of the source patch, if any flag was given.
    fn patch(self) -> Result<Option<Value>> {
        if self.no_ssh {
            return Ok(Some(Value::Null));
        }
        let key = match &self.ssh_private_key_file {
            Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("reading the SSH private key {}", p.display()))?),
            None => None,
        };
        let password = match &self.ssh_password_env {
            Some(var) => Some(std::env::var(var).with_context(|| format!("environment variable {var} is not set"))?),
            None => None,
        };
        let fields: [(&str, Option<Value>); 6] = [
            ("host", self.ssh_host.map(Value::from)),
            ("port", self.ssh_port.map(Value::from)),
            ("user", self.ssh_user.map(Value::from)),
            ("private_key", key.map(Value::from)),
            ("password", password.map(Value::from)),
            ("known_host_key", self.ssh_known_host_key.map(Value::from)),
        ];
        let body: serde_json::Map<String, Value> = fields.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), v))).collect();
        Ok((!body.is_empty()).then_some(Value::Object(body)))
    }
}

/// The settings a live pipe can change, with what each does (`pipe settings`).
pub const SETTINGS: [(&str, &str); 9] = [
    ("sync_interval_ms", "least time between two CDC inserts into a table (a caught-up stream writes at once when that allows)"),
    ("pull_batch_size", "most row changes a CDC batch collects before it is written"),
    ("snapshot_rows_per_chunk", "rows read per snapshot query and written per snapshot insert"),
    ("rows_per_partition", "rows per snapshot partition (a range of the first key column)"),
    ("parallel_partitions", "partitions of one table read at once, each on its own source connection"),
    ("parallel_tables", "tables copied at once during a snapshot"),
    ("heartbeat_interval_ms", "how often the source heartbeat row is written (when source.heartbeat_table is set)"),
    ("verify_rows_per_second", "most source rows a verification scans per second"),
    ("verify_interval_hours", "hours between scheduled verifications (0: only on request)"),
];

/// `pipe settings` flags: each changes one setting of the live pipe.
#[derive(clap::Args, Debug, Default)]
pub struct SettingsFlags {
    /// Least time between two CDC inserts into one table, in ms (a caught-up stream writes at once when that allows).
    #[arg(long)]
    sync_interval_ms: Option<u64>,
    /// Most row changes a CDC batch collects before it is written.
    #[arg(long)]
    pull_batch_size: Option<u64>,
    /// Rows read per snapshot query and written per snapshot insert.
    #[arg(long)]
    snapshot_rows_per_chunk: Option<u64>,
    /// Rows per snapshot partition (a range of the first key column).
    #[arg(long)]
    rows_per_partition: Option<u64>,
    /// Partitions of one table read at once, each on its own source connection.
    #[arg(long)]
    parallel_partitions: Option<u64>,
    /// Tables copied at once during a snapshot.
    #[arg(long)]
    parallel_tables: Option<u64>,
    /// How often the source heartbeat row is written, in ms (when source.heartbeat_table is set).
    #[arg(long)]
    heartbeat_interval_ms: Option<u64>,
    /// Most source rows a verification scans per second.
    #[arg(long)]
    verify_rows_per_second: Option<u64>,
    /// Hours between scheduled verifications (0: only on request).
    #[arg(long)]
    verify_interval_hours: Option<u64>,
}

impl SettingsFlags {
    /// The `PATCH /settings` body: the flags given.
    fn patch(&self) -> serde_json::Map<String, Value> {
        let values = [
            self.sync_interval_ms,
            self.pull_batch_size,
            self.snapshot_rows_per_chunk,
            self.rows_per_partition,
            self.parallel_partitions,
            self.parallel_tables,
            self.heartbeat_interval_ms,
            self.verify_rows_per_second,
            self.verify_interval_hours,
        ];
        SETTINGS.iter().zip(values).filter_map(|((k, _), v)| v.map(|v| (k.to_string(), Value::from(v)))).collect()
    }
}

/// The settings, one per line with what each does.
fn print_settings(settings: &Value) {
    let width = SETTINGS.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, help) in SETTINGS {
        let v = settings.get(k).map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        println!("{k:width$}  {v:>10}  {help}");
    }
}

/// Asks on the terminal to type the pipe's name before its ClickHouse tables are dropped;
/// without a terminal, refuses (use `--yes`).
fn confirm_drop(name: &str) -> Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        bail!("refusing to drop the ClickHouse tables of pipe {name:?} without confirmation: add --yes");
    }
    eprint!("This deletes pipe {name:?} and DROPS its ClickHouse tables. Type the pipe's name to confirm: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != name {
        bail!("not confirmed; nothing was deleted");
    }
    Ok(())
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    #[test]
    fn every_live_setting_has_a_flag_and_a_description() {
        let names: Vec<String> =
            serde_json::to_value(sluice_core::spec::SyncSettings::default()).unwrap().as_object().unwrap().keys().cloned().collect();
        let mut listed: Vec<String> = SETTINGS.iter().map(|(k, _)| k.to_string()).collect();
        let mut names = names;
        names.sort();
        listed.sort();
        assert_eq!(names, listed);
        let all = SettingsFlags {
            sync_interval_ms: Some(1),
            pull_batch_size: Some(2),
            snapshot_rows_per_chunk: Some(3),
            rows_per_partition: Some(4),
            parallel_partitions: Some(5),
            parallel_tables: Some(6),
            heartbeat_interval_ms: Some(7),
            verify_rows_per_second: Some(8),
            verify_interval_hours: Some(9),
        };
        let patch = all.patch();
        assert_eq!(patch.len(), 9);
        assert_eq!(patch["parallel_tables"], 6);
        assert_eq!(patch["verify_interval_hours"], 9);
        // The body is a valid settings patch for the server.
        let _: crate::manager::SettingsPatch = serde_json::from_value(Value::Object(patch)).unwrap();
    }
}
