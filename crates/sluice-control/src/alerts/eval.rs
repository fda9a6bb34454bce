//! Evaluating the alert rules: every interval, each pipe's rules are checked
//! against what the catalog and the pipe's live status say, and each alert
//! moves through its states — none → pending (condition holds, for less than
//! the rule's `for_minutes`) → firing (message sent once) → none (recovery
//! sent when the condition clears). States live in the catalog, so a restart
//! neither fires an alert again nor loses a recovery.

use super::config::{effective_rules, AlertConfig, PipeAlerts, Rule, RuleKind};
use super::deliver::AlertMessage;
use crate::manager::Manager;
use sluice_catalog::{AlertNotice, AlertState, CatalogError, PipeRecord, TableRecord, VerificationRecord};
use sluice_core::{PipeState, TableState};
use sluice_engine::LiveStatus;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// What one rule sees for one subject of a pipe.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// "" or the table's destination name.
    pub subject: String,
    /// `None`: cannot tell now (e.g. lag before CDC ran): the alert keeps its state.
    pub holds: Option<bool>,
    /// What the condition is (when it holds) or what it became (when it does not).
    pub summary: String,
}

/// Everything the rules look at for one pipe.
pub struct PipeFacts<'a> {
    pub record: &'a PipeRecord,
    pub tables: &'a [TableRecord],
    pub status: Option<&'a LiveStatus>,
    /// The newest finished (`done`) verification run, if any.
    pub verification: Option<&'a VerificationRecord>,
    /// True shortly after the server started: conditions measured by the
    /// live status (lag, retrying) are not trusted to have cleared yet.
    pub warming_up: bool,
}

/// What `rule` sees in `facts`: one observation (one per table for `table_error`).
pub fn observe(rule: &Rule, f: &PipeFacts) -> Vec<Observation> {
    let pipe = &f.record.spec.name;
    let one = |holds: Option<bool>, summary: String| vec![Observation { subject: String::new(), holds, summary }];
    match rule.kind {
        RuleKind::PipeFailed => {
            if f.record.state == PipeState::Failed {
                let why = f.record.error.as_deref().unwrap_or("no error recorded");
                one(Some(true), format!("pipe {pipe} is Failed: {why}"))
            } else {
                one(Some(false), format!("pipe {pipe} is no longer Failed (now {})", f.record.state))
            }
        }
        RuleKind::TableError => f
            .tables
            .iter()
            .map(|t| {
                let src = format!("{}.{}", t.mapping.source.id.schema, t.mapping.source.id.table);
                let holds = t.state == TableState::Error;
                let summary = if holds {
                    format!(
                        "table {src} (destination {}) of pipe {pipe} is in Error: {}",
                        t.mapping.destination,
                        t.error.as_deref().unwrap_or("no error recorded")
                    )
                } else {
                    format!("table {src} (destination {}) of pipe {pipe} is no longer in Error (now {})", t.mapping.destination, t.state)
                };
                Observation { subject: t.mapping.destination.clone(), holds: Some(holds), summary }
            })
            .collect(),
        RuleKind::Lag => {
            let threshold = rule.threshold_seconds.unwrap_or(f64::INFINITY);
            match f.status.and_then(|s| s.lag_seconds()) {
                Some(lag) if lag > threshold => {
                    one(Some(true), format!("replication lag of pipe {pipe} is {lag:.0} s, above {threshold} s"))
                }
                Some(lag) if !f.warming_up => {
                    one(Some(false), format!("replication lag of pipe {pipe} is back to {lag:.0} s (threshold {threshold} s)"))
                }
                _ => one(None, String::new()),
            }
        }
        RuleKind::Retrying => match f.status.and_then(|s| s.retrying_for()) {
            Some(d) => {
                let why = f.record.error.as_deref().unwrap_or("no error recorded");
                one(Some(true), format!("pipe {pipe} has been retrying a failure for {} s: {why}", d.as_secs()))
            }
            None if f.warming_up => one(None, String::new()),
            None => one(Some(false), format!("pipe {pipe} is no longer retrying a failure")),
        },
        RuleKind::VerificationMismatch => match f.verification {
            None => one(Some(false), format!("pipe {pipe} has no verification with differences")),
            Some(v) => {
                // Read field by field (the results' shape is sluice-verify's `TableResult`): a field
                // added there must not make a mismatch unreadable here.
                let differing: Vec<String> = v
                    .tables
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|t| {
                        let rows = t.get("rows_differing").and_then(serde_json::Value::as_u64).unwrap_or(0);
                        let name = t.get("destination").and_then(serde_json::Value::as_str).unwrap_or("?");
                        (rows > 0).then(|| format!("{name}: {rows} rows"))
                    })
                    .collect();
                if differing.is_empty() {
                    one(Some(false), format!("verification #{} of pipe {pipe} found no differences", v.id))
                } else {
                    one(Some(true), format!("verification #{} of pipe {pipe} found differing rows ({})", v.id, differing.join(", ")))
                }
            }
        },
    }
}

/// What to do with one alert after an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Record that the condition started holding.
    Pending,
    /// Send the alert.
    Fire,
    /// Send the recovery.
    Resolve,
    /// Forget a pending alert whose condition cleared before it fired.
    Forget,
}

/// The state machine of one alert: `held_for` is how long the condition has held (from the stored `since`).
pub fn step(holds: Option<bool>, state: Option<&AlertState>, held_for: Duration, hold_for: Duration) -> Step {
    match (holds, state) {
        (None, _) => Step::Nothing,
        (Some(true), None) if hold_for.is_zero() => Step::Fire,
        (Some(true), None) => Step::Pending,
        (Some(true), Some(s)) if !s.firing && held_for >= hold_for => Step::Fire,
        (Some(true), Some(_)) => Step::Nothing,
        (Some(false), Some(s)) if s.firing => Step::Resolve,
        (Some(false), Some(_)) => Step::Forget,
        (Some(false), None) => Step::Nothing,
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn held_for(since: &str) -> Duration {
    chrono::DateTime::parse_from_rfc3339(since)
        .ok()
        .and_then(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).to_std().ok())
        .unwrap_or_default()
}

/// The notice (history line + one message per channel) of a firing or a recovery.
fn notice(
    config: &AlertConfig,
    rule: Option<&Rule>,
    key: &(String, String, String),
    status: &str,
    summary: &str,
    since: Option<String>,
) -> AlertNotice {
    let (pipe, kind, subject) = key;
    let alert = if subject.is_empty() { format!("{pipe}/{kind}") } else { format!("{pipe}/{kind}/{subject}") };
    let msg = AlertMessage {
        status: status.into(),
        alert: alert.clone(),
        pipe: Some(pipe.clone()),
        rule: Some(kind.clone()),
        table: (!subject.is_empty()).then(|| subject.clone()),
        summary: summary.into(),
        since,
        at: now(),
    };
    let payload = serde_json::to_string(&msg).unwrap_or_default();
    let wanted: &[String] = rule.map(|r| r.channels.as_slice()).unwrap_or(&[]);
    let messages = config
        .channels
        .iter()
        .filter(|c| wanted.is_empty() || wanted.iter().any(|w| w == c.name()))
        .map(|c| (c.name().to_string(), payload.clone()))
        .collect();
    let verb = if status == "firing" { "fired" } else { "resolved" };
    AlertNotice {
        pipe: pipe.clone(),
        rule: kind.clone(),
        subject: subject.clone(),
        summary: summary.into(),
        history: format!("alert {verb} ({kind}): {summary}"),
        messages,
    }
}

/// One evaluation of every rule of every pipe. An error reading the catalog
/// ends the round before anything is resolved (nothing is taken as cleared
/// because it could not be read).
pub async fn evaluate_once(manager: &Manager, started: Instant, warm_up: Duration) -> Result<(), CatalogError> {
    let catalog = manager.catalog();
    let config: AlertConfig = catalog.alert_config(None).await?.unwrap_or_default();
    let states: HashMap<(String, String, String), AlertState> =
        catalog.alert_states().await?.into_iter().map(|s| ((s.pipe.clone(), s.rule.clone(), s.subject.clone()), s)).collect();
    let warming_up = started.elapsed() < warm_up;
    let mut seen = HashSet::new();
    let mut elsewhere = HashSet::new();
    for name in catalog.pipe_names().await? {
        // Each worker evaluates the pipes it runs (several workers would send everything twice).
        if !manager.runs(&name) {
            elsewhere.insert(name);
            continue;
        }
        let Some(record) = catalog.pipe(&name).await? else { continue };
        let pipe_rules: PipeAlerts = catalog.alert_config(Some(&name)).await?.unwrap_or_default();
        let rules = effective_rules(&config.rules, &pipe_rules.rules);
        if rules.is_empty() {
            continue;
        }
        let tables = catalog.tables(&name).await?;
        let verification = if rules.iter().any(|r| r.kind == RuleKind::VerificationMismatch) {
            catalog.verifications(&name, 50).await?.into_iter().find(|v| v.state == sluice_catalog::VERIFY_DONE)
        } else {
            None
        };
        let status = manager.status(&name);
        let facts =
            PipeFacts { record: &record, tables: &tables, status: status.as_deref(), verification: verification.as_ref(), warming_up };
        for rule in &rules {
            for obs in observe(rule, &facts) {
                let key = (name.clone(), rule.kind.as_str().to_string(), obs.subject.clone());
                seen.insert(key.clone());
                let state = states.get(&key);
                let held = state.map(|s| held_for(&s.since)).unwrap_or_default();
                match step(obs.holds, state, held, rule.hold_for()) {
                    Step::Nothing => {}
                    Step::Pending => catalog.alert_pending(&key.0, &key.1, &key.2, &obs.summary).await?,
                    Step::Forget => catalog.alert_forget(&key.0, &key.1, &key.2).await?,
                    Step::Fire => {
                        let since = state.map(|s| s.since.clone()).unwrap_or_else(now);
                        let n = notice(&config, Some(rule), &key, "firing", &obs.summary, Some(since));
                        if catalog.alert_change(n, true).await? {
                            tracing::warn!(pipe = name.as_str(), "alert fired ({}): {}", key.1, obs.summary);
                        }
                    }
                    Step::Resolve => {
                        let since = state.map(|s| s.since.clone());
                        let n = notice(&config, Some(rule), &key, "resolved", &obs.summary, since);
                        if catalog.alert_change(n, false).await? {
                            tracing::info!(pipe = name.as_str(), "alert resolved ({}): {}", key.1, obs.summary);
                        }
                    }
                }
            }
        }
    }
    // Alerts nothing watches any more: their rule was removed or turned off, their table or pipe is gone.
    let watched: Vec<(String, String)> = states.keys().map(|(p, r, _)| (p.clone(), r.clone())).collect();
    for (key, state) in states {
        if seen.contains(&key) || elsewhere.contains(&key.0) {
            continue;
        }
        if state.firing {
            let summary = format!("{} — no longer watched (its rule, table or pipe was removed)", state.summary);
            let n = notice(&config, None, &key, "resolved", &summary, Some(state.since.clone()));
            catalog.alert_change(n, false).await?;
        } else {
            catalog.alert_forget(&key.0, &key.1, &key.2).await?;
        }
    }
    publish_firing(catalog, watched).await
}

/// `sluice_alerts_firing{pipe,rule}`: how many alerts of the rule fire for the pipe (0 once they all recovered).
async fn publish_firing(catalog: &sluice_catalog::Catalog, before: Vec<(String, String)>) -> Result<(), CatalogError> {
    let mut counts: HashMap<(String, String), f64> = before.into_iter().map(|k| (k, 0.0)).collect();
    for s in catalog.alert_states().await? {
        let n = counts.entry((s.pipe, s.rule)).or_insert(0.0);
        if s.firing {
            *n += 1.0;
        }
    }
    for ((pipe, rule), n) in counts {
        metrics::gauge!("sluice_alerts_firing", "pipe" => pipe, "rule" => rule).set(n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(firing: bool) -> AlertState {
        AlertState {
            pipe: "p".into(),
            rule: "lag".into(),
            subject: String::new(),
            since: now(),
            firing,
            fired_at: None,
            summary: String::new(),
        }
    }

    fn record(state: PipeState, error: Option<&str>) -> PipeRecord {
        let spec = sluice_core::PipeSpec::from_json(
            r#"{"name":"p","source":{"host":"h","user":"u","password":"x"},
                "destination":{"url":"http://127.0.0.1:1","database":"d"},"tables":[{"source":"s.t"}]}"#,
        )
        .unwrap();
        PipeRecord { spec, state, error: error.map(str::to_string), created_at: now(), updated_at: now() }
    }

    fn rule(kind: RuleKind) -> Rule {
        Rule { kind, threshold_seconds: Some(1.0), for_minutes: None, channels: vec![], enabled: true }
    }

    #[test]
    fn conditions_follow_the_catalog_and_the_live_status() {
        let failed = record(PipeState::Failed, Some("binlog purged; resync the pipe"));
        let running = record(PipeState::Running, None);
        let facts = |r, warming_up| PipeFacts { record: r, tables: &[], status: None, verification: None, warming_up };
        let o = observe(&rule(RuleKind::PipeFailed), &facts(&failed, false));
        assert_eq!(o[0].holds, Some(true));
        assert!(o[0].summary.contains("binlog purged"), "{o:?}");
        assert_eq!(observe(&rule(RuleKind::PipeFailed), &facts(&running, false))[0].holds, Some(false));
        // No live status (CDC never ran): lag is unknown, not cleared.
        assert_eq!(observe(&rule(RuleKind::Lag), &facts(&running, false))[0].holds, None);
        // Not retrying: cleared, except while the server warms up.
        assert_eq!(observe(&rule(RuleKind::Retrying), &facts(&running, false))[0].holds, Some(false));
        assert_eq!(observe(&rule(RuleKind::Retrying), &facts(&running, true))[0].holds, None);
        let status = LiveStatus::new();
        let live = PipeFacts { record: &running, tables: &[], status: Some(&status), verification: None, warming_up: false };
        assert_eq!(observe(&rule(RuleKind::Retrying), &live)[0].holds, Some(false));
        let verification = |rows: u64| VerificationRecord {
            id: 7,
            pipe: "p".into(),
            started_at: now(),
            finished_at: Some(now()),
            state: sluice_catalog::VERIFY_DONE.into(),
            repair: false,
            request: serde_json::json!({}),
            tables: serde_json::json!([{"source": "s.t", "destination": "t", "state": "done", "rows_differing": rows}]),
            error: None,
        };
        for (rows, holds) in [(3, true), (0, false)] {
            let v = verification(rows);
            let f = PipeFacts { record: &running, tables: &[], status: None, verification: Some(&v), warming_up: false };
            let o = observe(&rule(RuleKind::VerificationMismatch), &f);
            assert_eq!(o[0].holds, Some(holds), "{o:?}");
        }
    }

    #[test]
    fn an_alert_fires_once_after_its_duration_and_recovers_once() {
        let min = Duration::from_secs(60);
        assert_eq!(step(Some(true), None, Duration::ZERO, Duration::ZERO), Step::Fire);
        assert_eq!(step(Some(true), None, Duration::ZERO, min), Step::Pending);
        assert_eq!(step(Some(true), Some(&state(false)), Duration::from_secs(30), min), Step::Nothing);
        assert_eq!(step(Some(true), Some(&state(false)), Duration::from_secs(61), min), Step::Fire);
        // De-duplicated while it holds.
        assert_eq!(step(Some(true), Some(&state(true)), Duration::from_secs(600), min), Step::Nothing);
        assert_eq!(step(Some(false), Some(&state(true)), Duration::ZERO, min), Step::Resolve);
        assert_eq!(step(Some(false), Some(&state(false)), Duration::ZERO, min), Step::Forget);
        assert_eq!(step(Some(false), None, Duration::ZERO, min), Step::Nothing);
        // Unknown: keeps whatever state it had.
        assert_eq!(step(None, Some(&state(true)), Duration::ZERO, min), Step::Nothing);
    }
}
