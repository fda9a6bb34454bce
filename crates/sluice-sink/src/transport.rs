//! The HTTP client under the `clickhouse` crate, built here instead of the
//! crate's default so that connecting has a timeout (the default has none: a
//! black-holed address waits for the OS, minutes).
//!
//! Otherwise it is the crate's default: HTTP/1.1, `http://` and `https://`
//! (rustls with the WebPKI roots, or the CA bundle `destination.ca_cert`), TCP keepalive 60 s, idle pooled connections
//! closed after 2 s (ClickHouse closes them after 3 s or more).
//!
//! Pooling and timeouts: hyper returns a connection to its pool only once a
//! response has been read to its end. A request abandoned on timeout (its
//! future dropped, or the insert's task aborted by the crate) closes its
//! connection, so no half-read connection is ever reused.

use std::time::Duration;

const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound of the connect timeout; the request timeout is used when smaller.
pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A `clickhouse::Client` over an HTTP client whose TCP connect gives up after
/// `connect_timeout`; `https://` servers are verified against `ca_cert` (PEM,
/// one or more certificates: `destination.ca_cert`) when given, else the
/// WebPKI roots. Fails when `ca_cert` holds no readable certificate.
pub fn client(connect_timeout: Duration, ca_cert: Option<&str>) -> Result<clickhouse::Client, String> {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.set_keepalive(Some(TCP_KEEPALIVE));
    http.set_connect_timeout(Some(connect_timeout));
    http.enforce_http(false);
    let provider = rustls::crypto::ring::default_provider();
    let builder = match ca_cert {
        None => hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .expect("the ring provider supports the default TLS versions"),
        Some(pem) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(ca_config(provider, pem)?),
    };
    let https = builder.https_or_http().enable_http1().wrap_connector(http);
    let hyper =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).pool_idle_timeout(POOL_IDLE_TIMEOUT).build(https);
    Ok(clickhouse::Client::with_http_client(hyper))
}

/// A TLS client configuration trusting the certificates of `pem` only.
fn ca_config(provider: rustls::crypto::CryptoProvider, pem: &str) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("destination.ca_cert is not readable PEM: {e}"))?;
        roots.add(cert).map_err(|e| format!("destination.ca_cert holds a certificate rustls refuses: {e}"))?;
    }
    if roots.is_empty() {
        return Err("destination.ca_cert holds no certificate".into());
    }
    Ok(rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
