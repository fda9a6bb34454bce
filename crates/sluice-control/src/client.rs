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
    /// Change sync settings of a live pipe.
    Settings {
        name: String,
        #[arg(long)]
        sync_interval_ms: Option<u64>,
        #[arg(long)]
        pull_batch_size: Option<u64>,
        #[arg(long)]
        snapshot_rows_per_chunk: Option<u64>,
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
        #[arg(long)]
        drop_tables: bool,
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
            PipeCommand::Settings { name, sync_interval_ms, pull_batch_size, snapshot_rows_per_chunk } => {
                let mut body = serde_json::Map::new();
                for (k, v) in [
                    ("sync_interval_ms", sync_interval_ms),
                    ("pull_batch_size", pull_batch_size),
                    ("snapshot_rows_per_chunk", snapshot_rows_per_chunk),
                ] {
                    if let Some(v) = v {
                        body.insert(k.into(), v.into());
                    }
                }
                if body.is_empty() {
                    bail!("nothing to change: give --sync-interval-ms, --pull-batch-size or --snapshot-rows-per-chunk");
                }
                self.call(Method::PATCH, &format!("/v1/pipes/{name}/settings"), Some(Value::Object(body))).await?
            }
            PipeCommand::SetSource { name, host, port, user, password_env, server_id, replication_mechanism, heartbeat_table } => {
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
                if body.is_empty() {
                    bail!("nothing to change: give at least one of --host, --port, --user, --password-env, --server-id, --replication-mechanism, --heartbeat-table");
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
            PipeCommand::Delete { name, drop_tables } => {
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
    if let Some(cp) = v.get("checkpoint").filter(|c| !c.is_null()) {
        println!("position {}:{}  gtid {}", s(cp, "binlog_file"), s(cp, "binlog_pos"), s(cp, "gtid_set"));
    }
    println!("lag      {}s   changes applied {}", s(v, "lag_seconds"), s(v, "changes_applied"));
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
            println!("{:<24} {:<12} {:<18} {:>8} ERROR", "NAME", "STATE", "MODE", "LAG(s)");
            for p in items {
                println!("{:<24} {:<12} {:<18} {:>8} {}", s(p, "name"), s(p, "state"), s(p, "mode"), s(p, "lag_seconds"), s(p, "error"));
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
