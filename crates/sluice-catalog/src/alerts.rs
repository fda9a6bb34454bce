//! Alerts in the catalog: the global alert configuration and per-pipe rules
//! (opaque JSON here, with every secret they name sealed like a pipe spec's),
//! each alert's state (pending / firing), and the outbox of messages still to
//! deliver. A state change, its messages and its line in the pipe's history
//! are written in one transaction, so a restart can neither send an alert
//! twice nor lose its recovery.

use crate::{now, Catalog, CatalogError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sluice_core::spec::Secret;
use sqlx::Row;

/// A configuration stored with its secrets sealed: `secrets_mut` names every
/// secret it holds (like `PipeSpec::secrets_mut`), and the catalog encrypts
/// them on the way in and decrypts them on the way out.
pub trait SealedSecrets: Serialize + DeserializeOwned + Send + 'static {
    fn secrets_mut(&mut self) -> Vec<&mut Secret>;
}

/// One alert's stored state: its condition has held since `since`; `firing`
/// once the alert was sent (and until its recovery is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertState {
    pub pipe: String,
    pub rule: String,
    /// What the alert is about within the pipe (a table for `table_error`), or "".
    pub subject: String,
    pub since: String,
    pub firing: bool,
    pub fired_at: Option<String>,
    pub summary: String,
}

/// A message to send: its channel (by name) and its JSON payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertDelivery {
    pub id: i64,
    pub channel: String,
    pub payload: String,
    pub created_at: String,
    pub attempts: u32,
}

/// The alert a state change is about, the history line it leaves and the messages it sends.
#[derive(Debug, Clone)]
pub struct AlertNotice {
    pub pipe: String,
    pub rule: String,
    pub subject: String,
    pub summary: String,
    /// The line written to the pipe's history (`GET /v1/pipes/{name}/events`).
    pub history: String,
    /// (channel name, JSON payload) of every message to send.
    pub messages: Vec<(String, String)>,
}

impl Catalog {
    fn seal_config<T: SealedSecrets>(&self, mut config: T) -> Result<String> {
        for s in config.secrets_mut() {
            s.0 = self.secrets.seal(&s.0);
        }
        serde_json::to_string(&config).map_err(|e| CatalogError::Corrupt(e.to_string()))
    }

    fn open_config<T: SealedSecrets>(&self, stored: &str) -> Result<T> {
        let mut config: T = serde_json::from_str(stored).map_err(|e| CatalogError::Corrupt(format!("alert configuration: {e}")))?;
        for s in config.secrets_mut() {
            s.0 = self.secrets.open(&s.0).map_err(CatalogError::Corrupt)?;
        }
        Ok(config)
    }

    /// The global alert configuration (`None`: never set), or with `pipe` that pipe's rules.
    pub async fn alert_config<T: SealedSecrets>(&self, pipe: Option<&str>) -> Result<Option<T>> {
        let pipe = pipe.map(str::to_owned);
        let stored: Option<String> = self
            .detached(move |c| async move {
                Ok(match pipe {
                    None => sqlx::query_scalar("SELECT config_json FROM alert_config WHERE id = 1").fetch_optional(&c.reads).await?,
                    Some(p) => {
                        sqlx::query_scalar("SELECT config_json FROM pipe_alerts WHERE pipe = $1").bind(p).fetch_optional(&c.reads).await?
                    }
                })
            })
            .await?;
        stored.map(|s| self.open_config(&s)).transpose()
    }

    /// Replaces the global alert configuration, or with `pipe` that pipe's rules (its secrets sealed).
    pub async fn set_alert_config<T: SealedSecrets + Clone>(&self, pipe: Option<&str>, config: &T) -> Result<()> {
        let sealed = self.seal_config(config.clone())?;
        let pipe = pipe.map(str::to_owned);
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            match &pipe {
                None => {
                    sqlx::query(
                        "INSERT INTO alert_config (id, config_json, updated_at) VALUES (1, $1, $2) \
                         ON CONFLICT (id) DO UPDATE SET config_json = excluded.config_json, updated_at = excluded.updated_at",
                    )
                    .bind(&sealed)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                }
                Some(p) => {
                    let exists: Option<String> =
                        sqlx::query_scalar("SELECT name FROM pipes WHERE name = $1").bind(p).fetch_optional(&mut *tx).await?;
                    if exists.is_none() {
                        return Err(CatalogError::NoSuchPipe(p.clone()));
                    }
                    sqlx::query(
                        "INSERT INTO pipe_alerts (pipe, config_json, updated_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (pipe) DO UPDATE SET config_json = excluded.config_json, updated_at = excluded.updated_at",
                    )
                    .bind(p)
                    .bind(&sealed)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Every stored alert state.
    pub async fn alert_states(&self) -> Result<Vec<AlertState>> {
        self.detached(|c| async move {
            let rows =
                sqlx::query("SELECT pipe, rule, subject, since, firing, fired_at, summary FROM alert_states ORDER BY pipe, rule, subject")
                    .fetch_all(&c.reads)
                    .await?;
            Ok(rows
                .into_iter()
                .map(|r| AlertState {
                    pipe: r.get(0),
                    rule: r.get(1),
                    subject: r.get(2),
                    since: r.get(3),
                    firing: r.get::<i64, _>(4) != 0,
                    fired_at: r.get(5),
                    summary: r.get(6),
                })
                .collect())
        })
        .await
    }

    /// Records that an alert's condition started holding (a pending alert); no-op if it has a state already.
    pub async fn alert_pending(&self, pipe: &str, rule: &str, subject: &str, summary: &str) -> Result<()> {
        let (pipe, rule, subject, summary) = (pipe.to_owned(), rule.to_owned(), subject.to_owned(), summary.to_owned());
        self.detached(move |c| async move {
            sqlx::query(
                "INSERT INTO alert_states (pipe, rule, subject, since, summary) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(&pipe)
            .bind(&rule)
            .bind(&subject)
            .bind(now())
            .bind(&summary)
            .execute(&c.writes)
            .await?;
            Ok(())
        })
        .await
    }

    /// Forgets an alert's state without sending anything (a pending alert whose condition cleared).
    pub async fn alert_forget(&self, pipe: &str, rule: &str, subject: &str) -> Result<()> {
        let (pipe, rule, subject) = (pipe.to_owned(), rule.to_owned(), subject.to_owned());
        self.detached(move |c| async move {
            sqlx::query("DELETE FROM alert_states WHERE pipe = $1 AND rule = $2 AND subject = $3")
                .bind(&pipe)
                .bind(&rule)
                .bind(&subject)
                .execute(&c.writes)
                .await?;
            Ok(())
        })
        .await
    }

    /// Fires an alert (`firing = true`) or resolves it (state deleted), with
    /// its history line and its messages queued, in one transaction. Returns
    /// false (and writes nothing) when the stored state is not the expected
    /// one (already firing, or already resolved), so no message goes out twice.
    pub async fn alert_change(&self, notice: AlertNotice, fire: bool) -> Result<bool> {
        self.detached(move |c| async move {
            let mut tx = c.write_tx().await?;
            let firing: Option<i64> = sqlx::query_scalar("SELECT firing FROM alert_states WHERE pipe = $1 AND rule = $2 AND subject = $3")
                .bind(&notice.pipe)
                .bind(&notice.rule)
                .bind(&notice.subject)
                .fetch_optional(&mut *tx)
                .await?;
            let t = now();
            if fire {
                if firing.unwrap_or(0) != 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO alert_states (pipe, rule, subject, since, firing, fired_at, summary) VALUES ($1, $2, $3, $4, 1, $5, $6) \
                     ON CONFLICT (pipe, rule, subject) DO UPDATE SET firing = 1, fired_at = excluded.fired_at, summary = excluded.summary",
                )
                .bind(&notice.pipe)
                .bind(&notice.rule)
                .bind(&notice.subject)
                .bind(&t)
                .bind(&t)
                .bind(&notice.summary)
                .execute(&mut *tx)
                .await?;
            } else {
                if firing.unwrap_or(0) == 0 {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM alert_states WHERE pipe = $1 AND rule = $2 AND subject = $3")
                    .bind(&notice.pipe)
                    .bind(&notice.rule)
                    .bind(&notice.subject)
                    .execute(&mut *tx)
                    .await?;
            }
            Self::note_in(&mut tx, &notice.pipe, &notice.history).await?;
            for (channel, payload) in &notice.messages {
                sqlx::query("INSERT INTO alert_outbox (channel, payload_json, created_at, next_at) VALUES ($1, $2, $3, $4)")
                    .bind(channel)
                    .bind(payload)
                    .bind(&t)
                    .bind(&t)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Messages due for (another) delivery attempt now, oldest first.
    pub async fn due_alert_deliveries(&self, limit: u32) -> Result<Vec<AlertDelivery>> {
        self.detached(move |c| async move {
            let at = now();
            let rows = sqlx::query(
                "SELECT id, channel, payload_json, created_at, attempts FROM alert_outbox WHERE next_at <= $1 ORDER BY id LIMIT $2",
            )
            .bind(&at)
            .bind(limit as i64)
            .fetch_all(&c.reads)
            .await?;
            Ok(rows
                .into_iter()
                .map(|r| AlertDelivery {
                    id: r.get(0),
                    channel: r.get(1),
                    payload: r.get(2),
                    created_at: r.get(3),
                    attempts: r.get::<i64, _>(4) as u32,
                })
                .collect())
        })
        .await
    }

    /// A message was delivered (or given up): removes it from the outbox.
    pub async fn alert_delivered(&self, id: i64) -> Result<()> {
        self.detached(move |c| async move {
            sqlx::query("DELETE FROM alert_outbox WHERE id = $1").bind(id).execute(&c.writes).await?;
            Ok(())
        })
        .await
    }

    /// A delivery attempt failed: the message is tried again `retry_in` from now.
    pub async fn alert_delivery_failed(&self, id: i64, retry_in: std::time::Duration, error: &str) -> Result<()> {
        let error = error.to_owned();
        self.detached(move |c| async move {
            let next_at = (chrono::Utc::now() + chrono::Duration::from_std(retry_in).unwrap_or(chrono::Duration::hours(1)))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            sqlx::query("UPDATE alert_outbox SET attempts = attempts + 1, next_at = $1, last_error = $2 WHERE id = $3")
                .bind(&next_at)
                .bind(&error)
                .bind(id)
                .execute(&c.writes)
                .await?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{on_both, TestCatalog};

    #[derive(Clone, serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Conf {
        url: String,
        secret: Secret,
    }

    impl SealedSecrets for Conf {
        fn secrets_mut(&mut self) -> Vec<&mut Secret> {
            vec![&mut self.secret]
        }
    }

    fn notice(summary: &str) -> AlertNotice {
        AlertNotice {
            pipe: "p".into(),
            rule: "table_error".into(),
            subject: "t".into(),
            summary: summary.into(),
            history: format!("alert: {summary}"),
            messages: vec![("hook".into(), format!("{{\"summary\":\"{summary}\"}}"))],
        }
    }

    async fn alert_secrets_are_sealed_and_states_survive_a_reopen(t: TestCatalog) {
        let cat = t.open().await;
        let spec = sluice_core::PipeSpec::from_json(
            r#"{"name":"p","source":{"host":"h","user":"u","password":"x"},
                "destination":{"url":"http://127.0.0.1:1","database":"d"},"tables":[{"source":"s.t"}]}"#,
        )
        .unwrap();
        cat.create_pipe(&spec).await.unwrap();
        let conf = Conf { url: "http://a/".into(), secret: Secret("hunter2-secret".into()) };
        cat.set_alert_config(None, &conf).await.unwrap();
        let raw: String = sqlx::query_scalar("SELECT config_json FROM alert_config").fetch_one(&cat.reads).await.unwrap();
        assert!(!raw.contains("hunter2") && raw.contains("enc:v1:"), "stored in clear: {raw}");
        assert_eq!(cat.alert_config::<Conf>(None).await.unwrap(), Some(conf.clone()));
        assert!(matches!(cat.set_alert_config(Some("nosuch"), &conf).await, Err(CatalogError::NoSuchPipe(_))));

        // Fires once: a second firing of the same alert writes nothing.
        cat.alert_pending("p", "table_error", "t", "x").await.unwrap();
        assert!(cat.alert_change(notice("fired"), true).await.unwrap());
        assert!(!cat.alert_change(notice("fired again"), true).await.unwrap());
        assert_eq!(cat.due_alert_deliveries(10).await.unwrap().len(), 1);
        drop(cat);
        let cat = t.open().await;
        let states = cat.alert_states().await.unwrap();
        assert_eq!(states.len(), 1);
        assert!(states[0].firing && states[0].summary == "fired");
        // Recovers once; the history has both.
        assert!(cat.alert_change(notice("resolved"), false).await.unwrap());
        assert!(!cat.alert_change(notice("resolved"), false).await.unwrap());
        assert!(cat.alert_states().await.unwrap().is_empty());
        let due = cat.due_alert_deliveries(10).await.unwrap();
        assert_eq!(due.len(), 2);
        cat.alert_delivered(due[0].id).await.unwrap();
        cat.alert_delivery_failed(due[1].id, std::time::Duration::from_secs(60), "refused").await.unwrap();
        assert!(cat.due_alert_deliveries(10).await.unwrap().is_empty(), "a failed delivery waits for its backoff");
        let events: Vec<String> = cat.events("p").await.unwrap().into_iter().map(|e| e.reason).collect();
        assert!(events.contains(&"alert: fired".to_string()) && events.contains(&"alert: resolved".to_string()), "{events:?}");
    }
    on_both!(alert_secrets_are_sealed_and_states_survive_a_reopen);
}
