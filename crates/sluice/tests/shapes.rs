//! Table shapes end to end, on both servers: composite primary keys, keyless
//! tables keyed by a NOT NULL unique key (and the refusal of a named table with
//! no usable key under the default engine), invisible columns, MySQL's generated invisible primary key
//! (`my_row_id`), and identifiers that need quoting (reserved words, spaces,
//! dots, backticks, non-ASCII) in schema, table and column names.

mod common;
use common::*;
use mysql_async::prelude::*;
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(60);

fn mq(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn cq(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// A table to compare: its name, the columns compared (invisible ones named explicitly) and its key.
struct Shape {
    table: &'static str,
    cols: Vec<&'static str>,
    key: Vec<&'static str>,
}

async fn compare_shape(flavor: Flavor, db: &str, ch_db: &str, s: &Shape) -> Result<(), String> {
    let mut c = mysql(flavor).await;
    let src_cols: Vec<String> = s.cols.iter().map(|n| format!("CAST({} AS CHAR)", mq(n))).collect();
    let order: Vec<String> = s.key.iter().map(|n| mq(n)).collect();
    let src =
        src_rows(&mut c, &format!("SELECT {} FROM {}.{} ORDER BY {}", src_cols.join(", "), mq(db), mq(s.table), order.join(", "))).await;
    let _ = c.disconnect().await;
    let dst_cols: Vec<String> = s.cols.iter().map(|n| format!("toString({})", cq(n))).collect();
    let dst_order: Vec<String> = s.key.iter().map(|n| cq(n)).collect();
    let dst = ch_rows(&format!(
        "SELECT {} FROM {}.{} FINAL WHERE _peerdb_is_deleted = 0 ORDER BY {}",
        dst_cols.join(", "),
        cq(ch_db),
        cq(s.table),
        dst_order.join(", ")
    ))
    .await?;
    diff(&src, &dst).map_err(|e| format!("{}: {e}", s.table))
}

async fn compare_all(flavor: Flavor, db: &str, ch_db: &str, shapes: &[Shape], run: &SluiceRun) -> Result<(), String> {
    for s in shapes {
        compare_shape(flavor, db, ch_db, s).await.map_err(|e| format!("{e}\nlog:\n{}", run.log()))?;
    }
    Ok(())
}

async fn shapes(flavor: Flavor) {
    let base = unique(&format!("shp_{}", flavor.tag()));
    // A schema name with a space, a dot, a backtick and a non-ASCII letter.
    let db = format!("{base} s.c`hé");
    let ch_db = format!("{base}_ch");
    let mut c = mysql(flavor).await;
    let q = |sql: &str| sql.replace("{db}", &mq(&db));
    c.query_drop(q("CREATE DATABASE {db} CHARACTER SET utf8mb4")).await.unwrap();
    // Reserved words, spaces, dots, backticks and non-ASCII in table and column names; a composite key.
    c.query_drop(q("CREATE TABLE {db}.`select` (`order` INT NOT NULL, `from col` VARCHAR(20) NOT NULL, `a.b` INT, \
                    `tick``tick` VARCHAR(10), `ünï cödé` VARCHAR(10), PRIMARY KEY (`order`, `from col`))"))
        .await
        .unwrap();
    c.query_drop(q("INSERT INTO {db}.`select` VALUES (1, 'x', 1, 't', 'ü'), (1, 'y', 2, NULL, 'é'), (2, 'x', 3, 'q', '😀')"))
        .await
        .unwrap();
    // No primary key: the NOT NULL unique key (not the nullable one) becomes the key.
    c.query_drop(q("CREATE TABLE {db}.`uk only` (`u1` INT NOT NULL, `u2` VARCHAR(10) NOT NULL, `n` INT NULL, `v` VARCHAR(10), \
                    UNIQUE KEY `a_nullable` (`n`), UNIQUE KEY `uk` (`u1`, `u2`))"))
        .await
        .unwrap();
    c.query_drop(q("INSERT INTO {db}.`uk only` VALUES (1, 'a', NULL, 'v1'), (1, 'b', NULL, 'v2'), (2, 'a', 5, 'v3')")).await.unwrap();
    // Invisible columns are not in SELECT *, but are part of the table.
    c.query_drop(q("CREATE TABLE {db}.`inv` (`id` INT PRIMARY KEY, `secret` VARCHAR(10) INVISIBLE, `v` INT)")).await.unwrap();
    c.query_drop(q("INSERT INTO {db}.`inv` (`id`, `secret`, `v`) VALUES (1, 's1', 10), (2, NULL, 20)")).await.unwrap();
    let mut shapes = vec![
        Shape { table: "select", cols: vec!["order", "from col", "a.b", "tick`tick", "ünï cödé"], key: vec!["order", "from col"] },
        Shape { table: "uk only", cols: vec!["u1", "u2", "n", "v"], key: vec!["u1", "u2"] },
        Shape { table: "inv", cols: vec!["id", "secret", "v"], key: vec!["id"] },
    ];
    if flavor == Flavor::MySql {
        // MySQL adds `my_row_id BIGINT UNSIGNED AUTO_INCREMENT INVISIBLE PRIMARY KEY` to keyless tables.
        c.query_drop("SET SESSION sql_generate_invisible_primary_key = ON").await.unwrap();
        c.query_drop(q("CREATE TABLE {db}.`gipk t` (`v` VARCHAR(10), `w` INT)")).await.unwrap();
        c.query_drop("SET SESSION sql_generate_invisible_primary_key = OFF").await.unwrap();
        c.query_drop(q("INSERT INTO {db}.`gipk t` VALUES ('a', 1), ('b', 2), ('c', NULL)")).await.unwrap();
        shapes.push(Shape { table: "gipk t", cols: vec!["my_row_id", "v", "w"], key: vec!["my_row_id"] });
    }
    let quoted_source = format!("{}.*", mq(&db));
    let dir = tempfile::tempdir().unwrap();
    let run =
        SluiceRun::start(dir.path(), &spec(&base, flavor, serde_json::json!([{ "source": quoted_source }]), &ch_db, "snapshot_and_cdc"));
    eventually(CONVERGE, || compare_all(flavor, &db, &ch_db, &shapes, &run)).await;
    // CDC: inserts, updates of non-key and key columns (composite and unique keys), deletes.
    for sql in [
        "INSERT INTO {db}.`select` VALUES (3, 'z', 4, 'n`ew', 'ß')",
        "UPDATE {db}.`select` SET `a.b` = 10, `tick``tick` = NULL WHERE `order` = 1 AND `from col` = 'x'",
        "UPDATE {db}.`select` SET `from col` = 'w' WHERE `order` = 2",
        "DELETE FROM {db}.`select` WHERE `order` = 1 AND `from col` = 'y'",
        "INSERT INTO {db}.`uk only` VALUES (3, 'c', 7, 'v4')",
        "UPDATE {db}.`uk only` SET `v` = 'v1b', `n` = 9 WHERE `u1` = 1 AND `u2` = 'a'",
        "UPDATE {db}.`uk only` SET `u2` = 'z' WHERE `u1` = 1 AND `u2` = 'b'",
        "DELETE FROM {db}.`uk only` WHERE `u1` = 2",
        "INSERT INTO {db}.`inv` (`id`, `secret`, `v`) VALUES (3, 's3', 30)",
        "UPDATE {db}.`inv` SET `secret` = 'changed' WHERE `id` = 1",
        "DELETE FROM {db}.`inv` WHERE `id` = 2",
    ] {
        c.query_drop(q(sql)).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    if flavor == Flavor::MySql {
        for sql in [
            "INSERT INTO {db}.`gipk t` VALUES ('d', 4)",
            "UPDATE {db}.`gipk t` SET `w` = 20 WHERE `v` = 'b'",
            "DELETE FROM {db}.`gipk t` WHERE `v` = 'a'",
        ] {
            c.query_drop(q(sql)).await.unwrap();
        }
    }
    eventually(CONVERGE, || compare_all(flavor, &db, &ch_db, &shapes, &run)).await;
    // The keyless table's destination is ordered by the unique key's columns.
    let key = ch_rows(&format!(
        "SELECT sorting_key FROM system.tables WHERE database = '{}' AND name = 'uk only'",
        sluice_sink::escape_literal(&ch_db)
    ))
    .await
    .unwrap();
    assert_eq!(key, vec![vec!["u1, u2".to_string()]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_table_shapes_and_quoted_identifiers() {
    shapes(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_table_shapes_and_quoted_identifiers() {
    shapes(Flavor::MariaDb).await;
}

/// A table with no primary key and no NOT NULL unique key, named with the
/// default engine, is refused at Setup with a message naming the options that
/// would include it (a `schema.*` match is skipped instead: see keyless.rs).
async fn keyless_refused(flavor: Flavor) {
    let db = unique(&format!("nokey_{}", flavor.tag()));
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    if flavor == Flavor::MySql {
        // Else MySQL may give the table an invisible `my_row_id` primary key.
        c.query_drop("SET SESSION sql_generate_invisible_primary_key = OFF").await.unwrap();
    }
    c.query_drop(format!("CREATE TABLE {db}.t (a INT NOT NULL, b INT NULL, UNIQUE KEY (b))")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = SluiceRun::start(
        dir.path(),
        &spec(&db, flavor, serde_json::json!([{"source": format!("{db}.t")}]), &format!("{db}_ch"), "snapshot_only"),
    );
    run.wait_exit(Duration::from_secs(60));
    let log = run.log();
    assert!(log.contains("→ Failed"), "{log}");
    assert!(log.contains("has no primary key and no unique key on NOT NULL columns"), "{log}");
    assert!(log.contains("key_columns") && log.contains("merge_tree"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_keyless_table_is_refused() {
    keyless_refused(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_keyless_table_is_refused() {
    keyless_refused(Flavor::MariaDb).await;
}
