//! Progress you can see in a terminal while `sluice run` works: a bar per
//! table during a copy (rows, rows/s, ETA, partitions) and a live CDC line
//! (lag, changes/s). Logs are printed above the bars. Shown only when stderr
//! is a terminal.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sluice_catalog::Catalog;
use sluice_engine::LiveStatus;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A log writer that prints above the progress bars instead of through them.
#[derive(Clone)]
pub struct LogWriter(pub Option<MultiProgress>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &self.0 {
            Some(mp) => mp.suspend(|| std::io::stdout().write_all(buf)).map(|_| buf.len()),
            None => std::io::stdout().write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Draws the pipe's progress until `cancel` fires.
pub async fn watch(mp: MultiProgress, catalog: Catalog, name: String, status: Arc<LiveStatus>, cancel: CancellationToken) {
    let bar_style = ProgressStyle::with_template("{prefix:>24} [{bar:30.cyan/blue}] {pos}/{len} rows  {per_sec}  ETA {eta}  {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let cdc = mp.add(ProgressBar::new_spinner());
    let (mut last_applied, mut last_at) = (0u64, Instant::now());
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let Ok(tables) = catalog.tables(&name).await else { continue };
        for t in tables {
            let dest = t.mapping.destination.clone();
            let copying = t.copy_started_at.is_some() && !t.snapshot_done;
            if !copying && !bars.contains_key(&dest) {
                continue;
            }
            let bar = bars.entry(dest.clone()).or_insert_with(|| {
                let b = mp.insert_before(&cdc, ProgressBar::new(t.rows_estimated.max(1)));
                b.set_style(bar_style.clone());
                b.set_prefix(dest.clone());
                b
            });
            bar.set_length(t.rows_estimated.max(t.rows_copied).max(1));
            bar.set_position(t.rows_copied);
            if let Ok((done, total)) = catalog.partition_counts(&name, &dest).await {
                bar.set_message(format!("partitions {done}/{total}"));
            }
            if t.snapshot_done && !bar.is_finished() {
                bar.finish();
            }
        }
        let applied = status.changes_applied.load(Ordering::Relaxed);
        let rate = (applied - last_applied) as f64 / last_at.elapsed().as_secs_f64().max(0.001);
        (last_applied, last_at) = (applied, Instant::now());
        match status.lag_seconds() {
            Some(lag) => cdc.set_message(format!("CDC  lag {lag:.1}s  {rate:.0} changes/s  {applied} applied")),
            None => cdc.set_message("CDC  not started yet"),
        }
        cdc.tick();
    }
    for b in bars.values() {
        b.abandon();
    }
    cdc.finish_and_clear();
}
