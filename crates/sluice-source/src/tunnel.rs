//! SSH tunnels to the source (`source.ssh`): a local forwarder per tunnel
//! that turns every TCP connection made to it into a `direct-tcpip` channel
//! to the source's `host:port`, opened through one SSH session.
//!
//! `conn::connect` asks `endpoint` where to connect: without `source.ssh`
//! that is the source itself; with it, `127.0.0.1:<port>` of the tunnel's
//! listener (bound on first use, kept for the life of the process and shared
//! by every connection with the same settings — queries, snapshot readers,
//! the binlog stream, heartbeats). `endpoint` also makes sure the SSH session
//! is up, so that a refused host key or failed authentication is reported
//! with its own clear message rather than as a broken MySQL handshake.
//!
//! The session is opened again whenever it is found closed (the server or the
//! network dropped it; keepalives notice a silent drop): connections riding a
//! dropped session break with an I/O error, which is transient, and their
//! retries open a new session.
//!
//! A session that has carried no connection for `IDLE_CLOSE` is closed (a
//! deleted pipe, or one that moved to another source, leaves no SSH session
//! behind); the next connection opens a new one.
//!
//! Host keys are checked by default: the server's key must equal
//! `known_host_key`; without one, the connection is refused with an error that
//! prints the key the server offered, unless `insecure_skip_host_key_check`.

use crate::conn::SourceError;
use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use sluice_core::spec::{host_key_parts, SourceSpec, SshSpec};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a session may carry no connection before it is closed.
const IDLE_CLOSE: Duration = Duration::from_secs(300);
use tokio::net::{TcpListener, TcpStream};

/// Where a source connection goes: the source itself, or a tunnel's local end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// Whether the connection goes through an SSH tunnel (TLS must then name the source, not `host`).
    pub tunneled: bool,
}

/// Where to connect for `spec`, opening the tunnel's SSH session first when
/// `source.ssh` is set (see the module doc). Errors: `Config` (fatal) for a
/// host key that is unknown or does not match, a key that cannot be read, or
/// refused authentication; `Tunnel` (transient) when the SSH server cannot be
/// reached or the session breaks.
pub async fn endpoint(spec: &SourceSpec) -> Result<Endpoint, SourceError> {
    let Some(ssh) = &spec.ssh else {
        return Ok(Endpoint { host: spec.host.clone(), port: spec.port, tunneled: false });
    };
    let tunnel = tunnel_for(ssh, &spec.host, spec.port).await?;
    tunnel.touch();
    tunnel.session().await?;
    Ok(Endpoint { host: "127.0.0.1".into(), port: tunnel.local.port(), tunneled: true })
}

/// Why the tunnel of `spec` could not carry a connection just now (its SSH
/// server refused or failed to open the channel to the source within the last
/// 30 s), for `connect` to report instead of the broken MySQL handshake it
/// sees: `Config` when the SSH server forbids forwarding, `Tunnel` otherwise.
pub fn explain(spec: &SourceSpec) -> Option<SourceError> {
    let ssh = spec.ssh.as_ref()?;
    let tunnel = tunnels().lock().expect("tunnel registry").get(&tunnel_key(ssh, &spec.host, spec.port))?.clone();
    let last = tunnel.channel_error.lock().expect("channel error").clone()?;
    (last.at.elapsed() < Duration::from_secs(30)).then(|| {
        if last.fatal {
            SourceError::Config(last.message)
        } else {
            SourceError::Tunnel(last.message)
        }
    })
}

/// The last channel the SSH server would not open.
#[derive(Clone)]
struct ChannelError {
    at: Instant,
    fatal: bool,
    message: String,
}

/// Every tunnel of the process, by its settings (secrets hashed, never kept as the key).
fn tunnels() -> &'static Mutex<HashMap<u64, Arc<Tunnel>>> {
    static TUNNELS: OnceLock<Mutex<HashMap<u64, Arc<Tunnel>>>> = OnceLock::new();
    TUNNELS.get_or_init(Default::default)
}

fn tunnel_key(ssh: &SshSpec, host: &str, port: u16) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&ssh.host, ssh.port, &ssh.user, &ssh.private_key.0, &ssh.password.0, &ssh.known_host_key, ssh.insecure_skip_host_key_check)
        .hash(&mut h);
    (host, port).hash(&mut h);
    h.finish()
}

async fn tunnel_for(ssh: &SshSpec, host: &str, port: u16) -> Result<Arc<Tunnel>, SourceError> {
    let key = tunnel_key(ssh, host, port);
    if let Some(t) = tunnels().lock().expect("tunnel registry").get(&key) {
        return Ok(t.clone());
    }
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| SourceError::Tunnel(format!("cannot listen on 127.0.0.1 for the SSH tunnel's local end: {e}")))?;
    let local = listener.local_addr().map_err(|e| SourceError::Tunnel(format!("the tunnel's local end: {e}")))?;
    let tunnel = {
        let mut all = tunnels().lock().expect("tunnel registry");
        if let Some(t) = all.get(&key) {
            // Another task made it meanwhile; ours (the listener) is dropped.
            return Ok(t.clone());
        }
        let t = Arc::new(Tunnel {
            ssh: ssh.clone(),
            target_host: host.to_string(),
            target_port: port,
            local,
            session: tokio::sync::Mutex::new(None),
            active: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
            channel_error: Mutex::new(None),
        });
        all.insert(key, t.clone());
        t
    };
    tracing::info!(
        "SSH tunnel to {}:{} through {}@{}:{} listens on {local}",
        tunnel.target_host,
        tunnel.target_port,
        ssh.user,
        ssh.host,
        ssh.port
    );
    tokio::spawn(tunnel.clone().accept_loop(listener));
    tokio::spawn(tunnel.clone().close_when_idle());
    Ok(tunnel)
}

/// One tunnel: its settings, its local end and its current SSH session.
struct Tunnel {
    ssh: SshSpec,
    target_host: String,
    target_port: u16,
    local: SocketAddr,
    /// The live session, if any; replaced when found closed.
    session: tokio::sync::Mutex<Option<Arc<client::Handle<HostKeyCheck>>>>,
    /// Connections being forwarded now.
    active: AtomicUsize,
    /// When a connection last started or ended.
    last_used: Mutex<Instant>,
    /// The last channel the SSH server would not open (see `explain`).
    channel_error: Mutex<Option<ChannelError>>,
}

impl Tunnel {
    /// The live SSH session, opened (again) when there is none or it was closed.
    async fn session(&self) -> Result<Arc<client::Handle<HostKeyCheck>>, SourceError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(s.clone());
        }
        if slot.take().is_some() {
            tracing::warn!("SSH session to {}:{} was closed; opening a new one", self.ssh.host, self.ssh.port);
        }
        let s = Arc::new(open_session(&self.ssh).await?);
        *slot = Some(s.clone());
        Ok(s)
    }

    /// Forgets `dead` if it is still the current session.
    async fn forget(&self, dead: &Arc<client::Handle<HostKeyCheck>>) {
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, dead)) {
            *slot = None;
        }
    }

    fn touch(&self) {
        *self.last_used.lock().expect("tunnel clock") = Instant::now();
    }

    /// Closes the session once no connection has used it for `IDLE_CLOSE`.
    async fn close_when_idle(self: Arc<Self>) {
        loop {
            tokio::time::sleep(IDLE_CLOSE / 10).await;
            // Checked under the session's lock: a connection counts itself active before it asks for the session.
            let mut slot = self.session.lock().await;
            let idle = self.last_used.lock().expect("tunnel clock").elapsed();
            if self.active.load(Ordering::SeqCst) > 0 || idle < IDLE_CLOSE {
                continue;
            }
            let closing = slot.take();
            drop(slot);
            if let Some(s) = closing {
                tracing::info!("closing the idle SSH session to {}:{}", self.ssh.host, self.ssh.port);
                let _ = s.disconnect(russh::Disconnect::ByApplication, "idle", "en").await;
            }
        }
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((tcp, peer)) => {
                    let t = self.clone();
                    tokio::spawn(async move { t.forward(tcp, peer).await });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, then accept again.
                    tracing::warn!("SSH tunnel's local end {}: accept failed: {e}", self.local);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Carries one local connection through a `direct-tcpip` channel; on any
    /// failure the local connection is closed (its user sees an I/O error).
    async fn forward(&self, tcp: TcpStream, peer: SocketAddr) {
        self.active.fetch_add(1, Ordering::SeqCst);
        self.touch();
        self.forward_counted(tcp, peer).await;
        self.touch();
        self.active.fetch_sub(1, Ordering::SeqCst);
    }

    async fn forward_counted(&self, mut tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let mut tried_fresh = false;
        let channel = loop {
            let session = match self.session().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("SSH tunnel to {}:{}: {e}", self.target_host, self.target_port);
                    return;
                }
            };
            match session
                .channel_open_direct_tcpip(self.target_host.clone(), self.target_port as u32, peer.ip().to_string(), peer.port() as u32)
                .await
            {
                Ok(c) => break c,
                Err(russh::Error::ChannelOpenFailure(why)) => {
                    // The session is fine; the SSH server would not (or could not) reach the source.
                    let (ssh_at, target) =
                        (format!("{}:{}", self.ssh.host, self.ssh.port), format!("{}:{}", self.target_host, self.target_port));
                    let (fatal, message) = match why {
                        russh::ChannelOpenFailure::AdministrativelyProhibited => (
                            true,
                            format!(
                                "the SSH server {ssh_at} refuses to forward connections to {target} (administratively prohibited): \
                                 allow TCP forwarding for user {} on it (sshd_config: AllowTcpForwarding yes, PermitOpen)",
                                self.ssh.user
                            ),
                        ),
                        russh::ChannelOpenFailure::ConnectFailed => (
                            false,
                            format!(
                                "the SSH server {ssh_at} could not connect to {target}: is the source running, and reachable from the \
                                 SSH server under that name (source.host is resolved there)?"
                            ),
                        ),
                        other => (false, format!("the SSH server {ssh_at} would not open a channel to {target}: {other:?}")),
                    };
                    tracing::warn!("{message}");
                    *self.channel_error.lock().expect("channel error") = Some(ChannelError { at: Instant::now(), fatal, message });
                    return;
                }
                Err(e) => {
                    tracing::warn!(
                        "SSH server {}:{} could not open a channel to {}:{}: {e}",
                        self.ssh.host,
                        self.ssh.port,
                        self.target_host,
                        self.target_port
                    );
                    // A session that cannot open channels any more is replaced once.
                    self.forget(&session).await;
                    if tried_fresh {
                        return;
                    }
                    tried_fresh = true;
                }
            }
        };
        *self.channel_error.lock().expect("channel error") = None;
        let mut stream = channel.into_stream();
        if let Err(e) = tokio::io::copy_bidirectional(&mut tcp, &mut stream).await {
            tracing::debug!("SSH tunnel connection from {peer} ended: {e}");
        }
    }
}

/// The client side of one session: checks the server's host key and remembers the key it offered.
struct HostKeyCheck {
    expected: Option<PublicKey>,
    skip: bool,
    offered: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let offered = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(c) => PublicKey::from(c.public_key().clone()),
        };
        *self.offered.lock().expect("offered key") = Some(offered.to_openssh().unwrap_or_default());
        Ok(self.skip || self.expected.as_ref().is_some_and(|e| e.key_data() == offered.key_data()))
    }
}

/// Connects, checks the host key and authenticates (see `endpoint` for the errors).
async fn open_session(ssh: &SshSpec) -> Result<client::Handle<HostKeyCheck>, SourceError> {
    let at = format!("{}:{}", ssh.host, ssh.port);
    let expected = match &ssh.known_host_key {
        Some(line) => {
            let (kind, body) =
                host_key_parts(line).ok_or_else(|| SourceError::Config("source.ssh.known_host_key is not a host key line".into()))?;
            Some(PublicKey::from_openssh(&format!("{kind} {body}")).map_err(|e| {
                SourceError::Config(format!(
                    "source.ssh.known_host_key cannot be read ({e}); paste the line ssh-keyscan -p {} {} prints",
                    ssh.port, ssh.host
                ))
            })?)
        }
        None => None,
    };
    let offered = Arc::new(Mutex::new(None));
    let handler = HostKeyCheck { expected: expected.clone(), skip: ssh.insecure_skip_host_key_check, offered: offered.clone() };
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    });
    let connected = tokio::time::timeout(Duration::from_secs(30), client::connect(config, (ssh.host.as_str(), ssh.port), handler)).await;
    let mut handle = match connected {
        Err(_) => return Err(SourceError::Tunnel(format!("the SSH server {at} did not answer within 30 s"))),
        Ok(Ok(h)) => h,
        Ok(Err(russh::Error::UnknownKey)) => {
            let got = offered.lock().expect("offered key").clone().unwrap_or_else(|| "(none)".into());
            return Err(SourceError::Config(match &ssh.known_host_key {
                None => format!(
                    "the SSH server {at} offered the host key {got}; if that is your server's key (compare with ssh-keyscan -p {} {} \
                     run next to it), set source.ssh.known_host_key to it (or, insecurely, source.ssh.insecure_skip_host_key_check: true)",
                    ssh.port, ssh.host
                ),
                Some(k) => format!(
                    "the SSH server {at} offered the host key {got}, which is not source.ssh.known_host_key ({}); the connection was \
                     refused (a man in the middle, or the server's key changed: then set known_host_key to the new key)",
                    k.trim()
                ),
            }));
        }
        Ok(Err(e)) => return Err(SourceError::Tunnel(format!("cannot connect to the SSH server {at}: {e}"))),
    };
    let auth = if !ssh.private_key.is_empty() {
        let key = russh::keys::decode_secret_key(&ssh.private_key.0, None).map_err(|e| {
            SourceError::Config(format!("source.ssh.private_key cannot be read ({e}); give an unencrypted PEM or OpenSSH private key"))
        })?;
        let hash = handle.best_supported_rsa_hash().await.map_err(|e| tunnel_err(&at, e))?.flatten();
        handle.authenticate_publickey(&ssh.user, PrivateKeyWithHashAlg::new(Arc::new(key), hash)).await
    } else {
        handle.authenticate_password(&ssh.user, &ssh.password.0).await
    };
    let auth = auth.map_err(|e| tunnel_err(&at, e))?;
    if !auth.success() {
        let (how, setting, hint) = if ssh.private_key.is_empty() {
            ("password", "password", "check the password, and that the server allows password authentication for this user")
        } else {
            ("private key", "private_key", "check that the key is in the user's authorized_keys")
        };
        return Err(SourceError::Config(format!(
            "the SSH server {at} refused user {} with the given {how} (source.ssh.user / source.ssh.{setting}); {hint}",
            ssh.user
        )));
    }
    tracing::info!("SSH session to {at} as {} opened", ssh.user);
    Ok(handle)
}

fn tunnel_err(at: &str, e: russh::Error) -> SourceError {
    SourceError::Tunnel(format!("SSH session to {at}: {e}"))
}
