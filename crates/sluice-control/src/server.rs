//! `sluice server`: locks the data dir, opens the catalog, brings every pipe
//! back to its stored state, and serves the API until SIGINT/SIGTERM.

use crate::api::{router, AppState};
use crate::manager::Manager;
use anyhow::{Context, Result};
use sluice_catalog::Catalog;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tracing::{info, warn};

/// Shortest API token accepted, from the environment or the token file.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why the API token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("SLUICE_API_TOKEN must be at least {MIN_TOKEN_LEN} characters")]
    ShortEnv,
    #[error(
        "the API token file {path} is {what}; it was probably left by a crash while it was written. \
         Delete {path} and start again to generate a new token (or set SLUICE_API_TOKEN)"
    )]
    BadFile { path: String, what: String },
    #[error("cannot read the API token file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write the API token file {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// The API token: `SLUICE_API_TOKEN`, else `<data-dir>/api-token` (created on
/// first start, 0600, printed once). The file is written whole or not at all
/// (a temporary file renamed into place), and a token file that is empty or
/// shorter than `MIN_TOKEN_LEN` is refused rather than trusted: an empty
/// expected token must never open the API.
pub fn load_or_create_token(data_dir: &Path) -> Result<String, TokenError> {
    if let Ok(t) = std::env::var("SLUICE_API_TOKEN") {
        if t.trim().len() < MIN_TOKEN_LEN {
            return Err(TokenError::ShortEnv);
        }
        return Ok(t.trim().to_string());
    }
    let path = data_dir.join("api-token");
    let shown = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(t) => {
            let t = t.trim();
            if t.len() < MIN_TOKEN_LEN {
                let what = if t.is_empty() { "empty".to_string() } else { format!("shorter than {MIN_TOKEN_LEN} characters") };
                return Err(TokenError::BadFile { path: shown, what });
            }
            return Ok(t.to_string());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(TokenError::Read { path: shown, source }),
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    write_atomically(&path, &token).map_err(|source| TokenError::Write { path: shown.clone(), source })?;
    eprintln!("Generated API token (stored in {shown}, shown once): {token}");
    Ok(token)
}

/// Writes `content` to `path` (mode 0600) so that a crash leaves either no file
/// or the whole content: a temporary file in the same directory, synced, then
/// renamed over `path`, and the directory synced.
fn write_atomically(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp-{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("file"), std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// How this server takes part as a worker among those sharing its catalog.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// `None`: the id stored in the data dir (`worker-id`, created on first start).
    pub id: Option<String>,
    /// `None`: `http://<listen address>`.
    pub advertise_url: Option<String>,
    pub lease_ttl: std::time::Duration,
    /// This worker's labels (matched against pipes' placement constraints).
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self { id: None, advertise_url: None, lease_ttl: std::time::Duration::from_secs(15), labels: Default::default() }
    }
}

/// Runs the server on `data_dir` (API token, secret key, lock file) with the
/// catalog `catalog_url` names (`None`: `catalog.db` in the data dir), as a
/// worker (`worker`): it runs the pipes whose leases it holds (see `placement`).
pub async fn serve(data_dir: &Path, listen: SocketAddr, catalog_url: Option<&str>, worker: WorkerOptions) -> Result<()> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    // Held until this function returns: no other sluice process uses this data dir meanwhile.
    let _lock = crate::lock::lock_data_dir(data_dir)?;
    let token = load_or_create_token(data_dir)?;
    let catalog = match catalog_url {
        Some(url) => Catalog::open_url(url, data_dir).await?,
        None => Catalog::open(data_dir).await?,
    };
    // Workers share a Postgres catalog; a process that needs it alone (`sluice run`, a copy) is refused meanwhile.
    let _catalog_lock = catalog.lock_for_worker().await?;
    if worker.lease_ttl < std::time::Duration::from_millis(300) {
        anyhow::bail!("--lease-ttl-s must be at least 0.3 seconds (got {:?})", worker.lease_ttl);
    }
    let id = match worker.id {
        Some(id) if id.trim().is_empty() => anyhow::bail!("--worker-id must not be empty"),
        Some(id) => id.trim().to_string(),
        None => crate::placement::default_worker_id(data_dir)
            .with_context(|| format!("reading or creating the worker id in {}", data_dir.display()))?,
    };
    let conf = crate::placement::WorkerConf {
        id,
        advertise_url: worker.advertise_url.unwrap_or_else(|| format!("http://{listen}")),
        lease_ttl: worker.lease_ttl,
        labels: worker.labels,
    };
    info!("catalog: {}", catalog.display_url());
    if !listen.ip().is_loopback() {
        warn!(
            "!!! listening on {listen}, which is not a loopback address, over plain HTTP: the bearer token and pipe \
             specs (with passwords) cross the network unencrypted. Put a TLS-terminating proxy in front of Sluice. !!!"
        );
    }
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 100.0, 1e3, 1e4, 1e5, 1e6])
        .context("metric buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    // Verification runs are tasks of the process that started them.
    // (Those of pipes another live worker holds are that worker's.)
    let (now, leases) = catalog.pipe_leases().await?;
    let elsewhere: Vec<String> =
        leases.into_iter().filter(|l| l.held_at(now).is_some_and(|owner| owner != conf.id)).map(|l| l.pipe).collect();
    catalog.fail_unfinished_verifications("interrupted: the server stopped during the run; start it again", &elsewhere).await?;
    let manager = Manager::new(catalog).with_worker(conf);
    let stop_placement = tokio_util::sync::CancellationToken::new();
    let placement = crate::placement::start(&manager, stop_placement.clone()).await?;
    crate::verify::spawn_scheduler(manager.clone());
    crate::alerts::spawn(manager.clone());
    crate::series::spawn(manager.clone());
    let app = router(AppState { manager: manager.clone(), token: Arc::new(token), metrics });
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    info!("sluice server listening on http://{listen} (data dir {})", data_dir.display());
    info!("dashboard: http://{listen}/ (sign in with the API token)");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let term = async {
                #[cfg(unix)]
                if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    s.recv().await;
                    return;
                }
                std::future::pending::<()>().await
            };
            tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term => {} }
            info!("shutting down: stopping pipes");
        })
        .await?;
    // No more acquisitions; then the engines stop (flush, checkpoint), the leases are released
    // and the worker unregisters, so that the other workers take its pipes at once.
    stop_placement.cancel();
    let _ = placement.await;
    manager.shutdown().await;
    Ok(())
}
