//! Retries transient failures with capped exponential backoff, showing the
//! last error on the pipe while it waits.

use crate::{EngineError, PipeContext};
use std::future::Future;
use std::time::Duration;
use tracing::warn;

const FIRST: Duration = Duration::from_millis(250);
const CAP: Duration = Duration::from_secs(30);

/// Runs `op` until it succeeds, fails permanently, or the pipe is cancelled.
pub async fn retry<T, F, Fut>(ctx: &PipeContext, what: &str, mut op: F) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EngineError>>,
{
    let mut delay = FIRST;
    let mut failed = false;
    loop {
        match op().await {
            Ok(v) => {
                if failed {
                    ctx.catalog.set_error(ctx.name(), None).await?;
                }
                return Ok(v);
            }
            Err(e) if e.is_transient() => {
                failed = true;
                metrics::counter!("sluice_retries_total", "pipe" => ctx.name().to_string(), "operation" => what.to_string()).increment(1);
                metrics::counter!("sluice_errors_total", "pipe" => ctx.name().to_string(), "kind" => "transient").increment(1);
                let msg = format!("{what}: {e} (retrying in {:.1}s)", delay.as_secs_f64());
                warn!(pipe = ctx.name(), "{msg}");
                ctx.catalog.set_error(ctx.name(), Some(&msg)).await?;
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return Err(EngineError::Cancelled),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(CAP);
            }
            Err(e) => return Err(e),
        }
    }
}
