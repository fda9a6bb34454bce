//! The statements Sluice sends to a ClickHouse cluster or ClickHouse Cloud,
//! checked by the test bed's ClickHouse parser.
//!
//! The test bed's ClickHouse (chDB behind an HTTP front) has no TCP server
//! and no Keeper, so it cannot host a cluster: every generated statement
//! (`sluice_sink::topology::catalogue`, also the sink's golden file) is
//! sent as `SELECT formatQuery(...)`, which parses it without running it, and
//! the formatted text must keep what matters (`ON CLUSTER`, the engine, the
//! settings). A sink configured with a cluster the server does not know
//! fails with a clear, fatal error before it sends anything.

mod common;
use common::*;
use sluice_core::spec::DestinationSpec;
use sluice_core::Severity;
use sluice_sink::{escape_literal, ClickHouseSink, SinkError};

#[tokio::test]
async fn every_generated_statement_parses() {
    // The check is real: a broken statement is refused.
    let broken = "CREATE TABLE `db`.`t` ON CLUSTER 'c' AS `db`.`t_shard` ENGINE = Distributed('c', 'db', 't_shard'";
    assert!(ch_rows(&format!("SELECT formatQuery('{}')", escape_literal(broken))).await.is_err());
    let statements = sluice_sink::topology::catalogue();
    assert!(statements.len() > 60, "{} statements", statements.len());
    let mut failures = Vec::new();
    for (label, sql) in &statements {
        match ch_rows(&format!("SELECT formatQuery('{}')", escape_literal(sql))).await {
            Err(e) => failures.push(format!("{label}: {sql}\n  -> {e}")),
            Ok(rows) => {
                let formatted = rows.first().and_then(|r| r.first()).cloned().unwrap_or_default();
                for must in ["ON CLUSTER", "Distributed(", "Replicated", "insert_distributed_sync", "insert_quorum", "{uuid}"] {
                    if sql.contains(must) != formatted.contains(must) {
                        failures.push(format!("{label}: {must:?} lost or added by the parser:\n  {sql}\n  {formatted}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} statements failed:\n{}", failures.len(), statements.len(), failures.join("\n"));
}

#[tokio::test]
async fn a_cluster_the_server_does_not_know_is_a_fatal_error() {
    let mut dest = DestinationSpec::new(testbed().clickhouse_url.clone(), unique("sluice_cluster"));
    dest.cluster = Some("no_such_cluster".into());
    let sink = ClickHouseSink::new(&dest);
    assert!(!sink.is_cloud().await.unwrap(), "the test bed is not ClickHouse Cloud");
    let e = sink.ensure_database().await.unwrap_err();
    assert!(matches!(e, SinkError::Config(_)), "{e:?}");
    assert_eq!(e.severity(), Severity::Fatal);
    assert!(e.to_string().contains("no_such_cluster") && e.to_string().contains("system.clusters"), "{e}");
    assert!(!ch_database_exists(&dest.database).await, "nothing was created");
}

#[tokio::test]
async fn single_node_detection_sends_no_cluster_statement() {
    let db = unique("sluice_single");
    let sink = ClickHouseSink::new(&DestinationSpec::new(testbed().clickhouse_url.clone(), db.clone()));
    let topo = sink.topology().await.unwrap();
    assert!(topo.cluster().is_none());
    assert_eq!(topo.on_cluster(), "");
    sink.ensure_database().await.unwrap();
    assert!(ch_database_exists(&db).await);
    sink.execute(&format!("DROP DATABASE IF EXISTS `{db}`")).await.unwrap();
}
