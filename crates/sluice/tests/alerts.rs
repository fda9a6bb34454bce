//! Alerts end to end against a real server: a signed webhook, a Slack-format
//! receiver and an SMTP sink (all started by the test) get one message when a
//! table goes to `Error` and one recovery when a resync fixes it — not again
//! on later evaluations, nor after a server restart; a failed delivery is
//! retried; a pipe's own rule alerts on a verification that found a
//! differing row; a lag alert fires while a pipe is paused and recovers on
//! resume; a retrying alert fires while the source is unreachable; a
//! `pipe_failed` alert ends with its pipe; the configuration API refuses bad input with a 400 naming it, and
//! `sluice alerts set/show/test` work from the CLI.
//!
//! Alerts read only the catalog and the pipe's status, never the source, so
//! one source flavour (MySQL) is enough here: a table goes to `Error` the
//! same way on MariaDB (covered by ddl.rs).

mod common;
use common::*;
use mysql_async::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const T: Duration = Duration::from_secs(120);
const SECRET: &str = "whsec-test-0123456789";

/// One HTTP request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A minimal HTTP/1.1 receiver: records every request; answers 503 to the
/// first `fail_first` requests on `/slack` (to exercise retries), 200 otherwise.
async fn http_receiver(fail_first: usize) -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Arc<Mutex<Vec<Received>>> = Default::default();
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(fail_first));
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let (g, failures) = (g.clone(), failures.clone());
            tokio::spawn(async move {
                let mut r = BufReader::new(sock);
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).await.unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
                let len: usize =
                    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                let mut body = vec![0u8; len];
                r.read_exact(&mut body).await.unwrap();
                let fail = path == "/slack"
                    && failures
                        .fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                if !fail {
                    g.lock().unwrap().push(Received { path, headers, body });
                }
                let status = if fail { "503 Service Unavailable" } else { "200 OK" };
                let mut sock = r.into_inner();
                let _ = sock.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (port, got)
}

/// A minimal SMTP sink: speaks 220/250/354/221 and records each message's DATA.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails: Arc<Mutex<Vec<String>>> = Default::default();
    let m = mails.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let m = m.clone();
            tokio::spawn(async move {
                let (rd, mut wr) = sock.into_split();
                let mut rd = BufReader::new(rd);
                wr.write_all(b"220 sink.test ESMTP test sink\r\n").await.unwrap();
                loop {
                    let mut line = String::new();
                    if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    match verb.as_str() {
                        "DATA" => {
                            wr.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.unwrap();
                            let mut data = String::new();
                            loop {
                                let mut l = String::new();
                                if rd.read_line(&mut l).await.unwrap_or(0) == 0 {
                                    return;
                                }
                                if l == ".\r\n" || l == ".\n" {
                                    break;
                                }
                                data.push_str(&l);
                            }
                            m.lock().unwrap().push(data);
                            wr.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                        }
                        "QUIT" => {
                            let _ = wr.write_all(b"221 2.0.0 bye\r\n").await;
                            return;
                        }
                        "EHLO" | "HELO" => wr.write_all(b"250 sink.test\r\n").await.unwrap(),
                        _ => wr.write_all(b"250 2.0.0 ok\r\n").await.unwrap(),
                    }
                }
            });
        }
    });
    (port, mails)
}

/// HMAC-SHA256 of `body` keyed by `SECRET`, as the receiver checks it.
fn expected_signature(body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    format!("sha256={}", tag.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn alert_config(http_port: u16, smtp_port: u16) -> Value {
    json!({
        "channels": [
            {"kind": "webhook", "name": "hook", "url": format!("http://127.0.0.1:{http_port}/hook"), "secret": SECRET},
            {"kind": "slack", "name": "chat", "url": format!("http://127.0.0.1:{http_port}/slack")},
            {"kind": "email", "name": "mail", "host": "127.0.0.1", "port": smtp_port, "security": "none",
             "from": "sluice@example.test", "to": ["ops@example.test"]}
        ],
        "rules": [{"kind": "pipe_failed"}, {"kind": "table_error"}]
    })
}

/// Starts a server whose rules are evaluated every 300 ms.
async fn server(dir: &std::path::Path) -> SluiceServer {
    // The server inherits the environment of the test process (one process per test under nextest).
    std::env::set_var("SLUICE_ALERT_INTERVAL_MS", "300");
    SluiceServer::start(dir).await
}

/// Webhook bodies (checked signed) with this status and rule.
fn hooks(got: &Arc<Mutex<Vec<Received>>>, status: &str, rule: &str) -> Vec<Value> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == "/hook")
        .map(|r| {
            assert_eq!(r.header("x-sluice-signature-256"), Some(expected_signature(&r.body).as_str()), "bad signature on {r:?}");
            r.json()
        })
        .filter(|v| v["status"] == status && v["rule"] == rule)
        .collect()
}

fn slack_texts(got: &Arc<Mutex<Vec<Received>>>, word: &str) -> Vec<String> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == "/slack")
        .filter_map(|r| r.json()["text"].as_str().map(str::to_string))
        .filter(|t| t.contains(word))
        .collect()
}

fn mails_with(mails: &Arc<Mutex<Vec<String>>>, word: &str) -> usize {
    mails.lock().unwrap().iter().filter(|m| m.contains(word)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_once_recover_once_and_survive_a_restart() {
    let (http_port, got) = http_receiver(1).await;
    let (smtp_port, mails) = smtp_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let mut srv = server(dir.path()).await;
    let (code, v) = srv.call(Method::PUT, "/v1/alerts", Some(alert_config(http_port, smtp_port))).await;
    assert_eq!(code, 200, "{v}");

    let db = unique("alerts");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(Flavor::MySql).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.a (id INT PRIMARY KEY, v INT)")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.b (id INT PRIMARY KEY, v INT)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.a VALUES (1, 1), (2, 2)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.b VALUES (1, 1), (2, 2)")).await.unwrap();
    let spec = spec(&db, Flavor::MySql, json!([{"source": format!("{db}.a")}, {"source": format!("{db}.b")}]), &ch_db, "snapshot_and_cdc");
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;

    // A narrowing change puts table b in Error: one alert on each channel.
    c.query_drop(format!("ALTER TABLE {db}.b MODIFY COLUMN v TINYINT")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.b VALUES (3, 3)")).await.unwrap();
    eventually(T, || async {
        let h = hooks(&got, "firing", "table_error");
        let s = slack_texts(&got, "FIRING");
        let m = mails_with(&mails, "FIRING");
        if h.len() == 1 && s.len() == 1 && m == 1 {
            Ok(())
        } else {
            Err(format!("webhook {h:?}, slack {s:?}, mails {m}"))
        }
    })
    .await;
    let fired = &hooks(&got, "firing", "table_error")[0];
    assert_eq!(fired["pipe"], db.as_str(), "{fired}");
    assert_eq!(fired["table"], "b", "{fired}");
    assert_eq!(fired["alert"], format!("{db}/table_error/b"), "{fired}");
    assert!(fired["summary"].as_str().unwrap().contains("Error"), "{fired}");
    assert!(slack_texts(&got, "FIRING")[0].contains(&format!("{db}.b")));
    let mail = mails.lock().unwrap()[0].clone();
    assert!(mail.contains("Subject: [sluice] FIRING") && mail.contains("ops@example.test"), "{mail}");
    // The Slack receiver refused the first attempt: the message was retried, and the failure logged.
    assert!(srv.log().contains("cannot send the firing message to channel \"chat\""), "{}", srv.log());

    let (_, active) = srv.call(Method::GET, "/v1/alerts/active", None).await;
    assert_eq!(active.as_array().unwrap().len(), 1, "{active}");
    let metrics = srv.http.get(format!("{}/metrics", srv.base())).bearer_auth(&srv.token).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(&format!("sluice_alerts_firing{{pipe=\"{db}\",rule=\"table_error\"}} 1")), "{metrics}");
    assert!(metrics.contains("sluice_alert_delivery_failures_total{channel=\"chat\"} 1"), "{metrics}");
    assert_eq!((&active[0]["rule"], &active[0]["table"], &active[0]["firing"]), (&json!("table_error"), &json!("b"), &json!(true)));

    // Still in Error over many evaluations, and across a restart: not sent again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    srv.kill9();
    srv.restart().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(hooks(&got, "firing", "table_error").len(), 1);
    assert_eq!(slack_texts(&got, "FIRING").len(), 1);
    assert_eq!(mails_with(&mails, "FIRING"), 1);

    // The fix (a resync of the table) sends one recovery on each channel.
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{db}/resync"), Some(json!({"tables": ["b"]}))).await;
    assert_eq!(code, 202, "{v}");
    srv.wait_state(&db, "Running", T).await;
    eventually(T, || async {
        let h = hooks(&got, "resolved", "table_error");
        let s = slack_texts(&got, "RESOLVED");
        let m = mails_with(&mails, "RESOLVED");
        if h.len() == 1 && s.len() == 1 && m == 1 {
            Ok(())
        } else {
            Err(format!("webhook {h:?}, slack {s:?}, mails {m}"))
        }
    })
    .await;
    let (_, active) = srv.call(Method::GET, "/v1/alerts/active", None).await;
    assert_eq!(active, json!([]));
    let resolved = &hooks(&got, "resolved", "table_error")[0];
    assert_eq!(resolved["alert"], fired["alert"], "{resolved}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hooks(&got, "resolved", "table_error").len(), 1);
    assert_eq!(hooks(&got, "firing", "table_error").len(), 1);

    // Both are in the pipe's history.
    let (_, ev) = srv.call(Method::GET, &format!("/v1/pipes/{db}/events"), None).await;
    let text = ev.to_string();
    assert!(text.contains("alert fired (table_error)") && text.contains("alert resolved (table_error)"), "{text}");
    // Nothing about the healthy table, nor a pipe failure.
    assert!(hooks(&got, "firing", "pipe_failed").is_empty());
    assert!(got.lock().unwrap().iter().all(|r| r.json()["table"] != "a"));

    // A pipe's own rule: a verification that finds a differing row alerts the webhook only; a clean run recovers it.
    let rules = json!({"rules": [{"kind": "verification_mismatch", "channels": ["hook"]}]});
    let (code, v) = srv.call(Method::PUT, &format!("/v1/pipes/{db}/alerts"), Some(rules.clone())).await;
    assert_eq!(code, 200, "{v}");
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}/alerts"), None).await;
    assert_eq!(v, rules);
    let t = format!("{ch_db}.a");
    clickhouse()
        .query(&format!(
            "INSERT INTO {t} SELECT * REPLACE (v + 100 AS v, _peerdb_version + 1000 AS _peerdb_version) FROM (SELECT * FROM {t} FINAL WHERE id = 1)"
        ))
        .execute()
        .await
        .unwrap();
    let run = verification(&srv, &db, json!({"tables": ["a"]})).await;
    assert_eq!(run["clean"], false, "{run}");
    eventually(T, || async {
        let h = hooks(&got, "firing", "verification_mismatch");
        if h.len() == 1 {
            Ok(())
        } else {
            Err(format!("{h:?}"))
        }
    })
    .await;
    let fired = &hooks(&got, "firing", "verification_mismatch")[0];
    assert!(fired["summary"].as_str().unwrap().contains("a: 1 rows"), "{fired}");
    assert_eq!(slack_texts(&got, "verification").len(), 0, "the rule sends to the webhook only");
    verification(&srv, &db, json!({"tables": ["a"], "repair": true})).await;
    let run = verification(&srv, &db, json!({"tables": ["a"]})).await;
    assert_eq!(run["clean"], true, "{run}");
    eventually(T, || async {
        let h = hooks(&got, "resolved", "verification_mismatch");
        if h.len() == 1 {
            Ok(())
        } else {
            Err(format!("{h:?}"))
        }
    })
    .await;
    // The global configuration cannot drop a channel a pipe's rule names.
    let mut no_hook = alert_config(http_port, smtp_port);
    no_hook["channels"].as_array_mut().unwrap().remove(0);
    let (code, v) = srv.call(Method::PUT, "/v1/alerts", Some(no_hook)).await;
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains(&format!("pipe {db:?}'s alert rules need a channel")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_alert_fires_while_a_pipe_is_paused_and_recovers_on_resume() {
    let (http_port, got) = http_receiver(0).await;
    let (smtp_port, _mails) = smtp_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path()).await;
    let db = unique("alertlag");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(Flavor::MySql).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.a (id INT PRIMARY KEY, v INT)")).await.unwrap();
    let spec = spec(&db, Flavor::MySql, json!([{"source": format!("{db}.a")}]), &ch_db, "snapshot_and_cdc");
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    // Lag above 2 s for 3 s (0.05 min); the webhook only.
    let mut config = alert_config(http_port, smtp_port);
    config["rules"] = json!([{"kind": "lag", "threshold_seconds": 2, "for_minutes": 0.05, "channels": ["hook"]}]);
    let (code, v) = srv.call(Method::PUT, "/v1/alerts", Some(config)).await;
    assert_eq!(code, 200, "{v}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(hooks(&got, "firing", "lag").is_empty(), "a live pipe has no lag alert");

    // Paused, the pipe falls behind the source (its lag keeps growing): the alert fires once.
    srv.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
    srv.wait_state(&db, "Paused", T).await;
    c.query_drop(format!("INSERT INTO {db}.a VALUES (1, 1)")).await.unwrap();
    eventually(T, || async {
        let h = hooks(&got, "firing", "lag");
        if h.len() == 1 {
            Ok(())
        } else {
            Err(format!("{h:?}"))
        }
    })
    .await;
    let fired = &hooks(&got, "firing", "lag")[0];
    assert!(fired["summary"].as_str().unwrap().contains("above 2 s"), "{fired}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hooks(&got, "firing", "lag").len(), 1);

    // Resumed, it catches up: one recovery.
    srv.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
    eventually(T, || async {
        let h = hooks(&got, "resolved", "lag");
        if h.len() == 1 {
            Ok(())
        } else {
            Err(format!("{h:?}"))
        }
    })
    .await;
    assert_eq!(hooks(&got, "firing", "lag").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_alert_fires_while_the_source_is_unreachable_and_recovers() {
    let (http_port, got) = http_receiver(0).await;
    let (smtp_port, _mails) = smtp_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path()).await;
    let db = unique("alertretry");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(Flavor::MySql).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.a (id INT PRIMARY KEY, v INT)")).await.unwrap();
    let spec = spec(&db, Flavor::MySql, json!([{"source": format!("{db}.a")}]), &ch_db, "snapshot_and_cdc");
    let port = spec["source"]["port"].clone();
    let (code, v) = srv.call(Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    let mut config = alert_config(http_port, smtp_port);
    config["rules"] = json!([{"kind": "retrying", "for_minutes": 0.02, "channels": ["hook"]}]);
    let (code, v) = srv.call(Method::PUT, "/v1/alerts", Some(config)).await;
    assert_eq!(code, 200, "{v}");

    // The source moves to a port nobody listens on: the pipe keeps retrying (a transient error).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    srv.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
    srv.wait_state(&db, "Paused", T).await;
    let (code, v) = srv.call(Method::PATCH, &format!("/v1/pipes/{db}/source"), Some(json!({"host": "127.0.0.1", "port": closed}))).await;
    assert_eq!(code, 200, "{v}");
    srv.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
    eventually(T, || async {
        let h = hooks(&got, "firing", "retrying");
        if h.len() == 1 {
            Ok(())
        } else {
            Err(format!("{h:?}"))
        }
    })
    .await;
    assert!(hooks(&got, "firing", "retrying")[0]["summary"].as_str().unwrap().contains("retrying a failure"));

    // Back to the right port: the stream resumes, one recovery.
    srv.call(Method::POST, &format!("/v1/pipes/{db}/pause"), None).await;
    srv.wait_state(&db, "Paused", T).await;
    let (code, v) = srv.call(Method::PATCH, &format!("/v1/pipes/{db}/source"), Some(json!({"port": port}))).await;
    assert_eq!(code, 200, "{v}");
    srv.call(Method::POST, &format!("/v1/pipes/{db}/resume"), None).await;
    eventually(T, || async {
        let h = hooks(&got, "resolved", "retrying");
        if h.len() == 1 {
            Ok(())
        } else {
            Err(format!("{h:?}"))
        }
    })
    .await;
    assert_eq!(hooks(&got, "firing", "retrying").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipe_failed_alert_fires_and_is_resolved_when_the_pipe_is_deleted() {
    let (http_port, got) = http_receiver(0).await;
    let (smtp_port, _mails) = smtp_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path()).await;
    let mut config = alert_config(http_port, smtp_port);
    config["rules"] = json!([{"kind": "pipe_failed", "channels": ["hook"]}]);
    let (code, v) = srv.call(Method::PUT, "/v1/alerts", Some(config)).await;
    assert_eq!(code, 200, "{v}");
    // Rejected credentials are fatal: the pipe (stored without its pre-flight checks) goes to Failed.
    let db = unique("alertfail");
    let mut spec = spec(&db, Flavor::MySql, json!([{"source": "nosuchdb.t"}]), &format!("{db}_ch"), "snapshot_and_cdc");
    spec["source"]["password"] = json!("certainly-wrong-password");
    let (code, v) = srv.call(Method::POST, "/v1/pipes?skip_checks=true", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Failed", T).await;
    eventually(T, || async {
        let h = hooks(&got, "firing", "pipe_failed");
        if h.len() == 1 {
            Ok(())
        } else {
            Err(format!("{h:?}"))
        }
    })
    .await;
    let fired = &hooks(&got, "firing", "pipe_failed")[0];
    assert_eq!(fired["pipe"], db.as_str(), "{fired}");
    assert!(fired["summary"].as_str().unwrap().contains("is Failed"), "{fired}");
    // Deleting the pipe ends the alert: one recovery saying so.
    let (code, v) = srv.call(Method::DELETE, &format!("/v1/pipes/{db}"), None).await;
    assert_eq!(code, 204, "{v}");
    eventually(T, || async {
        let h = hooks(&got, "resolved", "pipe_failed");
        if h.len() == 1 {
            Ok(())
        } else {
            Err(format!("{h:?}"))
        }
    })
    .await;
    assert!(hooks(&got, "resolved", "pipe_failed")[0]["summary"].as_str().unwrap().contains("no longer watched"));
}

/// Runs a verification of `pipe` and waits for its end.
async fn verification(srv: &SluiceServer, pipe: &str, body: Value) -> Value {
    let (code, v) = srv.call(Method::POST, &format!("/v1/pipes/{pipe}/verify"), Some(body)).await;
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_i64().unwrap();
    let start = std::time::Instant::now();
    loop {
        let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{pipe}/verifications/{id}"), None).await;
        if v["state"] != "running" {
            assert_eq!(v["state"], "done", "{v}");
            return v;
        }
        assert!(start.elapsed() < T, "verification #{id} did not end: {v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_configuration_api_cli_and_test_messages() {
    let (http_port, got) = http_receiver(0).await;
    let (smtp_port, mails) = smtp_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path()).await;

    // Bad input: 400 naming what is wrong.
    let mut bad_url = alert_config(http_port, smtp_port);
    bad_url["channels"][0]["url"] = json!("not a url");
    let mut bad_kind = alert_config(http_port, smtp_port);
    bad_kind["rules"] = json!([{"kind": "disk_full"}]);
    let mut bad_threshold = alert_config(http_port, smtp_port);
    bad_threshold["rules"] = json!([{"kind": "lag", "threshold_seconds": 0, "for_minutes": 5}]);
    for (body, want) in [
        (bad_url, "channels[0].url"),
        (bad_kind, "unknown variant `disk_full`"),
        (bad_threshold, "threshold_seconds must be a number > 0"),
        (json!({"rules": [{"kind": "retrying", "for_minutes": -2}]}), "for_minutes"),
    ] {
        let (code, v) = srv.call(Method::PUT, "/v1/alerts", Some(body)).await;
        assert_eq!(code, 400, "{v}");
        assert!(v["error"].as_str().unwrap().contains(want), "{v} should name {want}");
    }
    let (code, v) = srv.call(Method::PUT, "/v1/pipes/nosuch/alerts", Some(json!({"rules": [{"kind": "pipe_failed"}]}))).await;
    assert_eq!(code, 404, "{v}");

    // The CLI sets the configuration from a YAML file; secrets are never shown back.
    let yaml = format!(
        "channels:\n  - kind: webhook\n    name: hook\n    url: http://127.0.0.1:{http_port}/hook\n    secret: {SECRET}\n  \
         - kind: slack\n    name: chat\n    url: http://127.0.0.1:{http_port}/slack\n  \
         - kind: email\n    name: mail\n    host: 127.0.0.1\n    port: {smtp_port}\n    security: none\n    \
         from: sluice@example.test\n    to: [ops@example.test]\n\
         rules:\n  - kind: lag\n    threshold_seconds: 300\n    for_minutes: 5\n  - kind: table_error\n"
    );
    let file = dir.path().join("alerts.yaml");
    std::fs::write(&file, yaml).unwrap();
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("alerts")
            .args(args)
            .args(["--server", &srv.base()])
            .env("SLUICE_API_TOKEN", &srv.token)
            .output()
            .unwrap()
    };
    let out = cli(&["set", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, v) = srv.call(Method::GET, "/v1/alerts", None).await;
    assert_eq!(code, 200);
    assert_eq!(v["rules"][0]["kind"], "lag", "{v}");
    assert_eq!(v["rules"][0]["threshold_seconds"].as_f64(), Some(300.0), "{v}");
    assert_eq!(v["rules"][0]["for_minutes"].as_f64(), Some(5.0), "{v}");
    let shown = v.to_string();
    assert!(!shown.contains(SECRET) && !shown.contains("/slack"), "secrets shown: {shown}");
    // Sealed at rest: neither the catalog nor its WAL holds a secret in clear.
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("catalog.db") {
            let bytes = std::fs::read(&path).unwrap();
            for secret in [SECRET.as_bytes(), format!("127.0.0.1:{http_port}/slack").as_bytes()] {
                assert!(!bytes.windows(secret.len()).any(|w| w == secret), "{} holds a secret in clear", path.display());
            }
        }
    }
    // What GET shows can be PUT back: the stored secrets are kept.
    let (code, v) = srv.call(Method::PUT, "/v1/alerts", Some(v)).await;
    assert_eq!(code, 200, "{v}");
    let out = cli(&["show"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hook") && text.contains("lag") && text.contains("above 300"), "{text}");

    // `sluice alerts test`: one signed test message on each channel.
    let out = cli(&["test"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.matches("OK").count(), 3, "{text}");
    let hook = got.lock().unwrap().iter().find(|r| r.path == "/hook").cloned().expect("webhook test message");
    assert_eq!(hook.header("x-sluice-signature-256"), Some(expected_signature(&hook.body).as_str()));
    assert_eq!(hook.header("x-sluice-event"), Some("test"));
    assert_eq!(hook.json()["status"], "test");
    assert!(slack_texts(&got, "TEST").len() == 1);
    assert_eq!(mails_with(&mails, "Subject: [sluice] TEST"), 1);

    // A channel that does not answer makes `test` fail, naming it.
    let mut broken = alert_config(http_port, smtp_port);
    broken["channels"] = json!([{"kind": "webhook", "name": "gone", "url": "http://127.0.0.1:9/x", "secret": "s"}]);
    let (code, _) = srv.call(Method::PUT, "/v1/alerts", Some(broken)).await;
    assert_eq!(code, 200);
    let out = cli(&["test"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL gone"), "{}", String::from_utf8_lossy(&out.stdout));

    // Documented in the OpenAPI document.
    let (_, doc) = srv.call(Method::GET, "/openapi.json", None).await;
    for p in ["/v1/alerts", "/v1/alerts/test", "/v1/alerts/active", "/v1/pipes/{name}/alerts"] {
        assert!(doc["paths"][p].is_object(), "{p} missing from the OpenAPI document");
    }
}
