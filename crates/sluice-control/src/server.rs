//! `sluice server`: opens the catalog, brings every pipe back to its stored
//! state, and serves the API until SIGINT/SIGTERM.

use crate::api::{router, AppState};
use crate::manager::Manager;
use anyhow::{Context, Result};
use sluice_catalog::secrets::write_private;
use sluice_catalog::Catalog;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tracing::{info, warn};

/// The API token: `SLUICE_API_TOKEN`, else `<data-dir>/api-token` (created on first start, 0600, printed once).
pub fn load_or_create_token(data_dir: &Path) -> Result<String> {
    if let Ok(t) = std::env::var("SLUICE_API_TOKEN") {
        if t.trim().len() < 16 {
            anyhow::bail!("SLUICE_API_TOKEN must be at least 16 characters");
        }
        return Ok(t.trim().to_string());
    }
    let path = data_dir.join("api-token");
    if path.exists() {
        return Ok(std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?.trim().to_string());
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    write_private(&path, &token).map_err(anyhow::Error::msg)?;
    eprintln!("Generated API token (stored in {}, shown once): {token}", path.display());
    Ok(token)
}

pub async fn serve(data_dir: &Path, listen: SocketAddr) -> Result<()> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let catalog = Catalog::open(data_dir).await?;
    let token = load_or_create_token(data_dir)?;
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
    let manager = Manager::new(catalog);
    manager.resume_all().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = router(AppState { manager: manager.clone(), token: Arc::new(token), metrics });
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    info!("sluice server listening on http://{listen} (data dir {})", data_dir.display());
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
    manager.shutdown().await;
    Ok(())
}
