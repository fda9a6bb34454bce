//! Retries transient failures with capped, jittered exponential backoff,
//! showing the last error on the pipe while it waits. The delay starts over
//! for every operation (and after a stream ran a while); a failure retried for
//! longer than `RETRY_WARNING_AFTER` is reported as a warning and in the
//! `sluice_pipe_retrying_seconds` gauge.

use crate::{EngineError, PipeContext};
use rand::Rng;
use sluice_core::Severity;
use std::future::Future;
use std::time::Duration;
use tracing::warn;

const FIRST: Duration = Duration::from_millis(250);
const CAP: Duration = Duration::from_secs(30);

/// Capped exponential backoff with ±25% jitter (pipes failing together do not retry in lockstep).
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Self {
        Self { next: FIRST }
    }

    /// Starts over from the shortest delay (after a success).
    pub fn reset(&mut self) {
        self.next = FIRST;
    }

    /// The delay to wait now; doubles the next one, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(CAP);
        base.mul_f64(rand::thread_rng().gen_range(0.75..1.25))
    }
}

/// Shows `msg` as the pipe's error (empty: clears it). A catalog that cannot
/// record it right now is not a reason to stop: the message is in the log.
pub async fn show_error(ctx: &PipeContext, msg: &str) {
    let error = (!msg.is_empty()).then_some(msg);
    if let Err(e) = ctx.catalog.set_error(ctx.name(), error).await {
        warn!(pipe = ctx.name(), "could not record the pipe's error in the catalog: {e}");
    }
}

/// Runs `op` until it succeeds, fails with a non-transient error, or the pipe is cancelled.
pub async fn retry<T, F, Fut>(ctx: &PipeContext, what: &str, mut op: F) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EngineError>>,
{
    let mut backoff = Backoff::new();
    let mut failed = false;
    loop {
        match op().await {
            Ok(v) => {
                if failed {
                    ctx.status.retrying(ctx.name(), false);
                    show_error(ctx, "").await;
                }
                return Ok(v);
            }
            Err(e) if e.severity() == Severity::Transient => {
                failed = true;
                ctx.status.retrying(ctx.name(), true);
                let delay = backoff.next_delay();
                metrics::counter!("sluice_retries_total", "pipe" => ctx.name().to_string(), "operation" => what.to_string()).increment(1);
                metrics::counter!("sluice_errors_total", "pipe" => ctx.name().to_string(), "kind" => "transient").increment(1);
                let msg = format!("{what}: {e} (retrying in {:.1}s)", delay.as_secs_f64());
                warn!(pipe = ctx.name(), "{msg}");
                show_error(ctx, &msg).await;
                ctx.status.publish_lag(ctx.name());
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return Err(EngineError::Cancelled),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new();
        let first = b.next_delay();
        assert!(first >= FIRST.mul_f64(0.75) && first <= FIRST.mul_f64(1.25));
        for _ in 0..20 {
            assert!(b.next_delay() <= CAP.mul_f64(1.25));
        }
        b.reset();
        assert!(b.next_delay() <= FIRST.mul_f64(1.25));
    }
}
