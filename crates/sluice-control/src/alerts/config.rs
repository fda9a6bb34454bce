//! The alert configuration users write: channels (webhook, Slack, e-mail) and
//! rules (global, and per pipe), with the checks that turn bad input into a
//! clear 400, and the secrets the catalog seals.

use serde::{Deserialize, Serialize};
use sluice_catalog::SealedSecrets;
use sluice_core::spec::Secret;
use utoipa::ToSchema;

/// The global alert configuration (`GET/PUT /v1/alerts`): where alerts go,
/// and the rules that apply to every pipe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    #[serde(default)]
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// One pipe's rules (`GET/PUT /v1/pipes/{name}/alerts`): a rule here replaces
/// the global rule of the same kind for this pipe (`"enabled": false` turns
/// it off); kinds not listed keep the global rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipeAlerts {
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// Where alert messages are sent. Secrets (`secret`, Slack's `url`,
/// `password`) are sealed in the catalog and never shown by the API; a `PUT`
/// that leaves one out keeps the stored value of the channel of that name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Channel {
    /// JSON `POST` to `url`, signed: header `X-Sluice-Signature-256: sha256=<hex HMAC-SHA256 of the body keyed by secret>`.
    Webhook {
        name: String,
        url: String,
        #[serde(default, skip_serializing_if = "Secret::is_empty")]
        #[schema(value_type = String)]
        secret: Secret,
    },
    /// A Slack incoming webhook (`{"text": ...}`); its URL is the secret.
    Slack {
        name: String,
        #[serde(default, skip_serializing_if = "Secret::is_empty")]
        #[schema(value_type = String)]
        url: Secret,
    },
    /// E-mail over SMTP.
    Email {
        name: String,
        host: String,
        /// Default: 25 (`none`), 587 (`starttls`), 465 (`tls`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        #[serde(default)]
        security: SmtpSecurity,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        #[serde(default, skip_serializing_if = "Secret::is_empty")]
        #[schema(value_type = String)]
        password: Secret,
        from: String,
        to: Vec<String>,
    },
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain SMTP (a local relay; tests).
    None,
    /// `STARTTLS` required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

/// What an alert watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// The pipe is `Failed`.
    PipeFailed,
    /// A table of the pipe is in `Error` (one alert per table).
    TableError,
    /// Replication lag above `threshold_seconds` for `for_minutes`.
    Lag,
    /// A failure retried for `for_minutes`.
    Retrying,
    /// The pipe's last finished verification found differing rows.
    VerificationMismatch,
}

impl RuleKind {
    pub const ALL: [RuleKind; 5] =
        [RuleKind::PipeFailed, RuleKind::TableError, RuleKind::Lag, RuleKind::Retrying, RuleKind::VerificationMismatch];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::PipeFailed => "pipe_failed",
            RuleKind::TableError => "table_error",
            RuleKind::Lag => "lag",
            RuleKind::Retrying => "retrying",
            RuleKind::VerificationMismatch => "verification_mismatch",
        }
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// An alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub kind: RuleKind,
    /// `lag` only (required, > 0): seconds of lag above which the condition holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_seconds: Option<f64>,
    /// How long the condition must hold before the alert fires (default 0: at the first evaluation that sees it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_minutes: Option<f64>,
    /// Channel names to send to; all channels when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// `false` turns off, for one pipe, a global rule of this kind.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

impl Rule {
    /// How long the condition must hold before the alert fires.
    pub fn hold_for(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.for_minutes.unwrap_or(0.0).max(0.0) * 60.0)
    }
}

impl Channel {
    pub fn name(&self) -> &str {
        match self {
            Channel::Webhook { name, .. } | Channel::Slack { name, .. } | Channel::Email { name, .. } => name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Webhook { .. } => "webhook",
            Channel::Slack { .. } => "slack",
            Channel::Email { .. } => "email",
        }
    }

    fn secret_mut(&mut self) -> &mut Secret {
        match self {
            Channel::Webhook { secret, .. } => secret,
            Channel::Slack { url, .. } => url,
            Channel::Email { password, .. } => password,
        }
    }
}

impl SealedSecrets for AlertConfig {
    fn secrets_mut(&mut self) -> Vec<&mut Secret> {
        self.channels.iter_mut().map(Channel::secret_mut).collect()
    }
}

impl SealedSecrets for PipeAlerts {
    fn secrets_mut(&mut self) -> Vec<&mut Secret> {
        Vec::new()
    }
}

/// Checks an `http(s)` URL; `what` names the field in the error.
fn check_url(what: &str, url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        Ok(u) => Err(format!("{what}: {url:?} is not an http:// or https:// URL (scheme {:?})", u.scheme())),
        Err(e) => Err(format!("{what}: {url:?} is not a valid URL: {e}")),
    }
}

fn check_address(what: &str, addr: &str) -> Result<(), String> {
    addr.parse::<lettre::message::Mailbox>().map(|_| ()).map_err(|e| format!("{what}: {addr:?} is not an e-mail address: {e}"))
}

/// Checks a list of rules: each kind at most once, thresholds and durations
/// positive and finite, channel names among `channels` (when given).
pub fn check_rules(rules: &[Rule], channels: Option<&[Channel]>) -> Result<(), String> {
    let mut kinds = std::collections::HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        let at = format!("rules[{i}] ({})", r.kind.as_str());
        if !kinds.insert(r.kind) {
            return Err(format!("{at}: a second rule of kind {:?}; give each kind once", r.kind.as_str()));
        }
        match (r.kind, r.threshold_seconds) {
            (RuleKind::Lag, None) if r.enabled => return Err(format!("{at}: threshold_seconds is required (seconds of lag, > 0)")),
            (RuleKind::Lag, Some(t)) if !(t.is_finite() && t > 0.0) => {
                return Err(format!("{at}: threshold_seconds must be a number > 0, not {t}"))
            }
            (RuleKind::Lag, _) => {}
            (_, Some(_)) => return Err(format!("{at}: threshold_seconds applies to kind \"lag\" only")),
            (_, None) => {}
        }
        if let Some(m) = r.for_minutes {
            if !(m.is_finite() && m >= 0.0) {
                return Err(format!("{at}: for_minutes must be a number ≥ 0, not {m}"));
            }
        }
        if let Some(chs) = channels {
            for c in &r.channels {
                if !chs.iter().any(|ch| ch.name() == c) {
                    return Err(format!("{at}: no channel is named {c:?}"));
                }
            }
        }
    }
    Ok(())
}

impl AlertConfig {
    /// Fills the secrets this configuration leaves out from `stored`'s channel
    /// of the same name and kind (so a configuration read back from `GET`,
    /// which never shows secrets, can be edited and `PUT` again).
    pub fn keep_secrets_from(&mut self, stored: &AlertConfig) {
        for ch in &mut self.channels {
            if !ch.secret_mut().is_empty() {
                continue;
            }
            if let Some(old) = stored.channels.iter().find(|o| o.name() == ch.name() && o.kind() == ch.kind()) {
                *ch.secret_mut() = old.clone().secret_mut().clone();
            }
        }
    }

    /// The configuration as the API shows it: every secret left out.
    pub fn redacted(&self) -> AlertConfig {
        let mut c = self.clone();
        for s in c.secrets_mut() {
            s.0.clear();
        }
        c
    }

    /// Checks every field; the error names the field and what to give instead.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for (i, ch) in self.channels.iter().enumerate() {
            let at = format!("channels[{i}]");
            let name = ch.name();
            if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(format!("{at}.name: {name:?} must be 1-64 characters [A-Za-z0-9_-]"));
            }
            if !names.insert(name) {
                return Err(format!("{at}.name: a second channel is named {name:?}"));
            }
            match ch {
                Channel::Webhook { url, secret, .. } => {
                    check_url(&format!("{at}.url"), url)?;
                    if secret.is_empty() {
                        return Err(format!("{at}.secret is required: the shared key of the body's HMAC-SHA256 signature"));
                    }
                }
                Channel::Slack { url, .. } => {
                    if url.is_empty() {
                        return Err(format!("{at}.url is required: the Slack incoming-webhook URL"));
                    }
                    check_url(&format!("{at}.url"), &url.0)?;
                }
                Channel::Email { host, from, to, username, password, .. } => {
                    if host.trim().is_empty() {
                        return Err(format!("{at}.host is required: the SMTP server"));
                    }
                    check_address(&format!("{at}.from"), from)?;
                    if to.is_empty() {
                        return Err(format!("{at}.to: give at least one recipient"));
                    }
                    for (j, t) in to.iter().enumerate() {
                        check_address(&format!("{at}.to[{j}]"), t)?;
                    }
                    if username.is_none() && !password.is_empty() {
                        return Err(format!("{at}.password is set without a username"));
                    }
                }
            }
        }
        check_rules(&self.rules, Some(&self.channels))
    }
}

/// The rules in force for one pipe: the global ones, each replaced by the
/// pipe's rule of the same kind if it has one; disabled rules left out.
pub fn effective_rules(global: &[Rule], pipe: &[Rule]) -> Vec<Rule> {
    let mut out: Vec<Rule> = global.iter().filter(|g| !pipe.iter().any(|p| p.kind == g.kind)).cloned().collect();
    out.extend(pipe.iter().cloned());
    out.retain(|r| r.enabled);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<AlertConfig, String> {
        let c: AlertConfig = serde_json::from_value(v).map_err(|e| e.to_string())?;
        c.validate().map(|_| c)
    }

    #[test]
    fn bad_input_is_named() {
        let hook = |url: &str| serde_json::json!({"channels": [{"kind": "webhook", "name": "h", "url": url, "secret": "s"}]});
        assert!(parse(hook("http://127.0.0.1:9/x")).is_ok());
        assert!(parse(hook("not a url")).unwrap_err().contains("channels[0].url"));
        assert!(parse(hook("ftp://x/y")).unwrap_err().contains("not an http"));
        let e = parse(serde_json::json!({"rules": [{"kind": "nosuch"}]})).unwrap_err();
        assert!(e.contains("unknown variant `nosuch`"), "{e}");
        let e = parse(serde_json::json!({"rules": [{"kind": "lag", "threshold_seconds": 0}]})).unwrap_err();
        assert!(e.contains("threshold_seconds must be a number > 0"), "{e}");
        let e = parse(serde_json::json!({"rules": [{"kind": "lag"}]})).unwrap_err();
        assert!(e.contains("threshold_seconds is required"), "{e}");
        let e = parse(serde_json::json!({"rules": [{"kind": "retrying", "for_minutes": -1}]})).unwrap_err();
        assert!(e.contains("for_minutes"), "{e}");
        let e = parse(serde_json::json!({"rules": [{"kind": "pipe_failed", "channels": ["x"]}]})).unwrap_err();
        assert!(e.contains("no channel is named \"x\""), "{e}");
        let e = parse(serde_json::json!({"channels": [{"kind": "webhook", "name": "h", "url": "http://a/"}]})).unwrap_err();
        assert!(e.contains("secret is required"), "{e}");
        let e = parse(serde_json::json!({"channels": [{"kind": "email", "name": "m", "host": "h", "from": "nope", "to": ["a@b.c"]}]}))
            .unwrap_err();
        assert!(e.contains("channels[0].from"), "{e}");
    }

    #[test]
    fn secrets_are_redacted_and_kept_on_put() {
        let stored = parse(serde_json::json!({"channels": [
            {"kind": "webhook", "name": "h", "url": "http://a/", "secret": "s3"},
            {"kind": "slack", "name": "s", "url": "https://hooks.example/T/B/x"}]}))
        .unwrap();
        let shown = serde_json::to_string(&stored.redacted()).unwrap();
        assert!(!shown.contains("s3") && !shown.contains("hooks.example"), "{shown}");
        let mut again: AlertConfig = serde_json::from_str(&shown).unwrap();
        again.keep_secrets_from(&stored);
        assert_eq!(again, stored);
        assert!(format!("{stored:?}").contains("***") && !format!("{stored:?}").contains("s3"));
    }

    #[test]
    fn pipe_rules_replace_global_rules_of_their_kind() {
        let r = |kind: RuleKind, enabled: bool| Rule { kind, threshold_seconds: None, for_minutes: None, channels: vec![], enabled };
        let eff = effective_rules(&[r(RuleKind::PipeFailed, true), r(RuleKind::TableError, true)], &[r(RuleKind::TableError, false)]);
        assert_eq!(eff, vec![r(RuleKind::PipeFailed, true)]);
    }
}
