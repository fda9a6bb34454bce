//! TLS to the source: the test bed's MySQL 9 runs with a certificate for
//! 127.0.0.1 signed by a CA the test bed generated (`SLUICE_TEST_MYSQL_CA`).

mod common;
use common::workload::*;
use common::*;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

fn check(spec: &serde_json::Value, dir: &std::path::Path) -> (bool, String) {
    let path = dir.join(format!("check-{}.json", rand::random::<u32>()));
    std::fs::write(&path, spec.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["check", "--config"]).arg(&path).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_modes_verify_the_server_and_refuse_clearly() {
    let flavor = Flavor::MySql;
    let db = unique("tls");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng: rand::rngs::StdRng = rand::SeedableRng::seed_from_u64(51);
    load_orders(&mut c, &db, &mut rng, 1, 500).await;
    let ca_path = testbed_url("SLUICE_TEST_MYSQL_CA");
    let ca = std::fs::read_to_string(&ca_path).unwrap();
    // The server's own certificate is not the CA that signed it.
    let not_the_ca = std::fs::read_to_string(std::path::Path::new(&ca_path).with_file_name("server.pem")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_only");

    // The default (preferred) encrypts when the server offers TLS.
    let (ok, out) = check(&base, dir.path());
    assert!(ok && out.contains("connection encrypted"), "{out}");

    // `required`: encrypted, and the pipe copies the data over TLS.
    let mut required = base.clone();
    required["source"]["tls"] = json!({"mode": "required"});
    let (ok, out) = check(&required, dir.path());
    assert!(ok && out.contains("connection encrypted"), "{out}");
    let mut run = SluiceRun::start(&dir.path().join("required"), &required);
    assert!(run.wait_exit(Duration::from_secs(60)), "{}", run.log());
    compare(flavor, &db, &ch_db).await.unwrap();

    // verify_ca and verify_identity with the right CA: checks pass over TLS and the pipe copies the data.
    for mode in ["verify_ca", "verify_identity"] {
        let mut good = base.clone();
        good["name"] = format!("{db}_{mode}").into();
        good["destination"]["database"] = format!("{ch_db}_{mode}").into();
        good["source"]["tls"] = json!({"mode": mode, "ca_cert": ca});
        let (ok, out) = check(&good, dir.path());
        assert!(ok && out.contains("connection encrypted"), "{mode}: {out}");
        let mut run = SluiceRun::start(&dir.path().join(mode), &good);
        assert!(run.wait_exit(Duration::from_secs(60)), "{}", run.log());
        compare(flavor, &db, &format!("{ch_db}_{mode}")).await.unwrap();
    }
    // verify_identity for a name the certificate does not carry fails.
    let mut wrong_name = base.clone();
    wrong_name["source"]["tls"] = json!({"mode": "verify_identity", "ca_cert": ca, "tls_host": "db.example.com"});
    let (ok, out) = check(&wrong_name, dir.path());
    assert!(!ok && out.contains("TLS to the source failed"), "{out}");

    // A certificate that did not sign the server's: refused, saying what to check.
    let mut bad = base.clone();
    bad["name"] = format!("{db}_bad").into();
    bad["destination"]["database"] = format!("{ch_db}_bad").into();
    bad["source"]["tls"] = json!({"mode": "verify_ca", "ca_cert": not_the_ca});
    let (ok, out) = check(&bad, dir.path());
    assert!(!ok && out.contains("source.tls.ca_cert"), "{out}");
    let mut run = SluiceRun::start(&dir.path().join("bad"), &bad);
    assert!(!run.wait_exit(Duration::from_secs(60)), "a wrong CA was accepted:\n{}", run.log());
    assert!(run.log().contains("TLS to the source failed"), "{}", run.log());
    assert!(!ch_database_exists(&format!("{ch_db}_bad")).await);

    // verify_ca without a CA is refused before connecting; `required` on a server without TLS fails clearly.
    let mut no_ca = base.clone();
    no_ca["source"]["tls"] = json!({"mode": "verify_ca"});
    let (ok, out) = check(&no_ca, dir.path());
    assert!(!ok && out.contains("source.tls.ca_cert"), "{out}");
    let mut plain = spec(&db, Flavor::MariaDb, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_only");
    plain["source"]["tls"] = json!({"mode": "required"});
    let (ok, out) = check(&plain, dir.path());
    assert!(!ok && out.contains("does not offer TLS"), "{out}");
}
