use super::*;
use crate::SinkError;
use sluice_core::schema::{SourceColumn, SourceTable, TableId};
use sluice_core::types::TableOptions;

/// The golden file of every generated statement (`catalogue`); `SLUICE_UPDATE_GOLDEN=1` rewrites it.
#[test]
fn golden_statements() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/statements.sql");
    let text: String = catalogue().into_iter().map(|(label, sql)| format!("-- {label}\n{sql};\n")).collect();
    if std::env::var_os("SLUICE_UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    if want != text {
        let first = want.lines().zip(text.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "generated statements differ from {path} from line {}:\nwant: {:?}\ngot:  {:?}\n(SLUICE_UPDATE_GOLDEN=1 rewrites the file)",
            first + 1,
            want.lines().nth(first),
            text.lines().nth(first)
        );
    }
}

fn mapping(key: &[&str], opts: TableOptions) -> TableMapping {
    let col = |name: &str| SourceColumn { ordinal: 1, ..SourceColumn::new(name, "int", "int", false) };
    let t = SourceTable {
        id: TableId::new("s", "t"),
        columns: vec![col("a"), col("b"), col("c")],
        primary_key: key.iter().map(|k| k.to_string()).collect(),
        charset: None,
    };
    TableMapping::with_options(t, "t".into(), opts)
}

fn cluster(f: impl Fn(&mut DestinationSpec), shards: u32, hosts: u32) -> Topology {
    let mut d = DestinationSpec::new("http://x:8123", "db");
    d.cluster = Some("c".into());
    f(&mut d);
    Topology { database: "db".into(), kind: Kind::Cluster(Cluster::from_spec(&d, shards, hosts)) }
}

#[test]
fn single_node_statements_are_unchanged() {
    let m = mapping(&["a"], TableOptions::default());
    let t = Topology::single("db");
    assert_eq!(
        t.create_table(&m, "t", None).unwrap(),
        ["CREATE TABLE IF NOT EXISTS `db`.`t` (`a` Int32, `b` Int32, `c` Int32, `_peerdb_synced_at` DateTime64(9) DEFAULT now64(9), \
          `_peerdb_is_deleted` UInt8 DEFAULT 0, `_peerdb_version` Int64 DEFAULT 0) ENGINE = ReplacingMergeTree(`_peerdb_version`, \
          `_peerdb_is_deleted`) ORDER BY (`a`)"]
    );
    assert_eq!(t.create_database(), "CREATE DATABASE IF NOT EXISTS `db`");
    assert_eq!(t.drop_table("t"), ["DROP TABLE IF EXISTS `db`.`t`"]);
    assert_eq!(t.truncate("t"), "TRUNCATE TABLE IF EXISTS `db`.`t`");
    assert_eq!(t.delete_version("t", 3), "ALTER TABLE `db`.`t` DELETE WHERE `_peerdb_version` = 3 SETTINGS mutations_sync = 2");
    let i = t.insert(&m, "t");
    assert_eq!(i.table, "t");
    assert_eq!(
        i.sql,
        "INSERT INTO `db`.`t` (`a`, `b`, `c`, `_peerdb_synced_at`, `_peerdb_is_deleted`, `_peerdb_version`) FORMAT RowBinary"
    );
    let s = t.swap("t", "t_resync", None);
    assert_eq!(s.exchange, "EXCHANGE TABLES `db`.`t` AND `db`.`t_resync`");
    assert_eq!(s.rename, "RENAME TABLE `db`.`t_resync` TO `db`.`t`");
    assert!(s.after.is_empty() && s.marked == "t");
    assert!(t.ddl_settings().is_empty());
    // Cloud: the same plain statements.
    let cloud = Topology { database: "db".into(), kind: Kind::Cloud };
    assert_eq!(cloud.create_table(&m, "t", None).unwrap(), t.create_table(&m, "t", None).unwrap());
    assert_eq!(cloud.insert(&m, "t"), t.insert(&m, "t"));
    assert_eq!(cloud.swap("t", "t_resync", None), s);
}

#[test]
fn distributed_cluster_layout() {
    let m = mapping(&["a", "b"], TableOptions::default());
    let t = cluster(|d| d.replicated = true, 2, 4);
    assert!(t.distributed(), "more than one shard: distributed by default");
    let sql = t.create_table(&m, "t", None).unwrap();
    assert_eq!(sql.len(), 2);
    assert!(sql[0].starts_with("CREATE TABLE IF NOT EXISTS `db`.`t_shard` ON CLUSTER 'c' ("), "{}", sql[0]);
    assert!(
        sql[0].contains(
            "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}/{database}/t_shard', '{replica}', `_peerdb_version`, `_peerdb_is_deleted`) ORDER BY (`a`, `b`)"
        ),
        "{}",
        sql[0]
    );
    assert_eq!(
        sql[1],
        "CREATE TABLE IF NOT EXISTS `db`.`t` ON CLUSTER 'c' AS `db`.`t_shard` ENGINE = Distributed('c', 'db', 't_shard', cityHash64(`a`, `b`))"
    );
    assert_eq!(t.drop_table("t"), ["DROP TABLE IF EXISTS `db`.`t` ON CLUSTER 'c'", "DROP TABLE IF EXISTS `db`.`t_shard` ON CLUSTER 'c'"]);
    assert_eq!(t.truncate("t"), "TRUNCATE TABLE IF EXISTS `db`.`t_shard` ON CLUSTER 'c'");
    let i = t.insert(&m, "t_resync");
    assert_eq!(i.table, "t_resync");
    assert!(i.sql.ends_with(" SETTINGS insert_distributed_sync = 1 FORMAT RowBinary"), "{}", i.sql);
    let s = t.swap("t", "t_resync", Some("cityHash64(`a`)"));
    assert_eq!(s.exchange, "EXCHANGE TABLES `db`.`t_shard` AND `db`.`t_resync_shard` ON CLUSTER 'c'");
    assert_eq!(s.marked, "t_shard");
    assert_eq!(
        s.after,
        ["CREATE OR REPLACE TABLE `db`.`t` ON CLUSTER 'c' AS `db`.`t_shard` ENGINE = Distributed('c', 'db', 't_shard', cityHash64(`a`))"]
    );
    // The copy's Distributed table keeps the sharding key for the swap.
    let copy = t.create_table(&m, "t_resync", Some("sluice resync 9")).unwrap();
    assert!(copy[0].ends_with(" COMMENT 'sluice resync 9'"), "{}", copy[0]);
    assert!(
        copy[1].ends_with("Distributed('c', 'db', 't_resync_shard', cityHash64(`a`, `b`)) COMMENT 'cityHash64(`a`, `b`)'"),
        "{}",
        copy[1]
    );
    assert_eq!(t.ddl_settings()[0], ("distributed_ddl_task_timeout", "180".to_string()));
}

#[test]
fn insert_targets_and_quorum() {
    let m = mapping(&["a"], TableOptions::default());
    let shards = cluster(
        |d| {
            d.replicated = true;
            d.insert_into_shards = true;
            d.insert_quorum = Some(2);
        },
        2,
        4,
    );
    let i = shards.insert(&m, "t");
    assert_eq!(i.table, "t_shard");
    assert!(i.sql.starts_with("INSERT INTO `db`.`t_shard` ("), "{}", i.sql);
    assert!(i.sql.ends_with(" SETTINGS insert_quorum = 2 FORMAT RowBinary"), "{}", i.sql);
    // One shard: no Distributed table unless asked for; ON CLUSTER still.
    let one = cluster(|d| d.replicated = true, 1, 3);
    assert!(!one.distributed());
    assert_eq!(one.local("t"), "t");
    assert_eq!(one.create_table(&m, "t", None).unwrap().len(), 1);
    assert!(!one.insert(&m, "t").sql.contains("SETTINGS"));
    let forced = cluster(|d| d.distributed = Some(true), 1, 1);
    assert_eq!(forced.create_table(&m, "t", None).unwrap().len(), 2);
    let suffix = cluster(|d| d.shard_table_suffix = "_local".into(), 2, 2);
    assert_eq!(suffix.local("t"), "t_local");
    assert!(suffix.create_table(&m, "t", None).unwrap()[0].contains("ENGINE = ReplacingMergeTree("), "not replicated");
}

#[test]
fn alter_on_a_cluster_recreates_the_distributed_table() {
    let old = mapping(&["a"], TableOptions::default());
    let mut t2 = old.source.clone();
    t2.columns.push(SourceColumn { ordinal: 4, ..SourceColumn::new("d", "int", "int", true) });
    let new = TableMapping::new(t2, "t".into());
    let ops = [AlterOp::AddColumn { name: "d".into(), default: None }];
    let t = cluster(|_| {}, 2, 2);
    assert_eq!(
        t.alter("t", &old, &new, &ops).unwrap(),
        [
            "ALTER TABLE `db`.`t_shard` ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS `d` Nullable(Int32) AFTER `c`",
            "CREATE OR REPLACE TABLE `db`.`t` ON CLUSTER 'c' AS `db`.`t_shard` ENGINE = Distributed('c', 'db', 't_shard', cityHash64(`a`))",
        ]
    );
    assert_eq!(
        Topology::single("db").alter("t", &old, &new, &ops).unwrap(),
        ["ALTER TABLE `db`.`t` ADD COLUMN IF NOT EXISTS `d` Nullable(Int32) AFTER `c`"]
    );
    assert!(t.alter("t", &old, &old, &[]).unwrap().is_empty(), "nothing to follow: nothing sent");
}

#[test]
fn sharding_keys() {
    let keyed = mapping(&["a", "b"], TableOptions::default());
    assert_eq!(sharding_key(&keyed, 4).unwrap(), "cityHash64(`a`, `b`)");
    let own = |k: &str, engine: TableEngine| TableOptions { sharding_key: Some(k.into()), engine, ..Default::default() };
    assert_eq!(sharding_key(&mapping(&["a", "b"], own("xxHash64(a) % 8", TableEngine::Replacing)), 4).unwrap(), "xxHash64(a) % 8");
    assert!(sharding_key(&mapping(&["a"], own("`a` + intHash32(`a`)", TableEngine::Replacing)), 4).is_ok());
    let e = sharding_key(&mapping(&["a"], own("cityHash64(a, c)", TableEngine::Replacing)), 4).unwrap_err();
    assert!(e.contains("\"c\"") && e.contains("key columns only"), "{e}");
    let e = sharding_key(&mapping(&["a"], own("rand()", TableEngine::Replacing)), 4);
    assert!(e.is_ok(), "rand() uses no column: {e:?}");
    // merge_tree keeps every change: any key is fine.
    assert!(sharding_key(&mapping(&["a"], own("c", TableEngine::MergeTree)), 4).is_ok());
    // Keyless: a key is needed over more than one shard.
    let keyless = mapping(&[], TableOptions { engine: TableEngine::MergeTree, ..Default::default() });
    let e = sharding_key(&keyless, 2).unwrap_err();
    assert!(e.contains("no key") && e.contains("sharding_key"), "{e}");
    assert_eq!(sharding_key(&keyless, 1).unwrap(), "rand()");
    let t = cluster(|_| {}, 2, 2);
    assert!(t.create_table(&keyless, "t", None).unwrap_err().contains("sharding_key"));
    assert_eq!(identifiers("cityHash64(`x y`, 'lit', z) % 10 AND w"), ["x y", "z", "w"]);
}

#[test]
fn ddl_answers() {
    let head = "host\tport\tstatus\terror\tnum_hosts_remaining\tnum_hosts_active\n";
    assert!(crate::check_ddl_answer("op", "").is_ok());
    assert!(crate::check_ddl_answer("op", &format!("{head}h1\t9000\t0\t\t1\t0\nh2\t9000\t0\t\t0\t0\n")).is_ok());
    let e = crate::check_ddl_answer("op", &format!("{head}h1\t9000\t0\t\t1\t1\n")).unwrap_err();
    assert!(matches!(e, SinkError::Cluster { .. }) && e.is_transient(), "{e}");
    assert!(e.to_string().contains("1 host(s) did not finish"), "{e}");
    let e = crate::check_ddl_answer("op", &format!("{head}h1\t9000\t159\tCode: 159. timeout\t0\t0\n")).unwrap_err();
    assert!(matches!(e, SinkError::Cluster { .. }) && e.is_transient(), "{e}");
    let e = crate::check_ddl_answer("op", &format!("{head}h1\t9000\t62\tCode: 62. Syntax error\t0\t0\n")).unwrap_err();
    assert!(matches!(e, SinkError::Server { code: 62, .. }) && !e.is_transient(), "{e}");
    assert!(e.to_string().contains("h1"), "{e}");
}
