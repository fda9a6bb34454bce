//! Unit tests of the catalog: persistence, the guarantees it enforces
//! (forward-only checkpoints, table-state transitions), its behaviour under
//! concurrent use, and how its errors are reported.

use super::*;
use sluice_core::schema::{SourceColumn, SourceTable, TableId};
use sluice_core::Severity;
use std::sync::Arc;
use std::time::Instant;

/// A catalog to test on: a fresh SQLite file in a temporary dir, or a fresh
/// Postgres database (one per test, named after it, dropped and created
/// again on each run) on the server of `SLUICE_TEST_POSTGRES_URL`.
pub(crate) struct TestCatalog {
    pub dir: tempfile::TempDir,
    pub url: String,
}

impl TestCatalog {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = Catalog::default_url(dir.path());
        Self { dir, url }
    }

    /// `None` (with a message) when `SLUICE_TEST_POSTGRES_URL` is unset.
    pub async fn postgres(test: &str) -> Option<Self> {
        let Ok(server) = std::env::var("SLUICE_TEST_POSTGRES_URL") else {
            eprintln!("SKIPPED: {test} on Postgres: SLUICE_TEST_POSTGRES_URL is unset (scripts/testbed env sets it)");
            return None;
        };
        let db = format!("sluice_unit_{}", test.replace("::", "_")).chars().take(63).collect::<String>();
        let url = pg_admin::recreate_database(&server, &db).await.unwrap();
        Some(Self { dir: tempfile::tempdir().unwrap(), url })
    }

    pub async fn open(&self) -> Catalog {
        Catalog::open_url(&self.url, self.dir.path()).await.unwrap()
    }

    pub async fn open_with_busy_timeout(&self, busy: Duration) -> Catalog {
        Catalog::open_url_with(&self.url, self.dir.path(), busy).await.unwrap()
    }
}

/// Runs the test `async fn $name(t: TestCatalog)` on both backends, as
/// `$name::sqlite` and `$name::postgres`.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::TestCatalog::sqlite().await).await
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(t) = super::TestCatalog::postgres(concat!(module_path!(), "::", stringify!($name))).await {
                    super::$name(t).await
                }
            }
        }
    };
    ($name:ident, multi_thread) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(super::TestCatalog::sqlite().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(t) = super::TestCatalog::postgres(concat!(module_path!(), "::", stringify!($name))).await {
                    super::$name(t).await
                }
            }
        }
    };
}
pub(crate) use on_both;

fn spec() -> PipeSpec {
    PipeSpec::from_json(
        r#"{"name":"p","source":{"host":"h","user":"u","password":"secret"},
            "destination":{"url":"http://127.0.0.1:1","database":"d"},"tables":[{"source":"s.t"}]}"#,
    )
    .unwrap()
}

async fn pipe_lifecycle_and_checkpoints_persist(tc: TestCatalog) {
    let cat = tc.open().await;
    cat.create_pipe(&spec()).await.unwrap();
    let dup = cat.create_pipe(&spec()).await.unwrap_err();
    assert!(matches!(&dup, CatalogError::Exists(n) if n == "p"), "duplicate names are refused: {dup}");
    cat.transition("p", PipeAction::Provisioned, PipeState::Setup, "setting up", None).await.unwrap();
    let illegal = cat.transition("p", PipeAction::Resume, PipeState::Running, "x", None).await.unwrap_err();
    assert!(matches!(illegal, CatalogError::Illegal(_)), "{illegal}");
    let col = SourceColumn {
        name: "id".into(),
        ordinal: 1,
        data_type: "int".into(),
        column_type: "int".into(),
        nullable: false,
        numeric_precision: Some(10),
        numeric_scale: Some(0),
        datetime_precision: None,
        charset: None,
        extra: String::new(),
    };
    let table = SourceTable { id: TableId::new("s", "t"), columns: vec![col], primary_key: vec!["id".into()], charset: None };
    let mapping = TableMapping::new(table, "t".into());
    let start = Checkpoint { position: BinlogPosition::new("binlog.000003", 157), gtid_set: None };
    cat.record_setup("p", std::slice::from_ref(&mapping), &start, 41).await.unwrap();
    cat.record_partitions("p", "t", &[(None, None)]).await.unwrap();
    cat.record_partition_progress("p", "t", 0, Some(&serde_json::json!([{"i": 9}])), 10, false).await.unwrap();
    let later = Checkpoint { position: BinlogPosition::new("binlog.000004", 4), gtid_set: Some("x".into()) };
    cat.save_checkpoint("p", &later).await.unwrap();
    drop(cat);

    let cat = tc.open().await;
    let p = cat.pipe("p").await.unwrap().unwrap();
    assert_eq!(p.state, PipeState::Setup);
    let t = &cat.tables("p").await.unwrap()[0];
    assert_eq!((t.rows_copied, t.snapshot_done, &t.mapping), (10, false, &mapping));
    let parts = cat.partitions("p", "t").await.unwrap();
    assert_eq!((parts.len(), &parts[0].last_key, parts[0].done), (1, &Some(serde_json::json!([{"i": 9}])), false));
    let cp = cat.checkpoint("p").await.unwrap().unwrap();
    assert_eq!((cp.checkpoint, cp.snapshot_version), (later, 41));
    // The version clock survives the reopen and only moves forward.
    assert_eq!(cat.next_version("p").await.unwrap(), Some(42));
    assert_eq!(cat.reserve_versions("p", 100, 0).await.unwrap(), 42);
    assert_eq!(cat.reserve_versions("p", 1, 0).await.unwrap(), 142);
    assert_eq!(cat.reserve_versions("p", 10, 1000).await.unwrap(), 1000, "a floor above the clock wins");
    assert_eq!(cat.reserve_versions("p", 1, 5).await.unwrap(), 1010, "a floor below the clock is ignored");
    assert!(matches!(cat.reserve_versions("nope", 1, 0).await, Err(CatalogError::NoSuchPipe(_))));
    let ev = cat.events("p").await.unwrap();
    assert_eq!(ev.iter().map(|e| e.to_state.as_str()).collect::<Vec<_>>(), ["Provisioning", "Setup"]);
    assert_eq!(p.spec.source.password.0, "secret");
    for f in std::fs::read_dir(tc.dir.path()).unwrap() {
        let f = f.unwrap();
        let raw = std::fs::read(f.path()).unwrap();
        assert!(!raw.windows(6).any(|w| w == b"secret"), "password in clear text in {:?}", f.file_name());
    }
    cat.delete_pipe("p").await.unwrap();
    assert!(cat.pipe("p").await.unwrap().is_none());
}
on_both!(pipe_lifecycle_and_checkpoints_persist);

pub(crate) fn mapping(table: &str) -> TableMapping {
    let col = SourceColumn {
        name: "id".into(),
        ordinal: 1,
        data_type: "int".into(),
        column_type: "int".into(),
        nullable: false,
        numeric_precision: Some(10),
        numeric_scale: Some(0),
        datetime_precision: None,
        charset: None,
        extra: String::new(),
    };
    TableMapping::new(
        SourceTable { id: TableId::new("s", table), columns: vec![col], primary_key: vec!["id".into()], charset: None },
        table.into(),
    )
}

fn named_spec(name: &str) -> PipeSpec {
    let mut s = spec();
    s.name = name.into();
    s
}

fn cp(file: &str, pos: u64) -> Checkpoint {
    Checkpoint { position: BinlogPosition::new(file, pos), gtid_set: None }
}

/// A pipe `name` set up with tables `t` and `u` and its checkpoint at binlog.000003:157.
async fn set_up(cat: &Catalog, name: &str) {
    cat.create_pipe(&named_spec(name)).await.unwrap();
    cat.record_setup(name, &[mapping("t"), mapping("u")], &cp("binlog.000003", 157), 41).await.unwrap();
}

async fn stored_position(cat: &Catalog, name: &str) -> BinlogPosition {
    cat.checkpoint(name).await.unwrap().unwrap().checkpoint.position
}

async fn state_of(cat: &Catalog, name: &str, dest: &str) -> TableState {
    cat.tables(name).await.unwrap().into_iter().find(|t| t.mapping.destination == dest).unwrap().state
}

async fn checkpoints_only_move_forward(t: TestCatalog) {
    let cat = t.open().await;
    set_up(&cat, "p").await;
    // Forward: a later offset, a later file.
    cat.save_checkpoint("p", &cp("binlog.000003", 900)).await.unwrap();
    cat.save_checkpoint("p", &cp("binlog.000004", 4)).await.unwrap();
    // Equal: accepted, the position stays (the GTID set may be filled in).
    let same = Checkpoint { position: BinlogPosition::new("binlog.000004", 4), gtid_set: Some("u:1-5".into()) };
    cat.save_checkpoint("p", &same).await.unwrap();
    assert_eq!(cat.checkpoint("p").await.unwrap().unwrap().checkpoint, same);
    // Backwards, in the same file or an earlier one: refused, nothing written.
    for back in [cp("binlog.000004", 3), cp("binlog.000003", 1_000_000)] {
        let e = cat.save_checkpoint("p", &back).await.unwrap_err();
        match &e {
            CatalogError::CheckpointBackwards { pipe, stored, new } => {
                assert_eq!((pipe.as_str(), stored, new), ("p", &same.position, &back.position));
            }
            other => panic!("expected CheckpointBackwards, got {other}"),
        }
        let text = e.to_string();
        assert!(text.contains("binlog.000004:4") && text.contains(&back.position.to_string()), "{text}");
        assert_eq!(e.severity(), Severity::Fatal);
        assert_eq!(cat.checkpoint("p").await.unwrap().unwrap().checkpoint, same);
    }
    // A schema change's checkpoint obeys the same rule, and its table changes are not written either.
    let change =
        TableChange { destination: "t".into(), mapping: None, state: Some((TableState::Error, Some("x".into()))), recopy_version: None };
    let e = cat.record_schema_change("p", std::slice::from_ref(&change), &cp("binlog.000004", 2), "ddl").await.unwrap_err();
    assert!(matches!(e, CatalogError::CheckpointBackwards { .. }), "{e}");
    assert_eq!(state_of(&cat, "p", "t").await, TableState::Setup);
    assert!(!cat.events("p").await.unwrap().iter().any(|ev| ev.reason == "ddl"));
    cat.record_schema_change("p", &[change], &cp("binlog.000004", 80), "ddl").await.unwrap();
    assert_eq!(stored_position(&cat, "p").await, BinlogPosition::new("binlog.000004", 80));
    // Another base name cannot be compared: not refused.
    cat.save_checkpoint("p", &cp("mysql-bin.000001", 4)).await.unwrap();
    cat.save_checkpoint("p", &cp("binlog.000009", 4)).await.unwrap();

    // A rebase lets the next save go anywhere, once, and is in the history.
    cat.allow_checkpoint_rebase("p", "fail-over to replica-2").await.unwrap();
    cat.save_checkpoint("p", &cp("binlog.000002", 157)).await.unwrap();
    assert_eq!(stored_position(&cat, "p").await, BinlogPosition::new("binlog.000002", 157));
    let reasons: Vec<String> = cat.events("p").await.unwrap().into_iter().map(|e| e.reason).collect();
    assert!(reasons.iter().any(|r| r.contains("rebase") && r.contains("fail-over to replica-2")), "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("checkpoint rebased from binlog.000009:4 to binlog.000002:157") && r.contains("fail-over to replica-2")),
        "{reasons:?}"
    );
    let e = cat.save_checkpoint("p", &cp("binlog.000001", 157)).await.unwrap_err();
    assert!(matches!(e, CatalogError::CheckpointBackwards { .. }), "the rebase was for one save only: {e}");
    // A pending rebase survives a restart.
    cat.allow_checkpoint_rebase("p", "again").await.unwrap();
    drop(cat);
    let cat = t.open().await;
    cat.save_checkpoint("p", &cp("binlog.000001", 4)).await.unwrap();
    assert!(matches!(cat.allow_checkpoint_rebase("nope", "x").await, Err(CatalogError::NoSuchPipe(_))));

    // A whole-pipe resync restarts CDC wherever the new copy starts.
    cat.save_checkpoint("p", &cp("binlog.000007", 4)).await.unwrap();
    cat.begin_resync("p", &[mapping("t"), mapping("u")], 500, Some(&cp("binlog.000006", 10))).await.unwrap();
    assert_eq!(stored_position(&cat, "p").await, BinlogPosition::new("binlog.000006", 10));
    // And Setup is a new start too.
    cat.record_setup("p", &[mapping("t")], &cp("binlog.000001", 4), 600).await.unwrap();
    assert_eq!(stored_position(&cat, "p").await, BinlogPosition::new("binlog.000001", 4));
}
on_both!(checkpoints_only_move_forward);

async fn table_states_follow_the_transition_table(t: TestCatalog) {
    let cat = t.open().await;
    set_up(&cat, "p").await;
    // The initial copy: Setup → Snapshot → Snapshotted → Running.
    cat.record_partitions("p", "t", &[(None, None)]).await.unwrap();
    assert_eq!(state_of(&cat, "p", "t").await, TableState::Snapshot);
    cat.mark_copied("p", "t").await.unwrap();
    assert_eq!(state_of(&cat, "p", "t").await, TableState::Snapshotted);
    cat.set_table_state("p", "t", TableState::Running, None).await.unwrap();
    // Refused: typed, naming the pipe, the table and both states; nothing written.
    let e = cat.set_table_state("p", "t", TableState::Swapping, None).await.unwrap_err();
    assert!(matches!(&e, CatalogError::IllegalTableTransition { pipe, source } if pipe == "p" && source.table == "t"), "{e}");
    assert_eq!(e.to_string(), "pipe \"p\": table t cannot go from Running to Swapping");
    assert_eq!(e.severity(), Severity::Fatal);
    assert_eq!(state_of(&cat, "p", "t").await, TableState::Running);
    // Error is left only by a recovery.
    cat.set_table_state("p", "t", TableState::Error, Some("boom")).await.unwrap();
    assert!(cat.set_table_state("p", "t", TableState::Running, None).await.is_err());
    cat.begin_resync("p", &[mapping("t")], 77, None).await.unwrap();
    assert_eq!(state_of(&cat, "p", "t").await, TableState::Resync);
    // Copying a resynced table keeps it in Resync (then Swapping → Running).
    cat.record_partitions("p", "t", &[(None, None)]).await.unwrap();
    cat.mark_copied("p", "t").await.unwrap();
    assert_eq!(state_of(&cat, "p", "t").await, TableState::Resync);
    cat.set_table_state("p", "t", TableState::Swapping, None).await.unwrap();
    cat.set_table_state("p", "t", TableState::Running, None).await.unwrap();
    // Schema changes are checked too.
    let change = TableChange { destination: "t".into(), mapping: None, state: Some((TableState::Adding, None)), recopy_version: None };
    let e = cat.record_schema_change("p", &[change], &cp("binlog.000003", 200), "ddl").await.unwrap_err();
    assert!(matches!(e, CatalogError::IllegalTableTransition { .. }), "{e}");
    // Tables join a live pipe as Adding or Running only, once.
    cat.add_tables("p", &[mapping("v")], TableState::Adding, 90).await.unwrap();
    cat.add_tables("p", &[mapping("w")], TableState::Running, 90).await.unwrap();
    for bad in [TableState::Swapping, TableState::Setup, TableState::Snapshotted] {
        let e = cat.add_tables("p", &[mapping("x")], bad, 90).await.unwrap_err();
        assert!(matches!(e, CatalogError::IllegalTableTransition { .. }), "{bad}: {e}");
    }
    let e = cat.add_tables("p", &[mapping("v")], TableState::Adding, 91).await.unwrap_err();
    assert!(matches!(&e, CatalogError::TableExists { pipe, table } if pipe == "p" && table == "v"), "{e}");
    let e = cat.set_table_state("p", "nope", TableState::Running, None).await.unwrap_err();
    assert!(matches!(&e, CatalogError::NoSuchTable { pipe, table } if pipe == "p" && table == "nope"), "{e}");

    // Every (from, to) pair through the catalog agrees with the core table.
    for from in TableState::ALL {
        for to in TableState::ALL {
            sqlx::query("UPDATE pipe_tables SET state = $1 WHERE pipe = 'p' AND destination = 'u'")
                .bind(from.as_str())
                .execute(&cat.writes)
                .await
                .unwrap();
            let r = cat.set_table_state("p", "u", to, None).await;
            assert_eq!(r.is_ok(), from.can_become(to), "{from} -> {to}: {r:?}");
            assert_eq!(state_of(&cat, "p", "u").await, if r.is_ok() { to } else { from });
        }
    }
}
on_both!(table_states_follow_the_transition_table);

/// The cause of "database is locked" 31 s into adding tables: a copy future
/// inside the CDC loop's `select!` began a write transaction, the other branch
/// won, and the loop then waited (busy timeout) for the lock that the
/// unpolled copy future held. A catalog operation must finish on its own.
async fn an_unpolled_caller_does_not_hold_the_write_lock(t: TestCatalog) {
    let cat = t.open().await;
    set_up(&cat, "p").await;
    let ranges: Vec<_> = (0..20_000).map(|i| (Some(serde_json::json!([i])), Some(serde_json::json!([i + 1])))).collect();
    let slow = cat.record_partitions("p", "t", &ranges);
    tokio::pin!(slow);
    // Polled until it is under way, then left alone, like the losing branch of a select!.
    let _ = tokio::time::timeout(Duration::from_millis(20), &mut slow).await;
    let other = tokio::time::timeout(Duration::from_secs(20), cat.save_checkpoint("p", &cp("binlog.000003", 200))).await;
    other.expect("a write waited for one whose caller was not polled").unwrap();
    tokio::time::timeout(Duration::from_secs(20), cat.note("p", "after")).await.expect("not stalled").unwrap();
    slow.await.unwrap();
    assert_eq!(cat.partitions("p", "t").await.unwrap().len(), 20_000);
    // A caller that gives up (its future dropped) leaves a whole write or none.
    drop(cat.record_partitions("p", "u", &ranges[..100]));
    let fut = cat.record_partitions("p", "u", &ranges[..5000]);
    let _ = tokio::time::timeout(Duration::from_millis(5), fut).await;
    tokio::time::timeout(Duration::from_secs(20), cat.save_checkpoint("p", &cp("binlog.000003", 300))).await.expect("not stalled").unwrap();
    let n = cat.partitions("p", "u").await.unwrap().len();
    assert!(n == 0 || n == 5000, "partial partition plan: {n}");
}
on_both!(an_unpolled_caller_does_not_hold_the_write_lock);

/// Many tasks write and read the catalog at once, as pipes, copies and the
/// API do: no operation fails busy, and the data adds up.
async fn concurrent_use_never_reports_busy(t: TestCatalog) {
    // A short busy timeout: any contention for SQLite's lock would show.
    let cat = t.open_with_busy_timeout(Duration::from_millis(500)).await;
    const PIPES: usize = 3;
    const ROUNDS: u64 = 40;
    for p in 0..PIPES {
        set_up(&cat, &format!("p{p}")).await;
        cat.record_partitions(&format!("p{p}"), "t", &[(None, Some(serde_json::json!([1000]))), (Some(serde_json::json!([1000])), None)])
            .await
            .unwrap();
    }
    let started = Instant::now();
    let versions = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for p in 0..PIPES {
        let name = format!("p{p}");
        // One checkpoint writer per pipe (as the engine has), moving forward.
        let (c, n) = (cat.clone(), name.clone());
        tasks.spawn(async move {
            for i in 0..ROUNDS {
                c.save_checkpoint(&n, &cp("binlog.000003", 200 + i)).await?;
            }
            Ok::<_, CatalogError>(())
        });
        // Partition progress from parallel copy tasks.
        for idx in 0..2u32 {
            let (c, n) = (cat.clone(), name.clone());
            tasks.spawn(async move {
                for i in 1..=ROUNDS {
                    c.record_partition_progress(&n, "t", idx, Some(&serde_json::json!([i])), i * 10, i == ROUNDS).await?;
                }
                Ok(())
            });
        }
        // Table states, errors, notes, version reservations, the API's reads.
        let (c, n) = (cat.clone(), name.clone());
        tasks.spawn(async move {
            for i in 0..ROUNDS {
                c.set_table_state(&n, "u", if i % 2 == 0 { TableState::Error } else { TableState::Resync }, Some("x")).await?;
                c.set_error(&n, Some(&format!("e{i}"))).await?;
                c.note(&n, &format!("note {i}")).await?;
            }
            Ok(())
        });
        let (c, n, v) = (cat.clone(), name.clone(), versions.clone());
        tasks.spawn(async move {
            for _ in 0..ROUNDS {
                let first = c.reserve_versions(&n, 10, 0).await?;
                v.lock().unwrap().push((n.clone(), first));
            }
            Ok(())
        });
        let (c, n) = (cat.clone(), name.clone());
        tasks.spawn(async move {
            for _ in 0..ROUNDS {
                c.pipe(&n).await?;
                c.tables(&n).await?;
                c.partition_counts(&n, "t").await?;
                c.events(&n).await?;
                c.checkpoint(&n).await?;
            }
            Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r.unwrap() {
            panic!("a concurrent catalog operation failed (busy: {}): {e}", e.is_busy());
        }
    }
    for p in 0..PIPES {
        let name = format!("p{p}");
        assert_eq!(stored_position(&cat, &name).await, BinlogPosition::new("binlog.000003", 200 + ROUNDS - 1));
        assert_eq!(cat.partition_counts(&name, "t").await.unwrap(), (2, 2));
        let t = cat.tables(&name).await.unwrap().into_iter().find(|t| t.mapping.destination == "t").unwrap();
        assert_eq!(t.rows_copied, 2 * ROUNDS * 10);
        // Reserved version ranges never overlap.
        let mut firsts: Vec<i64> = versions.lock().unwrap().iter().filter(|(n, _)| *n == name).map(|(_, f)| *f).collect();
        firsts.sort();
        assert_eq!(firsts.len() as u64, ROUNDS);
        assert!(firsts.windows(2).all(|w| w[1] - w[0] >= 10), "{firsts:?}");
    }
    eprintln!("concurrent catalog use took {:?}", started.elapsed());
}
on_both!(concurrent_use_never_reports_busy, multi_thread);

#[tokio::test]
async fn a_full_disk_is_reported_as_such_not_as_an_existing_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path()).await.unwrap();
    set_up(&cat, "p").await;
    // Cap the database at its current size on the writer connection: SQLite then
    // fails writes that need a new page with SQLITE_FULL, as on a full disk.
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&cat.writes).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {pages}"))).execute(&cat.writes).await.unwrap();
    let mut big = named_spec("q");
    big.source.password.0 = "x".repeat(200_000);
    let e = cat.create_pipe(&big).await.unwrap_err();
    assert!(matches!(e, CatalogError::Db(_)), "not Exists: {e}");
    assert!(e.is_disk_full() && !e.is_busy(), "{e:?}");
    assert_eq!(e.severity(), Severity::Transient);
    let text = e.to_string();
    assert!(text.contains("disk holding the catalog is full") && text.contains("code: 13"), "{text}");
    // Still full (the cap is set again: it belongs to the connection, and the
    // one whose transaction SQLite rolled back was replaced).
    sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {pages}"))).execute(&cat.writes).await.unwrap();
    let e = cat.note("p", &"y".repeat(200_000)).await.unwrap_err();
    assert!(e.is_disk_full(), "{e}");
    // Space freed: the same writes succeed (no connection stays stuck in the
    // transaction SQLite rolled back by itself).
    sqlx::query("PRAGMA max_page_count = 1073741823").execute(&cat.writes).await.unwrap();
    cat.note("p", "space freed").await.unwrap();
    cat.create_pipe(&big).await.unwrap();
    assert!(matches!(cat.create_pipe(&big).await, Err(CatalogError::Exists(n)) if n == "q"));
}

#[tokio::test]
async fn a_lock_held_by_another_process_is_busy_and_transient() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open_with(dir.path(), Duration::from_millis(200)).await.unwrap();
    set_up(&cat, "p").await;
    use sqlx::Connection;
    let mut other =
        sqlx::SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(dir.path().join("catalog.db"))).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.unwrap();
    let e = cat.save_checkpoint("p", &cp("binlog.000003", 200)).await.unwrap_err();
    assert!(e.is_busy(), "{e}");
    assert_eq!(e.severity(), Severity::Transient);
    assert!(e.to_string().contains("locked"), "{e}");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    cat.save_checkpoint("p", &cp("binlog.000003", 200)).await.unwrap();
}

/// Every secret of a spec — both passwords and the SSH key and password — is
/// stored encrypted and read back in clear.
async fn every_secret_of_a_spec_is_stored_encrypted(t: TestCatalog) {
    let cat = t.open().await;
    let spec = PipeSpec::from_json(
        r#"{"name":"p","source":{"host":"h","user":"u","password":"src-pass-1",
              "ssh":{"host":"b","user":"jump","private_key":"-----BEGIN OPENSSH PRIVATE KEY-----\nssh-key-body-2\n-----END OPENSSH PRIVATE KEY-----","known_host_key":"ssh-ed25519 AAAA"}},
            "destination":{"url":"http://127.0.0.1:1","database":"d","password":"dst-pass-3"},"tables":[{"source":"s.t"}]}"#,
    )
    .unwrap();
    cat.create_pipe(&spec).await.unwrap();
    let raw: String = sqlx::query_scalar("SELECT spec_json FROM pipes WHERE name = 'p'").fetch_one(&cat.reads).await.unwrap();
    for clear in ["src-pass-1", "ssh-key-body-2", "dst-pass-3"] {
        assert!(!raw.contains(clear), "{clear} is stored in clear: {raw}");
    }
    assert_eq!(cat.pipe("p").await.unwrap().unwrap().spec, spec, "secrets read back in clear");
}
on_both!(every_secret_of_a_spec_is_stored_encrypted);

/// Both backends have the same migrations: every version in `migrations/`
/// has its Postgres twin in `migrations/postgres/` and the reverse (a new
/// migration is a file added to both directories).
#[test]
fn both_backends_have_the_same_migrations() {
    let versions = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().split('_').next().unwrap_or_default().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(versions("migrations"), versions("migrations/postgres"), "a migration is missing on one backend");
}

/// A catalog copied SQLite → Postgres → SQLite keeps everything: specs with
/// their secrets (still sealed, opened with the same key), states, tables,
/// partitions, checkpoints with their version clock and pending rebase,
/// history (and its ids keep growing after the copy), alerts.
#[tokio::test]
async fn a_catalog_copies_to_postgres_and_back() {
    let Some(pg) = TestCatalog::postgres("tests::a_catalog_copies_to_postgres_and_back").await else { return };
    let src = TestCatalog::sqlite().await;
    let a = src.open().await;
    set_up(&a, "p").await;
    set_up(&a, "q").await;
    a.record_partitions("p", "t", &[(None, Some(serde_json::json!([5]))), (Some(serde_json::json!([5])), None)]).await.unwrap();
    a.record_partition_progress("p", "t", 1, Some(&serde_json::json!([7])), 3, false).await.unwrap();
    a.save_checkpoint("p", &cp("binlog.000004", 99)).await.unwrap();
    assert_eq!(a.reserve_versions("p", 10, 0).await.unwrap(), 42);
    a.allow_checkpoint_rebase("q", "moved").await.unwrap();
    a.start_verification("p", true, &serde_json::json!({"tables": []})).await.unwrap();
    // The target's key is the source's: the same data dir (as `sluice catalog migrate` requires).
    let b = Catalog::open_url(&pg.url, src.dir.path()).await.unwrap();
    let report = a.copy_to(&b).await.unwrap();
    assert!(report.tables.iter().any(|(t, n)| t == "pipe_events" && *n == 3), "{report:?}");
    let again = a.copy_to(&b).await.unwrap_err();
    assert!(again.to_string().contains("not empty"), "{again}");
    let back_dir = TestCatalog::sqlite().await;
    let c = Catalog::open_url(&back_dir.url, src.dir.path()).await.unwrap();
    b.copy_to(&c).await.unwrap();
    for cat in [&b, &c] {
        assert_eq!(cat.pipe_names().await.unwrap(), ["p", "q"]);
        assert_eq!(cat.pipe("p").await.unwrap().unwrap().spec, a.pipe("p").await.unwrap().unwrap().spec, "secrets open");
        assert_eq!(stored_position(cat, "p").await, BinlogPosition::new("binlog.000004", 99));
        assert_eq!(cat.next_version("p").await.unwrap(), Some(52));
        assert_eq!(cat.reserve_versions("p", 1, 0).await.unwrap(), 52, "the version clock moved with the catalog");
        let parts = cat.partitions("p", "t").await.unwrap();
        assert_eq!((parts.len(), &parts[1].last_key, parts[1].rows_copied), (2, &Some(serde_json::json!([7])), 3));
        assert_eq!(state_of(cat, "p", "t").await, TableState::Snapshot);
        // The pending rebase came along: q's next checkpoint may move backwards once.
        cat.save_checkpoint("q", &cp("binlog.000001", 4)).await.unwrap();
        let before = a.events("p").await.unwrap().len();
        cat.note("p", "after the copy").await.unwrap();
        let ev = cat.events("p").await.unwrap();
        assert_eq!(ev.len(), before + 1);
        assert!(ev.windows(2).all(|w| w[0].id < w[1].id), "history ids keep growing: {ev:?}");
    }
}

/// A SQLite catalog has one user at a time wherever its file is: a second
/// process's lock is refused (naming the file) until the first is dropped;
/// a `sluice server` worker's lock is exclusive too.
#[tokio::test]
async fn a_sqlite_catalog_is_locked_by_its_file() {
    let t = TestCatalog::sqlite().await;
    let (a, b) = (t.open().await, t.open().await);
    let held = a.lock_for_worker().await.unwrap();
    // A second open file description conflicts like a second process would.
    for second in [b.lock_for_server().await, b.lock_for_worker().await] {
        let msg = second.err().expect("a second lock is refused").to_string();
        assert!(msg.contains("is in use by another sluice process") && msg.contains("catalog.db"), "{msg}");
    }
    drop(held);
    let _again = b.lock_for_server().await.expect("free once the holder is gone");
}
