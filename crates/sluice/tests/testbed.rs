//! The test bed's three servers answer for real: MySQL and MariaDB with row
//! binlogs, and ClickHouse over HTTP with LZ4 inserts and ReplacingMergeTree FINAL.

mod common;
use common::*;
use mysql_async::prelude::*;

async fn source_is_cdc_ready(flavor: Flavor) {
    let mut c = mysql(flavor).await;
    let db = unique(&format!("tb_{}", flavor.tag()));
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(10))")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.t VALUES (1,'a'),(2,'b')")).await.unwrap();
    let n: u64 = c.query_first(format!("SELECT COUNT(*) FROM {db}.t")).await.unwrap().unwrap();
    assert_eq!(n, 2);
    let status = if flavor == Flavor::MySql { "SHOW BINARY LOG STATUS" } else { "SHOW MASTER STATUS" };
    let row: mysql_async::Row = c.query_first(status).await.unwrap().expect("binlog is on");
    let file: String = row.get(0).unwrap();
    let pos: u64 = row.get(1).unwrap();
    assert!(file.contains('.') && pos > 4, "{file}:{pos}");
    let (fmt, image, meta): (String, String, String) =
        c.query_first("SELECT @@binlog_format, @@binlog_row_image, @@binlog_row_metadata").await.unwrap().unwrap();
    assert_eq!((fmt.as_str(), image.as_str(), meta.as_str()), ("ROW", "FULL", "FULL"));
    if flavor == Flavor::MySql {
        let gtid: String = c.query_first("SELECT @@gtid_mode").await.unwrap().unwrap();
        assert_eq!(gtid, "ON");
    }
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

#[tokio::test]
async fn mysql_has_row_binlog_and_gtids() {
    source_is_cdc_ready(Flavor::MySql).await;
}

#[tokio::test]
async fn mariadb_has_row_binlog() {
    source_is_cdc_ready(Flavor::MariaDb).await;
}

#[derive(clickhouse::Row, serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Item {
    id: u32,
    name: String,
    version: i64,
    deleted: u8,
}

#[tokio::test]
async fn clickhouse_replacing_merge_tree_with_lz4_inserts() {
    let ch = clickhouse();
    let db = unique("tb_ch");
    ch.query(&format!("CREATE DATABASE {db}")).execute().await.unwrap();
    ch.query(&format!(
        "CREATE TABLE {db}.items (id UInt32, name String, version Int64, deleted UInt8) \
         ENGINE = ReplacingMergeTree(version, deleted) ORDER BY id"
    ))
    .execute()
    .await
    .unwrap();
    let mut insert = ch.clone().with_database(&db).insert::<Item>("items").await.unwrap();
    for (id, name, version, deleted) in [(1, "a", 1, 0), (2, "b", 1, 0), (1, "a2", 2, 0), (2, "b", 3, 1), (3, "c", 1, 0)] {
        insert.write(&Item { id, name: name.into(), version, deleted }).await.unwrap();
    }
    insert.end().await.unwrap();
    let rows = ch.query(&format!("SELECT ?fields FROM {db}.items FINAL ORDER BY id")).fetch_all::<Item>().await.unwrap();
    assert_eq!(
        rows,
        vec![Item { id: 1, name: "a2".into(), version: 2, deleted: 0 }, Item { id: 3, name: "c".into(), version: 1, deleted: 0 }]
    );
    // Errors come back as ClickHouse exceptions with their code.
    let err = ch.query("SELECT * FROM no_such_db.nothing").execute().await.unwrap_err().to_string();
    assert!(err.contains("Code: 81") || err.contains("Code: 60"), "{err}");
    ch.query(&format!("DROP DATABASE {db}")).execute().await.unwrap();
}
