//! The dashboard in a real browser: Debian's Chromium, headless, driven
//! through chromedriver (`SLUICE_TEST_CHROMIUM`, `SLUICE_TEST_CHROMEDRIVER`,
//! set by `scripts/testbed env`; the test skips, saying so, when they are unset).
//!
//! Against a real `sluice server` and the test bed (MySQL → ClickHouse): the
//! token is entered, a pipe is created through the form, its snapshot
//! finishes and its charts draw; pause, resume, a setting, a table's resync
//! and its removal go through the page; a table in `Error` shows its error and
//! its Resync button, and its alert reaches a local webhook; a stopped server
//! turns the page offline. Screenshots at 1400 px and 390 px go to
//! docs/screenshots/ (the README shows them).

mod common;
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use mysql_async::prelude::*;
use reqwest::Method;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const T: Duration = Duration::from_secs(180);

/// chromedriver on a free port, killed on drop.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser() -> Option<(Driver, Client)> {
    let (Ok(chromium), Ok(driver)) = (std::env::var("SLUICE_TEST_CHROMIUM"), std::env::var("SLUICE_TEST_CHROMEDRIVER")) else {
        eprintln!("SKIPPED: SLUICE_TEST_CHROMIUM / SLUICE_TEST_CHROMEDRIVER are not set (eval \"$(scripts/testbed env)\" after `scripts/testbed up`)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child =
        Command::new(driver).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start chromedriver");
    let d = Driver(child, port);
    let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000", "--hide-scrollbars"]
        }
    }))
    .unwrap();
    let start = Instant::now();
    loop {
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", d.1))
            .await;
        match c {
            Ok(c) => return Some((d, c)),
            Err(e) if start.elapsed() > Duration::from_secs(60) => panic!("cannot start a Chromium session: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// The text of the first element matching `css`, or "" when there is none.
async fn text(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the element matching `css` contains `want`.
async fn wait_text(c: &Client, css: &str, want: &str) {
    let start = Instant::now();
    loop {
        let t = text(c, css).await;
        if t.contains(want) {
            return;
        }
        assert!(start.elapsed() < T, "{css} never showed {want:?}; it shows {t:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Clicks the first button whose text is `label` (inside `scope`, a CSS selector).
async fn click_button(c: &Client, scope: &str, label: &str) {
    let start = Instant::now();
    loop {
        for b in c.find_all(Locator::Css(&format!("{scope} button"))).await.unwrap() {
            if b.text().await.unwrap_or_default().trim() == label && b.is_enabled().await.unwrap_or(false) {
                b.click().await.unwrap();
                return;
            }
        }
        assert!(start.elapsed() < T, "no enabled button {label:?} in {scope}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn confirm(c: &Client) {
    c.wait().at_most(T).for_element(Locator::Css("#confirm-dialog[open] #confirm-ok")).await.unwrap().click().await.unwrap();
}

async fn screenshot(c: &Client, width: u32, file: &str) {
    c.set_window_size(width, 1100).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file), png).unwrap();
}

/// A webhook receiver: records the JSON bodies it gets.
async fn webhook() -> (u16, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Default::default();
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let g = g.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(sock);
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).await.is_err() {
                    return;
                }
                g.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or_default());
                let _ = r.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            });
        }
    });
    (port, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_drives_a_pipe_in_chromium() {
    let Some((_driver, c)) = browser().await else { return };
    std::env::set_var("SLUICE_ALERT_INTERVAL_MS", "500");
    std::env::set_var("SLUICE_SERIES_INTERVAL_MS", "1000");
    let dir = tempfile::tempdir().unwrap();
    let mut srv = SluiceServer::start(dir.path()).await;
    let (hook_port, hooks) = webhook().await;
    let alerts = json!({"channels": [{"kind": "webhook", "name": "hook", "url": format!("http://127.0.0.1:{hook_port}/hook"), "secret": "whsec-browser-0123456789"}],
                        "rules": [{"kind": "table_error"}]});
    let (code, v) = srv.call(Method::PUT, "/v1/alerts", Some(alerts)).await;
    assert_eq!(code, 200, "{v}");

    let db = unique("browser");
    let ch_db = format!("{db}_ch");
    let mut my = mysql(Flavor::MySql).await;
    my.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    for t in ["orders", "customers", "notes"] {
        my.query_drop(format!("CREATE TABLE {db}.{t} (id INT PRIMARY KEY, v INT)")).await.unwrap();
        let values: Vec<String> = (1..=2000).map(|i| format!("({i}, {})", i % 100)).collect();
        my.query_drop(format!("INSERT INTO {db}.{t} VALUES {}", values.join(","))).await.unwrap();
    }

    // Sign in.
    c.goto(&srv.base()).await.unwrap();
    let input = c.wait().at_most(T).for_element(Locator::Css("#token-dialog[open] #token-input")).await.unwrap();
    input.send_keys(&srv.token).await.unwrap();
    c.find(Locator::Css("#token-save")).await.unwrap().click().await.unwrap();
    wait_text(&c, "main", "No pipes yet").await;

    // Create the pipe through the form.
    c.goto(&format!("{}/#/new", srv.base())).await.unwrap();
    let area = c.wait().at_most(T).for_element(Locator::Css("main form textarea")).await.unwrap();
    let tables: Vec<_> = ["orders", "customers", "notes"].iter().map(|t| json!({"source": format!("{db}.{t}")})).collect();
    let spec = spec(&db, Flavor::MySql, json!(tables), &ch_db, "snapshot_and_cdc");
    area.clear().await.unwrap();
    area.send_keys(&spec.to_string()).await.unwrap();
    click_button(&c, "main form", "Create pipe").await;
    wait_text(&c, "main h1", &db).await;
    wait_text(&c, ".section-head .badge", "Running").await;
    for i in 0..5 {
        my.query_drop(format!("UPDATE {db}.orders SET v = v + 1 WHERE id <= {}", 100 * (i + 1))).await.unwrap();
        my.query_drop(format!("DELETE FROM {db}.customers WHERE id = {}", i + 1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    // The lag and throughput charts draw lines once samples are in (they refresh every 10 s).
    let start = Instant::now();
    loop {
        let lines = c.find_all(Locator::Css("#charts figure[data-metric='changes_per_second'] path.line")).await.unwrap();
        let lag = c.find_all(Locator::Css("#charts figure[data-metric='lag_seconds'] path.line")).await.unwrap();
        if !lines.is_empty() && !lag.is_empty() {
            break;
        }
        assert!(start.elapsed() < T, "the charts never drew a line");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    screenshot(&c, 1400, "pipe-1400.png").await;
    screenshot(&c, 390, "pipe-390.png").await;
    c.set_window_size(1400, 1000).await.unwrap();

    // Pause and resume.
    click_button(&c, ".section-head", "Pause").await;
    wait_text(&c, ".section-head .badge", "Paused").await;
    click_button(&c, ".section-head", "Resume").await;
    wait_text(&c, ".section-head .badge", "Running").await;

    // A setting.
    let inp = c.find(Locator::Css("form.settings input[name='pull_batch_size']")).await.unwrap();
    inp.clear().await.unwrap();
    inp.send_keys("4321").await.unwrap();
    click_button(&c, "form.settings", "Apply").await;
    wait_text(&c, "main", "Applied from the next batch").await;
    eventually(T, || async {
        let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
        if v["settings"]["pull_batch_size"] == 4321 {
            Ok(())
        } else {
            Err(v["settings"].to_string())
        }
    })
    .await;

    // Remove a table (keeping its destination table).
    let start = Instant::now();
    loop {
        let rows = c.find_all(Locator::Css("main table.grid tbody tr")).await.unwrap();
        let mut clicked = false;
        for r in rows {
            if r.text().await.unwrap_or_default().contains(&format!("{db}.notes")) {
                if let Ok(b) = r.find(Locator::XPath(".//button[contains(., 'Remove')]")).await {
                    if b.is_enabled().await.unwrap_or(false) {
                        b.click().await.unwrap();
                        clicked = true;
                        break;
                    }
                }
            }
        }
        if clicked {
            break;
        }
        assert!(start.elapsed() < T, "no Remove button for notes");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    confirm(&c).await;
    eventually(T, || async {
        let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
        let n = v["tables"].as_array().map(|t| t.len()).unwrap_or(0);
        if n == 2 && v["state"] == "Running" {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;

    // A table in Error: its error and a Resync button show, and the alert reaches the webhook.
    my.query_drop(format!("ALTER TABLE {db}.customers MODIFY COLUMN v TINYINT")).await.unwrap();
    my.query_drop(format!("INSERT INTO {db}.customers VALUES (9999, 3)")).await.unwrap();
    wait_text(&c, "main", "Recent warnings and errors").await;
    eventually(T, || async {
        let got = hooks.lock().unwrap().clone();
        if got.iter().any(|h| h["status"] == "firing" && h["rule"] == "table_error" && h["table"] == "customers") {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    screenshot(&c, 1400, "table-error-1400.png").await;
    c.set_window_size(1400, 1000).await.unwrap();
    click_button(&c, "main table.grid", "Resync").await;
    eventually(T, || async {
        let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
        let t = v["tables"].as_array().unwrap().iter().find(|t| t["destination"] == "customers").cloned().unwrap_or_default();
        if t["state"] == "Running" && v["state"] == "Running" {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
    eventually(T, || async { same_table(Flavor::MySql.url(), &db, "customers", &ch_db, "customers").await }).await;

    // The pipe list: search and the list screenshot.
    c.goto(&format!("{}/#/", srv.base())).await.unwrap();
    wait_text(&c, "#pipe-list", &db).await;
    screenshot(&c, 1400, "pipes-1400.png").await;
    screenshot(&c, 390, "pipes-390.png").await;
    c.set_window_size(1400, 1000).await.unwrap();
    c.find(Locator::Css("#pipe-search")).await.unwrap().send_keys("no-such-name").await.unwrap();
    wait_text(&c, "main", "No pipe matches the search").await;

    // An unknown pipe, then a server that is gone.
    c.goto(&format!("{}/#/pipe/nope", srv.base())).await.unwrap();
    wait_text(&c, "#no-such-pipe", "No such pipe").await;
    c.goto(&format!("{}/#/pipe/{db}", srv.base())).await.unwrap();
    wait_text(&c, ".section-head .badge", "Running").await;
    srv.kill9();
    let start = Instant::now();
    loop {
        let shown = c.find(Locator::Css("#offline-badge")).await.unwrap().is_displayed().await.unwrap_or(false);
        if shown {
            break;
        }
        assert!(start.elapsed() < T, "the page never said the server is offline");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let inert = c.execute("return document.getElementById('main').inert", vec![]).await.unwrap();
    assert_eq!(inert, json!(true), "actions stay enabled while the server is offline");
    srv.restart().await;
    let (code, _) = srv.call(Method::DELETE, &format!("/v1/pipes/{db}?drop_tables=true"), None).await;
    assert_eq!(code, 204);
    c.close().await.unwrap();
}
