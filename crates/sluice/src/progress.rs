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

/// A rate over the last few seconds of samples of a growing counter, so that
/// a counter that moves in steps (CDC writes once per batch) reads steadily.
struct Rate {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl Rate {
    const WINDOW: Duration = Duration::from_secs(10);

    fn new() -> Self {
        Self { samples: std::collections::VecDeque::new() }
    }

    /// Records the counter's value now; returns the rate per second over the window (None until two samples).
    fn sample(&mut self, value: u64) -> Option<f64> {
        let now = Instant::now();
        self.samples.push_back((now, value));
        while self.samples.len() > 2 && self.samples.front().is_some_and(|(t, _)| now.duration_since(*t) > Self::WINDOW) {
            self.samples.pop_front();
        }
        let (t0, v0) = *self.samples.front()?;
        let secs = now.duration_since(t0).as_secs_f64();
        (secs > 0.2).then(|| value.saturating_sub(v0) as f64 / secs)
    }
}

/// A table's bar, the rate of its copy and when it started.
struct TableBar {
    bar: ProgressBar,
    rate: Rate,
    started: Instant,
}

/// Draws the pipe's progress until `cancel` fires.
pub async fn watch(mp: MultiProgress, catalog: Catalog, name: String, status: Arc<LiveStatus>, cancel: CancellationToken) {
    let bar_style = ProgressStyle::with_template("{prefix:>24} [{bar:30.cyan/blue}] {pos}/{len} rows  {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    let mut bars: HashMap<String, TableBar> = HashMap::new();
    let cdc = mp.add(ProgressBar::new_spinner());
    let mut cdc_rate = Rate::new();
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
            let tb = bars.entry(dest.clone()).or_insert_with(|| {
                let b = mp.insert_before(&cdc, ProgressBar::new(t.rows_estimated.max(1)));
                b.set_style(bar_style.clone());
                b.set_prefix(dest.clone());
                TableBar { bar: b, rate: Rate::new(), started: Instant::now() }
            });
            if tb.bar.is_finished() {
                continue; // its final line stays as it was written
            }
            tb.bar.set_length(t.rows_estimated.max(t.rows_copied).max(1));
            tb.bar.set_position(t.rows_copied);
            let rate = tb.rate.sample(t.rows_copied);
            if t.snapshot_done {
                let secs = tb.started.elapsed().as_secs_f64().max(0.001);
                tb.bar.set_length(t.rows_copied.max(1));
                tb.bar.finish_with_message(format!("done in {secs:.0}s ({:.0} rows/s on average)", t.rows_copied as f64 / secs));
                continue;
            }
            let eta = match rate {
                Some(r) if r > 0.0 => format!("ETA {:.0}s", t.rows_estimated.saturating_sub(t.rows_copied) as f64 / r),
                _ => "ETA -".into(),
            };
            let rate = rate.map(|r| format!("{r:.0} rows/s")).unwrap_or_else(|| "- rows/s".into());
            let parts = match catalog.partition_counts(&name, &dest).await {
                Ok((done, total)) => format!("  partitions {done}/{total}"),
                Err(_) => String::new(),
            };
            tb.bar.set_message(format!("{rate}  {eta}{parts}"));
        }
        let applied = status.changes_applied.load(Ordering::Relaxed);
        let rate = cdc_rate.sample(applied).map(|r| format!("{r:.0} changes/s")).unwrap_or_else(|| "- changes/s".into());
        match status.lag_seconds() {
            Some(lag) => cdc.set_message(format!("CDC  lag {lag:.1}s  {rate} (last 10 s)  {applied} applied")),
            None => cdc.set_message("CDC  not started yet"),
        }
        cdc.tick();
    }
    // Leave nothing half drawn: the copies' final lines stay, live lines go.
    for tb in bars.values() {
        if !tb.bar.is_finished() {
            tb.bar.finish_and_clear();
        }
    }
    cdc.finish_and_clear();
}

#[cfg(test)]
mod tests {
    use super::Rate;

    #[test]
    fn rate_needs_two_samples_and_reads_steadily_between_steps() {
        let mut r = Rate::new();
        assert_eq!(r.sample(0), None);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let first = r.sample(600).unwrap();
        assert!(first > 0.0, "{first}");
        // No change in the next sample: the rate over the window is still well above zero.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let flat = r.sample(600).unwrap();
        assert!(flat > 0.0 && flat <= first, "{flat} vs {first}");
    }
}
