//! Shared integration-test support: the test bed's servers, pipes run as real
//! `sluice` processes, and source-vs-destination equality checks.
#![allow(dead_code)]

pub mod workload;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Connection settings the test bed printed (`scripts/testbed up`).
pub struct Testbed {
    pub mysql_url: String,
    pub mariadb_url: String,
    pub mariadb118_url: String,
    pub clickhouse_url: String,
    pub extra: std::collections::HashMap<String, String>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Starts the test bed through the project's own script (idempotent, locked) once per process.
pub fn testbed() -> &'static Testbed {
    static TB: OnceLock<Testbed> = OnceLock::new();
    TB.get_or_init(|| {
        let out = Command::new(repo_root().join("scripts/testbed"))
            .arg("up")
            .stderr(Stdio::inherit())
            .output()
            .expect("cannot run scripts/testbed up");
        assert!(out.status.success(), "scripts/testbed up failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut vars = std::collections::HashMap::new();
        for line in text.lines() {
            if let Some((k, v)) = line.trim().strip_prefix("export ").and_then(|l| l.split_once('=')) {
                vars.insert(k.to_string(), v.trim_matches('"').trim_matches('\'').to_string());
            }
        }
        let get = |k: &str| vars.get(k).cloned().unwrap_or_else(|| panic!("testbed did not print {k}"));
        Testbed {
            mysql_url: get("SLUICE_TEST_MYSQL_URL"),
            mariadb_url: get("SLUICE_TEST_MARIADB_URL"),
            mariadb118_url: get("SLUICE_TEST_MARIADB118_URL"),
            clickhouse_url: get("SLUICE_TEST_CLICKHOUSE_URL"),
            extra: vars,
        }
    })
}

/// Which source server a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// MySQL 9.7.
    MySql,
    /// MariaDB 10.11.
    MariaDb,
    /// MariaDB 11.8.
    MariaDb118,
}

impl Flavor {
    pub fn url(self) -> &'static str {
        match self {
            Flavor::MySql => &testbed().mysql_url,
            Flavor::MariaDb => &testbed().mariadb_url,
            Flavor::MariaDb118 => &testbed().mariadb118_url,
        }
    }
    pub fn tag(self) -> &'static str {
        match self {
            Flavor::MySql => "my",
            Flavor::MariaDb => "ma",
            Flavor::MariaDb118 => "m118",
        }
    }
    /// Whether the server is a MariaDB (any version).
    pub fn is_mariadb(self) -> bool {
        matches!(self, Flavor::MariaDb | Flavor::MariaDb118)
    }
}

pub async fn mysql(flavor: Flavor) -> Conn {
    let mut c = Conn::new(Opts::from_url(flavor.url()).unwrap()).await.expect("connect to source");
    c.query_drop("SET time_zone = '+00:00'").await.unwrap();
    c
}

pub async fn mysql_url(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).unwrap()).await.expect("connect to source")
}

pub fn clickhouse() -> clickhouse::Client {
    clickhouse::Client::default().with_url(&testbed().clickhouse_url).with_compression(clickhouse::Compression::Lz4)
}

/// Runs a ClickHouse query and returns its TabSeparated rows (unescaped cells; NULL as `\N`).
pub async fn ch_rows(sql: &str) -> Result<Vec<Vec<String>>, String> {
    let mut cur = clickhouse().query(sql).fetch_bytes("TabSeparated").map_err(|e| e.to_string())?;
    let bytes = cur.collect().await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.lines().map(|l| l.split('\t').map(unescape_tsv).collect()).collect())
}

fn unescape_tsv(s: &str) -> String {
    if s == "\\N" {
        return s.to_string();
    }
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('0') => out.push('\0'),
                Some('\\') => out.push('\\'),
                Some('\'') => out.push('\''),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Renders a source value the way the comparison expects (NULL as `\N`).
pub fn render(v: &Value) -> String {
    match v {
        Value::NULL => "\\N".into(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.as_sql(true),
    }
}

pub async fn src_rows(conn: &mut Conn, sql: &str) -> Vec<Vec<String>> {
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.unwrap();
    rows.into_iter().map(|r| r.unwrap().iter().map(render).collect()).collect()
}

/// A test bed URL by its variable name, e.g. `SLUICE_TEST_MARIADB_SCRATCH_URL`.
pub fn testbed_url(var: &str) -> String {
    testbed().extra.get(var).cloned().unwrap_or_else(|| panic!("testbed did not print {var}"))
}

/// Rotates the binlog of the server behind `c` and purges every file before the
/// new one, retrying until `file` is gone: PURGE skips a file an old dump thread
/// still holds (until the server notices its closed connection).
pub async fn purge_binlogs_through(c: &mut Conn, file: &str) {
    c.query_drop("FLUSH BINARY LOGS").await.unwrap();
    let current: String = c.query_first::<mysql_async::Row, _>("SHOW MASTER STATUS").await.unwrap().unwrap().get(0).unwrap();
    let start = Instant::now();
    loop {
        c.query_drop(format!("PURGE BINARY LOGS TO '{current}'")).await.unwrap();
        let names: Vec<String> =
            c.query::<mysql_async::Row, _>("SHOW BINARY LOGS").await.unwrap().into_iter().map(|r| r.get(0).unwrap()).collect();
        if !names.iter().any(|n| n == file) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{file} was never purged: {names:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether ClickHouse has database `db`.
pub async fn ch_database_exists(db: &str) -> bool {
    let r = ch_rows(&format!("SELECT count() FROM system.databases WHERE name = '{db}'")).await.unwrap();
    r[0][0] != "0"
}

/// A unique name for this test's databases.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), rand::random::<u32>() % 1_000_000)
}

/// A `sluice run` child process with its own data dir and log file.
pub struct SluiceRun {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub spec_path: PathBuf,
    /// Extra environment of the next (re)start, e.g. `FAILPOINTS`.
    pub env: Vec<(String, String)>,
    /// The catalog's URL when it is not the data dir's SQLite file (see `test_catalog_url`).
    pub catalog_url: Option<String>,
}

impl SluiceRun {
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sluice.log")).unwrap_or_default()
    }

    pub fn start(dir: &Path, spec: &serde_json::Value) -> SluiceRun {
        std::fs::create_dir_all(dir).unwrap();
        let spec_path = dir.join("pipe.json");
        std::fs::write(&spec_path, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
        let catalog_url = test_catalog_url_blocking(dir);
        let mut run = SluiceRun { child: None, dir: dir.to_path_buf(), spec_path, env: Vec::new(), catalog_url };
        run.restart();
        run
    }

    /// `start` with extra environment variables (kept for restarts until `env` is cleared).
    pub fn start_with_env(dir: &Path, spec: &serde_json::Value, env: &[(&str, &str)]) -> SluiceRun {
        std::fs::create_dir_all(dir).unwrap();
        let spec_path = dir.join("pipe.json");
        std::fs::write(&spec_path, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let catalog_url = test_catalog_url_blocking(dir);
        let mut run = SluiceRun { child: None, dir: dir.to_path_buf(), spec_path, env, catalog_url };
        run.restart();
        run
    }

    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("sluice.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args(["run", "--config"]).arg(&self.spec_path).arg("--data-dir").arg(self.dir.join("data")).env("RUST_LOG", "info,sqlx=warn");
        match &self.catalog_url {
            Some(url) => cmd.env("SLUICE_CATALOG_URL", url),
            None => cmd.env_remove("SLUICE_CATALOG_URL"),
        };
        let child =
            cmd.envs(self.env.iter().map(|(k, v)| (k, v))).stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("spawn sluice");
        self.child = Some(child);
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Waits for the process to exit by itself; returns its success.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        let child = self.child.as_mut().expect("not running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.success();
            }
            assert!(start.elapsed() < timeout, "sluice did not exit within {timeout:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for SluiceRun {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The pipe spec for a test pipe from `flavor` into ClickHouse database `ch_db`.
pub fn spec(name: &str, flavor: Flavor, tables: serde_json::Value, ch_db: &str, mode: &str) -> serde_json::Value {
    spec_for_url(name, flavor.url(), tables, ch_db, mode)
}

/// The pipe spec for a test pipe from the server at `url` (`mysql://user:pw@host:port`).
pub fn spec_for_url(name: &str, url: &str, tables: serde_json::Value, ch_db: &str, mode: &str) -> serde_json::Value {
    let url = url::Url::parse(url).unwrap();
    serde_json::json!({
        "name": name,
        "source": {"host": url.host_str().unwrap(), "port": url.port().unwrap(), "user": url.username(),
                   "password": url.password().unwrap_or(""), "server_id": 1000 + rand::random::<u32>() % 1_000_000},
        "destination": {"url": testbed().clickhouse_url, "user": "default", "password": "", "database": ch_db},
        "tables": tables,
        "mode": mode,
        "settings": {"sync_interval_ms": 300, "pull_batch_size": 20000, "snapshot_rows_per_chunk": 20000}
    })
}

/// Polls until `check` returns `Ok`, or panics with its last error after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) if start.elapsed() > timeout => panic!("did not converge within {timeout:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Waits until `log()` (a server's or a run's log) contains `needle`; after
/// `timeout`, panics showing the log.
pub async fn eventually_logged(timeout: Duration, log: impl Fn() -> String, needle: &str) {
    eventually(timeout, || {
        let text = log();
        async move {
            if text.contains(needle) {
                Ok(())
            } else {
                Err(format!("{needle:?} is not in the log yet:\n{text}"))
            }
        }
    })
    .await
}

/// Starts a verification of `pipe` (request `body`) and waits up to `limit` for it
/// to end; asserts that it ended `done` and returns the run.
pub async fn run_verification_within(s: &SluiceServer, pipe: &str, body: serde_json::Value, limit: Duration) -> serde_json::Value {
    let (code, v) = s.call(reqwest::Method::POST, &format!("/v1/pipes/{pipe}/verify"), Some(body)).await;
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_i64().unwrap();
    let start = std::time::Instant::now();
    loop {
        let (code, v) = s.call(reqwest::Method::GET, &format!("/v1/pipes/{pipe}/verifications/{id}"), None).await;
        assert_eq!(code, 200, "{v}");
        if v["state"] != "running" {
            assert_eq!(v["state"], "done", "{v:#}\n{}", s.log());
            return v;
        }
        assert!(start.elapsed() < limit, "verification #{id} did not end: {v:#}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The result of table `dest` (destination name) in a verification run.
pub fn verified_table<'a>(run: &'a serde_json::Value, dest: &str) -> &'a serde_json::Value {
    run["tables"].as_array().unwrap().iter().find(|t| t["destination"] == dest).unwrap_or_else(|| panic!("no {dest} in {run:#}"))
}

/// The highest `_peerdb_version` in a destination table.
pub async fn max_version(table: &str) -> i64 {
    ch_rows(&format!("SELECT max(_peerdb_version) FROM {table}")).await.unwrap()[0][0].parse().unwrap()
}

/// Compares two row sets, describing the first difference.
pub fn diff(src: &[Vec<String>], dst: &[Vec<String>]) -> Result<(), String> {
    if src == dst {
        return Ok(());
    }
    if src.len() != dst.len() {
        return Err(format!("source has {} rows, destination {}", src.len(), dst.len()));
    }
    for (a, b) in src.iter().zip(dst) {
        if a != b {
            return Err(format!("first differing row: source {a:?} vs destination {b:?}"));
        }
    }
    Err("rows differ".into())
}

/// A `sluice server` child process on a free port, with its own data dir and token.
pub struct SluiceServer {
    /// The catalog's URL when it is not the data dir's SQLite file (see `test_catalog_url`).
    pub catalog_url: Option<String>,
    /// Extra environment of the next (re)start, e.g. `FAILPOINTS`.
    pub env: Vec<(String, String)>,
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub port: u16,
    pub token: String,
    pub http: reqwest::Client,
}

impl SluiceServer {
    pub async fn start(dir: &Path) -> SluiceServer {
        std::fs::create_dir_all(dir).unwrap();
        let catalog_url = test_catalog_url(dir).await;
        Self::start_with_catalog(dir, catalog_url).await
    }

    /// A server on the catalog `catalog_url` (`None`: the data dir's SQLite file), whatever `SLUICE_TEST_CATALOG` says.
    pub async fn start_with_catalog(dir: &Path, catalog_url: Option<String>) -> SluiceServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        std::fs::create_dir_all(dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut s = SluiceServer {
            catalog_url,
            env: Vec::new(),
            child: None,
            dir: dir.to_path_buf(),
            port,
            token: format!("test-token-{}", rand::random::<u64>()),
            http: reqwest::Client::new(),
        };
        s.restart().await;
        s
    }

    /// A server on `catalog_url` whose every (re)start gets the extra environment `env`
    /// (e.g. `SLUICE_WORKER_ID`, `SLUICE_LEASE_TTL_S` for one of several workers).
    pub async fn start_with_env(dir: &Path, catalog_url: Option<String>, env: &[(&str, &str)]) -> SluiceServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        std::fs::create_dir_all(dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut s = SluiceServer {
            catalog_url,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            child: None,
            dir: dir.to_path_buf(),
            port,
            token: "test-token-shared-by-the-workers".to_string(),
            http: reqwest::Client::new(),
        };
        s.restart().await;
        s
    }

    /// Waits for the process to exit by itself (a failpoint crash); returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        let child = self.child.as_mut().expect("not running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.code();
            }
            assert!(start.elapsed() < timeout, "sluice server did not exit within {timeout:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub async fn restart(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("server.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args(["server", "--listen", &format!("127.0.0.1:{}", self.port), "--data-dir"])
            .arg(self.dir.join("data"))
            .env("SLUICE_API_TOKEN", &self.token)
            .env("RUST_LOG", "info,sqlx=warn");
        match &self.catalog_url {
            Some(url) => cmd.env("SLUICE_CATALOG_URL", url),
            None => cmd.env_remove("SLUICE_CATALOG_URL"),
        };
        let child = cmd
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn sluice server");
        self.child = Some(child);
        let url = format!("{}/healthz", self.base());
        for _ in 0..200 {
            if self.http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("sluice server did not start:\n{}", self.log());
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Sends a request with the token; returns status and JSON body (Null when empty).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base())).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)) },
        )
    }

    pub async fn state(&self, name: &str) -> String {
        let (code, v) = self.call(reqwest::Method::GET, &format!("/v1/pipes/{name}"), None).await;
        assert_eq!(code, 200, "{v}");
        v["state"].as_str().unwrap().to_string()
    }

    /// Waits until the pipe reaches `want`, returning every state seen on the way.
    pub async fn wait_state(&self, name: &str, want: &str, timeout: Duration) -> Vec<String> {
        let start = Instant::now();
        let mut seen: Vec<String> = Vec::new();
        loop {
            let s = self.state(name).await;
            if seen.last() != Some(&s) {
                seen.push(s.clone());
            }
            if s == want {
                return seen;
            }
            assert!(start.elapsed() < timeout, "pipe {name} never reached {want}; seen {seen:?}\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The test bed's PostgreSQL server (`SLUICE_TEST_POSTGRES_URL`, from the environment or the test bed).
pub fn postgres_server_url() -> Option<String> {
    std::env::var("SLUICE_TEST_POSTGRES_URL").ok().or_else(|| testbed().extra.get("SLUICE_TEST_POSTGRES_URL").cloned())
}

/// The catalog of a test server in `dir`: with `SLUICE_TEST_CATALOG=postgres`
/// a Postgres database of its own on the server of `SLUICE_TEST_POSTGRES_URL`,
/// created for the first server started in `dir` and reused by later ones
/// (its URL is kept in `dir/catalog-url`); otherwise `None` (the data dir's
/// SQLite file). The databases are left when the test ends (a test may
/// start a server on the same dir again); the next server created drops
/// those whose test process is gone (their names carry its pid).
pub async fn test_catalog_url(dir: &Path) -> Option<String> {
    match std::env::var("SLUICE_TEST_CATALOG").as_deref() {
        Ok("postgres") => {}
        Ok("sqlite") | Ok("") | Err(_) => return None,
        Ok(other) => panic!("SLUICE_TEST_CATALOG={other:?}: use postgres or sqlite"),
    }
    let kept = dir.join("catalog-url");
    if let Ok(url) = std::fs::read_to_string(&kept) {
        return Some(url);
    }
    let server = postgres_server_url().expect("SLUICE_TEST_CATALOG=postgres needs the test bed's PostgreSQL (SLUICE_TEST_POSTGRES_URL)");
    use sluice_catalog::pg_admin;
    for old in pg_admin::databases(&server, "sluice_it_").await.expect("list test databases") {
        let pid = old.trim_start_matches("sluice_it_").split('_').next().unwrap_or_default();
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = pg_admin::drop_database(&server, &old).await;
        }
    }
    let name = format!("sluice_it_{}_{:016x}", std::process::id(), rand::random::<u64>());
    let url = pg_admin::recreate_database(&server, &name).await.expect("create the test catalog database");
    std::fs::write(&kept, &url).unwrap();
    Some(url)
}

/// `test_catalog_url` for callers outside async code (its own thread and runtime).
pub fn test_catalog_url_blocking(dir: &Path) -> Option<String> {
    let dir = dir.to_path_buf();
    std::thread::spawn(move || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(test_catalog_url(&dir)))
        .join()
        .expect("creating the test catalog")
}

impl Drop for SluiceServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The source table's columns, in order.
pub async fn src_columns(c: &mut Conn, db: &str, table: &str) -> Vec<String> {
    c.exec(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        (db, table),
    )
    .await
    .unwrap()
}

/// The destination table `ch_db.ch_table` (its columns, in order, and its `FINAL` rows, by `id`)
/// equals the source table `db.table` at `url`, value for value.
pub async fn same_table(url: &str, db: &str, table: &str, ch_db: &str, ch_table: &str) -> Result<(), String> {
    let mut c = mysql_url(url).await;
    let cols = src_columns(&mut c, db, table).await;
    let ch_cols: Vec<String> = ch_rows(&format!(
        "SELECT name FROM system.columns WHERE database = '{ch_db}' AND table = '{ch_table}' AND name NOT LIKE '\\\\_peerdb\\\\_%' ORDER BY position"
    ))
    .await?
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    if cols != ch_cols {
        return Err(format!("{table}: columns differ: source {cols:?}, destination {ch_cols:?}"));
    }
    let list = cols.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
    let src = src_rows(&mut c, &format!("SELECT {list} FROM `{db}`.`{table}` ORDER BY id")).await;
    let dst = ch_rows(&format!("SELECT {list} FROM `{ch_db}`.`{ch_table}` FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id")).await?;
    diff(&src, &dst).map_err(|e| format!("{table}: {e}"))
}
