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

/// Opens the dashboard and signs in with the server's token (no pipe yet).
async fn sign_in(c: &Client, srv: &SluiceServer) {
    c.goto(&srv.base()).await.unwrap();
    let input = c.wait().at_most(T).for_element(Locator::Css("#token-dialog[open] #token-input")).await.unwrap();
    input.send_keys(&srv.token).await.unwrap();
    c.find(Locator::Css("#token-save")).await.unwrap().click().await.unwrap();
    wait_text(c, "main", "No pipes yet").await;
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
    let mut last = String::new();
    loop {
        for b in c.find_all(Locator::Css(&format!("{scope} button"))).await.unwrap() {
            if b.text().await.unwrap_or_default().trim() == label && b.is_enabled().await.unwrap_or(false) {
                // The page re-renders every 2 s: a button gone stale meanwhile is looked up again.
                center(c, &b).await;
                match b.click().await {
                    Ok(()) => return,
                    Err(e) => last = e.to_string(),
                }
            }
        }
        assert!(start.elapsed() < T, "no enabled button {label:?} in {scope} ({last})");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Scrolls `e` to the middle of the window, clear of the sticky top bar.
async fn center(c: &Client, e: &fantoccini::elements::Element) {
    let _ = c.execute("arguments[0].scrollIntoView({block: 'center'})", vec![serde_json::to_value(e).unwrap()]).await;
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
    sign_in(&c, &srv).await;

    // Create the pipe from its JSON spec (the form's Advanced (JSON) tab).
    c.goto(&format!("{}/#/new", srv.base())).await.unwrap();
    click_button(&c, "main form .tabs", "Advanced (JSON)").await;
    let area = c.wait().at_most(T).for_element(Locator::Css("#spec-json")).await.unwrap();
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

/// Types `value` into the input matching `css` (cleared first).
async fn fill(c: &Client, css: &str, value: &str) {
    let e = c.wait().at_most(T).for_element(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no {css}"));
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    let e = c.wait().at_most(T).for_element(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no {css}"));
    center(c, &e).await;
    e.click().await.unwrap();
}

/// Fills the guided form's pipe, source and destination fields for the test bed's MySQL.
async fn fill_connection(c: &Client, name: &str, password: &str, ch_db: &str) {
    let url = url::Url::parse(Flavor::MySql.url()).unwrap();
    fill(c, "input[name='name']", name).await;
    fill(c, "input[name='source.host']", url.host_str().unwrap()).await;
    fill(c, "input[name='source.port']", &url.port().unwrap().to_string()).await;
    fill(c, "input[name='source.user']", url.username()).await;
    fill(c, "input[name='source.password']", password).await;
    fill(c, "input[name='destination.url']", &testbed().clickhouse_url).await;
    fill(c, "input[name='destination.database']", ch_db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guided_form_creates_and_edits_a_pipe_in_chromium() {
    let Some((_driver, c)) = browser().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let db = unique("form");
    let ch_db = format!("{db}_ch");
    let mut my = mysql(Flavor::MySql).await;
    my.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    my.query_drop(format!("CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL, secret VARCHAR(20), v INT)"))
        .await
        .unwrap();
    let values: Vec<String> = (1..=1500).map(|i| format!("({i}, 'n{i}', 's{i}', {})", i % 7)).collect();
    my.query_drop(format!("INSERT INTO {db}.items VALUES {}", values.join(","))).await.unwrap();
    my.query_drop(format!("CREATE TABLE {db}.events (a INT, b INT)")).await.unwrap();
    let password = url::Url::parse(Flavor::MySql.url()).unwrap().password().unwrap_or("").to_string();

    sign_in(&c, &srv).await;

    // The guided form: connection fields, then Test connection runs the pre-flight checks.
    c.goto(&format!("{}/#/new", srv.base())).await.unwrap();
    fill_connection(&c, &db, &password, &ch_db).await;
    fill(&c, "input[name='settings.sync_interval_ms']", "300").await;
    click(&c, "#test-connection").await;
    wait_text(&c, "#checks-msg", "All checks passed").await;
    wait_text(&c, "#checks-result", "PASS").await;
    wait_text(&c, "#checks-result", "destination_connection").await;
    assert!(
        c.find_all(Locator::Css("#checks-result li.check-fail")).await.unwrap().is_empty(),
        "a check failed: {}",
        text(&c, "#checks-result").await
    );

    // The table picker (loaded after a passing test): the keyless table says which option includes it.
    fill(&c, "#table-search", &db).await;
    click(&c, &format!("input[data-source='{db}.items']")).await;
    wait_text(&c, &format!("li[data-table='{db}.events']"), "key_columns").await;
    click(&c, &format!("[data-options='{db}.items'] input[data-exclude='secret']")).await;
    wait_text(&c, "#selected-count", "1 table entry selected").await;
    // The screenshots show the checks and the picker.
    c.execute("document.getElementById('test-connection').closest('.card').scrollIntoView(); window.scrollBy(0, -60);", vec![])
        .await
        .unwrap();
    screenshot(&c, 1400, "form-1400.png").await;
    screenshot(&c, 390, "form-390.png").await;
    c.set_window_size(1400, 1000).await.unwrap();

    // The JSON tab shows the same spec, and an edit there shows in the form.
    click_button(&c, "main form .tabs", "Advanced (JSON)").await;
    let json: serde_json::Value =
        serde_json::from_str(&c.find(Locator::Css("#spec-json")).await.unwrap().prop("value").await.unwrap().unwrap()).unwrap();
    assert_eq!(json["tables"], json!([{"source": format!("{db}.items"), "exclude_columns": ["secret"]}]), "{json}");
    assert_eq!((json["name"].as_str(), json["settings"]["sync_interval_ms"].as_u64()), (Some(db.as_str()), Some(300)), "{json}");
    c.execute(
        "const a = document.getElementById('spec-json'); const v = JSON.parse(a.value); v.settings.pull_batch_size = 5000; \
         a.value = JSON.stringify(v); a.dispatchEvent(new Event('input'));",
        vec![],
    )
    .await
    .unwrap();
    click_button(&c, "main form .tabs", "Form").await;
    let batch = c.find(Locator::Css("input[name='settings.pull_batch_size']")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(batch.as_deref(), Some("5000"));

    // Create: the pipe runs, the destination equals the source without the excluded column.
    click_button(&c, "main form", "Create pipe").await;
    wait_text(&c, "main h1", &db).await;
    srv.wait_state(&db, "Running", T).await;
    my.query_drop(format!("INSERT INTO {db}.items VALUES (5001, 'late', 'x', 1)")).await.unwrap();
    my.query_drop(format!("UPDATE {db}.items SET v = v + 10 WHERE id <= 20")).await.unwrap();
    let same = || async {
        let cols = ch_rows(&format!("SELECT name FROM system.columns WHERE database = '{ch_db}' AND table = 'items' AND name NOT LIKE '\\\\_peerdb%' ORDER BY position")).await?;
        let cols: Vec<&str> = cols.iter().map(|r| r[0].as_str()).collect();
        if cols != ["id", "name", "v"] {
            return Err(format!("destination columns {cols:?}"));
        }
        let mut m = mysql(Flavor::MySql).await;
        let src = src_rows(&mut m, &format!("SELECT id, name, v FROM {db}.items ORDER BY id")).await;
        let dst = ch_rows(&format!("SELECT id, name, v FROM {ch_db}.items FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id")).await?;
        diff(&src, &dst)
    };
    eventually(T, same).await;
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    assert_eq!(v["settings"]["pull_batch_size"], 5000, "{v}");

    // Edit source of the paused pipe (password left blank: unchanged), then Resume from the form.
    click_button(&c, ".section-head", "Pause").await;
    wait_text(&c, ".section-head .badge", "Paused").await;
    click_button(&c, ".section-head", "Edit source…").await;
    let sel = c.wait().at_most(T).for_element(Locator::Css("#edit-source select[name='replication_mechanism']")).await.unwrap();
    sel.select_by_value("file_pos").await.unwrap();
    click_button(&c, "#edit-source", "Save source").await;
    wait_text(&c, "#edit-source-msg", "Source saved").await;
    let (_, v) = srv.call(Method::GET, &format!("/v1/pipes/{db}"), None).await;
    assert_eq!(v["source"]["replication_mechanism"], "file_pos", "{v}");
    click_button(&c, "#edit-source-next", "Resume").await;
    wait_text(&c, ".section-head .badge", "Running").await;
    my.query_drop(format!("DELETE FROM {db}.items WHERE id <= 5")).await.unwrap();
    eventually(T, same).await;

    // A wrong password: Test connection shows the failure, and Create is refused with it shown.
    c.goto(&format!("{}/#/new", srv.base())).await.unwrap();
    let bad = format!("{db}_bad");
    fill_connection(&c, &bad, "certainly-wrong", &format!("{bad}_ch")).await;
    click(&c, "#test-connection").await;
    wait_text(&c, "#checks-msg", "failed").await;
    wait_text(&c, "#checks-result li.check-fail", "Access denied").await;
    assert!(text(&c, "#checks-result li.check-fail").await.contains("source_connection"));
    // Create without a table: the API's validation error shows next to the form.
    click_button(&c, "main form", "Create pipe").await;
    wait_text(&c, "#create-msg", "tables: must list at least one source table").await;
    // With a table (typed in the JSON tab): refused by the checks, the failure shown.
    click_button(&c, "main form .tabs", "Advanced (JSON)").await;
    c.execute(
        &format!(
            "const a = document.getElementById('spec-json'); const v = JSON.parse(a.value); v.tables = [{{source: '{db}.items'}}]; \
             a.value = JSON.stringify(v); a.dispatchEvent(new Event('input'));"
        ),
        vec![],
    )
    .await
    .unwrap();
    click_button(&c, "main form", "Create pipe").await;
    wait_text(&c, "#create-msg", "Access denied").await;
    click_button(&c, "main form .tabs", "Form").await;
    wait_text(&c, "#checks-msg", "refused by the pre-flight checks").await;
    wait_text(&c, "#checks-result li.check-fail", "source_connection").await;
    let (code, _) = srv.call(Method::GET, &format!("/v1/pipes/{bad}"), None).await;
    assert_eq!(code, 404, "a pipe refused by its checks was stored");

    let (code, _) = srv.call(Method::DELETE, &format!("/v1/pipes/{db}?drop_tables=true"), None).await;
    assert_eq!(code, 204);
    my.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
    c.close().await.unwrap();
}
