//! Engine unit tests: the whole engine (`run`) over the in-memory seams
//! (`memory`) and a real catalog in a temporary directory, on synthetic
//! change sequences. Each covers a hard case end to end — copy and stream
//! overlapping, DDL between the rows it separates, whole and split
//! transactions, a batch failing halfway, a crash between the acknowledgement
//! and the checkpoint, a broken stream — and asserts what a reader of the
//! destination sees. They run in milliseconds and assert outcomes only.

mod memory;

use crate::{register, run, EngineError, LiveStatus, PipeContext};
use memory::{MemoryDestination, MemorySource, Row, WriteFault};
use serde_json::json;
use sluice_catalog::Catalog;
use sluice_core::schema::TableId;
use sluice_core::types::TableMapping;
use sluice_core::{Cell, ChangeOp, PipeAction, PipeSpec, PipeState, TableState};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long an eventual outcome may take (generous: a loaded machine is slow).
const PATIENCE: Duration = Duration::from_secs(30);

fn accounts() -> TableId {
    TableId::new("shop", "accounts")
}

fn row(id: i64, owner: &str, balance: i64) -> Row {
    [("id".to_string(), Cell::Int(id)), ("owner".to_string(), Cell::Bytes(owner.into())), ("balance".to_string(), Cell::Int(balance))]
        .into_iter()
        .collect()
}

fn upsert(id: i64, owner: &str, balance: i64) -> (TableId, ChangeOp, Row) {
    (accounts(), ChangeOp::Upsert, row(id, owner, balance))
}

fn delete(id: i64) -> (TableId, ChangeOp, Row) {
    (accounts(), ChangeOp::Delete, row(id, "", 0))
}

/// A small deterministic generator (no seeds to manage, same sequence every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

struct Harness {
    src: MemorySource,
    dst: MemoryDestination,
    catalog: Catalog,
    spec: PipeSpec,
    _dir: tempfile::TempDir,
}

/// A running engine task.
struct Engine {
    cancel: CancellationToken,
    task: JoinHandle<Result<PipeState, EngineError>>,
}

impl Engine {
    /// Stops it as a pause does (cancel: the committed changes held are written first).
    async fn stop(self) -> Result<PipeState, EngineError> {
        self.cancel.cancel();
        self.task.await.expect("engine task")
    }

    /// Stops it as a crash does: the task is dropped wherever it is.
    async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

impl Harness {
    /// A pipe over `shop.*` with `accounts(id, owner, balance)` holding `rows` rows.
    async fn new(mode: &str, settings: serde_json::Value, rows: i64) -> Self {
        Self::with_tables(mode, settings, rows, &[]).await
    }

    /// `new`, plus empty tables `extra` of the same columns in `shop`.
    async fn with_tables(mode: &str, settings: serde_json::Value, rows: i64, extra: &[&str]) -> Self {
        let src = MemorySource::default();
        src.create_table("shop", "accounts", &[("id", "bigint"), ("owner", "varchar(64)"), ("balance", "bigint")]);
        for name in extra {
            src.create_table("shop", name, &[("id", "bigint"), ("owner", "varchar(64)"), ("balance", "bigint")]);
        }
        for chunk in (1..=rows).collect::<Vec<_>>().chunks(500) {
            src.commit(chunk.iter().map(|i| upsert(*i, &format!("owner{i}"), 100)).collect());
        }
        let mut base = json!({"sync_interval_ms": 20, "snapshot_rows_per_chunk": 50, "rows_per_partition": 200, "parallel_partitions": 3});
        base.as_object_mut().unwrap().extend(settings.as_object().cloned().unwrap_or_default());
        let spec: PipeSpec = serde_json::from_value(json!({
            "name": "mem",
            "source": {"host": "memory", "user": "u"},
            "destination": {"url": "http://memory", "database": "d"},
            "tables": [{"source": "shop.*"}],
            "mode": mode,
            "settings": base,
        }))
        .expect("spec");
        let dir = tempfile::tempdir().expect("temp dir");
        let catalog = Catalog::open(dir.path()).await.expect("catalog");
        register(&catalog, &spec).await.expect("register");
        Self { src, dst: MemoryDestination::default(), catalog, spec, _dir: dir }
    }

    fn start(&self) -> Engine {
        let cancel = CancellationToken::new();
        let (_tx, settings) = watch::channel(self.spec.settings.clone());
        let ctx = PipeContext::with_parts(
            self.spec.clone(),
            Arc::new(self.catalog.clone()),
            Arc::new(self.src.clone()),
            Arc::new(self.dst.clone()),
            cancel.clone(),
            settings,
            LiveStatus::new(),
        );
        Engine { cancel, task: tokio::spawn(async move { run(&ctx).await }) }
    }

    async fn state(&self) -> PipeState {
        self.catalog.pipe("mem").await.expect("catalog").expect("pipe").state
    }

    async fn wait_state(&self, want: PipeState) {
        let t0 = tokio::time::Instant::now();
        while self.state().await != want {
            assert!(t0.elapsed() < PATIENCE, "pipe never reached {want} (it is {})", self.state().await);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn wait_table_state(&self, dest: &str, want: TableState) {
        let t0 = tokio::time::Instant::now();
        while self.table(dest).await.state != want {
            assert!(t0.elapsed() < PATIENCE, "{dest} never went to {want:?} (it is {:?})", self.table(dest).await.state);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn table(&self, dest: &str) -> sluice_catalog::TableRecord {
        let tables = self.catalog.tables("mem").await.expect("tables");
        tables.into_iter().find(|t| t.mapping.destination == dest).unwrap_or_else(|| panic!("no table {dest}"))
    }

    async fn mapping(&self, dest: &str) -> TableMapping {
        self.table(dest).await.mapping
    }

    /// Waits until the destination's final view of `dest` equals the source table.
    async fn converged(&self, dest: &str) {
        let t0 = tokio::time::Instant::now();
        loop {
            let mapping = self.mapping(dest).await;
            let (want, got) = (self.src.rows(&mapping), self.dst.final_rows(dest));
            let Some(want) = want else {
                // The recorded definition is behind the source's: the pipe has DDL to follow.
                assert!(t0.elapsed() < PATIENCE, "{dest}: the recorded definition never caught up with the source's");
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            if want == got {
                return;
            }
            if t0.elapsed() > PATIENCE {
                let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(k)).take(5).collect();
                let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(k)).take(5).collect();
                let differ: Vec<_> = want.iter().filter(|(k, v)| got.get(k).is_some_and(|g| g != *v)).map(|(k, _)| k).take(5).collect();
                panic!(
                    "{dest} never converged: source {} rows, destination {}; missing {missing:?}, extra {extra:?}, differing {differ:?}",
                    want.len(),
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `n` random transactions on accounts (1–4 changes each: updates, inserts, deletes).
    fn random_writes(&self, rng: &mut Lcg, n: usize, max_id: i64) {
        for _ in 0..n {
            let changes = (0..1 + rng.below(4))
                .map(|_| {
                    let id = 1 + rng.below(max_id as u64) as i64;
                    match rng.below(5) {
                        0 => delete(id),
                        _ => upsert(id, &format!("w{}", rng.below(1000)), rng.below(10_000) as i64),
                    }
                })
                .collect();
            self.src.commit(changes);
        }
    }

    async fn events(&self) -> Vec<String> {
        self.catalog.events("mem").await.expect("events").into_iter().map(|e| e.reason).collect()
    }
}

#[tokio::test]
async fn snapshot_then_cdc_converges() {
    let h = Harness::new("snapshot_and_cdc", json!({}), 1000).await;
    let engine = h.start();
    h.wait_state(PipeState::Running).await;
    h.random_writes(&mut Lcg(1), 300, 1200);
    h.converged("accounts").await;
    assert_eq!(engine.stop().await.expect("stopped"), PipeState::Running);
}

/// Rows changed while the copy runs — before and after the copy read them —
/// end as the source has them: the stream replays every change after the
/// copy's start position with higher versions.
#[tokio::test]
async fn changes_during_the_initial_copy_converge() {
    let h = Harness::new("snapshot_and_cdc", json!({"parallel_partitions": 1}), 1000).await;
    h.src.hold_copy_after(3);
    let engine = h.start();
    h.src.copy_held().await;
    // Rows 1..150 were copied; rows above were not yet.
    let mut changes = vec![upsert(10, "moved", 1), delete(20), upsert(600, "late", 2), delete(700), upsert(5000, "new", 3)];
    changes.push(upsert(20, "back", 4));
    h.src.commit(changes);
    h.src.commit(vec![delete(10), delete(600)]);
    h.src.release_copy();
    h.wait_state(PipeState::Running).await;
    h.converged("accounts").await;
    engine.stop().await.expect("stopped");
}

/// A snapshot-only pipe completes consistent as of one position: the changes
/// made during its copy are applied before `Completed`.
#[tokio::test]
async fn snapshot_only_copy_is_consistent_when_completed() {
    let h = Harness::new("snapshot_only", json!({"parallel_partitions": 1}), 600).await;
    h.src.hold_copy_after(2);
    let engine = h.start();
    h.src.copy_held().await;
    h.random_writes(&mut Lcg(7), 100, 700);
    h.src.release_copy();
    h.wait_state(PipeState::Completed).await;
    // Completed means consistent now: no waiting.
    let mapping = h.mapping("accounts").await;
    assert_eq!(h.src.rows(&mapping), Some(h.dst.final_rows("accounts")), "a Completed copy differs from the source");
    assert_eq!(engine.task.await.expect("task").expect("run"), PipeState::Completed);
}

/// A resync of a live table: the copy into the re-copy table overlaps the
/// stream (which writes the table's changes there too), then the two are
/// swapped; readers of the table see its old rows until then.
#[tokio::test]
async fn resync_overlapping_the_stream_converges_and_swaps() {
    let h = Harness::new("snapshot_and_cdc", json!({"parallel_partitions": 1}), 500).await;
    let engine = h.start();
    h.wait_state(PipeState::Running).await;
    h.converged("accounts").await;
    engine.stop().await.expect("paused");

    let mappings = vec![h.mapping("accounts").await];
    let prepared = crate::modify::resync_setup(&h.catalog, &h.spec, &h.src, &mappings, &h.dst).await.expect("resync setup");
    h.catalog.begin_resync("mem", &prepared.mappings, prepared.snapshot_version, None).await.expect("begin resync");
    h.catalog.transition("mem", PipeAction::Resync, PipeState::Resync, "test resync", None).await.expect("transition");
    h.src.hold_copy_after(2);
    let engine = h.start();
    h.src.copy_held().await;
    h.random_writes(&mut Lcg(3), 200, 600);
    h.src.release_copy();
    h.wait_state(PipeState::Running).await;
    assert_eq!(h.table("accounts").await.state, TableState::Running);
    assert!(!h.dst.has_table("accounts_recopy"), "the re-copy table was not swapped in");
    h.converged("accounts").await;
    engine.stop().await.expect("stopped");
}

/// DDL statements are applied at their place in the stream: a pipe that is
/// behind several of them (stopped while they ran) decodes each stretch of
/// rows with the definition of its moment and ends with the last definition.
#[tokio::test]
async fn lagging_pipe_applies_ddl_between_the_rows_it_separates() {
    let h = Harness::new("snapshot_and_cdc", json!({}), 100).await;
    let engine = h.start();
    h.wait_state(PipeState::Running).await;
    h.converged("accounts").await;
    engine.stop().await.expect("paused");

    h.src.commit(vec![upsert(1, "before", 1)]);
    h.src.ddl("shop", "ALTER TABLE accounts ADD COLUMN note varchar(20)");
    let mut r = row(2, "after add", 2);
    r.insert("note".into(), Cell::Bytes("hello".into()));
    h.src.commit(vec![(accounts(), ChangeOp::Upsert, r)]);
    h.src.ddl("shop", "ALTER TABLE accounts RENAME COLUMN owner TO holder");
    let mut r = BTreeMap::new();
    r.insert("id".to_string(), Cell::Int(3));
    r.insert("holder".to_string(), Cell::Bytes("after rename".into()));
    r.insert("balance".to_string(), Cell::Int(3));
    r.insert("note".to_string(), Cell::Null);
    h.src.commit(vec![(accounts(), ChangeOp::Upsert, r)]);
    h.src.ddl("shop", "ALTER TABLE accounts DROP COLUMN note");
    let mut gone = h.src.row(&accounts(), 4).expect("row 4");
    gone.remove("note");
    h.src.commit(vec![(accounts(), ChangeOp::Delete, gone)]);

    let engine = h.start();
    h.converged("accounts").await;
    assert_eq!(h.dst.columns("accounts"), ["id", "holder", "balance"]);
    assert_eq!(h.table("accounts").await.state, TableState::Running);
    engine.stop().await.expect("stopped");
}

/// Money moves between accounts in two-row transactions: after every write
/// the destination acknowledged, the total is unchanged — no reader ever sees
/// a debit without its credit.
#[tokio::test]
async fn every_acknowledged_write_holds_whole_transactions() {
    let h = Harness::new("snapshot_and_cdc", json!({"pull_batch_size": 7, "sync_interval_ms": 5}), 50).await;
    let engine = h.start();
    h.wait_state(PipeState::Running).await;
    h.converged("accounts").await;
    h.src.set_row_gap(Duration::from_millis(2));
    let mut rng = Lcg(11);
    for _ in 0..200 {
        let (a, b) = (1 + rng.below(50) as i64, 1 + rng.below(50) as i64);
        if a == b {
            continue;
        }
        let amount = rng.below(20) as i64;
        let (ra, rb) = (h.src.row(&accounts(), a).unwrap(), h.src.row(&accounts(), b).unwrap());
        let bal = |r: &Row| match r["balance"] {
            Cell::Int(v) => v,
            _ => unreachable!(),
        };
        let owner = |r: &Row| r["owner"].clone();
        let mut na = row(a, "", bal(&ra) - amount);
        na.insert("owner".into(), owner(&ra));
        let mut nb = row(b, "", bal(&rb) + amount);
        nb.insert("owner".into(), owner(&rb));
        h.src.commit(vec![(accounts(), ChangeOp::Upsert, na), (accounts(), ChangeOp::Upsert, nb)]);
        if rng.below(10) == 0 {
            tokio::task::yield_now().await;
        }
    }
    h.converged("accounts").await;
    engine.stop().await.expect("stopped");

    // Replay the acknowledged writes in order, checking the total after each.
    let mut view: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (n, (table, changes)) in h.dst.writes().into_iter().enumerate() {
        assert_eq!(table, "accounts");
        for c in changes {
            let (Cell::Int(id), Cell::Int(balance)) = (&c.cells[0], &c.cells[2]) else { panic!("cells {:?}", c.cells) };
            if view.get(id).is_none_or(|(v, _)| c.version >= *v) {
                view.insert(*id, (c.version, *balance));
            }
        }
        let total: i64 = view.values().map(|(_, b)| b).sum();
        assert_eq!(total, 50 * 100, "after acknowledged write {n} a reader saw part of a transaction");
    }
}

/// A transaction larger than 4 × pull_batch_size is written in parts before
/// its commit (the documented exception, said in the history) and the
/// destination still converges; a crash in the middle of it replays it.
#[tokio::test]
async fn large_transaction_is_written_in_parts_and_said_so() {
    let h = Harness::new("snapshot_and_cdc", json!({"pull_batch_size": 10}), 10).await;
    let engine = h.start();
    h.wait_state(PipeState::Running).await;
    h.src.commit((100..260).map(|i| upsert(i, "bulk", i)).collect());
    h.converged("accounts").await;
    assert!(
        h.events().await.iter().any(|e| e.contains("written in parts")),
        "the split transaction is not in the pipe's history: {:?}",
        h.events().await
    );
    let sizes: Vec<usize> = h.dst.writes().iter().map(|(_, c)| c.len()).collect();
    assert!(sizes.iter().all(|n| *n <= 160), "writes {sizes:?}");
    engine.stop().await.expect("stopped");
}

/// A write that fails halfway (some rows in, then the connection breaks) and
/// a write refused outright are retried; nothing is lost or left half-done.
#[tokio::test]
async fn batch_failing_halfway_is_retried_and_converges() {
    let h = Harness::new("snapshot_and_cdc", json!({"pull_batch_size": 20}), 100).await;
    let engine = h.start();
    h.wait_state(PipeState::Running).await;
    h.dst.fail_writes("accounts", &[WriteFault::HalfThenTransient, WriteFault::Transient, WriteFault::HalfThenTransient]);
    h.random_writes(&mut Lcg(5), 200, 150);
    h.converged("accounts").await;
    engine.stop().await.expect("stopped");
}

/// A table whose rows the destination refuses (a table-level error) stops
/// alone, in `Error` with the reason; the other tables keep flowing.
#[tokio::test]
async fn table_level_write_error_stops_only_that_table() {
    let h = Harness::new("snapshot_and_cdc", json!({}), 20).await;
    h.src.create_table("shop", "ledger", &[("id", "bigint"), ("owner", "varchar(64)"), ("balance", "bigint")]);
    let ledger = TableId::new("shop", "ledger");
    h.src.commit((1..=20).map(|i| (ledger.clone(), ChangeOp::Upsert, row(i, "l", i))).collect());
    let engine = h.start();
    h.wait_state(PipeState::Running).await;
    h.converged("ledger").await;
    h.dst.fail_writes("ledger", &[WriteFault::TableLevel]);
    h.src.commit(vec![(ledger.clone(), ChangeOp::Upsert, row(100, "x", 1)), upsert(100, "a", 1)]);
    h.random_writes(&mut Lcg(9), 50, 40);
    h.converged("accounts").await;
    h.wait_table_state("ledger", TableState::Error).await;
    let err = h.table("ledger").await.error.unwrap_or_default();
    assert!(err.contains("TYPE_MISMATCH") && err.contains("resync"), "error: {err}");
    assert_eq!(h.state().await, PipeState::Running);
    engine.stop().await.expect("stopped");
}

/// Rows that cannot be decoded with the table's recorded definition stop that
/// table (reported once, skipped after); the others flow.
#[tokio::test]
async fn undecodable_rows_stop_only_their_table() {
    let h = Harness::new("snapshot_and_cdc", json!({}), 20).await;
    h.src.create_table("shop", "ledger", &[("id", "bigint"), ("owner", "varchar(64)"), ("balance", "bigint")]);
    let engine = h.start();
    h.wait_state(PipeState::Running).await;
    let mut odd = row(1, "x", 1);
    odd.insert("surprise".into(), Cell::Int(1)); // a column the recorded definition does not have
    h.src.commit(vec![(TableId::new("shop", "ledger"), ChangeOp::Upsert, odd), upsert(1, "fine", 5)]);
    h.random_writes(&mut Lcg(2), 30, 30);
    h.converged("accounts").await;
    h.wait_table_state("ledger", TableState::Error).await;
    assert_eq!(h.state().await, PipeState::Running);
    engine.stop().await.expect("stopped");
}

/// A crash after the destination acknowledged a batch but before the
/// checkpoint was saved: the restarted engine replays the batch (with higher
/// versions) and the destination still equals the source.
#[tokio::test]
async fn crash_between_acknowledgement_and_checkpoint_replays_safely() {
    let h = Harness::new("snapshot_and_cdc", json!({}), 50).await;
    let engine = h.start();
    h.wait_state(PipeState::Running).await;
    h.converged("accounts").await;
    let before = h.catalog.checkpoint("mem").await.unwrap().unwrap().checkpoint;
    h.dst.fail_writes("accounts", &[WriteFault::AckThenHang]);
    h.src.commit(vec![upsert(1, "crash", 1), delete(2), upsert(999, "new", 9)]);
    h.dst.wait_hanging().await;
    engine.crash().await;
    let after = h.catalog.checkpoint("mem").await.unwrap().unwrap().checkpoint;
    assert_eq!(before, after, "the checkpoint moved before the crash point");
    // Change the same rows again before the restart: the replay must not win over them.
    h.src.commit(vec![upsert(1, "after crash", 2), upsert(2, "revived", 3)]);
    let engine = h.start();
    h.converged("accounts").await;
    let replayed = h.dst.writes().iter().filter(|(_, c)| c.iter().any(|c| c.cells[1] == Cell::Bytes("crash".into()))).count();
    assert_eq!(replayed, 2, "the acknowledged batch was not replayed exactly once more");
    engine.stop().await.expect("stopped");
}

/// A stream that breaks is reopened from the checkpoint; changes handed on
/// twice are harmless.
#[tokio::test]
async fn broken_stream_resumes_from_the_checkpoint() {
    let h = Harness::new("snapshot_and_cdc", json!({}), 50).await;
    let engine = h.start();
    h.wait_state(PipeState::Running).await;
    h.src.fail_stream_after(7);
    h.random_writes(&mut Lcg(13), 100, 80);
    h.converged("accounts").await;
    assert!(h.src.streams_opened() >= 2, "the stream was never reopened");
    engine.stop().await.expect("stopped");
}

/// A quiet pipe writes a change as soon as its stream has caught up, not at
/// the end of `sync_interval_ms` (here a minute: the test would time out).
#[tokio::test]
async fn caught_up_stream_writes_without_waiting_for_the_interval() {
    let h = Harness::new("snapshot_and_cdc", json!({"sync_interval_ms": 60_000}), 10).await;
    let engine = h.start();
    h.wait_state(PipeState::Running).await;
    h.converged("accounts").await;
    // The first write after a quiet while goes out at once; so does one after an interval since it.
    h.src.commit(vec![upsert(1, "trickle", 1)]);
    h.converged("accounts").await;
    engine.stop().await.expect("stopped");
}

/// The insert rate is bounded per table: right after a write to one table, a
/// change to another table goes out at once (with a one-minute interval the
/// test would time out if it waited for the first table's rate).
#[tokio::test]
async fn a_change_to_another_table_does_not_wait_for_a_recent_write() {
    let h = Harness::with_tables("snapshot_and_cdc", json!({"sync_interval_ms": 60_000}), 10, &["ledger"]).await;
    let engine = h.start();
    h.wait_state(PipeState::Running).await;
    h.converged("accounts").await;
    h.src.commit(vec![upsert(1, "first", 1)]);
    h.converged("accounts").await;
    h.src.commit(vec![(TableId::new("shop", "ledger"), ChangeOp::Upsert, row(7, "other table", 1))]);
    h.converged("ledger").await;
    engine.stop().await.expect("stopped");
}

/// A busy stream still writes at most once per `sync_interval_ms` (one insert
/// per table): catching up between transactions does not multiply inserts.
#[tokio::test]
async fn busy_stream_writes_at_most_once_per_interval() {
    let h = Harness::new("snapshot_and_cdc", json!({"sync_interval_ms": 200}), 10).await;
    let engine = h.start();
    h.wait_state(PipeState::Running).await;
    h.converged("accounts").await;
    let before = h.dst.writes().len();
    let t0 = tokio::time::Instant::now();
    let mut rng = Lcg(17);
    while t0.elapsed() < Duration::from_millis(1200) {
        h.random_writes(&mut rng, 1, 10);
        tokio::time::sleep(Duration::from_millis(30)).await; // each transaction arrives to a caught-up stream
    }
    h.converged("accounts").await;
    let writes = h.dst.writes().len() - before;
    let allowed = (t0.elapsed().as_millis() / 200) as usize + 2;
    assert!(writes <= allowed, "{writes} writes in {:?} with a 200 ms interval", t0.elapsed());
    engine.stop().await.expect("stopped");
}
