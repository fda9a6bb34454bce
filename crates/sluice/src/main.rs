//! The `sluice` binary: command-line entry point.

mod process_memory;
mod progress;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use sluice_catalog::Catalog;
use sluice_core::PipeSpec;
use sluice_engine::PipeContext;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "sluice", version, about = "Keep ClickHouse tables in sync with MySQL and MariaDB (CDC)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one pipe in the foreground: Setup, Snapshot, then CDC until Ctrl-C.
    Run {
        /// Pipe spec (JSON).
        #[arg(long, short = 'c')]
        config: PathBuf,
        /// Directory for the catalog (created if missing); reuse it to resume.
        #[arg(long, default_value = "./sluice-data")]
        data_dir: PathBuf,
        /// Memory for rows in flight (snapshot chunks, CDC batches), in MiB.
        #[arg(long, env = "SLUICE_MEMORY_BUDGET_MB", default_value_t = 256)]
        memory_budget_mb: u64,
        /// Catalog URL: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB (default: catalog.db in the data dir).
        #[arg(long = "catalog", env = "SLUICE_CATALOG_URL")]
        catalog: Option<String>,
    },
    /// Run the long-lived server: REST API + every pipe in the data dir.
    Server {
        #[arg(long, default_value = "./sluice-data")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: std::net::SocketAddr,
        /// Memory for rows in flight (snapshot chunks, CDC batches) shared by every pipe, in MiB.
        #[arg(long, env = "SLUICE_MEMORY_BUDGET_MB", default_value_t = 256)]
        memory_budget_mb: u64,
        /// Catalog URL: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB (default: catalog.db in the data dir).
        #[arg(long = "catalog", env = "SLUICE_CATALOG_URL")]
        catalog: Option<String>,
        /// This worker's id among the servers sharing the catalog (default: stored in the data dir's worker-id file).
        #[arg(long, env = "SLUICE_WORKER_ID")]
        worker_id: Option<String>,
        /// The URL other workers and clients reach this server's API at (default: http://<listen>).
        #[arg(long, env = "SLUICE_ADVERTISE_URL")]
        advertise_url: Option<String>,
        /// Seconds a pipe's lease lasts without renewal (renewed every third of it); a dead worker's pipes move after it.
        #[arg(long, env = "SLUICE_LEASE_TTL_S", default_value_t = 15.0)]
        lease_ttl_s: f64,
        /// This worker's labels, `name=value,name2=value2`: it runs only pipes whose placement constraint they satisfy.
        #[arg(long, env = "SLUICE_WORKER_LABELS", default_value = "")]
        labels: String,
    },
    /// Manage pipes on a running server.
    Pipe {
        #[command(subcommand)]
        command: sluice_control::client::PipeCommand,
        /// Server URL.
        #[arg(long, global = true, env = "SLUICE_SERVER", default_value = "http://127.0.0.1:7878")]
        server: String,
        /// Print JSON instead of tables.
        #[arg(long, global = true)]
        json: bool,
        /// Data dir whose api-token to use when SLUICE_API_TOKEN is not set.
        #[arg(long, global = true)]
        data_dir: Option<PathBuf>,
    },
    /// Alert channels and rules on a running server: show, set from a JSON/YAML file, test.
    Alerts {
        #[command(subcommand)]
        command: sluice_control::alerts::cli::AlertsCommand,
        /// Server URL.
        #[arg(long, global = true, env = "SLUICE_SERVER", default_value = "http://127.0.0.1:7878")]
        server: String,
        /// Print JSON instead of text.
        #[arg(long, global = true)]
        json: bool,
        /// Data dir whose api-token to use when SLUICE_API_TOKEN is not set.
        #[arg(long, global = true)]
        data_dir: Option<PathBuf>,
    },
    /// Verify that a pipe's ClickHouse tables equal its source tables (on a running server);
    /// prints the differing keys and exits non-zero when differences remain.
    Verify {
        /// The pipe.
        name: String,
        /// A table to verify (destination name or schema.table); repeatable; all tables when absent.
        #[arg(long = "table")]
        tables: Vec<String>,
        /// Re-copy the differing rows from the source, then verify them again.
        #[arg(long)]
        repair: bool,
        /// Server URL.
        #[arg(long, env = "SLUICE_SERVER", default_value = "http://127.0.0.1:7878")]
        server: String,
        /// Print the run as JSON.
        #[arg(long)]
        json: bool,
        /// Data dir whose api-token to use when SLUICE_API_TOKEN is not set.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// The catalog itself.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Check a source for CDC readiness without changing anything.
    Check {
        /// Pipe spec (JSON).
        #[arg(long, short = 'f')]
        config: PathBuf,
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Copy a whole catalog into a new, empty one (e.g. SQLite to Postgres): pipes with their
    /// sealed secrets, checkpoints, version clocks, table progress, history, alerts, verifications.
    /// The source's server must be stopped; afterwards start the server with --catalog TO.
    Migrate {
        /// The catalog to copy: sqlite://PATH or postgres://...
        #[arg(long)]
        from: String,
        /// The new catalog (created if missing for SQLite; an existing, empty database for Postgres).
        #[arg(long)]
        to: String,
        /// The server's data dir: its secret.key (or SLUICE_SECRET_KEY) must open the copied secrets.
        #[arg(long, default_value = "./sluice-data")]
        data_dir: PathBuf,
    },
}

/// `sluice catalog migrate`: refuses while a server uses either catalog, checks that the
/// data dir's key opens every stored spec, copies, and prints the rows copied per table.
async fn migrate_catalog(from: &str, to: &str, data_dir: &std::path::Path) -> Result<()> {
    use sluice_catalog::{redact_url, sqlite_path};
    if !data_dir.join("secret.key").exists() && std::env::var_os("SLUICE_SECRET_KEY").is_none() {
        anyhow::bail!(
            "{} has no secret.key (and SLUICE_SECRET_KEY is unset): pass the server's --data-dir, whose key sealed the stored secrets",
            data_dir.display()
        );
    }
    if sqlite_path(from).is_some_and(|p| !p.exists()) {
        anyhow::bail!("{} does not exist", redact_url(from));
    }
    // A server holds its data dir's lock file, and on Postgres the catalog's advisory lock.
    let _data_lock = sluice_control::lock::lock_data_dir(data_dir)?;
    // And the dirs of SQLite catalogs elsewhere (each locked once: a second lock of the same file would fail).
    let mut locked = vec![std::fs::canonicalize(data_dir)?];
    let mut dir_locks = Vec::new();
    for url in [from, to] {
        if let Some(dir) = sqlite_path(url).and_then(|p| p.parent().map(|d| d.to_path_buf())) {
            let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let canonical = std::fs::canonicalize(&dir)?;
            if !locked.contains(&canonical) {
                dir_locks.push(sluice_control::lock::lock_data_dir(&dir)?);
                locked.push(canonical);
            }
        }
    }
    let source = Catalog::open_url(from, data_dir).await?;
    let _source_lock = source.lock_for_server().await?;
    let target = Catalog::open_url(to, data_dir).await?;
    let _target_lock = target.lock_for_server().await?;
    // Every stored secret opens with this key (it is the one the new catalog will be read with).
    for name in source.pipe_names().await? {
        source.pipe(&name).await.with_context(|| format!("pipe {name}: the secrets do not open with the key of {}", data_dir.display()))?;
    }
    let report = source.copy_to(&target).await?;
    for (table, n) in &report.tables {
        println!("{table:<20} {n:>8} rows");
    }
    println!(
        "copied {} rows from {} to {} (row counts verified); start the server with --catalog {}",
        report.total(),
        source.display_url(),
        target.display_url(),
        target.display_url()
    );
    Ok(())
}

fn read_spec(path: &PathBuf) -> Result<PipeSpec> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(PipeSpec::from_json(&text)?)
}

fn main() -> std::process::ExitCode {
    process_memory::apply();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(async_main()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn async_main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Server { .. } | Command::Run { .. }) {
        // Command-line tools end quietly when their reader goes away (`sluice check --json | head`),
        // as Unix tools do, instead of panicking in println! on EPIPE. The long-running commands keep
        // Rust's default (SIGPIPE ignored, EPIPE as an error) so that a closed socket never kills them.
        // SAFETY: only the process-wide disposition of SIGPIPE changes (to the default); no handler runs.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // Test builds only: crash points named in FAILPOINTS (see sluice-engine's failpoints).
    let _failpoints = sluice_engine::failpoints::setup();
    // Progress bars for `sluice run` on a terminal; logs are printed above them.
    let bars = (matches!(cli.command, Command::Run { .. }) && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(indicatif::MultiProgress::new);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn,hyper=warn".into()))
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_writer(progress::LogWriter(bars.clone()))
        .init();
    match real_main(cli, bars).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn real_main(cli: Cli, bars: Option<indicatif::MultiProgress>) -> Result<std::process::ExitCode> {
    match cli.command {
        Command::Run { config, data_dir, memory_budget_mb, catalog } => {
            set_memory_budget(memory_budget_mb)?;
            let spec = read_spec(&config)?;
            // Held for the whole run: a `sluice server` or another `sluice run` on this data dir is refused.
            let _lock = sluice_control::lock::lock_data_dir(&data_dir)?;
            let catalog = match &catalog {
                Some(url) => Catalog::open_url(url, &data_dir).await?,
                None => Catalog::open(&data_dir).await?,
            };
            let _catalog_lock = catalog.lock_for_server().await?;
            sluice_engine::register(&catalog, &spec).await?;
            let cancel = CancellationToken::new();
            let c = cancel.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                tracing::info!("interrupt: flushing and stopping");
                c.cancel();
            });
            #[cfg(unix)]
            {
                let c = cancel.clone();
                tokio::spawn(async move {
                    if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                        s.recv().await;
                        c.cancel();
                    }
                });
            }
            let ctx = PipeContext::new(spec, catalog.clone(), cancel.clone());
            let drawing =
                bars.map(|mp| tokio::spawn(progress::watch(mp, catalog, ctx.name().to_string(), ctx.status.clone(), cancel.clone())));
            let state = sluice_engine::run(&ctx).await;
            cancel.cancel();
            if let Some(d) = drawing {
                let _ = d.await;
            }
            let state = state?;
            println!("pipe {} stopped in state {}", ctx.name(), state);
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Catalog { command: CatalogCommand::Migrate { from, to, data_dir } } => {
            migrate_catalog(&from, &to, &data_dir).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Server { data_dir, listen, memory_budget_mb, catalog, worker_id, advertise_url, lease_ttl_s, labels } => {
            set_memory_budget(memory_budget_mb)?;
            if !(lease_ttl_s.is_finite() && lease_ttl_s >= 0.3) {
                anyhow::bail!("--lease-ttl-s must be a number of seconds, at least 0.3 (got {lease_ttl_s})");
            }
            let worker = sluice_control::server::WorkerOptions {
                id: worker_id,
                advertise_url,
                lease_ttl: std::time::Duration::from_secs_f64(lease_ttl_s),
                labels: sluice_core::spec::parse_labels(&labels).map_err(|e| anyhow::anyhow!("--labels: {e}"))?,
            };
            sluice_control::server::serve(&data_dir, listen, catalog.as_deref(), worker).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Pipe { command, server, json, data_dir } => {
            let client = sluice_control::client::Client::new(&server, None, data_dir)?;
            client.run(command, json).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Alerts { command, server, json, data_dir } => {
            let client = sluice_control::client::Client::new(&server, None, data_dir)?;
            client.alerts(command, json).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Verify { name, tables, repair, server, json, data_dir } => {
            let client = sluice_control::client::Client::new(&server, None, data_dir)?;
            let clean = client.verify(&name, &tables, repair, json).await?;
            Ok(if clean { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::from(2) })
        }
        Command::Check { config, json } => {
            let spec = read_spec(&config)?;
            let pre = sluice_control::preflight::run(&spec).await;
            let (ok, checks) = (pre.ok, pre.checks);
            let version = pre.source.unwrap_or_else(|| "unreachable".into());
            if json {
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({"ok": ok, "source": version, "checks": checks}))?);
            } else {
                println!("source {version}");
                for c in &checks {
                    println!(
                        "{} {:<26} {}{}",
                        c.verdict(),
                        c.name,
                        c.found,
                        match c.verdict() {
                            "FAIL" => format!("\n     fix: {}", c.fix),
                            "WARN" => format!("\n     note: {}", c.fix),
                            _ => String::new(),
                        }
                    );
                }
            }
            Ok(if ok { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
        }
    }
}

/// Sets the process's memory budget for rows in flight (`--memory-budget-mb`).
fn set_memory_budget(mb: u64) -> anyhow::Result<()> {
    sluice_engine::memory::configure(mb.saturating_mul(1 << 20)).map_err(|e| anyhow::anyhow!("--memory-budget-mb: {e}"))?;
    tracing::info!("memory budget for rows in flight: {mb} MiB");
    Ok(())
}
