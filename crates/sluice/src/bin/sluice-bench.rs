//! `sluice-bench`: throughput of the initial load and of CDC against the test
//! bed's real servers, each figure beside a ceiling measured in the same run
//! (README "Benchmarks"; run it with `scripts/bench`).
//!
//! Initial load of a generated table (`--rows`, default 5,000,000; 11 columns
//! of mixed types) from MySQL and MariaDB:
//! - source ceiling: the same partitions read in parallel through the same
//!   driver and decoder as the snapshot, rows discarded;
//! - destination ceiling: one chunk of the same rows, encoded once, inserted
//!   over and over with the same parallelism until as many rows were sent;
//! - Sluice: `sluice run` (snapshot_only) as a child process, wall time from
//!   start to exit, peak RSS (VmHWM) of that process.
//!
//! Verification (`sluice verify`) of the table the default snapshot run copied,
//! unthrottled (`verify_rows_per_second` at its maximum): rows/s and the CPU
//! seconds of Sluice, the source server and ClickHouse per million rows.
//!
//! CDC (`cdc_only` pipe, default settings): end-to-end changes/s for 1,000-row
//! transactions and for single-row transactions written as fast as the
//! generator can; and, paced at a trickle (one change every 2 s) and at 100,
//! 1,000 and 10,000 changes/s, the achieved rate, the p50/p99 visibility lag
//! of each change (the time its transaction's commit returned to the
//! generator → the first poll of ClickHouse, every `POLL`, that sees it) and
//! the inserts per second into the table (distinct `_peerdb_synced_at`
//! values: one per insert). `--baseline-sluice PATH` runs the paced loads
//! again with another `sluice` binary (e.g. an older build) in the same run.

use anyhow::{bail, Context, Result};

/// The same allocator as `sluice` (see its `process_memory`), so that the
/// ceilings measured here and the runs of `sluice` pay the same for memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser;
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use serde_json::json;
use sluice_core::schema::TableId;
use sluice_core::spec::DestinationSpec;
use sluice_core::types::TableMapping;
use sluice_core::{ChangeOp, RowChange};
use sluice_sink::ClickHouseSink;
use sluice_source::snapshot::{Partition, TableReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Rows of the generated table.
    #[arg(long, default_value_t = 5_000_000)]
    rows: u64,
    /// `mysql`, `mariadb` or `both`.
    #[arg(long, default_value = "both")]
    source: String,
    #[arg(long)]
    skip_snapshot: bool,
    #[arg(long)]
    skip_cdc: bool,
    /// Skip the verification of the copied table (after the first Sluice snapshot run).
    #[arg(long)]
    skip_verify: bool,
    /// Only the first (default settings) Sluice snapshot run, not the other chunk/partition shapes.
    #[arg(long)]
    defaults_only: bool,
    /// Another `sluice` binary measured in the same run, as a baseline: the default snapshot
    /// load (CPU per row) and the paced CDC lag.
    #[arg(long)]
    baseline_sluice: Option<std::path::PathBuf>,
    /// CDC: only the paced (lag-at-rate) loads, not the throughput ones.
    #[arg(long)]
    lag_only: bool,
    /// Seconds each paced CDC load runs.
    #[arg(long, default_value_t = 20)]
    paced_secs: u64,
    /// Wide rows: snapshot and CDC of a table of 256 KB values and one of
    /// 2 MB values, peak RSS beside the memory budget.
    #[arg(long)]
    wide: bool,
    /// Rows of the 256 KB and of the 2 MB table (`--wide`).
    #[arg(long, value_delimiter = ',', default_values_t = [2000u64, 300])]
    wide_rows: Vec<u64>,
    /// Memory budgets (`--memory-budget-mb`) the wide-row runs use, MiB.
    #[arg(long, value_delimiter = ',', default_values_t = [256u64])]
    wide_budgets: Vec<u64>,
}

struct Server {
    name: &'static str,
    url: String,
}

fn testbed() -> Result<(Vec<Server>, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(root.join("scripts/testbed")).arg("up").stderr(Stdio::inherit()).output().context("scripts/testbed up")?;
    if !out.status.success() {
        bail!("scripts/testbed up failed");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {k}=")).map(str::to_string))
            .with_context(|| format!("testbed printed no {k}"))
    };
    Ok((
        vec![
            Server { name: "MySQL 9.7", url: get("SLUICE_TEST_MYSQL_URL")? },
            Server { name: "MariaDB 10.11", url: get("SLUICE_TEST_MARIADB_URL")? },
        ],
        get("SLUICE_TEST_CLICKHOUSE_URL")?,
    ))
}

async fn connect(url: &str) -> Result<Conn> {
    let mut c = Conn::new(Opts::from_url(url)?).await?;
    c.query_drop("SET time_zone = '+00:00'").await?;
    Ok(c)
}

const DB: &str = "sluice_bench";

/// Creates `sluice_bench.t` with `rows` rows unless it already has them.
async fn ensure_table(c: &mut Conn, rows: u64) -> Result<()> {
    c.query_drop(format!("CREATE DATABASE IF NOT EXISTS {DB}")).await?;
    let have: Option<u64> = c.query_first(format!("SELECT COUNT(*) FROM {DB}.t")).await.ok().flatten();
    if have == Some(rows) {
        return Ok(());
    }
    c.query_drop(format!("DROP TABLE IF EXISTS {DB}.t")).await?;
    c.query_drop(format!(
        "CREATE TABLE {DB}.t (id BIGINT PRIMARY KEY, a INT NOT NULL, b BIGINT, c DOUBLE, d DECIMAL(12,2) NOT NULL, \
         e VARCHAR(64) NOT NULL, f DATETIME(6) NOT NULL, g TIMESTAMP NULL, h ENUM('new','paid','shipped') NOT NULL, \
         i TEXT, j TINYINT NOT NULL) CHARACTER SET utf8mb4"
    ))
    .await?;
    // MySQL and MariaDB name the recursion limit differently; each ignores the other's.
    c.query_drop("SET SESSION cte_max_recursion_depth = 100000").await.ok();
    c.query_drop("SET SESSION max_recursive_iterations = 100000").await.ok();
    c.query_drop(format!("DROP TABLE IF EXISTS {DB}.seq")).await?;
    c.query_drop(format!("CREATE TABLE {DB}.seq (n INT PRIMARY KEY)")).await?;
    c.query_drop(format!(
        "INSERT INTO {DB}.seq WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 9999) SELECT n FROM s"
    ))
    .await?;
    let started = Instant::now();
    let mut done = 0u64;
    while done < rows {
        let step = (rows - done).min(500_000);
        c.query_drop(format!(
            "INSERT INTO {DB}.t SELECT {done} + a.n * 10000 + b.n + 1, (a.n * 7919 + b.n) % 1000000, a.n * b.n, (b.n + 0.5) / (a.n + 1.25), \
             ROUND((a.n * 10000 + b.n) * 0.37, 2), CONCAT('customer-', a.n, '-', b.n), \
             TIMESTAMP('2024-01-01') + INTERVAL (a.n * 10000 + b.n) SECOND + INTERVAL b.n MICROSECOND, \
             IF(b.n % 5 = 0, NULL, TIMESTAMP('2025-06-01') + INTERVAL b.n MINUTE), ELT(1 + b.n % 3, 'new', 'paid', 'shipped'), \
             IF(b.n % 3 = 0, NULL, REPEAT(CHAR(97 + b.n % 26), 40 + b.n % 20)), b.n % 100 \
             FROM {DB}.seq a JOIN {DB}.seq b WHERE a.n * 10000 + b.n < {step}"
        ))
        .await?;
        done += step;
        eprintln!("  generated {done}/{rows} rows ({:.0}s)", started.elapsed().as_secs_f64());
    }
    c.query_drop(format!("ANALYZE TABLE {DB}.t")).await?;
    Ok(())
}

fn spec(name: &str, url: &str, ch: &str, ch_db: &str, table: &str, mode: &str, settings: serde_json::Value) -> serde_json::Value {
    let u = url::Url::parse(url).unwrap();
    json!({"name": name,
        "source": {"host": u.host_str().unwrap(), "port": u.port().unwrap(), "user": u.username(), "password": u.password().unwrap_or(""),
                   "server_id": 900_000 + rand::random::<u32>() % 100_000},
        "destination": {"url": ch, "database": ch_db},
        "tables": [{"source": format!("{DB}.{table}")}], "mode": mode, "settings": settings})
}

async fn mapping(c: &mut Conn, table: &str) -> Result<TableMapping> {
    let t = sluice_source::discovery::describe(c, &TableId::new(DB, table)).await?;
    Ok(TableMapping::new(t, table.to_string()))
}

struct Measured {
    rows: u64,
    secs: f64,
    rss_mb: Option<f64>,
    /// CPU seconds used during the run by Sluice, the source server and ClickHouse.
    cpu: Vec<(&'static str, f64)>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.secs
    }
}

/// The source alone: every partition read and decoded, `parallel` at a time, rows discarded.
async fn source_only(url: &str, m: &TableMapping, parallel: usize, rows_per_partition: u64, limit: u64) -> Result<Measured> {
    let reader = Arc::new(TableReader::new(m)?);
    let mut c = connect(url).await?;
    let est = reader.estimated_rows(&mut c).await?;
    let parts = reader.plan_partitions(&mut c, est, rows_per_partition).await?.unwrap_or(vec![Partition::WHOLE]);
    let queue = Arc::new(std::sync::Mutex::new(parts));
    let total = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel {
        let (queue, total, reader, url) = (queue.clone(), total.clone(), reader.clone(), url.to_string());
        tasks.spawn(async move {
            let mut c = connect(&url).await?;
            loop {
                let Some(part) = queue.lock().unwrap().pop() else { return Ok::<_, anyhow::Error>(()) };
                let mut after = None;
                loop {
                    let chunk = reader.read_partition_chunk(&mut c, &part, after.as_ref(), limit, u64::MAX).await?;
                    total.fetch_add(chunk.rows.len() as u64, Ordering::Relaxed);
                    if (chunk.rows.len() as u64) < limit {
                        break;
                    }
                    after = chunk.last_key;
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(Measured { rows: total.load(Ordering::Relaxed), secs: started.elapsed().as_secs_f64(), rss_mb: None, cpu: Vec::new() })
}

/// The destination alone: one chunk of the table's rows, encoded once, inserted
/// `parallel` at a time until `rows` rows were sent.
async fn sink_only(url: &str, ch: &str, m: &TableMapping, rows: u64, parallel: usize, limit: u64) -> Result<(Measured, f64)> {
    let reader = TableReader::new(m)?;
    let mut c = connect(url).await?;
    let chunk = reader.read_chunk(&mut c, None, limit).await?;
    let n = chunk.rows.len() as u64;
    let changes: Vec<RowChange> = chunk.rows.into_iter().map(|cells| RowChange { op: ChangeOp::Upsert, version: 1, cells }).collect();
    let mut buf = Vec::new();
    ClickHouseSink::encode(m, &changes, &mut buf)?;
    let bytes_per_row = buf.len() as f64 / n as f64;
    let data = bytes::Bytes::from(buf);
    let dest = DestinationSpec::new(ch, "sluice_bench_sink");
    let sink = ClickHouseSink::new(&dest);
    sink.execute("DROP DATABASE IF EXISTS sluice_bench_sink").await?;
    sink.ensure_database().await?;
    sink.create_table(m).await?;
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel {
        let (sink, sent, data, m) = (sink.clone(), sent.clone(), data.clone(), m.clone());
        tasks.spawn(async move {
            while sent.fetch_add(n, Ordering::Relaxed) < rows {
                sink.write_encoded(&m, &m.destination, data.clone()).await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let secs = started.elapsed().as_secs_f64();
    sink.execute("DROP DATABASE IF EXISTS sluice_bench_sink").await?;
    Ok((Measured { rows: rows.div_ceil(n) * n, secs, rss_mb: None, cpu: Vec::new() }, bytes_per_row))
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The test bed's server processes whose CPU a load run accounts for.
fn server_pids(source: &str) -> Vec<(&'static str, u32)> {
    let pid = |path: &str| std::fs::read_to_string(path).ok().and_then(|p| p.trim().parse().ok());
    let dir = std::env::var("SLUICE_TESTBED_DIR").unwrap_or_else(|_| "/var/lib/sluice-testbed".into());
    let cache = std::env::var("SLUICE_TESTBED_CACHE").unwrap_or_else(|_| "/var/cache/sluice-testbed".into());
    let src = if source.starts_with("MySQL") {
        pid(&format!("{cache}/mysql-chroot/var/lib/sluice-mysql.pid"))
    } else {
        pid(&format!("{dir}/mariadb.pid"))
    };
    [("source server", src), ("ClickHouse server", pid(&format!("{dir}/clickhouse.pid")))]
        .into_iter()
        .filter_map(|(n, p)| p.map(|p| (n, p)))
        .collect()
}

/// Peak resident set (VmHWM) of a process, in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A `sluice run` child process; `peak_rss` is polled while it lives.
struct Run {
    child: std::process::Child,
    dir: tempfile::TempDir,
    rss: f64,
    cpu: f64,
}

impl Run {
    /// Runs the pipe with the `sluice` binary `exe` and `env`. With
    /// `SLUICE_BENCH_PERF=DIR` a `perf record` is attached to it, writing
    /// `DIR/<pipe>-<n>.data` (read it with `perf report -i`).
    fn start_with(exe: &Path, spec: &serde_json::Value, env: &[(&str, String)]) -> Result<Run> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("pipe.json"), spec.to_string())?;
        let log = std::fs::File::create(dir.path().join("sluice.log"))?;
        let child = Command::new(exe)
            .args(["run", "--config"])
            .arg(dir.path().join("pipe.json"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "info,sqlx=warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting sluice (build it with --release next to sluice-bench)")?;
        if let Ok(dir) = std::env::var("SLUICE_BENCH_PERF") {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {dir} (SLUICE_BENCH_PERF)"))?;
            static N: AtomicU64 = AtomicU64::new(0);
            let name = spec["name"].as_str().unwrap_or("run");
            let out = Path::new(&dir).join(format!("{name}-{}.data", N.fetch_add(1, Ordering::Relaxed)));
            eprintln!("  perf record of pid {} into {}", child.id(), out.display());
            // Ends by itself when the process it follows exits.
            Command::new("perf")
                .args(["record", "-q", "-F", "499", "-g", "-o"])
                .arg(&out)
                .args(["-p", &child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting perf record (SLUICE_BENCH_PERF)")?;
        }
        Ok(Run { child, dir, rss: 0.0, cpu: 0.0 })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sluice.log")).unwrap_or_default()
    }

    fn sample(&mut self) {
        if let Some(r) = peak_rss_mb(self.child.id()) {
            self.rss = self.rss.max(r);
        }
        if let Some(c) = cpu_secs(self.child.id()) {
            self.cpu = self.cpu.max(c);
        }
    }

    /// Waits for exit (sampling RSS); fails if the process failed.
    async fn wait(&mut self) -> Result<()> {
        loop {
            self.sample();
            if let Some(st) = self.child.try_wait()? {
                if !st.success() {
                    bail!("sluice failed:\n{}", self.log());
                }
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_log(&mut self, needle: &str) -> Result<()> {
        let t0 = Instant::now();
        while !self.log().contains(needle) {
            if t0.elapsed() > Duration::from_secs(120) || self.child.try_wait()?.is_some() {
                bail!("sluice never logged {needle:?}:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn ch_value(sink: &ClickHouseSink, sql: &str) -> Result<String> {
    Ok(sink.query_tsv(sql).await?.trim().to_string())
}

fn ch_sink(ch: &str, db: &str) -> ClickHouseSink {
    ClickHouseSink::new(&DestinationSpec::new(ch, db))
}

/// `sluice run` of a snapshot_only pipe over the whole table; then, when
/// `verify`, a verification of the copy (its measure is the second value).
async fn sluice_load(
    server: &Server,
    ch: &str,
    exe: &Path,
    rows: u64,
    mut settings: serde_json::Value,
    verify: bool,
) -> Result<(Measured, Option<Measured>)> {
    let ch_db = "sluice_bench_load";
    let sink = ch_sink(ch, ch_db);
    sink.execute(&format!("DROP DATABASE IF EXISTS {ch_db}")).await?;
    let servers = server_pids(server.name);
    let before: Vec<f64> = servers.iter().map(|(_, p)| cpu_secs(*p).unwrap_or(0.0)).collect();
    settings["verify_rows_per_second"] = json!(100_000_000);
    let mut run = Run::start_with(exe, &spec("bench_load", &server.url, ch, ch_db, "t", "snapshot_only", settings), &[])?;
    let started = Instant::now();
    run.wait().await?;
    let secs = started.elapsed().as_secs_f64();
    let mut cpu = vec![("Sluice", run.cpu)];
    for ((name, pid), b) in servers.iter().zip(before) {
        cpu.push((name, cpu_secs(*pid).unwrap_or(b) - b));
    }
    let got: u64 = ch_value(&sink, &format!("SELECT count() FROM {ch_db}.t")).await?.parse()?;
    if got != rows {
        bail!("the load copied {got} rows, expected {rows}");
    }
    let verified = if verify { Some(verify_copy(&run, &servers, rows).await?) } else { None };
    sink.execute(&format!("DROP DATABASE IF EXISTS {ch_db}")).await?;
    Ok((Measured { rows, secs, rss_mb: Some(run.rss), cpu }, verified))
}

/// Verifies the copy a finished snapshot run made (its catalog, in-process),
/// measuring wall time and the CPU of this process, the source and ClickHouse.
async fn verify_copy(run: &Run, servers: &[(&'static str, u32)], rows: u64) -> Result<Measured> {
    let catalog = sluice_catalog::Catalog::open(&run.dir.path().join("data")).await?;
    let request = sluice_verify::Request::default();
    let id = catalog.start_verification("bench_load", false, &serde_json::to_value(&request)?).await?;
    let me = std::process::id();
    let before: Vec<f64> = std::iter::once(me).chain(servers.iter().map(|(_, p)| *p)).map(|p| cpu_secs(p).unwrap_or(0.0)).collect();
    let started = Instant::now();
    let cancel = tokio_util::sync::CancellationToken::new();
    let results = sluice_verify::verify(&catalog, "bench_load", id, &request, None, &cancel).await?;
    let secs = started.elapsed().as_secs_f64();
    let after: Vec<f64> = std::iter::once(me).chain(servers.iter().map(|(_, p)| *p)).map(|p| cpu_secs(p).unwrap_or(0.0)).collect();
    let names = std::iter::once("Sluice").chain(servers.iter().map(|(n, _)| *n));
    let cpu = names.zip(after.iter().zip(&before)).map(|(n, (a, b))| (n, a - b)).collect();
    let t = results.first().context("the verification returned no table")?;
    if t.rows_differing != 0 || t.error.is_some() {
        bail!("the verification of a correct copy found differences: {}", serde_json::to_string(t)?);
    }
    eprintln!("  verification: {} rows compared, {} ranges, fetched columns {:?}", t.rows_compared, t.ranges_checked, t.fetched_columns);
    Ok(Measured { rows, secs, rss_mb: None, cpu })
}

/// How often ClickHouse is polled for the rows it shows (the lag's resolution).
const POLL: Duration = Duration::from_millis(20);

/// Seconds since the epoch, as a float (the generator and the poller share this clock).
fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Visibility lag of every change, in ms: `commits` are (last id of a
/// transaction of `per_txn` rows, when its commit returned), `polls` are
/// (when, highest id ClickHouse showed), in time order. Ids grow with commit
/// order (one paced writer) and batches are applied in order, so a change is
/// visible from the first poll showing an id at least its own.
fn visibility_lags(commits: &[(u64, f64)], per_txn: u64, polls: &[(f64, u64)]) -> Vec<f64> {
    let mut lags = Vec::new();
    let mut p = 0;
    for &(last, at) in commits {
        while p < polls.len() && polls[p].1 < last {
            p += 1;
        }
        if let Some(&(seen, _)) = polls.get(p) {
            lags.extend(std::iter::repeat_n(((seen - at) * 1000.0).max(0.0), per_txn as usize));
        }
    }
    lags
}

fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * q).round() as usize).copied()
}

struct CdcResult {
    what: String,
    offered: f64,
    applied: f64,
    /// Visibility lag (commit returned → first poll that sees the row), ms.
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// Inserts per second into the table (distinct `_peerdb_synced_at` values: one per insert).
    inserts_per_s: Option<f64>,
    rss_mb: f64,
}

/// CDC: a cdc_only pipe with default settings, run by the `sluice` binary
/// `exe`; the generator shapes (only the paced ones when `paced_only`).
async fn cdc(server: &Server, ch: &str, exe: &Path, paced_only: bool, paced_secs: u64) -> Result<Vec<CdcResult>> {
    let mut c = connect(&server.url).await?;
    c.query_drop(format!("CREATE DATABASE IF NOT EXISTS {DB}")).await?;
    c.query_drop(format!("DROP TABLE IF EXISTS {DB}.cdc")).await?;
    c.query_drop(format!("CREATE TABLE {DB}.cdc (id BIGINT PRIMARY KEY, v INT NOT NULL, s VARCHAR(32) NOT NULL, ts DATETIME(6) NOT NULL)"))
        .await?;
    let ch_db = "sluice_bench_cdc";
    let sink = ch_sink(ch, ch_db);
    sink.execute(&format!("DROP DATABASE IF EXISTS {ch_db}")).await?;
    let mut run = Run::start_with(exe, &spec("bench_cdc", &server.url, ch, ch_db, "cdc", "cdc_only", json!({})), &[])?;
    run.wait_log("→ Running").await?;
    let mut out = Vec::new();
    let next = Arc::new(AtomicU64::new(1));
    let paced_secs = paced_secs as f64;
    // (label, writers, rows per transaction, seconds, pause between transactions (paced))
    let shapes: [(&str, usize, u64, f64, Option<u64>); 6] = [
        ("1,000-row transactions, as fast as the generator goes", 2, 1000, 15.0, None),
        ("single-row transactions, as fast as the generator goes", 8, 1, 15.0, None),
        ("a trickle: a single-row transaction every 2 s", 1, 1, paced_secs.max(20.0), Some(2000)),
        ("paced at 100 changes/s (single-row transactions every 10 ms)", 1, 1, paced_secs, Some(10)),
        ("paced at 1,000 changes/s (10-row transactions every 10 ms)", 1, 10, paced_secs, Some(10)),
        ("paced at 10,000 changes/s (100-row transactions every 10 ms)", 1, 100, paced_secs, Some(10)),
    ];
    for (what, writers, per_txn, secs, paced) in shapes {
        if paced_only && paced.is_none() {
            continue;
        }
        // Each load starts on an idle pipe: the previous load's last insert is more than
        // a sync interval ago, so it does not hold back the first change (the per-table insert rate).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let first = next.load(Ordering::Relaxed);
        // Paced loads: ClickHouse is polled for the highest id it shows while the generator runs.
        let polls = Arc::new(std::sync::Mutex::new(Vec::<(f64, u64)>::new()));
        let stop_polling = tokio_util::sync::CancellationToken::new();
        let poller = paced.map(|_| {
            let (polls, stop, sink, table) = (polls.clone(), stop_polling.clone(), sink.clone(), format!("{ch_db}.cdc"));
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    let sent = now_secs();
                    if let Ok(v) = ch_value(&sink, &format!("SELECT max(id) FROM {table}")).await {
                        // Seen at some moment between the request and the answer: the midpoint.
                        let at = (sent + now_secs()) / 2.0;
                        polls.lock().unwrap().push((at, v.parse().unwrap_or(0)));
                    }
                    tokio::time::sleep(POLL).await;
                }
            })
        });
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..writers {
            let (url, next) = (server.url.clone(), next.clone());
            tasks.spawn(async move {
                let mut c = connect(&url).await?;
                let mut tick = tokio::time::interval(Duration::from_millis(paced.unwrap_or(10)));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let t0 = Instant::now();
                // (last id of the transaction, when its commit returned)
                let mut committed = Vec::new();
                while t0.elapsed() < Duration::from_secs_f64(secs) {
                    if paced.is_some() {
                        tick.tick().await;
                    }
                    let id = next.fetch_add(per_txn, Ordering::Relaxed);
                    let values: Vec<String> = (id..id + per_txn).map(|i| format!("({i}, {}, 'row-{i}', NOW(6))", i % 1000)).collect();
                    c.query_drop(format!("INSERT INTO {DB}.cdc VALUES {}", values.join(","))).await?;
                    if paced.is_some() {
                        committed.push((id + per_txn - 1, now_secs()));
                    }
                }
                Ok::<_, anyhow::Error>(committed)
            });
        }
        let mut commits = Vec::new();
        while let Some(r) = tasks.join_next().await {
            commits.extend(r??);
        }
        let gen_secs = started.elapsed().as_secs_f64();
        let last = next.load(Ordering::Relaxed) - 1;
        let rows = last + 1 - first;
        loop {
            run.sample();
            let n: u64 = ch_value(&sink, &format!("SELECT count() FROM {ch_db}.cdc WHERE id >= {first}"))
                .await
                .unwrap_or_default()
                .parse()
                .unwrap_or(0);
            if n >= rows {
                break;
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("CDC did not apply {rows} rows within 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let total_secs = started.elapsed().as_secs_f64();
        stop_polling.cancel();
        if let Some(p) = poller {
            let _ = p.await;
        }
        let inserts_per_s = if paced.is_some() {
            let n: f64 = ch_value(&sink, &format!("SELECT count(DISTINCT _peerdb_synced_at) FROM {ch_db}.cdc WHERE id >= {first}"))
                .await?
                .trim()
                .parse()
                .unwrap_or(0.0);
            Some(n / gen_secs)
        } else {
            None
        };
        let (p50, p99) = if paced.is_some() {
            let polls = polls.lock().unwrap().clone();
            let lags = visibility_lags(&commits, per_txn, &polls);
            (quantile(&lags, 0.5), quantile(&lags, 0.99))
        } else {
            (None, None)
        };
        out.push(CdcResult {
            what: what.to_string(),
            offered: rows as f64 / gen_secs,
            applied: rows as f64 / total_secs,
            p50_ms: p50,
            p99_ms: p99,
            inserts_per_s,
            rss_mb: run.rss,
        });
        eprintln!(
            "  CDC {what}: {rows} rows, offered {:.0}/s, applied {:.0}/s, lag p50 {p50:?} p99 {p99:?} ms, inserts/s {inserts_per_s:?}",
            rows as f64 / gen_secs,
            rows as f64 / total_secs
        );
    }
    if paced_only {
        sink.execute(&format!("DROP DATABASE IF EXISTS {ch_db}")).await?;
        return Ok(out);
    }
    // One 1,000,000-row transaction (INSERT ... SELECT): memory must not grow with it.
    let first = next.fetch_add(1_000_000, Ordering::Relaxed);
    seq_table(&mut c).await?;
    let started = Instant::now();
    c.query_drop(format!(
        "INSERT INTO {DB}.cdc SELECT {first} + a.n * 10000 + b.n, b.n, CONCAT('big-', b.n), NOW(6) FROM {DB}.seq a JOIN {DB}.seq b WHERE a.n < 100"
    ))
    .await?;
    let gen_secs = started.elapsed().as_secs_f64();
    loop {
        run.sample();
        let n: u64 =
            ch_value(&sink, &format!("SELECT count() FROM {ch_db}.cdc WHERE id >= {first}")).await.unwrap_or_default().parse().unwrap_or(0);
        if n >= 1_000_000 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("CDC did not apply the 1,000,000-row transaction within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = started.elapsed().as_secs_f64();
    out.push(CdcResult {
        what: "one 1,000,000-row transaction".into(),
        offered: 1e6 / gen_secs,
        applied: 1e6 / total,
        p50_ms: None,
        p99_ms: None,
        inserts_per_s: None,
        rss_mb: run.rss,
    });
    eprintln!("  CDC one 1,000,000-row transaction: applied {:.0}/s, peak RSS {:.0} MB", 1e6 / total, run.rss);
    sink.execute(&format!("DROP DATABASE IF EXISTS {ch_db}")).await?;
    Ok(out)
}

struct WideResult {
    what: String,
    rows: u64,
    mb: f64,
    secs: f64,
    rss_mb: f64,
    cpu_s: f64,
}

/// `{DB}.seq`: the numbers 0..9999, to generate rows with one `INSERT ... SELECT`.
async fn seq_table(c: &mut Conn) -> Result<()> {
    c.query_drop(format!("CREATE TABLE IF NOT EXISTS {DB}.seq (n INT PRIMARY KEY)")).await?;
    c.query_drop("SET SESSION cte_max_recursion_depth = 100000").await.ok();
    c.query_drop("SET SESSION max_recursive_iterations = 100000").await.ok();
    c.query_drop(format!(
        "INSERT IGNORE INTO {DB}.seq WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 9999) SELECT n FROM s"
    ))
    .await?;
    Ok(())
}

/// Wide rows: `rows` rows of `value_kb` KB values (`id`, `v LONGBLOB`), copied
/// by a snapshot_only pipe and then applied by a cdc_only pipe (written in
/// transactions of about 8 MB while it runs), each with memory budget
/// `budget_mb`; peak RSS of the Sluice process.
async fn wide(server: &Server, ch: &str, rows: u64, value_kb: u64, budget_mb: u64) -> Result<Vec<WideResult>> {
    let mut c = connect(&server.url).await?;
    c.query_drop(format!("CREATE DATABASE IF NOT EXISTS {DB}")).await?;
    seq_table(&mut c).await?;
    let table = format!("wide_{value_kb}k");
    let per_txn = (8192 / value_kb).max(1);
    // `value_kb` KB per row: SHA-256 hex (64 bytes) repeated, different per row (MySQL 9.7 has no MD5).
    let insert = |from: u64, n: u64| {
        format!(
            "INSERT INTO {DB}.{table} SELECT {from} + n, REPEAT(SHA2({from} + n, 256), {}) FROM {DB}.seq WHERE n < {n}",
            value_kb * 1024 / 64
        )
    };
    let env = [("SLUICE_MEMORY_BUDGET_MB", budget_mb.to_string())];
    let this = std::env::current_exe()?.with_file_name("sluice");
    let ch_db = "sluice_bench_wide";
    let sink = ch_sink(ch, ch_db);
    let mb = (rows * value_kb) as f64 / 1024.0;
    let mut out = Vec::new();

    // Snapshot of a table that has the rows.
    let have: Option<u64> = c.query_first(format!("SELECT COUNT(*) FROM {DB}.{table}")).await.ok().flatten();
    if have != Some(rows) {
        c.query_drop(format!("DROP TABLE IF EXISTS {DB}.{table}")).await?;
        c.query_drop(format!("CREATE TABLE {DB}.{table} (id BIGINT PRIMARY KEY, v LONGBLOB NOT NULL)")).await?;
        let mut done = 0;
        while done < rows {
            let n = per_txn.min(rows - done);
            c.query_drop(insert(done + 1, n)).await?;
            done += n;
        }
        eprintln!("  generated {DB}.{table}: {rows} rows of {value_kb} KB");
    }
    sink.execute(&format!("DROP DATABASE IF EXISTS {ch_db}")).await?;
    let mut run = Run::start_with(&this, &spec("bench_wide", &server.url, ch, ch_db, &table, "snapshot_only", json!({})), &env)?;
    let started = Instant::now();
    run.wait().await?;
    let secs = started.elapsed().as_secs_f64();
    let got: u64 = ch_value(&sink, &format!("SELECT count() FROM {ch_db}.{table}")).await?.parse()?;
    if got != rows {
        bail!("the wide-row snapshot copied {got} rows, expected {rows}");
    }
    out.push(WideResult { what: "snapshot".into(), rows, mb, secs, rss_mb: run.rss, cpu_s: run.cpu });
    drop(run);

    // CDC of the same rows written again while a cdc_only pipe runs.
    c.query_drop(format!("DROP TABLE IF EXISTS {DB}.{table}")).await?;
    c.query_drop(format!("CREATE TABLE {DB}.{table} (id BIGINT PRIMARY KEY, v LONGBLOB NOT NULL)")).await?;
    sink.execute(&format!("DROP DATABASE IF EXISTS {ch_db}")).await?;
    let mut run = Run::start_with(&this, &spec("bench_wide", &server.url, ch, ch_db, &table, "cdc_only", json!({})), &env)?;
    run.wait_log("→ Running").await?;
    let started = Instant::now();
    let mut done = 0;
    while done < rows {
        let n = per_txn.min(rows - done);
        c.query_drop(insert(done + 1, n)).await?;
        done += n;
        run.sample();
    }
    loop {
        run.sample();
        let n: u64 = ch_value(&sink, &format!("SELECT count() FROM {ch_db}.{table}")).await.unwrap_or_default().parse().unwrap_or(0);
        if n >= rows {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("CDC did not apply the wide rows within 15 minutes:\n{}", run.log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    run.sample();
    out.push(WideResult { what: format!("CDC ({per_txn}-row transactions)"), rows, mb, secs, rss_mb: run.rss, cpu_s: run.cpu });
    drop(run);
    // The rows take room on a shared disk: the source table and the copy go.
    c.query_drop(format!("DROP TABLE IF EXISTS {DB}.{table}")).await?;
    sink.execute(&format!("DROP DATABASE IF EXISTS {ch_db}")).await?;
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let (servers, ch) = testbed()?;
    let servers: Vec<Server> =
        servers.into_iter().filter(|s| args.source == "both" || s.name.to_lowercase().starts_with(&args.source)).collect();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("sluice-bench: {} rows, {cores} cores\n", args.rows);
    if !args.skip_snapshot {
        println!("| source | run | rows/s | MB/s (RowBinary) | vs. ceiling | vs. shared ceiling | peak RSS | CPU s: Sluice / source / ClickHouse (wall s) | Sluice CPU µs per row |\n|---|---|---|---|---|---|---|---|---|");
        let mut verifications = Vec::new();
        for s in &servers {
            eprintln!("{}: preparing {DB}.t", s.name);
            let mut c = connect(&s.url).await?;
            ensure_table(&mut c, args.rows).await?;
            let m = mapping(&mut c, "t").await?;
            let src = source_only(&s.url, &m, 4, 100_000, 50_000).await?;
            eprintln!("  source only: {:.0} rows/s", src.rate());
            let (dst, bpr) = sink_only(&s.url, &ch, &m, args.rows, 4, 50_000).await?;
            eprintln!("  destination only: {:.0} rows/s", dst.rate());
            let ceiling = src.rate().min(dst.rate());
            // Both stages on the same cores: a row costs the source's time plus the destination's.
            let shared = 1.0 / (1.0 / src.rate() + 1.0 / dst.rate());
            let mb = |r: f64| r * bpr / 1e6;
            println!("| {} | ceiling: source only (4 readers) | {:.0} | {:.1} | | | | | |", s.name, src.rate(), mb(src.rate()));
            println!("| {} | ceiling: destination only (4 writers) | {:.0} | {:.1} | | | | | |", s.name, dst.rate(), mb(dst.rate()));
            println!("| {} | shared ceiling: 1 / (1/source + 1/destination) | {:.0} | {:.1} | | | | | |", s.name, shared, mb(shared));
            let runs = [
                ("Sluice, defaults (4 partitions × 100,000-row chunks)", json!({})),
                ("Sluice, 4 partitions × 25,000-row chunks", json!({"parallel_partitions": 4, "snapshot_rows_per_chunk": 25000})),
                ("Sluice, 4 partitions × 50,000-row chunks", json!({"parallel_partitions": 4, "snapshot_rows_per_chunk": 50000})),
                ("Sluice, 2 partitions × 20,000-row chunks", json!({"parallel_partitions": 2, "snapshot_rows_per_chunk": 20000})),
                ("Sluice, 2 partitions × 50,000-row chunks", json!({"parallel_partitions": 2, "snapshot_rows_per_chunk": 50000})),
                ("Sluice, 8 partitions × 20,000-row chunks", json!({"parallel_partitions": 8, "snapshot_rows_per_chunk": 20000})),
            ];
            let runs = if args.defaults_only { &runs[..1] } else { &runs[..] };
            let this = std::env::current_exe()?.with_file_name("sluice");
            let mut runs: Vec<(String, serde_json::Value, &Path)> =
                runs.iter().map(|(l, v)| (l.to_string(), v.clone(), this.as_path())).collect();
            if let Some(b) = &args.baseline_sluice {
                // The same load with the other binary, in this run (CPU per row before/after): with its own
                // defaults, and with this build's (the same shape for both).
                runs.push((format!("baseline `sluice` ({}), its defaults", b.display()), json!({}), b.as_path()));
                let ours = sluice_core::SyncSettings::default();
                let same =
                    json!({"parallel_partitions": ours.parallel_partitions, "snapshot_rows_per_chunk": ours.snapshot_rows_per_chunk});
                runs.push((format!("baseline `sluice` ({}), this build's defaults", b.display()), same, b.as_path()));
            }
            for (i, (label, settings, exe)) in runs.into_iter().enumerate() {
                let (r, verified) = sluice_load(s, &ch, exe, args.rows, settings, i == 0 && !args.skip_verify).await?;
                eprintln!("  {label}: {:.0} rows/s, {:.0} MB peak", r.rate(), r.rss_mb.unwrap_or(0.0));
                let cpu: Vec<String> = r.cpu.iter().map(|(_, c)| format!("{c:.1}")).collect();
                println!(
                    "| {} | {label} | {:.0} | {:.1} | {:.0}% | {:.0}% | {:.0} MB | {} ({:.1}) | {:.2} |",
                    s.name,
                    r.rate(),
                    mb(r.rate()),
                    100.0 * r.rate() / ceiling,
                    100.0 * r.rate() / shared,
                    r.rss_mb.unwrap_or(0.0),
                    cpu.join(" / "),
                    r.secs,
                    r.cpu[0].1 * 1e6 / r.rows as f64
                );
                if let Some(v) = verified {
                    verifications.push((s.name, v));
                }
            }
        }
        println!();
        if !verifications.is_empty() {
            println!("| source | verification of the copied table | rows/s | wall s | CPU s per million rows: Sluice / source / ClickHouse |\n|---|---|---|---|---|");
            for (name, v) in &verifications {
                let per_m: Vec<String> = v.cpu.iter().map(|(_, c)| format!("{:.2}", c * 1e6 / v.rows as f64)).collect();
                println!("| {name} | {} rows, unthrottled | {:.0} | {:.1} | {} |", v.rows, v.rate(), v.secs, per_m.join(" / "));
            }
            println!();
        }
    }
    if args.wide {
        println!("| source | table | run | memory budget | rows | MB | wall s | MB/s | peak RSS | Sluice CPU s |\n|---|---|---|---|---|---|---|---|---|---|");
        for s in &servers {
            for &budget in &args.wide_budgets {
                for (&rows, kb) in args.wide_rows.iter().zip([256u64, 2048]) {
                    eprintln!("{}: wide rows, {rows} × {kb} KB, budget {budget} MiB", s.name);
                    for r in wide(s, &ch, rows, kb, budget).await? {
                        println!(
                            "| {} | {} × {} KB | {} | {budget} MiB | {} | {:.0} | {:.1} | {:.1} | {:.0} MB | {:.1} |",
                            s.name,
                            rows,
                            kb,
                            r.what,
                            r.rows,
                            r.mb,
                            r.secs,
                            r.mb / r.secs,
                            r.rss_mb,
                            r.cpu_s
                        );
                    }
                }
            }
        }
        println!();
    }
    if !args.skip_cdc {
        println!(
            "| source | sluice | CDC load | offered changes/s | applied changes/s (end to end) | visibility lag p50 / p99 | inserts/s into the table | peak RSS |\n|---|---|---|---|---|---|---|---|"
        );
        let this = std::env::current_exe()?.with_file_name("sluice");
        let mut binaries = vec![("this build".to_string(), this, false)];
        if let Some(b) = &args.baseline_sluice {
            binaries.push((format!("baseline ({})", b.display()), b.clone(), true));
        }
        for s in &servers {
            for (label, exe, paced_only) in &binaries {
                eprintln!("{}: CDC, {label}", s.name);
                for r in cdc(s, &ch, exe, *paced_only || args.lag_only, args.paced_secs).await? {
                    let lag = match (r.p50_ms, r.p99_ms) {
                        (Some(a), Some(b)) => format!("{a:.0} ms / {b:.0} ms"),
                        _ => "-".into(),
                    };
                    let inserts = r.inserts_per_s.map(|v| format!("{v:.2}")).unwrap_or("-".into());
                    // A trickle's rate needs its decimals.
                    let rate = |v: f64| if v < 10.0 { format!("{v:.2}") } else { format!("{v:.0}") };
                    println!(
                        "| {} | {label} | {} | {} | {} | {lag} | {inserts} | {:.0} MB |",
                        s.name,
                        r.what,
                        rate(r.offered),
                        rate(r.applied),
                        r.rss_mb
                    );
                }
            }
        }
    }
    Ok(())
}
