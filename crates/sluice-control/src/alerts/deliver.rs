//! Sending alert messages: the message itself, its three renderings (signed
//! JSON webhook, Slack incoming webhook, e-mail over SMTP), and the worker
//! that drains the catalog's outbox, retrying failed deliveries with backoff.
//! Nothing here runs on a pipe's task: a slow or failing channel never holds
//! up replication.

use super::config::{AlertConfig, Channel, SmtpSecurity};
use serde::{Deserialize, Serialize};
use sluice_catalog::Catalog;
use std::time::Duration;
use utoipa::ToSchema;

/// The header carrying the webhook body's signature: `sha256=<hex HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Sluice-Signature-256";
/// The header naming the message's status (`firing`, `resolved`, `test`).
pub const EVENT_HEADER: &str = "X-Sluice-Event";
/// Longest wait for one delivery attempt.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest pause between two attempts of one message.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A message not delivered after this long is given up (logged as an error).
const GIVE_UP_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// One alert message, the JSON body a webhook receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertMessage {
    /// `firing`, `resolved` or `test`.
    pub status: String,
    /// Identifies the alert across its firing and its recovery: `pipe/rule[/table]`.
    pub alert: String,
    pub pipe: Option<String>,
    /// The rule kind (`pipe_failed`, `table_error`, `lag`, `retrying`, `verification_mismatch`).
    pub rule: Option<String>,
    /// The table (destination name) of a `table_error` alert.
    pub table: Option<String>,
    /// What happened, in one sentence.
    pub summary: String,
    /// When the condition started holding (as observed by the server).
    pub since: Option<String>,
    /// When this message was made.
    pub at: String,
}

impl AlertMessage {
    fn status_word(&self) -> String {
        self.status.to_uppercase()
    }

    /// The Slack rendering (`{"text": ...}`).
    pub fn slack_text(&self) -> String {
        let icon = match self.status.as_str() {
            "firing" => ":red_circle:",
            "resolved" => ":large_green_circle:",
            _ => ":information_source:",
        };
        // Slack's mrkdwn wants these three escaped (an error text may hold `<` or `&`).
        let summary = self.summary.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        format!("{icon} *{}* [sluice] {summary}", self.status_word())
    }

    /// The e-mail subject and plain-text body.
    pub fn email(&self) -> (String, String) {
        let mut subject = format!("[sluice] {}: {}", self.status_word(), self.summary);
        if subject.chars().count() > 150 {
            subject = subject.chars().take(147).collect::<String>() + "...";
        }
        let mut body = format!("{}\n\nstatus: {}\nalert:  {}\n", self.summary, self.status, self.alert);
        for (k, v) in [("pipe", &self.pipe), ("rule", &self.rule), ("table", &self.table), ("since", &self.since)] {
            if let Some(v) = v {
                body.push_str(&format!("{k}:{}{v}\n", " ".repeat(7 - k.len())));
            }
        }
        body.push_str(&format!("at:     {}\n", self.at));
        (subject, body)
    }
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` keyed by `secret`: the value of `X-Sluice-Signature-256`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    format!("sha256={}", hex::encode(ring::hmac::sign(&key, body).as_ref()))
}

/// Why a delivery failed, in words for the log and the `test` answer.
fn http_error(e: reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>, headers: &[(&str, String)]) -> Result<(), String> {
    let mut req = http.post(url).header("content-type", "application/json").header("user-agent", "sluice-alerts").body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    // Without the URL: a Slack channel's URL is its secret (the log names the channel instead).
    let resp = req.send().await.map_err(|e| http_error(e.without_url()))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text: String = resp.text().await.unwrap_or_default().chars().take(200).collect();
    Err(format!("the receiver answered {status}: {text}"))
}

/// Sends `msg` on `channel` once. The error says what failed (no secrets in it).
pub async fn send(http: &reqwest::Client, channel: &Channel, msg: &AlertMessage) -> Result<(), String> {
    let attempt = async {
        match channel {
            Channel::Webhook { url, secret, .. } => {
                let body = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
                let sig = signature(&secret.0, &body);
                post(http, url, body, &[(SIGNATURE_HEADER, sig), (EVENT_HEADER, msg.status.clone())]).await
            }
            Channel::Slack { url, .. } => {
                let body = serde_json::to_vec(&serde_json::json!({"text": msg.slack_text()})).map_err(|e| e.to_string())?;
                // The URL is the secret: errors must not repeat it.
                post(http, &url.0, body, &[]).await.map_err(|e| e.replace(url.0.trim_end_matches('/'), "<slack url>"))
            }
            Channel::Email { host, port, security, username, password, from, to, .. } => {
                send_mail(host, *port, *security, username.as_deref(), &password.0, from, to, msg).await
            }
        }
    };
    match tokio::time::timeout(SEND_TIMEOUT, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", SEND_TIMEOUT.as_secs())),
    }
}

#[allow(clippy::too_many_arguments)]
async fn send_mail(
    host: &str,
    port: Option<u16>,
    security: SmtpSecurity,
    username: Option<&str>,
    password: &str,
    from: &str,
    to: &[String],
    msg: &AlertMessage,
) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let (builder, default_port) = match security {
        SmtpSecurity::None => (AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host), 25),
        SmtpSecurity::Starttls => {
            (AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(|e| format!("SMTP TLS set-up: {e}"))?, 587)
        }
        SmtpSecurity::Tls => (AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| format!("SMTP TLS set-up: {e}"))?, 465),
    };
    let mut builder = builder.port(port.unwrap_or(default_port)).timeout(Some(SEND_TIMEOUT));
    if let Some(user) = username {
        builder = builder.credentials(Credentials::new(user.to_string(), password.to_string()));
    }
    let mailer = builder.build();
    let (subject, body) = msg.email();
    let mut m = Message::builder().from(from.parse().map_err(|e| format!("from {from:?}: {e}"))?).subject(subject);
    for t in to {
        m = m.to(t.parse().map_err(|e| format!("to {t:?}: {e}"))?);
    }
    let email = m.header(ContentType::TEXT_PLAIN).body(body).map_err(|e| format!("cannot build the e-mail: {e}"))?;
    mailer.send(email).await.map(|_| ()).map_err(|e| format!("SMTP {host}: {e}"))
}

/// The pause before attempt `attempts + 1`: 1 s doubling, at most `MAX_BACKOFF`.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(16)).min(MAX_BACKOFF)
}

/// A client for webhooks (a TLS provider installed for `https://` URLs).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(SEND_TIMEOUT).build().unwrap_or_default()
}

/// Drains the outbox for ever: every due message is sent on its channel
/// (looked up by name in the current configuration; a message whose channel
/// is gone is dropped with a warning); a failure is logged and retried after
/// `backoff`, and given up (logged as an error) after `GIVE_UP_AFTER`.
pub async fn run_outbox(catalog: Catalog, poll: Duration) {
    let http = http_client();
    loop {
        tokio::time::sleep(poll).await;
        let due = match catalog.due_alert_deliveries(50).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("alerts: cannot read the outbox: {e}");
                continue;
            }
        };
        if due.is_empty() {
            continue;
        }
        let config: AlertConfig = match catalog.alert_config(None).await {
            Ok(c) => c.unwrap_or_default(),
            Err(e) => {
                tracing::warn!("alerts: cannot read the alert configuration: {e}");
                continue;
            }
        };
        let sends = due.into_iter().map(|d| {
            let (catalog, http, config) = (catalog.clone(), http.clone(), &config);
            async move {
                let Some(channel) = config.channels.iter().find(|c| c.name() == d.channel) else {
                    tracing::warn!("alerts: channel {:?} no longer exists; dropping message #{}", d.channel, d.id);
                    let _ = catalog.alert_delivered(d.id).await;
                    return;
                };
                let msg: AlertMessage = match serde_json::from_str(&d.payload) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::error!("alerts: message #{} is unreadable ({e}); dropping it", d.id);
                        let _ = catalog.alert_delivered(d.id).await;
                        return;
                    }
                };
                match send(&http, channel, &msg).await {
                    Ok(()) => {
                        tracing::info!(alert = msg.alert.as_str(), "alert {} sent to channel {:?}", msg.status, d.channel);
                        let _ = catalog.alert_delivered(d.id).await;
                    }
                    Err(e) => {
                        let old = chrono::DateTime::parse_from_rfc3339(&d.created_at)
                            .map(|t| chrono::Utc::now() - t.with_timezone(&chrono::Utc) > GIVE_UP_AFTER)
                            .unwrap_or(false);
                        if old {
                            tracing::error!(
                                alert = msg.alert.as_str(),
                                "alerts: giving up the {} message to channel {:?} after {} attempts: {e}",
                                msg.status,
                                d.channel,
                                d.attempts + 1
                            );
                            let _ = catalog.alert_delivered(d.id).await;
                        } else {
                            metrics::counter!("sluice_alert_delivery_failures_total", "channel" => d.channel.clone()).increment(1);
                            let wait = backoff(d.attempts);
                            tracing::warn!(
                                alert = msg.alert.as_str(),
                                "alerts: cannot send the {} message to channel {:?} (attempt {}): {e}; retrying in {} s",
                                msg.status,
                                d.channel,
                                d.attempts + 1,
                                wait.as_secs()
                            );
                            let _ = catalog.alert_delivery_failed(d.id, wait, &e).await;
                        }
                    }
                }
            }
        });
        futures_util::future::join_all(sends).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn renderings_carry_the_summary() {
        let msg = AlertMessage {
            status: "firing".into(),
            alert: "p/table_error/t".into(),
            pipe: Some("p".into()),
            rule: Some("table_error".into()),
            table: Some("t".into()),
            summary: "table s.t is in Error: type <a> & <b>".into(),
            since: Some("2026-01-01T00:00:00Z".into()),
            at: "2026-01-01T00:00:01Z".into(),
        };
        assert_eq!(msg.slack_text(), ":red_circle: *FIRING* [sluice] table s.t is in Error: type &lt;a&gt; &amp; &lt;b&gt;");
        let (subject, body) = msg.email();
        assert_eq!(subject, "[sluice] FIRING: table s.t is in Error: type <a> & <b>");
        assert!(body.contains("table:  t\n") && body.contains("alert:  p/table_error/t\n"), "{body}");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
