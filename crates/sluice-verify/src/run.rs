//! One verification run of a pipe: every asked table, range by range —
//! checksums on both sides, bisection of differing ranges, row comparison of
//! small ones, live re-checks, optional repair — with progress and results
//! written to the catalog as it goes, a pipe event and metrics at the end.

use crate::canon::{canon, row_hash, Canon};
use crate::range::{bucket_bits, KeyCol, Scope};
use crate::rows::{dest_rows, diff, keyed_rows, narrowed, source_rows, source_rows_where, Rows};
use crate::sides::{dest_bucket_sums, dest_sum, key_span, source_bucket_sums, source_sum};
use crate::{DiffKind, KeyDiff, TableResult, VerifyError};
use futures_util::future::BoxFuture;
use mysql_async::Conn;
use sluice_catalog::{Catalog, TableRecord, VERIFY_DONE, VERIFY_FAILED};
use sluice_core::types::TableMapping;
use sluice_core::{PipeSpec, PipeState};
use sluice_sink::ClickHouseSink;
use sluice_source::conn;
use sluice_source::snapshot::{Partition, TableReader};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Rows per range planned for the checksums.
const RANGE_ROWS: u64 = 100_000;
/// A differing range with at most this many rows (on either side) is compared
/// row by row — fewer when the rows are wide (see `Table::compare_rows`).
const SMALL_RANGE: u64 = 1000;
/// Rows per page at most when the fetched columns of an agreeing range are compared.
const PAGE_ROWS: u64 = 50_000;
/// Fetched columns of agreeing hash buckets are compared in at most 2^this groups (one scan each).
const MAX_GROUP_BITS: u32 = 10;
/// Re-checks of a difference on a live pipe before it is reported.
const LIVE_ROUNDS: u32 = 4;
/// Longest wait for the pipe's checkpoint to pass a source position.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// What to verify.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// Destination names (or source `schema.table`); all tables when empty.
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub repair: bool,
}

/// Holds the pipe's CDC stream still while a repair writes (see `verify`).
pub trait RepairGate: Send + Sync {
    /// Stops the pipe's stream (e.g. pauses the pipe) and returns once it is stopped.
    fn hold(&self) -> BoxFuture<'_, Result<(), String>>;
    /// Lets the stream run again (it then reserves versions above the repair's).
    /// Also called after a `hold` that failed, to undo what it did on its way.
    fn release(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// Limits the source rows scanned per second (`verify_rows_per_second`).
pub struct Pace {
    rate: u64,
    start: Instant,
    rows: u64,
}

impl Pace {
    fn new(rate: u64) -> Self {
        Self { rate: rate.max(1), start: Instant::now(), rows: 0 }
    }

    /// Counts `n` rows scanned and sleeps while ahead of the rate.
    pub async fn scanned(&mut self, n: u64) {
        self.rows += n;
        let due = Duration::from_secs_f64(self.rows as f64 / self.rate as f64);
        let elapsed = self.start.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

/// Verifies the tables of `pipe` that `req` asks for, as run `id` (recorded by
/// `Catalog::start_verification`); results are stored in the catalog as each
/// table progresses and the run is finished (`done`/`failed`) at the end.
///
/// On a `Running` pipe a difference is re-checked after the pipe's checkpoint
/// passed the source position read with it, up to four times; what differs
/// every time is reported. On a pipe in another state the first comparison is
/// reported (nothing would change it).
///
/// Repair (`req.repair`) re-copies the differing rows from the source with
/// versions reserved from the pipe's version clock (above every version handed
/// out), through the sink's `write_into` as snapshot chunks are; rows no longer
/// at the source get delete markers. A CDC stream still holding an older block
/// of versions could write a later change of a repaired row below the repair,
/// so a `gate` must hold the stream still while the repair writes (the server
/// pauses a running pipe); without a gate the pipe must not be streaming.
pub async fn verify(
    catalog: &Catalog,
    pipe: &str,
    id: i64,
    req: &Request,
    gate: Option<&dyn RepairGate>,
    cancel: &CancellationToken,
) -> Result<Vec<TableResult>, VerifyError> {
    let outcome = run(catalog, pipe, id, req, gate, cancel).await;
    let (results, state, error) = match outcome {
        Ok(r) => (r, VERIFY_DONE, None),
        Err((r, e)) => (r, VERIFY_FAILED, Some(e.to_string())),
    };
    let json = serde_json::to_value(&results).unwrap_or_default();
    catalog.update_verification(id, &json, Some((state, error.as_deref()))).await?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    for t in &results {
        let labels = [("pipe", pipe.to_string()), ("table", t.destination.clone())];
        metrics::gauge!("sluice_verify_rows_differing", &labels).set(t.rows_differing as f64);
        metrics::gauge!("sluice_verify_last_run_timestamp_seconds", &labels).set(now);
    }
    catalog.note(pipe, &summary(id, &results, error.as_deref())).await?;
    match error {
        None => Ok(results),
        Some(e) => Err(VerifyError::Invalid(e)),
    }
}

/// The one-line summary recorded in the pipe's events.
pub fn summary(id: i64, results: &[TableResult], error: Option<&str>) -> String {
    let tables: Vec<String> = results
        .iter()
        .map(|t| {
            let count = |k: DiffKind| t.differences.iter().filter(|d| d.kind == k).count();
            let mut s = format!("{}: {} rows, {} differing", t.destination, t.rows_compared, t.rows_differing);
            if t.rows_differing > 0 {
                s.push_str(&format!(
                    " ({} missing, {} extra, {} differs{})",
                    count(DiffKind::Missing),
                    count(DiffKind::Extra),
                    count(DiffKind::Differs),
                    if t.differences_capped { ", list capped" } else { "" }
                ));
            }
            if t.rows_repaired > 0 {
                s.push_str(&format!(", {} rows repaired", t.rows_repaired));
            }
            if let Some(e) = &t.error {
                s.push_str(&format!(", failed: {e}"));
            }
            s
        })
        .collect();
    let head = match error {
        None => format!("verification #{id} done"),
        Some(e) => format!("verification #{id} failed: {e}"),
    };
    format!("{head}: {}", tables.join("; "))
}

type Partial = (Vec<TableResult>, VerifyError);

async fn run(
    catalog: &Catalog,
    pipe: &str,
    id: i64,
    req: &Request,
    gate: Option<&dyn RepairGate>,
    cancel: &CancellationToken,
) -> Result<Vec<TableResult>, Partial> {
    let fail = |e: VerifyError| (Vec::new(), e);
    let rec =
        catalog.pipe(pipe).await.map_err(|e| fail(e.into()))?.ok_or_else(|| fail(VerifyError::Invalid(format!("no pipe {pipe:?}"))))?;
    let tables = select_tables(catalog.tables(pipe).await.map_err(|e| fail(e.into()))?, &req.tables).map_err(fail)?;
    let mut results: Vec<TableResult> = tables
        .iter()
        .map(|t| TableResult {
            source: format!("{}.{}", t.mapping.source.id.schema, t.mapping.source.id.table),
            destination: t.mapping.destination.clone(),
            state: "pending".into(),
            ..Default::default()
        })
        .collect();
    let v = Verifier {
        catalog: catalog.clone(),
        pipe: pipe.to_string(),
        spec: rec.spec.clone(),
        sink: ClickHouseSink::new(&rec.spec.destination),
        cancel: cancel.clone(),
        pace: tokio::sync::Mutex::new(Pace::new(rec.spec.settings.verify_rows_per_second)),
    };
    for (i, t) in tables.iter().enumerate() {
        if t.mapping.options.engine != sluice_core::types::TableEngine::Replacing {
            // A change log (merge_tree) or a discarding table (null) has no final rows to equal the source's.
            results[i].state = "skipped".into();
            results[i].notes.push(format!(
                "not verified: engine {:?} keeps a log of changes, not one row per source row; only replacing tables are verified",
                t.mapping.options.engine
            ));
            continue;
        }
        results[i].state = "running".into();
        let _ = catalog.update_verification(id, &serde_json::to_value(&results).unwrap_or_default(), None).await;
        let r = &mut results[i];
        match v.table(t, req.repair, gate, r).await {
            Ok(()) => r.state = "done".into(),
            Err(VerifyError::Cancelled) => return Err((results, VerifyError::Cancelled)),
            Err(e) => {
                r.state = "failed".into();
                r.error = Some(e.to_string());
            }
        }
        info!(pipe, "verification #{id}: {} done: {} rows compared, {} differing", r.destination, r.rows_compared, r.rows_differing);
    }
    Ok(results)
}

/// The tables asked for (all when `names` is empty); an unknown name is an error naming it.
pub fn select_tables(all: Vec<TableRecord>, names: &[String]) -> Result<Vec<TableRecord>, VerifyError> {
    if names.is_empty() {
        return Ok(all);
    }
    let mut out = Vec::new();
    for n in names {
        let t = all
            .iter()
            .find(|t| &t.mapping.destination == n || format!("{}.{}", t.mapping.source.id.schema, t.mapping.source.id.table) == *n)
            .ok_or_else(|| VerifyError::Invalid(format!("table {n:?} is not in the pipe (give a destination name or schema.table)")))?;
        if !out.iter().any(|o: &TableRecord| o.mapping.destination == t.mapping.destination) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// Rows found differing, and where.
struct Found {
    scope: Scope,
    diffs: Vec<KeyDiff>,
    /// Compared over every column (else over the key and the fetched columns only).
    full: bool,
}

pub(crate) struct Verifier {
    catalog: Catalog,
    pipe: String,
    spec: PipeSpec,
    sink: ClickHouseSink,
    cancel: CancellationToken,
    pace: tokio::sync::Mutex<Pace>,
}

/// One table's verification plan: its mapping, how it is split, hashed and fetched columns.
pub(crate) struct Table {
    pub(crate) mapping: TableMapping,
    /// The ranged first paging column, if any.
    key: Option<KeyCol>,
    /// The key's CRC-32 on MySQL and on ClickHouse, when every key column is hashed.
    bucket: Option<(String, String)>,
    src_hash: String,
    ch_hash: String,
    /// MySQL: the bytes of a row's values.
    src_len: String,
    fetched: Vec<String>,
    /// Paged on `key` alone (a one-column key, no other `partition_key`).
    single_key: bool,
    /// Bytes one row holds once read, as far as known: the source's average
    /// row length, raised by what each comparison actually read.
    row_bytes: std::sync::atomic::AtomicU64,
}

impl Table {
    /// The most rows a row-by-row comparison may hold on both sides (each read
    /// whole, the ClickHouse side also as text) within a CDC batch's share of
    /// the process's memory budget: wide rows are compared in smaller ranges.
    fn compare_rows(&self) -> u64 {
        let bytes = self.row_bytes.load(std::sync::atomic::Ordering::Relaxed).max(1);
        (sluice_engine::memory::global().batch_allowance() / (3 * bytes)).clamp(1, SMALL_RANGE)
    }

    /// Whether a range of `rows` rows holding `bytes` bytes of values at the
    /// source may be compared row by row now: at most `SMALL_RANGE` rows, and
    /// (unless it is a single row) both sides' rows — each read whole, the
    /// ClickHouse side also as text — within a CDC batch's share of the budget.
    fn fits(&self, rows: u64, bytes: u64) -> bool {
        rows <= 1 || (rows <= SMALL_RANGE && self.held_fits(rows, bytes))
    }

    /// Whether `rows` rows holding `bytes` bytes at the source may be read
    /// at once, however many: all of a table compared in one piece, or the
    /// fetched columns of an agreeing range (all the range's bytes: an upper
    /// bound of the fetched columns'), as long as they fit the budget as
    /// `fits` counts it. (Bisecting an agreeing range down to `SMALL_RANGE`
    /// rows only to compare a column or two made a 5,000,000-row table take
    /// 5,000 comparisons instead of a few hundred.)
    fn fits_budget(&self, rows: u64, bytes: u64) -> bool {
        rows <= 1 || self.held_fits(rows, bytes)
    }

    /// Rows of a page of fetched columns (`Verifier::fetched_in_pages`): as
    /// many as fit a CDC batch's share of the budget, at most `PAGE_ROWS`.
    fn page_rows(&self) -> u64 {
        let bytes = self.row_bytes.load(std::sync::atomic::Ordering::Relaxed).max(1);
        (sluice_engine::memory::global().batch_allowance() / self.held(1, bytes)).clamp(1, PAGE_ROWS)
    }

    /// Whether `rows` rows of `bytes` bytes, read on both sides (the
    /// ClickHouse side also as text), fit a CDC batch's share of the budget.
    fn held_fits(&self, rows: u64, bytes: u64) -> bool {
        self.held(rows, bytes) <= sluice_engine::memory::global().batch_allowance()
    }

    /// Bytes `rows` rows of `bytes` bytes take once read on both sides (the ClickHouse side also as text).
    fn held(&self, rows: u64, bytes: u64) -> u64 {
        3 * (bytes + rows * (self.mapping.columns.len() as u64 * std::mem::size_of::<sluice_core::Cell>() as u64))
    }

    /// Why a table compared in one piece is not verified.
    fn too_large_to_compare_whole(&self, rows: u64, bytes: u64) -> String {
        let keys = &self.mapping.source.primary_key;
        let fetched_keys: Vec<&str> = self
            .mapping
            .columns
            .iter()
            .filter(|c| self.fetched.contains(&c.name) && keys.contains(&self.mapping.source.columns[c.source_index].name))
            .map(|c| c.name.as_str())
            .collect();
        let budget = sluice_engine::memory::global();
        format!(
            "table {} was not verified: its key column(s) {} cannot be checksummed alike on both sides, so the table is compared \
             row by row in one piece, and reading its {rows} rows ({} MiB of values) on both sides would hold about {} MiB, more \
             than the {} MiB a comparison may hold under the memory budget of {} MiB; raise the budget (--memory-budget-mb) or \
             leave the table out (\"tables\")",
            self.mapping.destination,
            fetched_keys.join(", "),
            bytes.div_ceil(1 << 20),
            self.held(rows, bytes).div_ceil(1 << 20),
            budget.batch_allowance() >> 20,
            budget.total_bytes() >> 20,
        )
    }

    /// Notes what a comparison read: `rows` rows of `bytes` bytes in all.
    fn observed(&self, rows: usize, bytes: u64) {
        if rows > 0 {
            self.row_bytes.fetch_max(bytes / rows as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub(crate) fn mysql_pred(&self, scope: &Scope) -> String {
        match (scope, &self.key, &self.bucket) {
            (Scope::Range(p), Some(k), _) => k.mysql_pred(p),
            (Scope::Bucket { bits, value }, _, Some((h, _))) => Scope::bucket_pred(*bits, *value, h, false),
            _ => "1 = 1".into(),
        }
    }

    pub(crate) fn ch_pred(&self, scope: &Scope) -> String {
        match (scope, &self.key, &self.bucket) {
            (Scope::Range(p), Some(k), _) => k.ch_pred(p),
            (Scope::Bucket { bits, value }, _, Some((_, h))) => Scope::bucket_pred(*bits, *value, h, true),
            _ => "1 = 1".into(),
        }
    }
}

impl Verifier {
    async fn live(&self) -> Result<bool, VerifyError> {
        Ok(self.catalog.pipe(&self.pipe).await?.is_some_and(|p| p.state == PipeState::Running))
    }

    async fn connect(&self) -> Result<(Conn, conn::ServerInfo), VerifyError> {
        let mut c = conn::connect(&self.spec.source).await?;
        let info = conn::bounded(&self.spec.source, "reading the server version", conn::server_info(&mut c)).await?;
        Ok((c, info))
    }

    fn plan(mapping: TableMapping) -> Table {
        let mut parts = Vec::new();
        let mut fetched = Vec::new();
        let mut key_parts = Vec::new();
        let mut key_hashed = true;
        for c in &mapping.columns {
            let src = &mapping.source.columns[c.source_index];
            let in_key = mapping.source.primary_key.contains(&src.name);
            match canon(src, &c.name, &c.ch_type) {
                Canon::Hashed { mysql, clickhouse } => {
                    if in_key {
                        key_parts.push((mysql.clone(), clickhouse.clone()));
                    }
                    parts.push((mysql, clickhouse));
                }
                Canon::Fetched => {
                    key_hashed &= !in_key;
                    fetched.push(c.name.clone());
                }
            }
        }
        let (src_hash, ch_hash) = row_hash(&parts);
        let src_len = mapping
            .columns
            .iter()
            .map(|c| format!("IFNULL(LENGTH({}), 0)", sluice_core::schema::quote_mysql(&mapping.source.columns[c.source_index].name)))
            .collect::<Vec<_>>()
            .join(" + ");
        let src_len = if src_len.is_empty() { "0".to_string() } else { src_len };
        let bucket = (key_hashed && !key_parts.is_empty()).then(|| key_hash(&key_parts));
        let pk = &mapping.source.primary_key;
        let single_key = pk.len() == 1 && mapping.partition_key.as_ref().is_none_or(|p| *p == pk[0]);
        Table { key: KeyCol::of(&mapping), bucket, mapping, src_hash, ch_hash, src_len, fetched, single_key, row_bytes: 0.into() }
    }

    async fn table(&self, t: &TableRecord, repair: bool, gate: Option<&dyn RepairGate>, r: &mut TableResult) -> Result<(), VerifyError> {
        use sluice_core::TableState::*;
        if !matches!(t.state, Running | Snapshotted) {
            return Err(VerifyError::Invalid(format!(
                "table {} is {:?}; verify it once it is copied (Running or Snapshotted)",
                t.mapping.destination, t.state
            )));
        }
        let tab = Self::plan(t.mapping.clone());
        r.fetched_columns = tab.fetched.clone();
        let (mut c, info) = self.connect().await?;
        let reader = TableReader::new(&tab.mapping)?;
        let (est, avg) = conn::bounded(&self.spec.source, "the table's statistics", reader.statistics(&mut c)).await?;
        tab.row_bytes.fetch_max(avg, std::sync::atomic::Ordering::Relaxed);
        let live = self.live().await?;
        if !live {
            r.notes.push("the pipe is not Running: differences are reported as first found (no live re-check)".into());
        }
        let mut found = Vec::new();
        if tab.key.is_some() {
            let ranges = conn::bounded(&self.spec.source, "planning ranges", reader.plan_partitions(&mut c, est, RANGE_ROWS))
                .await?
                .unwrap_or_else(|| vec![Partition::WHOLE]);
            for part in ranges {
                found.extend(self.range(&mut c, &info, &tab, part, live, r).await?);
            }
        } else if tab.bucket.is_some() {
            r.notes.push("the first key column is not an integer or date/time: the table is compared in hash buckets of its key".into());
            found = self.buckets(&mut c, &info, &tab, est, live, r).await?;
        } else {
            r.notes.push("the key has a column that cannot be checksummed alike on both sides: the table is compared row by row".into());
            // Both sides are read whole: a table too large for the budget is refused, not read.
            let src_table = tab.mapping.source.id.to_string();
            let (s, bytes) = source_sum(&mut c, &self.spec.source, &src_table, &tab.src_hash, &tab.src_len, "1 = 1").await?;
            if !tab.fits_budget(s.rows, bytes) {
                let _ = c.disconnect().await;
                return Err(VerifyError::Invalid(tab.too_large_to_compare_whole(s.rows, bytes)));
            }
            r.rows_compared += s.rows;
            let scope = Scope::Range(Partition::WHOLE);
            let diffs = self.compare_once(&mut c, &tab, &scope, &tab.mapping).await?;
            r.ranges_checked += 1;
            found.push(Found { scope, diffs, full: true });
        }
        let found = self.recheck(&mut c, &info, &tab, found, live).await?;
        let diffs: Vec<KeyDiff> = found.iter().flat_map(|f| f.diffs.iter().cloned()).collect();
        if repair && !diffs.is_empty() {
            r.differing_before_repair = Some(diffs.len() as u64);
            r.rows_repaired = self.repair(&mut c, &tab, &found, gate).await?;
            // Re-verify the repaired rows.
            let live = self.live().await?;
            let mut after = Vec::new();
            for f in &found {
                let diffs = self.compare_once(&mut c, &tab, &f.scope, &tab.mapping).await?;
                after.push(Found { scope: f.scope.clone(), diffs, full: true });
            }
            for d in self.recheck(&mut c, &info, &tab, after, live).await?.into_iter().flat_map(|f| f.diffs) {
                r.add(d);
            }
        } else {
            for d in diffs {
                r.add(d);
            }
        }
        let _ = c.disconnect().await;
        Ok(())
    }

    /// Checks one planned range: checksums (re-checked on a live pipe),
    /// bisection, row comparison of small ranges; and the fetched columns of a
    /// range whose checksums agree.
    async fn range(
        &self,
        c: &mut Conn,
        info: &conn::ServerInfo,
        tab: &Table,
        part: Partition,
        live: bool,
        r: &mut TableResult,
    ) -> Result<Vec<Found>, VerifyError> {
        let mut out = Vec::new();
        let mut todo = vec![(part, true)];
        let src_table = tab.mapping.source.id.to_string();
        let labels = [("pipe", self.pipe.clone()), ("table", tab.mapping.destination.clone())];
        while let Some((part, top)) = todo.pop() {
            if self.cancel.is_cancelled() {
                return Err(VerifyError::Cancelled);
            }
            let scope = Scope::Range(part.clone());
            let (mut s, mut d, mut pos, mut bytes) = self.sums(c, info, tab, &scope, live).await?;
            r.ranges_checked += 1;
            metrics::counter!("sluice_verify_ranges_total", &labels).increment(1);
            if top {
                r.rows_compared += s.rows;
            }
            // A live pipe may not have applied the source's latest changes yet: check again once it has.
            let mut round = 0;
            while s != d && live && top && round < LIVE_ROUNDS {
                round += 1;
                self.wait_for(pos.as_ref()).await?;
                (s, d, pos, bytes) = self.sums(c, info, tab, &scope, live).await?;
                r.ranges_checked += 1;
            }
            // Rows are read (all columns of a differing range, the fetched
            // ones of an agreeing range) only once the range is small enough.
            if s == d && tab.fetched.is_empty() {
                continue;
            }
            // An agreeing range holds the same rows on both sides: its fetched
            // columns are compared page by page, without checksumming halves.
            if s == d && tab.single_key {
                out.extend(self.fetched_in_pages(c, tab, &part).await?);
                continue;
            }
            let rows = s.rows.max(d.rows);
            let small = if s == d { tab.fits_budget(rows, bytes) } else { tab.fits(rows, bytes) };
            let halves = match (&tab.key, small) {
                (Some(k), false) => match key_span(c, &self.spec.source, &self.sink, &src_table, &tab.mapping.destination, k, &part).await?
                {
                    Some((lo, hi)) => k.split(&part, lo, hi),
                    None => None,
                },
                _ => None,
            };
            match halves {
                Some((a, b)) => {
                    todo.push((b, false));
                    todo.push((a, false));
                }
                None if s == d => {
                    let narrow = narrowed(&tab.mapping, &tab.fetched);
                    let diffs = self.compare_once(c, tab, &scope, &narrow).await?;
                    if !diffs.is_empty() {
                        out.push(Found { scope, diffs, full: false });
                    }
                }
                None => {
                    let diffs = self.compare_once(c, tab, &scope, &tab.mapping).await?;
                    if !diffs.is_empty() {
                        out.push(Found { scope, diffs, full: true });
                    }
                }
            }
        }
        Ok(out)
    }

    /// The fetched columns of an agreeing range of a table paged on one ranged
    /// key column, compared in key-ordered pages that fit a CDC batch's share
    /// of the budget (read on both sides, the ClickHouse side also as text):
    /// the source is read once more, whatever the range's size. Only values
    /// that differ are reported — the checksums already showed that both
    /// sides hold the same keys.
    async fn fetched_in_pages(&self, c: &mut Conn, tab: &Table, part: &Partition) -> Result<Vec<Found>, VerifyError> {
        let Some(k) = &tab.key else { return Ok(Vec::new()) };
        let narrow = narrowed(&tab.mapping, &tab.fetched);
        let reader = TableReader::new(&narrow)?;
        let allowance = sluice_engine::memory::global().batch_allowance();
        let mut out = Vec::new();
        let (mut after, mut lo) = (None::<serde_json::Value>, part.lo.clone());
        loop {
            if self.cancel.is_cancelled() {
                return Err(VerifyError::Cancelled);
            }
            let limit = tab.page_rows();
            let chunk = {
                let mut pace = self.pace.lock().await;
                let chunk = conn::bounded(
                    &self.spec.source,
                    "a verification read",
                    reader.read_partition_chunk(c, part, after.as_ref(), limit, allowance / 3),
                )
                .await?;
                pace.scanned(chunk.rows.len() as u64).await;
                chunk
            };
            // The page holds the keys in [lo, hi): hi is just above its last key.
            let next = chunk.last_key.as_ref().and_then(|key| key.get(0)).and_then(|b| k.num(b)).and_then(|n| k.above(n));
            let hi = if chunk.done { part.hi.clone() } else { next.clone().or_else(|| part.hi.clone()) };
            let page = Partition { lo: lo.clone(), hi };
            let src = keyed_rows(&narrow, chunk.rows);
            let dst = dest_rows(&self.sink, &narrow, &k.ch_pred(&page)).await?;
            let diffs: Vec<KeyDiff> = diff(&narrow, &src, &dst).into_iter().filter(|d| d.kind == DiffKind::Differs).collect();
            if !diffs.is_empty() {
                out.push(Found { scope: Scope::Range(page), diffs, full: false });
            }
            if chunk.done || chunk.last_key.is_none() || next.is_none() {
                return Ok(out);
            }
            (after, lo) = (chunk.last_key, next);
        }
    }

    /// A table without a ranged key: checksums of hash buckets of about
    /// `Table::compare_rows` rows, each side in one scan (re-checked on a live pipe);
    /// the rows of differing buckets are compared. Fetched columns are compared
    /// in groups of buckets of about `RANGE_ROWS` rows (fewer for wide rows,
    /// at most 2^`MAX_GROUP_BITS` groups).
    async fn buckets(
        &self,
        c: &mut Conn,
        info: &conn::ServerInfo,
        tab: &Table,
        est: u64,
        live: bool,
        r: &mut TableResult,
    ) -> Result<Vec<Found>, VerifyError> {
        let Some((src_bucket, ch_bucket)) = &tab.bucket else { return Ok(Vec::new()) };
        let mut bits = bucket_bits(est, tab.compare_rows());
        let mut known_rows = est;
        let src_table = tab.mapping.source.id.to_string();
        let mut differing: Option<BTreeSet<u32>> = None;
        let mut round = 0;
        loop {
            let mask = (1u64 << bits) - 1;
            let (src_b, ch_b) = (format!("({src_bucket} & {mask})"), format!("bitAnd({ch_bucket}, {mask})"));
            let (s, bytes) = source_bucket_sums(c, &self.spec.source, &src_table, &tab.src_hash, &tab.src_len, &src_b).await?;
            let pos = if live { Some(self.position(c, info).await?) } else { None };
            let n: u64 = s.values().map(|x| x.rows).sum();
            tab.observed(n as usize, bytes);
            self.pace.lock().await.scanned(n).await;
            let d = dest_bucket_sums(&self.sink, &tab.mapping.destination, &tab.ch_hash, &ch_b).await?;
            r.ranges_checked += 1;
            metrics::counter!("sluice_verify_ranges_total", "pipe" => self.pipe.clone(), "table" => tab.mapping.destination.clone())
                .increment(1);
            // The row estimate was far off (no statistics yet): scan again with buckets of the right size.
            let total = n.max(d.values().map(|x| x.rows).sum());
            known_rows = known_rows.max(total);
            if differing.is_none() && bucket_bits(total, tab.compare_rows()) > bits {
                bits = bucket_bits(total, tab.compare_rows());
                continue;
            }
            if differing.is_none() {
                r.rows_compared += n;
            }
            let now: BTreeSet<u32> = s.keys().chain(d.keys()).filter(|b| s.get(b) != d.get(b)).copied().collect();
            let now = match differing {
                None => now,
                Some(before) => before.intersection(&now).copied().collect(),
            };
            let done = now.is_empty() || !live || round >= LIVE_ROUNDS;
            differing = Some(now);
            if done {
                break;
            }
            round += 1;
            self.wait_for(pos.as_ref()).await?;
        }
        let mut out = Vec::new();
        for value in differing.unwrap_or_default() {
            let scope = Scope::Bucket { bits, value };
            let diffs = self.compare_once(c, tab, &scope, &tab.mapping).await?;
            if !diffs.is_empty() {
                out.push(Found { scope, diffs, full: true });
            }
        }
        if !tab.fetched.is_empty() {
            let narrow = narrowed(&tab.mapping, &tab.fetched);
            let group_bits = bucket_bits(known_rows, RANGE_ROWS.min(tab.compare_rows())).min(MAX_GROUP_BITS);
            for value in 0..(1u32 << group_bits) {
                let scope = Scope::Bucket { bits: group_bits, value };
                let diffs = self.compare_once(c, tab, &scope, &narrow).await?;
                if !diffs.is_empty() {
                    out.push(Found { scope, diffs, full: false });
                }
            }
        }
        Ok(out)
    }

    /// Both checksums of a range, and the source position read after the source's.
    async fn sums(
        &self,
        c: &mut Conn,
        info: &conn::ServerInfo,
        tab: &Table,
        scope: &Scope,
        live: bool,
    ) -> Result<(crate::sides::Sum, crate::sides::Sum, Option<sluice_core::BinlogPosition>, u64), VerifyError> {
        // Both sides at once; a difference that is only the pipe's delay is re-checked by the caller.
        let (src_table, src_pred, ch_pred) = (tab.mapping.source.id.to_string(), tab.mysql_pred(scope), tab.ch_pred(scope));
        let source = async {
            let (s, bytes) = source_sum(c, &self.spec.source, &src_table, &tab.src_hash, &tab.src_len, &src_pred).await?;
            let pos = if live { Some(self.position(c, info).await?) } else { None };
            Ok::<_, VerifyError>((s, pos, bytes))
        };
        let dest = dest_sum(&self.sink, &tab.mapping.destination, &tab.ch_hash, &ch_pred);
        let (src, d) = tokio::join!(source, dest);
        let (s, pos, bytes) = src?;
        self.pace.lock().await.scanned(s.rows).await;
        Ok((s, d?, pos, bytes))
    }

    async fn position(&self, c: &mut Conn, info: &conn::ServerInfo) -> Result<sluice_core::BinlogPosition, VerifyError> {
        Ok(conn::bounded(&self.spec.source, "reading the binlog position", conn::current_position(c, info)).await?.0)
    }

    /// Waits until the pipe's checkpoint is at or past `pos` (a generous timeout; then it goes on).
    async fn wait_for(&self, pos: Option<&sluice_core::BinlogPosition>) -> Result<(), VerifyError> {
        let Some(pos) = pos else { return Ok(()) };
        let deadline = Instant::now() + CATCH_UP_TIMEOUT;
        loop {
            if self.cancel.is_cancelled() {
                return Err(VerifyError::Cancelled);
            }
            let cp = self.catalog.checkpoint(&self.pipe).await?;
            let passed = cp.as_ref().and_then(|cp| cp.checkpoint.position.progress_cmp(pos)).is_some_and(|o| o.is_ge());
            if passed || Instant::now() > deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// On a live pipe, compares the differing rows again once the pipe's
    /// checkpoint has passed the source position read after the previous
    /// comparison; keeps only the rows that differ every time.
    async fn recheck(
        &self,
        c: &mut Conn,
        info: &conn::ServerInfo,
        tab: &Table,
        mut found: Vec<Found>,
        live: bool,
    ) -> Result<Vec<Found>, VerifyError> {
        let mut round = 0;
        while live && round < LIVE_ROUNDS && found.iter().any(|f| !f.diffs.is_empty()) {
            round += 1;
            let pos = self.position(c, info).await?;
            self.wait_for(Some(&pos)).await?;
            for f in found.iter_mut().filter(|f| !f.diffs.is_empty()) {
                let mapping = if f.full { tab.mapping.clone() } else { narrowed(&tab.mapping, &tab.fetched) };
                let again: BTreeMap<String, KeyDiff> =
                    self.compare_once(c, tab, &f.scope, &mapping).await?.into_iter().map(|d| (d.key.clone(), d)).collect();
                f.diffs = std::mem::take(&mut f.diffs).into_iter().filter_map(|d| again.get(&d.key).cloned()).collect();
            }
        }
        found.retain(|f| !f.diffs.is_empty());
        Ok(found)
    }

    /// The rows of `scope` on both sides, over `mapping`'s columns.
    pub(crate) async fn rows(&self, c: &mut Conn, tab: &Table, scope: &Scope, mapping: &TableMapping) -> Result<(Rows, Rows), VerifyError> {
        let src = async {
            let mut pace = self.pace.lock().await;
            match scope {
                Scope::Range(part) if tab.key.is_some() || *part == Partition::WHOLE => {
                    source_rows(c, &self.spec.source, mapping, part, &mut pace).await
                }
                _ => source_rows_where(c, &self.spec.source, mapping, &tab.mysql_pred(scope), &mut pace).await,
            }
        };
        let ch_pred = tab.ch_pred(scope);
        let (src, dst) = tokio::join!(src, dest_rows(&self.sink, mapping, &ch_pred));
        Ok((src?, dst?))
    }

    async fn compare_once(&self, c: &mut Conn, tab: &Table, scope: &Scope, mapping: &TableMapping) -> Result<Vec<KeyDiff>, VerifyError> {
        let (src, dst) = self.rows(c, tab, scope, mapping).await?;
        if mapping.columns.len() == tab.mapping.columns.len() {
            tab.observed(src.len(), src.values().map(|cells| sluice_core::change::cells_size(cells)).sum());
        }
        Ok(diff(mapping, &src, &dst))
    }

    /// Re-copies the differing rows of `found` (see `verify`); returns the rows written.
    async fn repair(&self, c: &mut Conn, tab: &Table, found: &[Found], gate: Option<&dyn RepairGate>) -> Result<u64, VerifyError> {
        if let Some(g) = gate {
            if let Err(e) = g.hold().await {
                // Undo whatever the gate did on its way (a pause requested but not reached).
                let _ = g.release().await;
                return Err(VerifyError::Invalid(e));
            }
        }
        let mut written = 0;
        let mut result = Ok(());
        for f in found {
            match crate::repair::scope(self, c, tab, &f.scope).await {
                Ok(n) => written += n,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let Some(g) = gate {
            g.release().await.map_err(VerifyError::Invalid)?;
        }
        result.map(|_| written)
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub(crate) fn pipe(&self) -> &str {
        &self.pipe
    }

    pub(crate) fn sink(&self) -> &ClickHouseSink {
        &self.sink
    }
}

/// The CRC-32 of a key's canonical text, on MySQL and on ClickHouse (both the IEEE polynomial).
fn key_hash(parts: &[(String, String)]) -> (String, String) {
    let my: Vec<String> = parts.iter().map(|(m, _)| format!("CAST({m} AS BINARY)")).collect();
    let ch: Vec<&str> = parts.iter().map(|(_, c)| c.as_str()).collect();
    (format!("CRC32(CONCAT_WS(',', {}))", my.join(", ")), format!("CRC32(concatWithSeparator(',', {}))", ch.join(", ")))
}
