//! Property test of the binlog value decoders against the real servers: random
//! DECIMAL, DOUBLE, FLOAT, DATETIME(6), TIMESTAMP(0|6), TIME(0|2|4|6), BIT,
//! SET, ENUM, MEDIUMINT and YEAR values are written to MySQL and MariaDB; the
//! rows read back by `sluice_source`'s binlog reader must equal, cell for cell,
//! what its snapshot reader decodes from the same rows (binary protocol), and
//! the DECIMAL/BIT/SET cells must equal the server's own text for the values.

mod common;
use common::*;
use mysql_async::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sluice_core::types::TableMapping;
use sluice_core::{Cell, Checkpoint, TableId};
use sluice_source::binlog::{BinlogEvent, BinlogReader};
use sluice_source::snapshot::TableReader;
use std::collections::HashMap;
use std::time::Duration;

const CASES: u32 = 64;

const COLUMNS: &str = "id INT PRIMARY KEY, d DECIMAL(40,12), d0 DECIMAL(10,0), dbl DOUBLE, f FLOAT, dt DATETIME(6), \
    ts TIMESTAMP(6) NULL, ts0 TIMESTAMP NULL, t6 TIME(6), t4 TIME(4), t2 TIME(2), t0 TIME, b64 BIT(64), b5 BIT(5), \
    s SET('a','b','c','d','e','f','g','😀'), e ENUM('x','y','z'), mi MEDIUMINT, y YEAR";

/// One row's SQL literals, in `COLUMNS` order after `id`.
fn row_strategy() -> impl Strategy<Value = Vec<String>> {
    let null_or = |s: BoxedStrategy<String>| prop_oneof![1 => Just("NULL".to_string()), 9 => s].boxed();
    let decimal = (any::<bool>(), "[0-9]{0,28}", "[0-9]{0,12}").prop_map(|(neg, i, f)| {
        format!("{}{}.{}", if neg { "-" } else { "" }, if i.is_empty() { "0" } else { &i }, if f.is_empty() { "0" } else { &f })
    });
    let double = prop_oneof![prop::num::f64::NORMAL | prop::num::f64::ZERO | prop::num::f64::SUBNORMAL, (-1e6..1e6f64),]
        .prop_map(|d| format!("{d:e}"));
    let float = (prop::num::f32::NORMAL | prop::num::f32::ZERO).prop_map(|f| format!("{:e}", f as f64));
    let datetime = (1000u32..=9999, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60, 0u32..60, 0u32..1_000_000)
        .prop_map(|(y, mo, d, h, mi, s, us)| format!("'{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}'"));
    // Up to 2038-01-19 03:14:06.999999 UTC, so that TIMESTAMP(0)'s rounding stays in range.
    let timestamp = (1i64..2_147_483_647, 0u32..1_000_000).prop_map(|(secs, us)| format!("FROM_UNIXTIME({secs}.{us:06})"));
    let time = (any::<bool>(), 0u32..=838, 0u32..60, 0u32..60, 0u32..1_000_000).prop_map(|(neg, h, m, s, us)| {
        let (m, s, us) = if h == 838 { (m.min(58), s, us) } else { (m, s, us) };
        format!("'{}{h}:{m:02}:{s:02}.{us:06}'", if neg { "-" } else { "" })
    });
    let set = any::<u8>().prop_map(|bits| {
        let labels = ["a", "b", "c", "d", "e", "f", "g", "😀"];
        let chosen: Vec<&str> = (0..8).filter(|i| bits & (1 << i) != 0).map(|i| labels[i]).collect();
        format!("'{}'", chosen.join(","))
    });
    (
        null_or(decimal.boxed()),
        null_or((-9_999_999_999i64..=9_999_999_999).prop_map(|v| v.to_string()).boxed()),
        null_or(double.boxed()),
        null_or(float.boxed()),
        null_or(datetime.boxed()),
        null_or(timestamp.clone().boxed()),
        null_or(timestamp.boxed()),
        null_or(time.clone().boxed()),
        null_or(time.clone().boxed()),
        null_or(time.boxed()),
        (
            null_or(time_strategy_plain().boxed()),
            null_or(any::<u64>().prop_map(|b| format!("b'{b:b}'")).boxed()),
            null_or((0u8..32).prop_map(|b| format!("b'{b:b}'")).boxed()),
            null_or(set.boxed()),
            null_or((1u8..=3).prop_map(|i| i.to_string()).boxed()),
            null_or((-8_388_608i32..=8_388_607).prop_map(|v| v.to_string()).boxed()),
            null_or(prop_oneof![Just(0u16), 1901u16..=2155].prop_map(|y| y.to_string()).boxed()),
        ),
    )
        .prop_map(|(a, b, c, d, e, f, g, h, i, j, (k, l, m, n, o, p, q))| vec![a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q])
}

/// TIME without a fraction (for TIME(0)), including the extremes.
fn time_strategy_plain() -> impl Strategy<Value = String> {
    (any::<bool>(), 0u32..=838, 0u32..60, 0u32..60).prop_map(|(neg, h, m, s)| format!("'{}{h}:{m:02}:{s:02}'", if neg { "-" } else { "" }))
}

/// The cells of one row as the binlog and as the snapshot decoded it.
type CellPair = (Vec<Cell>, Vec<Cell>);

struct Bench {
    rt: tokio::runtime::Runtime,
    writer: mysql_async::Conn,
    snap: mysql_async::Conn,
    reader: BinlogReader,
    table: TableReader,
    db: String,
    next_id: i64,
}

impl Bench {
    fn new(flavor: Flavor) -> Bench {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let db = unique(&format!("dec_{}", flavor.tag()));
        let (writer, snap, reader, table) = rt.block_on(async {
            let mut w = mysql(flavor).await;
            w.query_drop(format!("CREATE DATABASE {db} CHARACTER SET utf8mb4")).await.unwrap();
            w.query_drop(format!("CREATE TABLE {db}.t ({COLUMNS})")).await.unwrap();
            let spec = sluice_core::PipeSpec::from_json(
                &spec(&db, flavor, serde_json::json!([{"source": format!("{db}.t")}]), "unused", "snapshot_and_cdc").to_string(),
            )
            .unwrap();
            let mut c = sluice_source::conn::connect(&spec.source).await.unwrap();
            let info = sluice_source::conn::server_info(&mut c).await.unwrap();
            let source = sluice_source::discovery::describe(&mut c, &TableId::new(&db, "t")).await.unwrap();
            let (position, gtid_set) = sluice_source::conn::current_position(&mut c, &info).await.unwrap();
            let mapping = TableMapping::new(source.clone(), "t".into());
            let bin = sluice_source::conn::connect(&spec.source).await.unwrap();
            let table = TableReader::new(&mapping).unwrap();
            let from = Checkpoint { position, gtid_set };
            // Positioned by GTIDs (both test-bed servers have them), as CDC does by default.
            let by = sluice_source::binlog::resume_by(Default::default(), &info, &from).unwrap();
            assert_eq!(by, sluice_source::binlog::ResumeBy::Gtid);
            let reader =
                BinlogReader::start(bin, info.flavor, spec.server_id(), "sluice-test:decoders", &from, by, vec![mapping]).await.unwrap();
            (w, c, reader, table)
        });
        Bench { rt, writer, snap, reader, table, db, next_id: 1 }
    }

    /// Writes `rows`, then returns (binlog cells, snapshot cells) per key.
    fn round_trip(&mut self, rows: &[Vec<String>], tz: &str) -> Result<Vec<CellPair>, String> {
        let ids: Vec<i64> = (0..rows.len() as i64).map(|i| self.next_id + i).collect();
        self.next_id += rows.len() as i64;
        let Bench { rt, writer, snap, reader, table, db, .. } = self;
        rt.block_on(async {
            writer.query_drop(format!("SET time_zone = '{tz}'")).await.map_err(|e| e.to_string())?;
            let values: Vec<String> = ids.iter().zip(rows).map(|(id, r)| format!("({id}, {})", r.join(", "))).collect();
            let sql = format!("INSERT INTO {db}.t VALUES {}", values.join(", "));
            writer.query_drop(&sql).await.map_err(|e| format!("{sql}: {e}"))?;
            let mut from_binlog: HashMap<i64, Vec<Cell>> = HashMap::new();
            while from_binlog.len() < ids.len() {
                let event = tokio::time::timeout(Duration::from_secs(20), reader.next())
                    .await
                    .map_err(|_| "no binlog event within 20 s".to_string())?
                    .map_err(|e| e.to_string())?
                    .ok_or("binlog stream closed")?;
                if let BinlogEvent::Rows { changes, .. } = event {
                    for ch in changes {
                        if let Cell::Int(id) = ch.cells[0] {
                            from_binlog.insert(id, ch.cells);
                        }
                    }
                }
            }
            let chunk = table.read_chunk(snap, None, 1_000_000).await.map_err(|e| e.to_string())?;
            let from_snapshot: HashMap<i64, Vec<Cell>> =
                chunk.rows.into_iter().filter_map(|r| if let Cell::Int(id) = r[0] { Some((id, r)) } else { None }).collect();
            ids.iter()
                .map(|id| {
                    Ok((
                        from_binlog.remove(id).ok_or(format!("row {id} not in the binlog"))?,
                        from_snapshot.get(id).cloned().ok_or(format!("row {id} not read"))?,
                    ))
                })
                .collect()
        })
    }

    /// The server's own text for the DECIMAL, BIT and SET columns of row `id`.
    fn server_text(&mut self, id: i64) -> Vec<Option<String>> {
        let Bench { rt, writer, db, .. } = self;
        rt.block_on(async {
            let row: mysql_async::Row = writer
                .exec_first(format!("SELECT CAST(d AS CHAR), CAST(d0 AS CHAR), CAST(b64 AS UNSIGNED), CAST(b5 AS UNSIGNED), CAST(s AS CHAR) FROM {db}.t WHERE id = ?"), (id,))
                .await
                .unwrap()
                .unwrap();
            row.unwrap().iter().map(|v| if *v == mysql_async::Value::NULL { None } else { Some(render(v)) }).collect()
        })
    }
}

fn cell_text(c: &Cell) -> Option<String> {
    match c {
        Cell::Null => None,
        Cell::Decimal(s) => Some(s.clone()),
        Cell::UInt(u) => Some(u.to_string()),
        Cell::Int(i) => Some(i.to_string()),
        Cell::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => Some(format!("{other:?}")),
    }
}

fn decoders_agree(flavor: Flavor) {
    let started = std::time::Instant::now();
    let bench = std::cell::RefCell::new(Bench::new(flavor));
    let mut runner = TestRunner::new(Config { cases: CASES, failure_persistence: None, ..Config::default() });
    let zones = prop::sample::select(vec!["+00:00", "-07:00", "+05:45", "+13:00"]);
    runner
        .run(&(prop::collection::vec(row_strategy(), 1..5), zones), |(rows, tz)| {
            let mut b = bench.borrow_mut();
            let pairs = b.round_trip(&rows, tz).map_err(TestCaseError::fail)?;
            for (binlog, snapshot) in pairs {
                prop_assert_eq!(&binlog, &snapshot, "binlog vs snapshot decoding of {:?}", rows);
                let Cell::Int(id) = binlog[0] else { unreachable!() };
                // d, d0, b64, b5, s: compare with the server's own rendering.
                let server = b.server_text(id);
                let ours = [1, 2, 12, 13, 14].map(|i| cell_text(&binlog[i]));
                prop_assert_eq!(ours.to_vec(), server, "row {}", id);
            }
            Ok(())
        })
        .unwrap();
    eprintln!("{flavor:?}: {CASES} cases in {:.1}s", started.elapsed().as_secs_f64());
}

#[test]
fn mysql_binlog_decoders_agree_with_snapshot() {
    decoders_agree(Flavor::MySql);
}

#[test]
fn mariadb_binlog_decoders_agree_with_snapshot() {
    decoders_agree(Flavor::MariaDb);
}

#[test]
fn mariadb118_binlog_decoders_agree_with_snapshot() {
    decoders_agree(Flavor::MariaDb118);
}
