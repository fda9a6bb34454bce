//! `sluice alerts ...`: show the alert configuration, set it from a JSON or
//! YAML file (global, or one pipe's rules with `--pipe`), and send a test
//! message to every channel.

use crate::client::Client;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum AlertsCommand {
    /// Show the channels and rules (secrets are never shown), or one pipe's rules.
    Show {
        /// Show this pipe's rules instead of the global configuration.
        #[arg(long)]
        pipe: Option<String>,
    },
    /// Replace the configuration with a JSON or YAML file (channels left without
    /// their secret keep the stored one).
    Set {
        #[arg(short = 'f', long)]
        file: PathBuf,
        /// Set this pipe's rules (`{"rules": [...]}`) instead of the global configuration.
        #[arg(long)]
        pipe: Option<String>,
    },
    /// Send a test message to every channel; fails if any channel fails.
    Test,
    /// List the alerts whose condition holds now (firing, or pending until their `for_minutes`).
    Active,
}

/// Reads a JSON or YAML file (`.yaml`/`.yml`, or anything that is not JSON) as a JSON value.
pub fn read_config_file(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    if !yaml {
        if let Ok(v) = serde_json::from_str(&text) {
            return Ok(v);
        }
    }
    serde_yaml_ng::from_str::<Value>(&text).with_context(|| format!("{} is neither JSON nor YAML", path.display()))
}

fn print_config(v: &Value) {
    let empty = Vec::new();
    let channels = v.get("channels").and_then(Value::as_array).unwrap_or(&empty);
    if v.get("channels").is_some() {
        println!("channels:");
        if channels.is_empty() {
            println!("  (none)");
        }
        for c in channels {
            let kind = c["kind"].as_str().unwrap_or("?");
            let target = match kind {
                "webhook" => c["url"].as_str().unwrap_or("").to_string(),
                "slack" => "(incoming webhook)".to_string(),
                "email" => format!(
                    "{} via {}:{} ({})",
                    c["to"].as_array().map(|t| t.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
                    c["host"].as_str().unwrap_or(""),
                    c["port"].as_u64().map(|p| p.to_string()).unwrap_or_else(|| "default".into()),
                    c["security"].as_str().unwrap_or("starttls")
                ),
                _ => String::new(),
            };
            println!("  {:<16} {:<8} {target}", c["name"].as_str().unwrap_or(""), kind);
        }
    }
    println!("rules:");
    let rules = v.get("rules").and_then(Value::as_array).unwrap_or(&empty);
    if rules.is_empty() {
        println!("  (none)");
    }
    for r in rules {
        let mut line = format!("  {:<22}", r["kind"].as_str().unwrap_or("?"));
        if let Some(t) = r.get("threshold_seconds") {
            line.push_str(&format!(" above {t} s"));
        }
        if let Some(m) = r.get("for_minutes") {
            line.push_str(&format!(" for {m} min"));
        }
        if let Some(c) = r.get("channels").and_then(Value::as_array) {
            line.push_str(&format!(" → {}", c.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")));
        }
        if r.get("enabled") == Some(&Value::Bool(false)) {
            line.push_str(" (off)");
        }
        println!("{line}");
    }
}

impl Client {
    /// Runs one `sluice alerts` command; `--json` prints the server's answer as JSON.
    pub async fn alerts(&self, cmd: AlertsCommand, json: bool) -> Result<()> {
        use reqwest::Method;
        match cmd {
            AlertsCommand::Show { pipe } => {
                let path = pipe.map(|p| format!("/v1/pipes/{p}/alerts")).unwrap_or_else(|| "/v1/alerts".into());
                let v = self.call(Method::GET, &path, None).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    print_config(&v);
                }
            }
            AlertsCommand::Set { file, pipe } => {
                let body = read_config_file(&file)?;
                let path = pipe.map(|p| format!("/v1/pipes/{p}/alerts")).unwrap_or_else(|| "/v1/alerts".into());
                let v = self.call(Method::PUT, &path, Some(body)).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    print_config(&v);
                }
            }
            AlertsCommand::Active => {
                let v = self.call(Method::GET, "/v1/alerts/active", None).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    let list = v.as_array().cloned().unwrap_or_default();
                    if list.is_empty() {
                        println!("no active alert");
                    }
                    for a in list {
                        println!(
                            "{:<8} {:<24} since {}  {}",
                            if a["firing"] == Value::Bool(true) { "FIRING" } else { "pending" },
                            a["rule"].as_str().unwrap_or(""),
                            a["since"].as_str().unwrap_or(""),
                            a["summary"].as_str().unwrap_or("")
                        );
                    }
                }
            }
            AlertsCommand::Test => {
                let v = self.call(Method::POST, "/v1/alerts/test", None).await?;
                let results = v.as_array().cloned().unwrap_or_default();
                if json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else if results.is_empty() {
                    println!("no channel configured: add one with `sluice alerts set -f FILE`");
                } else {
                    for r in &results {
                        let ok = r["ok"].as_bool().unwrap_or(false);
                        println!(
                            "{} {:<16} {:<8} {}",
                            if ok { "OK  " } else { "FAIL" },
                            r["channel"].as_str().unwrap_or(""),
                            r["kind"].as_str().unwrap_or(""),
                            r["error"].as_str().unwrap_or(if ok { "test message sent" } else { "" })
                        );
                    }
                }
                let failed = results.iter().filter(|r| r["ok"] != Value::Bool(true)).count();
                if failed > 0 {
                    bail!("{failed} of {} channel(s) failed", results.len());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_files_give_the_same_config() {
        let dir = tempfile::tempdir().unwrap();
        let y = dir.path().join("a.yaml");
        std::fs::write(&y, "rules:\n  - kind: lag\n    threshold_seconds: 300\n    for_minutes: 5\n").unwrap();
        let j = dir.path().join("a.json");
        std::fs::write(&j, r#"{"rules": [{"kind": "lag", "threshold_seconds": 300, "for_minutes": 5}]}"#).unwrap();
        let (a, b) = (read_config_file(&y).unwrap(), read_config_file(&j).unwrap());
        let ca: super::super::config::AlertConfig = serde_json::from_value(a).unwrap();
        let cb: super::super::config::AlertConfig = serde_json::from_value(b).unwrap();
        assert_eq!(ca, cb);
        assert_eq!(ca.rules[0].threshold_seconds, Some(300.0));
    }
}
