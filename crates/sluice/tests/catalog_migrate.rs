//! `sluice catalog migrate`: a server's SQLite catalog copied into Postgres
//! while the server is stopped (refused while it runs); a server started on
//! the Postgres copy resumes the pipe where it was and CDC goes on.

mod common;
use common::workload::*;
use common::*;
use mysql_async::prelude::*;
use rand::SeedableRng;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// Runs `sluice catalog migrate`; returns (success, stderr + stdout).
fn migrate(from: &str, to: &str, data_dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["catalog", "migrate", "--from", from, "--to", to, "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "info,sqlx=warn")
        .env_remove("SLUICE_CATALOG_URL")
        .env_remove("SLUICE_SECRET_KEY")
        .output()
        .expect("run sluice catalog migrate");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_catalog_moves_to_postgres_and_cdc_goes_on() {
    let pg_server = postgres_server_url().expect("the test bed's PostgreSQL");
    let flavor = Flavor::MySql;
    let db = unique("catmig");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    load_orders(&mut c, &db, &mut rng, 1, 2_000).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut srv = SluiceServer::start_with_catalog(dir.path(), None).await;
    let spec = spec(&db, flavor, serde_json::json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    let (code, v) = srv.call(reqwest::Method::POST, "/v1/pipes", Some(spec)).await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", T).await;
    load_orders(&mut c, &db, &mut rng, 10_001, 500).await;
    eventually(T, || compare(flavor, &db, &ch_db)).await;

    let from = format!("sqlite://{}", data.join("catalog.db").display());
    let pg_db = format!("sluice_it_{}_{:08x}", std::process::id(), rand::random::<u32>());
    let to = sluice_catalog::pg_admin::recreate_database(&pg_server, &pg_db).await.unwrap();
    // Refused while the server runs (its data dir is locked); nothing is copied.
    let (ok, out) = migrate(&from, &to, &data);
    assert!(!ok && out.contains("is in use by another sluice process"), "migrate with the server running:\n{out}");

    srv.kill9();
    let (ok, out) = migrate(&from, &to, &data);
    assert!(ok, "sluice catalog migrate failed:\n{out}");
    assert!(out.contains("row counts verified") && out.contains("pipes") && !out.contains("sluice:sluice@"), "{out}");
    // The target is no longer empty: a second copy is refused.
    let (ok, out) = migrate(&from, &to, &data);
    assert!(!ok && out.contains("not empty"), "{out}");

    // Meanwhile the source moves on; the server on Postgres resumes the pipe from the copied checkpoint.
    c.query_drop(format!("UPDATE {db}.orders SET qty = qty + 1 WHERE id <= 100")).await.unwrap();
    load_orders(&mut c, &db, &mut rng, 20_001, 500).await;
    let srv = SluiceServer::start_with_catalog(dir.path(), Some(to.clone())).await;
    srv.wait_state(&db, "Running", T).await;
    eventually(T, || compare(flavor, &db, &ch_db)).await;
    load_orders(&mut c, &db, &mut rng, 30_001, 200).await;
    eventually(T, || compare(flavor, &db, &ch_db)).await;
    assert!(srv.log().contains("catalog: postgres://sluice:***@"), "the server names its catalog, password hidden:\n{}", srv.log());
    let (code, v) = srv.call(reqwest::Method::GET, &format!("/v1/pipes/{db}/events"), None).await;
    assert_eq!(code, 200, "{v}");
    assert!(v.to_string().contains("pipe created"), "the history came along: {v}");
    drop(srv);
    let _ = sluice_catalog::pg_admin::drop_database(&pg_server, &pg_db).await;
}
