//! The ClickHouse sink facing a server that stops answering or a proxy that
//! answers for it: every request ends with a classified error instead of
//! hanging, and the sink works again once the server does.
//!
//! Tested at the sink level (`ClickHouseSink` against the test bed's ClickHouse
//! through a TCP proxy, or against a tiny fake HTTP server), so that each
//! outcome is the sink's own. No latency is asserted: "returned an error instead
//! of hanging" is checked with a generous outer timeout.

mod common;
use common::*;
use sluice_core::schema::{SourceColumn, SourceTable, TableId};
use sluice_core::spec::DestinationSpec;
use sluice_core::types::{TableMapping, TableOptions};
use sluice_core::{Cell, ChangeOp, RowChange, Severity};
use sluice_sink::{ClickHouseSink, SinkError};
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longer than any request of these tests may take before it must have failed.
const HANG: Duration = Duration::from_secs(60);

/// A TCP forwarder to ClickHouse that can stall: connections stay open, no
/// byte moves in either direction, nothing is reset — a hung server, or a
/// network that black-holes the traffic.
struct StallingProxy {
    port: u16,
    stalled: Arc<AtomicBool>,
    /// Connections whose client side is still open.
    open: Arc<Mutex<HashSet<u64>>>,
}

impl StallingProxy {
    async fn start(target: std::net::SocketAddr) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stalled = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(HashSet::new()));
        let next_id = Arc::new(AtomicU64::new(0));
        let (s, o) = (stalled.clone(), open.clone());
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                let Ok(outbound) = TcpStream::connect(target).await else {
                    continue;
                };
                let id = next_id.fetch_add(1, Ordering::SeqCst);
                o.lock().unwrap().insert(id);
                let (in_r, in_w) = inbound.into_split();
                let (out_r, out_w) = outbound.into_split();
                let (s1, s2, o1) = (s.clone(), s.clone(), o.clone());
                tokio::spawn(async move {
                    pump(in_r, out_w, s1).await;
                    o1.lock().unwrap().remove(&id); // the client closed its side
                });
                tokio::spawn(pump(out_r, in_w, s2));
            }
        });
        StallingProxy { port, stalled, open }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }

    fn open_connections(&self) -> HashSet<u64> {
        self.open.lock().unwrap().clone()
    }
}

/// Copies `from` to `to` until `from` ends, moving nothing while `stalled`
/// (bytes read just as the stall began are held until it ends).
async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, stalled: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

fn destination(url: String, database: &str, request_timeout_ms: u64) -> DestinationSpec {
    DestinationSpec { request_timeout_ms, ..DestinationSpec::new(url, database) }
}

/// A two-column table: `id bigint` (the key) and `s longtext`.
fn mapping() -> TableMapping {
    let col = |name: &str, ty: &str, ordinal: u32| SourceColumn { ordinal, ..SourceColumn::new(name, ty, ty, false) };
    let t = SourceTable {
        id: TableId::new("s", "t"),
        columns: vec![col("id", "bigint", 1), col("s", "longtext", 2)],
        primary_key: vec!["id".into()],
        charset: None,
    };
    TableMapping::with_options(t, "t".into(), TableOptions::default())
}

/// Rows `ids` whose text is `text_len` random bytes (LZ4 cannot shrink them).
fn rows(ids: std::ops::Range<i64>, text_len: usize) -> Vec<RowChange> {
    ids.map(|id| {
        let mut text = vec![0u8; text_len];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut text);
        RowChange { op: ChangeOp::Upsert, version: id, cells: vec![Cell::Int(id), Cell::Bytes(text)] }
    })
    .collect()
}

/// Runs `step`, which must fail (not hang) with a transient timeout naming the setting.
async fn must_time_out<T: std::fmt::Debug>(what: &str, step: impl Future<Output = Result<T, SinkError>>) {
    let result = tokio::time::timeout(HANG, step).await.unwrap_or_else(|_| panic!("{what} hung through a stalled connection"));
    let e = result.expect_err(&format!("{what} succeeded through a stalled connection"));
    assert!(matches!(e, SinkError::Timeout { .. }), "{what}: {e:?}");
    assert_eq!(e.severity(), Severity::Transient, "{what}: {e}");
    assert!(e.is_transient());
    assert!(e.to_string().contains("ClickHouse did not answer within 2 s (destination.request_timeout_ms)"), "{what}: {e}");
}

async fn count(sink: &ClickHouseSink, sql_where: &str) -> u64 {
    let sql = format!("SELECT count() FROM {} WHERE {sql_where}", sink.qualified("t"));
    tokio::time::timeout(HANG, sink.query_tsv(&sql)).await.expect("query hung").unwrap().trim().parse().unwrap()
}

/// A ClickHouse that stops answering (a proxy holding the bytes, no reset): a
/// query, a DDL statement, a small insert (waiting for the acknowledgement) and
/// an insert larger than the socket buffers (waiting to send its body) each fail
/// with the transient timeout error; the connections they used are closed, not
/// pooled; once the proxy forwards again, the next requests succeed.
#[tokio::test(flavor = "multi_thread")]
async fn stalled_clickhouse_fails_each_request_with_a_transient_timeout() {
    let ch: url::Url = testbed().clickhouse_url.parse().unwrap();
    let proxy = StallingProxy::start(format!("127.0.0.1:{}", ch.port().unwrap()).parse().unwrap()).await;
    let db = unique("sink_stall");
    let sink = ClickHouseSink::new(&destination(proxy.url(), &db, 2000));
    let m = mapping();
    sink.ensure_database().await.unwrap();
    sink.create_table(&m).await.unwrap();
    sink.write(&m, &rows(0..10, 8)).await.unwrap();
    assert_eq!(count(&sink, "1").await, 10);

    proxy.stall();
    must_time_out("a query", sink.query_tsv("SELECT count() FROM system.one")).await;
    must_time_out("a statement", sink.execute(&format!("CREATE TABLE IF NOT EXISTS {} (x UInt8) ENGINE = Null", sink.qualified("other"))))
        .await;
    must_time_out("a small insert", sink.write(&m, &rows(10..20, 8))).await;
    // 64 MiB of random bytes (compressed, still 64 MiB): more than the client's and the
    // proxy's socket buffers hold, so sending a chunk of the body blocks.
    must_time_out("a large insert", sink.write(&m, &rows(20..8212, 8192))).await;
    let used_in_stall = proxy.open_connections();
    assert!(!used_in_stall.is_empty());

    proxy.resume();
    // The next requests succeed (on new connections).
    tokio::time::timeout(HANG, sink.ping()).await.expect("ping hung").unwrap();
    tokio::time::timeout(HANG, sink.write(&m, &rows(100_000..100_010, 8))).await.expect("insert hung").unwrap();
    assert_eq!(count(&sink, "id >= 100000").await, 10);
    // The stalled connections were closed by the client, not kept for reuse.
    eventually(HANG, || {
        let left: Vec<u64> = proxy.open_connections().intersection(&used_in_stall).copied().collect();
        async move {
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("connections {left:?} from the stall are still open"))
            }
        }
    })
    .await;
    sink.execute(&format!("DROP DATABASE IF EXISTS `{db}`")).await.unwrap();
}

/// Serves every connection one fixed HTTP answer (after reading the request
/// head), then reads until the client closes, so the client sees the answer
/// rather than a reset.
async fn fake_http(status: &'static str, content_type: &'static str, body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 {status}\r\nServer: nginx/1.27.0\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                if conn.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                let _ = conn.shutdown().await;
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    port
}

const NGINX_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.27.0</center>\r\n</body>\r\n</html>\r\n";
const NGINX_401: &str = "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>nginx/1.27.0</center>\r\n</body>\r\n</html>\r\n";

/// A proxy in front of ClickHouse answering 502 Bad Gateway with its HTML page
/// (no ClickHouse `Code:`): the error is transient (retried), not a permanent
/// server error, and says what answered. An empty 503 likewise; a 401 from the
/// proxy is fatal and points at the credentials.
#[tokio::test(flavor = "multi_thread")]
async fn proxy_error_pages_are_classified_by_status() {
    let cases = [
        ("502 Bad Gateway", "text/html", NGINX_502, Some(502), Severity::Transient),
        ("503 Service Unavailable", "text/plain", "", Some(503), Severity::Transient),
        ("401 Unauthorized", "text/html", NGINX_401, Some(401), Severity::Fatal),
    ];
    for (status, content_type, body, code, severity) in cases {
        let port = fake_http(status, content_type, body).await;
        let sink = ClickHouseSink::new(&destination(format!("http://127.0.0.1:{port}"), "db", 2000));
        let e = tokio::time::timeout(HANG, sink.ping()).await.expect("ping hung").expect_err("a proxy error page was taken for an answer");
        assert!(matches!(&e, SinkError::Http { status: s, .. } if *s == code), "{status}: {e:?}");
        assert_eq!(e.severity(), severity, "{status}: {e}");
        assert!(e.to_string().contains(&format!("HTTP {}", code.unwrap())), "{e}");
        if severity == Severity::Fatal {
            assert!(e.to_string().contains("destination.password"), "{e}");
        }
        let e = tokio::time::timeout(HANG, sink.write(&mapping(), &rows(0..10, 8))).await.expect("insert hung").expect_err("insert");
        assert_eq!(e.severity(), severity, "insert, {status}: {e:?}");
    }
}
