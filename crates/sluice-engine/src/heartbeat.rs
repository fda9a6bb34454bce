//! The optional heartbeat table (`source.heartbeat_table`): while CDC runs, a
//! row per pipe is written to it on the source every
//! `settings.heartbeat_interval_ms`. Each write is a transaction in the
//! binlog, so the checkpoint and the lag keep moving while the tracked tables
//! are quiet (a quiet pipe does not fall behind binlog retention, and lag
//! shows the real delay). The table is not replicated unless it is listed.
//!
//! The writer has its own connection and task: a slow or failing heartbeat
//! never holds up CDC, and a failure is logged (with the grant that fixes it)
//! and retried at the next beat.

use crate::PipeContext;
use sluice_core::schema::TableId;
use std::time::Duration;
use tracing::{debug, warn};

/// Stops the heartbeat task when dropped (the CDC stream it belongs to ended).
pub struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts writing heartbeats if the pipe has a heartbeat table.
pub fn start(ctx: &PipeContext) -> Option<Heartbeat> {
    let (schema, table) = ctx.spec.heartbeat_table()?;
    let ctx = ctx.clone();
    Some(Heartbeat(tokio::spawn(async move {
        let id = TableId::new(schema, table);
        let target = id.to_string();
        let mut writer = ctx.source.heartbeat_writer(id);
        let mut failing = false;
        loop {
            match writer.beat(ctx.name()).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(pipe = ctx.name(), "heartbeats to {target} are written again");
                }
                Ok(()) => debug!(pipe = ctx.name(), "heartbeat written to {target}"),
                Err(e) => {
                    metrics::counter!("sluice_errors_total", "pipe" => ctx.name().to_string(), "kind" => "heartbeat").increment(1);
                    if !failing {
                        warn!(
                            pipe = ctx.name(),
                            "cannot write the heartbeat to {target}: {e}; the source user needs CREATE (once), INSERT and UPDATE \
                             on it (GRANT CREATE, INSERT, UPDATE ON {target} TO ...); retrying every beat"
                        );
                    }
                    failing = true;
                }
            }
            let every = Duration::from_millis(ctx.current_settings().heartbeat_interval_ms);
            tokio::select! {
                _ = ctx.cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    })))
}
