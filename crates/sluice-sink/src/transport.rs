//! The HTTP client under the `clickhouse` crate, built here instead of the
//! crate's default so that connecting has a timeout (the default has none: a
//! black-holed address waits for the OS, minutes).
//!
//! Otherwise it is the crate's default: HTTP/1.1, `http://` and `https://`
//! (rustls with the WebPKI roots), TCP keepalive 60 s, idle pooled connections
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

/// A `clickhouse::Client` over an HTTP client whose TCP connect gives up after `connect_timeout`.
pub fn client(connect_timeout: Duration) -> clickhouse::Client {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.set_keepalive(Some(TCP_KEEPALIVE));
    http.set_connect_timeout(Some(connect_timeout));
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .expect("the ring provider supports the default TLS versions")
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let hyper =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).pool_idle_timeout(POOL_IDLE_TIMEOUT).build(https);
    clickhouse::Client::with_http_client(hyper)
}
