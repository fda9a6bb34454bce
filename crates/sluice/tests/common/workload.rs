//! The test workload: a two-table schema, random writes of every kind, and the
//! source-vs-destination comparison (through the normalisation the README documents).

use super::*;
use mysql_async::prelude::*;
use mysql_async::Conn;
use rand::Rng;

pub async fn create_schema(c: &mut Conn, db: &str) {
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!(
        "CREATE TABLE {db}.orders (id BIGINT PRIMARY KEY, customer VARCHAR(64) NOT NULL, qty INT NULL, \
         price DECIMAL(12,2) NOT NULL, created DATETIME(6) NOT NULL, score DOUBLE NULL, \
         status ENUM('new','paid','shipped') NOT NULL, doc JSON NULL, ts TIMESTAMP(3) NULL, big BIGINT UNSIGNED NOT NULL)"
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "CREATE TABLE {db}.items (order_id BIGINT, line INT, sku VARBINARY(32) NOT NULL, note TEXT, PRIMARY KEY (order_id, line))"
    ))
    .await
    .unwrap();
}

pub const STATUSES: [&str; 3] = ["new", "paid", "shipped"];

pub fn order_values(rng: &mut impl Rng, id: u64) -> String {
    let qty = if rng.gen_bool(0.2) { "NULL".to_string() } else { rng.gen_range(-5..1000).to_string() };
    let score = if rng.gen_bool(0.2) { "NULL".to_string() } else { format!("{}", rng.gen_range(-1e6..1e6f64)) };
    let doc = if rng.gen_bool(0.3) {
        "NULL".to_string()
    } else {
        format!("'{{\"k\": {}, \"tags\": [\"a\", \"b\"], \"s\": \"é\"}}'", rng.gen_range(0..100))
    };
    let ts = if rng.gen_bool(0.2) {
        "NULL".to_string()
    } else {
        format!("'2024-03-{:02} 10:11:12.{:03}'", rng.gen_range(1..28), rng.gen_range(0..1000))
    };
    format!(
        "({id}, 'cust-{}-ü', {qty}, {}.{:02}, '2023-{:02}-{:02} 01:02:03.{:06}', {score}, '{}', {doc}, {ts}, {})",
        rng.gen_range(0..1000),
        rng.gen_range(0..100000),
        rng.gen_range(0..100),
        rng.gen_range(1..13),
        rng.gen_range(1..29),
        rng.gen_range(0..1_000_000),
        STATUSES[rng.gen_range(0..3)],
        if rng.gen_bool(0.1) { u64::MAX } else { rng.gen::<u32>() as u64 },
    )
}

pub async fn load_orders(c: &mut Conn, db: &str, rng: &mut impl Rng, from: u64, n: u64) {
    let mut id = from;
    while id < from + n {
        let end = (id + 2000).min(from + n);
        let values: Vec<String> = (id..end).map(|i| order_values(rng, i)).collect();
        c.query_drop(format!("INSERT INTO {db}.orders VALUES {}", values.join(","))).await.unwrap();
        id = end;
    }
}

/// One random write: insert, update, PK update, delete, or a multi-row transaction over both tables.
pub async fn random_write(c: &mut Conn, db: &str, rng: &mut impl Rng, next_id: &mut u64, max_id: u64) {
    let id = rng.gen_range(1..max_id.max(2));
    match rng.gen_range(0..7) {
        0 => {
            let v = order_values(rng, *next_id);
            *next_id += 1;
            c.query_drop(format!("INSERT INTO {db}.orders VALUES {v}")).await.unwrap();
        }
        1 => {
            c.query_drop(format!(
                "UPDATE {db}.orders SET qty = {}, status = '{}', doc = JSON_OBJECT('u', {}) WHERE id = {id}",
                rng.gen_range(0..50),
                STATUSES[rng.gen_range(0..3)],
                rng.gen_range(0..9)
            ))
            .await
            .unwrap();
        }
        2 => {
            // Primary-key change: the old key must disappear from FINAL.
            let new_id = *next_id;
            *next_id += 1;
            c.query_drop(format!("UPDATE {db}.orders SET id = {new_id} WHERE id = {id}")).await.unwrap();
        }
        3 => {
            c.query_drop(format!("DELETE FROM {db}.orders WHERE id = {id}")).await.unwrap();
        }
        4 => {
            c.query_drop(format!("UPDATE {db}.orders SET price = price + 1.25, score = NULL WHERE id BETWEEN {id} AND {}", id + 20))
                .await
                .unwrap();
        }
        _ => {
            let mut tx = c.start_transaction(Default::default()).await.unwrap();
            let oid = rng.gen_range(1..200u64);
            for line in 0..rng.gen_range(1..6) {
                tx.query_drop(format!(
                    "INSERT INTO {db}.items VALUES ({oid}, {line}, X'00{:02x}00', 'n{}') ON DUPLICATE KEY UPDATE note = CONCAT(note, '+')",
                    rng.gen::<u8>(),
                    rng.gen::<u16>()
                ))
                .await
                .unwrap();
            }
            tx.query_drop(format!("DELETE FROM {db}.items WHERE order_id = {} AND line = 0", rng.gen_range(1..200u64))).await.unwrap();
            // A primary-key change inside the transaction (its target key cleared first).
            tx.query_drop(format!("DELETE FROM {db}.items WHERE order_id = {oid} AND line = 101")).await.unwrap();
            tx.query_drop(format!("UPDATE {db}.items SET line = line + 100 WHERE order_id = {oid} AND line = 1")).await.unwrap();
            tx.query_drop(format!("UPDATE {db}.orders SET customer = 'tx' WHERE id = {id}")).await.unwrap();
            tx.commit().await.unwrap();
        }
    }
}

pub fn normalise_decimal(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

pub fn normalise_json(s: &str) -> String {
    serde_json::from_str::<serde_json::Value>(s).map(|v| v.to_string()).unwrap_or_else(|_| s.to_string())
}

/// Both tables of `src_db` equal their destinations' `FINAL` rows (deletes hidden), value for value.
pub async fn compare(flavor: Flavor, src_db: &str, ch_db: &str) -> Result<(), String> {
    compare_url(flavor.url(), src_db, ch_db).await
}

/// `compare` for the source server at `url`.
pub async fn compare_url(url: &str, src_db: &str, ch_db: &str) -> Result<(), String> {
    let mut c = mysql_url(url).await;
    c.query_drop("SET time_zone = '+00:00'").await.map_err(|e| e.to_string())?;
    let orders_src = src_rows(
        &mut c,
        &format!(
            "SELECT id, customer, qty, CAST(price AS CHAR), DATE_FORMAT(created, '%Y-%m-%d %H:%i:%s.%f'), score, CAST(status AS CHAR), \
             doc, LEFT(DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f'), 23), big FROM {src_db}.orders ORDER BY id"
        ),
    )
    .await;
    let items_src = src_rows(&mut c, &format!("SELECT order_id, line, HEX(sku), note FROM {src_db}.items ORDER BY order_id, line")).await;
    let _ = c.disconnect().await;
    let orders_dst = ch_rows(&format!(
        "SELECT id, customer, qty, toString(price), toString(created), score, status, doc, toString(ts), big \
         FROM {ch_db}.orders FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id"
    ))
    .await?;
    let items_dst = ch_rows(&format!(
        "SELECT order_id, line, hex(sku), note FROM {ch_db}.items FINAL WHERE _peerdb_is_deleted = 0 ORDER BY order_id, line"
    ))
    .await?;
    let fix = |rows: Vec<Vec<String>>| -> Vec<Vec<String>> {
        rows.into_iter()
            .map(|mut r| {
                r[3] = normalise_decimal(&r[3]);
                r[7] = normalise_json(&r[7]);
                r
            })
            .collect()
    };
    diff(&fix(orders_src), &fix(orders_dst)).map_err(|e| format!("orders: {e}"))?;
    diff(&items_src, &items_dst).map_err(|e| format!("items: {e}"))
}
