//! SSH tunnels to the source (`source.ssh`) against the test bed's private
//! `sshd` (Debian's openssh-server, public-key authentication only).
//!
//! The tests reach the sshd through a TCP relay of their own: the bytes it
//! carries prove that the pipe's traffic goes through the tunnel, and cutting
//! its connections drops the tunnel's SSH session the way a network or a
//! bastion restart does, without disturbing other tests.

mod common;
use common::workload::*;
use common::*;
use rand::SeedableRng;
use serde_json::json;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

const CONVERGE: Duration = Duration::from_secs(120);

/// A TCP relay in front of the test bed's sshd that counts what it carries and can cut every connection.
struct Relay {
    port: u16,
    bytes: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    live: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    /// Local ports of the relay's connections to sshd (they identify sshd's per-connection processes).
    ports: Arc<Mutex<Vec<u16>>>,
}

impl Relay {
    async fn start() -> Relay {
        let sshd_port: u16 = testbed_url("SLUICE_TEST_SSH_PORT").parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let bytes = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let live: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let ports: Arc<Mutex<Vec<u16>>> = Arc::default();
        let (b, n, l, p) = (bytes.clone(), connections.clone(), live.clone(), ports.clone());
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { continue };
                n.fetch_add(1, Ordering::SeqCst);
                let b = b.clone();
                let p = p.clone();
                let task = tokio::spawn(async move {
                    let Ok(out) = TcpStream::connect(("127.0.0.1", sshd_port)).await else { return };
                    if let Ok(a) = out.local_addr() {
                        p.lock().unwrap().push(a.port());
                    }
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = out.into_split();
                    tokio::join!(pump(ri, wo, b.clone()), pump(ro, wi, b));
                });
                l.lock().unwrap().push(task.abort_handle());
            }
        });
        Relay { port, bytes, connections, live, ports }
    }

    /// Kills (SIGKILL) the sshd processes serving the relay's connections, as
    /// a crashing or restarted bastion would, leaving sshd's listener alone.
    fn kill_sshd_sessions(&self) -> usize {
        let master = std::fs::read_to_string(testbed_url("SLUICE_TEST_SSH_PID")).unwrap().trim().to_string();
        let sshd_port = testbed_url("SLUICE_TEST_SSH_PORT");
        let out = Command::new("ss").args(["-tnpH", "state", "established"]).output().expect("ss (iproute2)");
        let ports = self.ports.lock().unwrap().clone();
        let mut pids = std::collections::BTreeSet::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(peer)) = (fields.get(2), fields.get(3)) else { continue };
            let ours = local.ends_with(&format!(":{sshd_port}")) && ports.iter().any(|p| peer.ends_with(&format!(":{p}")));
            if !ours {
                continue;
            }
            for part in line.split("pid=").skip(1) {
                let pid: String = part.chars().take_while(|c| c.is_ascii_digit()).collect();
                if !pid.is_empty() && pid != master {
                    pids.insert(pid);
                }
            }
        }
        for pid in &pids {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
        pids.len()
    }

    /// Drops every connection the relay carries (both sockets closed at once).
    fn cut(&self) -> usize {
        let mut live = self.live.lock().unwrap();
        let n = live.iter().filter(|t| !t.is_finished()).count();
        for t in live.drain(..) {
            t.abort();
        }
        n
    }
}

/// Copies one direction of a relayed connection, counting the bytes as they pass.
async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, bytes: Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                bytes.fetch_add(n as u64, Ordering::SeqCst);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// `source.ssh` for the test bed's sshd reached at `port`.
fn ssh_settings(port: u16) -> serde_json::Value {
    let key = std::fs::read_to_string(testbed_url("SLUICE_TEST_SSH_KEY")).unwrap();
    json!({"host": "127.0.0.1", "port": port, "user": testbed_url("SLUICE_TEST_SSH_USER"),
           "private_key": key, "known_host_key": testbed_url("SLUICE_TEST_SSH_HOST_KEY")})
}

fn check(spec: &serde_json::Value, dir: &std::path::Path) -> (bool, String) {
    let path = dir.join(format!("check-{}.json", rand::random::<u32>()));
    std::fs::write(&path, spec.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["check", "--config"]).arg(&path).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Snapshot and CDC through the tunnel converge; the tunnel's SSH connection
/// is then cut twice while changes stream, and the pipe recovers by itself.
async fn tunnel_snapshot_cdc_and_dropped_session(flavor: Flavor) {
    let relay = Relay::start().await;
    let db = unique(&format!("ssh_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(61);
    load_orders(&mut c, &db, &mut rng, 1, 5_000).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");
    spec["source"]["ssh"] = ssh_settings(relay.port);

    let (ok, out) = check(&spec, dir.path());
    assert!(ok && out.contains("PASS ssh_tunnel") && out.contains("host key checked"), "sluice check through the tunnel:\n{out}");

    let mut run = SluiceRun::start(dir.path(), &spec);
    let mut next_id = 100_000;
    for _ in 0..200 {
        random_write(&mut c, &db, &mut rng, &mut next_id, 5_000).await;
    }
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
    assert!(relay.bytes.load(Ordering::SeqCst) > 0 || relay.connections.load(Ordering::SeqCst) > 0);
    let log = run.log();
    assert!(log.contains("SSH tunnel to") && log.contains("SSH session to"), "{log}");

    // Twice the network drops the SSH connection; then the bastion's sshd process serving it dies.
    for round in 0..3 {
        let before = relay.connections.load(Ordering::SeqCst);
        let cut = if round < 2 { relay.cut() } else { relay.kill_sshd_sessions() };
        assert!(cut > 0, "round {round}: the pipe holds no SSH connection to cut");
        for _ in 0..200 {
            random_write(&mut c, &db, &mut rng, &mut next_id, 5_000).await;
        }
        eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
        assert!(relay.connections.load(Ordering::SeqCst) > before, "round {round}: no new SSH session after the cut");
        assert!(run.is_running(), "sluice exited after the tunnel dropped:\n{}", run.log());
    }
    // Everything the pipe read went through the relay: it carried more than the copied rows' bytes.
    assert!(relay.bytes.load(Ordering::SeqCst) > 200_000, "relay carried only {} bytes", relay.bytes.load(Ordering::SeqCst));
    run.kill9();
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_ssh_tunnel_snapshot_cdc_and_dropped_session() {
    tunnel_snapshot_cdc_and_dropped_session(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_ssh_tunnel_snapshot_cdc_and_dropped_session() {
    tunnel_snapshot_cdc_and_dropped_session(Flavor::MariaDb).await;
}

/// Host keys are checked: an unknown or wrong key is refused with the key the
/// server offered; skipping the check must be asked for. TLS to MySQL still
/// verifies the server's certificate through the tunnel.
#[tokio::test(flavor = "multi_thread")]
async fn ssh_host_key_checks_and_tls_through_the_tunnel() {
    let sshd_port: u16 = testbed_url("SLUICE_TEST_SSH_PORT").parse().unwrap();
    let host_key = testbed_url("SLUICE_TEST_SSH_HOST_KEY");
    let dir = tempfile::tempdir().unwrap();
    for flavor in [Flavor::MySql, Flavor::MariaDb] {
        let db = unique(&format!("sshkey_{}", flavor.tag()));
        let mut c = mysql(flavor).await;
        create_schema(&mut c, &db).await;
        let base = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &format!("{db}_ch"), "snapshot_only");
        let with_ssh = |ssh: serde_json::Value| {
            let mut s = base.clone();
            s["source"]["ssh"] = ssh;
            s
        };

        // No known_host_key: refused, printing the offered key so that it can be pasted.
        let mut ssh = ssh_settings(sshd_port);
        ssh.as_object_mut().unwrap().remove("known_host_key");
        let (ok, out) = check(&with_ssh(ssh.clone()), dir.path());
        assert!(!ok && out.contains(&host_key) && out.contains("source.ssh.known_host_key"), "{flavor:?}: {out}");

        // A wrong key (the client's own public key): refused, naming both keys.
        let wrong = std::fs::read_to_string(format!("{}.pub", testbed_url("SLUICE_TEST_SSH_KEY"))).unwrap();
        let mut bad = ssh.clone();
        bad["known_host_key"] = wrong.trim().into();
        let (ok, out) = check(&with_ssh(bad.clone()), dir.path());
        assert!(!ok && out.contains(&host_key) && out.contains("is not source.ssh.known_host_key"), "{flavor:?}: {out}");

        // A pipe with the wrong key fails (a user must act) and copies nothing.
        let mut spec_bad = with_ssh(bad);
        spec_bad["name"] = format!("{db}_bad").into();
        let mut run = SluiceRun::start(&dir.path().join(format!("bad_{}", flavor.tag())), &spec_bad);
        assert!(!run.wait_exit(Duration::from_secs(60)), "a wrong host key was accepted:\n{}", run.log());
        assert!(run.log().contains(&host_key), "{}", run.log());

        // The check can be skipped explicitly.
        let mut skip = ssh.clone();
        skip["insecure_skip_host_key_check"] = true.into();
        let (ok, out) = check(&with_ssh(skip), dir.path());
        assert!(ok && out.contains("WARN ssh_tunnel") && out.contains("NOT checked"), "{flavor:?}: {out}");

        // A key the server does not authorize: refused, naming the setting.
        let mut other = ssh_settings(sshd_port);
        other["user"] = "nobody-here".into();
        let (ok, out) = check(&with_ssh(other), dir.path());
        assert!(!ok && out.contains("refused user nobody-here"), "{flavor:?}: {out}");

        // A source the SSH server cannot reach: said so, naming the target.
        let mut unreachable = with_ssh(ssh_settings(sshd_port));
        unreachable["source"]["port"] = 1.into();
        let (ok, out) = check(&unreachable, dir.path());
        assert!(!ok && out.contains("could not connect to 127.0.0.1:1"), "{flavor:?}: {out}");

        if flavor == Flavor::MySql {
            // verify_identity through the tunnel: the certificate is checked against the source's name.
            let ca = std::fs::read_to_string(testbed_url("SLUICE_TEST_MYSQL_CA")).unwrap();
            let mut tls = with_ssh(ssh_settings(sshd_port));
            tls["source"]["host"] = "localhost".into();
            tls["source"]["tls"] = json!({"mode": "verify_identity", "ca_cert": ca});
            let (ok, out) = check(&tls, dir.path());
            assert!(ok && out.contains("connection encrypted"), "{out}");
            let mut run = SluiceRun::start(&dir.path().join("tls"), &tls);
            assert!(run.wait_exit(Duration::from_secs(90)), "{}", run.log());
            compare(flavor, &db, &format!("{db}_ch")).await.unwrap();
            // A name the certificate does not carry is refused through the tunnel as without it.
            tls["source"]["tls"]["tls_host"] = "db.example.com".into();
            let (ok, out) = check(&tls, dir.path());
            assert!(!ok && out.contains("TLS to the source failed"), "{out}");
        }
    }
}

/// Password authentication (`source.ssh.password`, the test bed's `sluicetunnel`
/// user, whose key logins sshd refuses): `sluice check` passes through the
/// tunnel, a wrong password is refused naming the setting, and a pipe
/// snapshots and streams through the password-authenticated tunnel.
#[tokio::test(flavor = "multi_thread")]
async fn ssh_password_authentication_snapshot_and_cdc() {
    let flavor = Flavor::MySql;
    let sshd_port: u16 = testbed_url("SLUICE_TEST_SSH_PORT").parse().unwrap();
    let password = std::fs::read_to_string(testbed_url("SLUICE_TEST_SSH_PASSWORD_FILE")).unwrap().trim().to_string();
    let user = testbed_url("SLUICE_TEST_SSH_PASSWORD_USER");
    let ssh = |password: &str| {
        json!({"host": "127.0.0.1", "port": sshd_port, "user": user, "password": password,
               "known_host_key": testbed_url("SLUICE_TEST_SSH_HOST_KEY")})
    };
    let db = unique("sshpw");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(71);
    load_orders(&mut c, &db, &mut rng, 1, 2_000).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc");

    spec["source"]["ssh"] = ssh("not-the-password");
    let (ok, out) = check(&spec, dir.path());
    assert!(
        !ok && out.contains(&format!("refused user {user} with the given password")) && out.contains("source.ssh.password"),
        "a wrong password:\n{out}"
    );

    spec["source"]["ssh"] = ssh(&password);
    let (ok, out) = check(&spec, dir.path());
    assert!(ok && out.contains("PASS ssh_tunnel"), "sluice check with the password:\n{out}");
    assert!(!out.contains(&password), "the check printed the password:\n{out}");

    let mut run = SluiceRun::start(dir.path(), &spec);
    let mut next_id = 100_000;
    for _ in 0..200 {
        random_write(&mut c, &db, &mut rng, &mut next_id, 2_000).await;
    }
    eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
    let log = run.log();
    assert!(log.contains(&format!("as {user} opened")), "{log}");
    assert!(!log.contains(&password), "the log holds the password");
    run.kill9();
}

/// `sluice pipe set-source` moves a paused pipe behind an SSH tunnel and back:
/// CDC resumes from its checkpoint through the tunnel (the relay carries it),
/// then directly again after `--no-ssh`; the history records both changes.
#[tokio::test(flavor = "multi_thread")]
async fn set_source_adds_and_removes_the_tunnel_of_a_paused_pipe() {
    let flavor = Flavor::MariaDb;
    let relay = Relay::start().await;
    let db = unique("sshset");
    let ch_db = format!("{db}_ch");
    let mut c = mysql(flavor).await;
    create_schema(&mut c, &db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(67);
    load_orders(&mut c, &db, &mut rng, 1, 500).await;
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let (code, v) = srv
        .call(
            reqwest::Method::POST,
            "/v1/pipes",
            Some(spec(&db, flavor, json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc")),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    srv.wait_state(&db, "Running", CONVERGE).await;
    assert_eq!(relay.connections.load(Ordering::SeqCst), 0);
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["pipe"])
            .args(args)
            .args(["--server", &srv.base()])
            .env("SLUICE_API_TOKEN", &srv.token)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "sluice pipe {args:?}:\n{text}");
    };
    let port = relay.port.to_string();
    let key = testbed_url("SLUICE_TEST_SSH_KEY");
    let (user, host_key) = (testbed_url("SLUICE_TEST_SSH_USER"), testbed_url("SLUICE_TEST_SSH_HOST_KEY"));
    let mut next_id = 100_000;
    for (args, through_tunnel) in [
        (
            vec![
                "--ssh-host",
                "127.0.0.1",
                "--ssh-port",
                &port,
                "--ssh-user",
                &user,
                "--ssh-private-key-file",
                &key,
                "--ssh-known-host-key",
                &host_key,
            ],
            true,
        ),
        (vec!["--no-ssh"], false),
    ] {
        cli(&["pause", &db]);
        srv.wait_state(&db, "Paused", CONVERGE).await;
        for _ in 0..100 {
            random_write(&mut c, &db, &mut rng, &mut next_id, 500).await;
        }
        let mut set = vec!["set-source", db.as_str()];
        set.extend(args.iter().copied());
        cli(&set);
        let before = relay.connections.load(Ordering::SeqCst);
        cli(&["resume", &db]);
        eventually(CONVERGE, || compare(flavor, &db, &ch_db)).await;
        srv.wait_state(&db, "Running", CONVERGE).await;
        // A new SSH session through the relay exactly when the pipe was moved behind the tunnel.
        let sessions = relay.connections.load(Ordering::SeqCst) - before;
        assert_eq!(sessions > 0, through_tunnel, "{sessions} new SSH sessions after set-source {args:?}\n{}", srv.log());
    }
    let (_, ev) = srv.call(reqwest::Method::GET, &format!("/v1/pipes/{db}/events"), None).await;
    let ev = ev.to_string();
    assert!(ev.contains("SSH tunnel none → ") && ev.contains("→ none (direct connection)"), "{ev}");
}
