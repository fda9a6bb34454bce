//! The sink's errors, and how far each one reaches ([`Severity`]), decided here
//! where the error is raised rather than by the engine guessing from its text.
//!
//! # Classification
//!
//! | error | severity |
//! |---|---|
//! | [`SinkError::Timeout`], [`SinkError::Transport`] (connection refused, reset, DNS, TLS handshake broken off) | transient |
//! | [`SinkError::Server`] with a code of [`TRANSIENT_CODES`] | transient |
//! | [`SinkError::Server`] with a code of [`TABLE_CODES`] | table |
//! | [`SinkError::Server`] with any other code (authentication, grants, unknown database, read-only user, syntax...) | fatal |
//! | [`SinkError::Http`] 408, 429 or 5xx, or an answer whose status cannot be read | transient |
//! | [`SinkError::Http`] 401 / 403 (credentials or grants, at a proxy) and other 4xx (404: not ClickHouse's HTTP interface) | fatal |
//! | [`SinkError::Encode`] (a value the destination column cannot hold) | table |
//! | [`SinkError::Cluster`] (an `ON CLUSTER` statement some hosts did not finish) | transient |
//! | [`SinkError::Topology`] (a table's sharding key does not fit) | table |
//! | [`SinkError::Config`] (an unknown `destination.cluster`, an unreadable CA) | fatal |
//! | [`SinkError::Client`] (a request the client library refused to build) | fatal |
//!
//! An HTTP error without a ClickHouse `Code:` does not come from ClickHouse
//! (ClickHouse always names its exception): it is a proxy or load balancer in
//! front of it. The `clickhouse` crate keeps only the body of such an answer
//! (`BadResponse`), or `"<status> <reason>"` when the body is empty, so the
//! status is read back from that text (`502 Bad Gateway` in an HTML title, say).
//! A body that names no status (Envoy's `no healthy upstream`...) counts as
//! transient: retrying is the safe side, and a retry that lasts is reported.

use crate::rowbinary::EncodeError;
use sluice_core::Severity;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The server answered with a ClickHouse exception (`Code: N. DB::Exception: ...`).
    #[error("ClickHouse error {code}: {message}{}", code_hint(*.code))]
    Server { code: u32, message: String },
    /// Something answered the HTTP request with an error that is not a ClickHouse
    /// exception (no `Code:`): a proxy or load balancer in front of ClickHouse, or
    /// a URL that is not ClickHouse's HTTP interface. `status` is `None` when the
    /// answer does not say it.
    #[error("{}", http_text(*.status, .message))]
    Http { status: Option<u16>, message: String },
    /// ClickHouse did not finish one step of a request (a query, a chunk of an
    /// insert's body, an insert's acknowledgement) within
    /// `destination.request_timeout_ms`; the connection was closed.
    #[error("ClickHouse did not answer within {} s (destination.request_timeout_ms) during {operation}", secs(*.timeout_ms))]
    Timeout { timeout_ms: u64, operation: String },
    /// The server could not be reached or the exchange broke off.
    #[error("ClickHouse unreachable: {0}")]
    Transport(String),
    /// The `clickhouse` client refused to build the request (an invalid URL, an
    /// unsupported option): retrying cannot help.
    #[error("ClickHouse request refused by the client: {0}")]
    Client(String),
    #[error("cannot encode a row for {table}.{column}: {source}")]
    Encode { table: String, column: String, source: EncodeError },
    /// An `ON CLUSTER` statement that not every host of the cluster finished
    /// (a host reported an error, or `distributed_ddl_task_timeout` passed
    /// with hosts still working): the statement is idempotent and retried.
    #[error("ON CLUSTER statement not finished on every host ({operation}): {detail}")]
    Cluster { operation: String, detail: String },
    /// A table the destination's topology cannot hold as configured (a
    /// sharding key that is missing or not a function of the key columns).
    #[error("table {table}: {message}")]
    Topology { table: String, message: String },
    /// The destination's configuration does not match the server (a
    /// `destination.cluster` the server does not know, a CA that cannot be read).
    #[error("destination configuration: {0}")]
    Config(String),
}

/// ClickHouse error codes worth retrying unchanged: the network, timeouts, a
/// server overloaded, restarting or shutting down, Keeper/replication hiccups,
/// merges that have not caught up (too many parts), an insert whose outcome is
/// unknown (repeating it is safe: versions make writes idempotent), and a disk
/// that is full until someone frees space.
///
/// | code | name |
/// |---|---|
/// | 95, 96 | CANNOT_READ_FROM_SOCKET, CANNOT_WRITE_TO_SOCKET |
/// | 159, 160 | TIMEOUT_EXCEEDED, TOO_SLOW |
/// | 173 | CANNOT_ALLOCATE_MEMORY |
/// | 198 | DNS_ERROR |
/// | 201 | QUOTA_EXCEEDED (for the current interval) |
/// | 202, 203 | TOO_MANY_SIMULTANEOUS_QUERIES, NO_FREE_CONNECTION |
/// | 209, 210 | SOCKET_TIMEOUT, NETWORK_ERROR |
/// | 218 | TABLE_IS_DROPPED (the table is shutting down with the server) |
/// | 225 | NO_ZOOKEEPER |
/// | 236 | ABORTED |
/// | 241 | MEMORY_LIMIT_EXCEEDED |
/// | 242 | TABLE_IS_READ_ONLY (a replica lost Keeper) |
/// | 243 | NOT_ENOUGH_SPACE |
/// | 244 | UNEXPECTED_ZOOKEEPER_ERROR |
/// | 252 | TOO_MANY_PARTS |
/// | 254, 265 | NO_ACTIVE_REPLICAS, NO_AVAILABLE_REPLICA |
/// | 279 | ALL_CONNECTION_TRIES_FAILED |
/// | 285, 286, 289 | TOO_FEW_LIVE_REPLICAS, UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE, REPLICA_IS_NOT_IN_QUORUM |
/// | 319 | UNKNOWN_STATUS_OF_INSERT |
/// | 364 | RECEIVED_ERROR_TOO_MANY_REQUESTS |
/// | 369 | ALL_REPLICAS_ARE_STALE |
/// | 373 | SESSION_IS_LOCKED |
/// | 384 | PART_IS_TEMPORARILY_LOCKED |
/// | 394 | QUERY_WAS_CANCELLED |
/// | 415, 416 | ALL_REPLICAS_LOST, REPLICA_STATUS_CHANGED |
/// | 425 | SYSTEM_ERROR |
/// | 439 | CANNOT_SCHEDULE_TASK |
/// | 473 | DEADLOCK_AVOIDED |
/// | 517 | CANNOT_ASSIGN_ALTER |
/// | 574 | DISTRIBUTED_TOO_MANY_PENDING_BYTES |
/// | 650 | SERIALIZATION_ERROR |
/// | 659 | UNKNOWN_STATUS_OF_TRANSACTION |
/// | 677 | THREAD_WAS_CANCELED |
/// | 692 | TOO_MANY_MUTATIONS |
/// | 700 | USER_SESSION_LIMIT_EXCEEDED |
/// | 733 | TABLE_IS_BEING_RESTARTED |
/// | 735 | QUERY_WAS_CANCELLED_BY_CLIENT |
/// | 738 | PART_IS_LOCKED |
/// | 745 | SERVER_OVERLOADED |
/// | 749, 762 | TCP_CONNECTION_LIMIT_REACHED, HTTP_CONNECTION_LIMIT_REACHED |
/// | 777, 778 | MEMORY_RESERVATION_KILLED, MEMORY_RESERVATION_FAILED |
/// | 999 | KEEPER_EXCEPTION |
/// | 1000 | POCO_EXCEPTION (network errors inside the server) |
/// | 1017 | ASYNC_INSERT_FLUSH_TIMEOUT |
/// | 1019, 1020 | QUERY_SLOT_ACQUISITION_TIMEOUT, MEMORY_RESERVATION_ACQUISITION_TIMEOUT |
///
/// Numbers checked against `errorCodeToName()` of ClickHouse 26.9.
pub const TRANSIENT_CODES: &[u32] = &[
    95, 96, 159, 160, 173, 198, 201, 202, 203, 209, 210, 218, 225, 236, 241, 242, 243, 244, 252, 254, 265, 279, 285, 286, 289, 319, 364,
    369, 373, 384, 394, 415, 416, 425, 439, 473, 517, 574, 650, 659, 677, 692, 700, 733, 735, 738, 745, 749, 762, 777, 778, 999, 1000,
    1017, 1019, 1020,
];

/// ClickHouse error codes that concern one table's shape or data: the
/// destination table was dropped or altered under the pipe, a value cannot be
/// parsed or converted into its column, or a table option (`partition_by`,
/// `sorting_key`) does not fit the table. Only that table stops; others go on.
///
/// | code | name |
/// |---|---|
/// | 3, 32, 33 | UNEXPECTED_END_OF_FILE, ATTEMPT_TO_READ_AFTER_EOF, CANNOT_READ_ALL_DATA (rows that do not match the columns) |
/// | 6, 25, 26, 27, 38, 41, 72, 376, 441, 467, 675, 676 | CANNOT_PARSE_TEXT, _ESCAPE_SEQUENCE, _QUOTED_STRING, _INPUT_ASSERTION_FAILED, _DATE, _DATETIME, _NUMBER, _UUID, _DOMAIN_VALUE_FROM_STRING, _BOOL, _IPV4, _IPV6 |
/// | 7, 20 | INCORRECT_NUMBER_OF_COLUMNS, NUMBER_OF_COLUMNS_DOESNT_MATCH |
/// | 8, 10, 16 | THERE_IS_NO_COLUMN, NOT_FOUND_COLUMN_IN_BLOCK, NO_SUCH_COLUMN_IN_TABLE |
/// | 9, 190 | SIZES_OF_COLUMNS_DOESNT_MATCH, SIZES_OF_ARRAYS_DONT_MATCH |
/// | 15 | DUPLICATE_COLUMN |
/// | 43, 44 | ILLEGAL_TYPE_OF_ARGUMENT, ILLEGAL_COLUMN |
/// | 47 | UNKNOWN_IDENTIFIER (a column named in `partition_by` or the key) |
/// | 53 | TYPE_MISMATCH |
/// | 57 | TABLE_ALREADY_EXISTS |
/// | 60 | UNKNOWN_TABLE |
/// | 70 | CANNOT_CONVERT_TYPE |
/// | 117 | INCORRECT_DATA |
/// | 122 | INCOMPATIBLE_COLUMNS |
/// | 128, 131 | TOO_LARGE_ARRAY_SIZE, TOO_LARGE_STRING_SIZE |
/// | 321 | VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE |
/// | 346 | CANNOT_CONVERT_CHARSET |
/// | 349 | CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN |
/// | 407 | DECIMAL_OVERFLOW |
/// | 524 | ALTER_OF_COLUMN_IS_FORBIDDEN |
/// | 549 | DATA_TYPE_CANNOT_BE_USED_IN_KEY |
/// | 565 | TOO_MANY_PARTITIONS (the table's `partition_by` splits an insert too finely) |
/// | 632 | UNEXPECTED_DATA_AFTER_PARSED_VALUE |
/// | 741 | TABLE_UUID_MISMATCH |
/// | 774 | TABLE_IS_PERMANENTLY_READ_ONLY |
/// | 1016 | TABLE_SIZE_LIMIT_EXCEEDED |
pub const TABLE_CODES: &[u32] = &[
    3, 6, 7, 8, 9, 10, 15, 16, 20, 25, 26, 27, 32, 33, 38, 41, 43, 44, 47, 53, 57, 60, 70, 72, 117, 122, 128, 131, 190, 321, 346, 349, 376,
    407, 441, 467, 524, 549, 565, 632, 675, 676, 741, 774, 1016,
];

/// Codes whose fix is the destination's credentials or grants:
/// UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, IP_ADDRESS_NOT_ALLOWED,
/// DATABASE_ACCESS_DENIED, ACCESS_DENIED, AUTHENTICATION_FAILED, USER_EXPIRED.
const CREDENTIAL_CODES: &[u32] = &[192, 193, 194, 195, 291, 497, 516, 720];

const CREDENTIAL_HINT: &str = "check destination.user / destination.password and the user's grants on the destination database";

impl SinkError {
    /// How far the error reaches (see the module's table).
    pub fn severity(&self) -> Severity {
        match self {
            SinkError::Timeout { .. } | SinkError::Transport(_) | SinkError::Cluster { .. } => Severity::Transient,
            SinkError::Topology { .. } => Severity::Table,
            SinkError::Config(_) => Severity::Fatal,
            SinkError::Server { code, .. } if TRANSIENT_CODES.contains(code) => Severity::Transient,
            SinkError::Server { code, .. } if TABLE_CODES.contains(code) => Severity::Table,
            SinkError::Server { .. } | SinkError::Client(_) => Severity::Fatal,
            SinkError::Http { status: None, .. } => Severity::Transient,
            SinkError::Http { status: Some(s), .. } if *s == 408 || *s == 429 || *s >= 500 => Severity::Transient,
            SinkError::Http { .. } => Severity::Fatal,
            SinkError::Encode { .. } => Severity::Table,
        }
    }

    /// Worth retrying unchanged: `severity() == Transient`.
    pub fn is_transient(&self) -> bool {
        self.severity() == Severity::Transient
    }

    /// The destination table a table-level error names itself (only `Encode`
    /// carries it; for a server error the caller knows which table it wrote).
    pub fn table(&self) -> Option<&str> {
        match self {
            SinkError::Encode { table, .. } | SinkError::Topology { table, .. } => Some(table),
            _ => None,
        }
    }

    /// Maps an error of the `clickhouse` crate. `timeout_ms` and `operation`
    /// describe the step, for the crate's own timeouts (`Error::TimedOut`).
    pub(crate) fn from_ch(e: clickhouse::error::Error, timeout_ms: u64, operation: &str) -> Self {
        use clickhouse::error::Error as E;
        let text = match &e {
            // The crate's text for these is the body (or "<status> <reason>") alone.
            E::BadResponse(body) => body.clone(),
            other => chain(other),
        };
        if let Some(code) = exception_code(&text) {
            // `DB::Exception: `, `DB::NetException: `...
            let message = text.split_once("Exception: ").map(|x| x.1).unwrap_or(&text).trim().to_string();
            return SinkError::Server { code, message };
        }
        match e {
            E::BadResponse(body) => SinkError::Http { status: http_status(&body), message: excerpt(&body) },
            E::TimedOut => SinkError::Timeout { timeout_ms, operation: operation.to_string() },
            E::InvalidParams(_) | E::Unsupported(_) | E::Compression(_) => SinkError::Client(text),
            // Network, Decompression (a stream broken off mid-chunk), Other (I/O), Custom
            // (the insert's task ended unexpectedly), and anything else the crate adds.
            _ => SinkError::Transport(text),
        }
    }
}

/// The error's text followed by its sources' (`client error (Connect): tcp connect error: ...`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Extracts `N` from `Code: N` anywhere in a ClickHouse error text (`Code: N. DB::Exception: ...`,
/// or the crate's bare `Code: N` when an error answer had an exception header and no body).
pub(crate) fn exception_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + 6..];
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Statuses a proxy answers with, and their reason phrases.
const STATUSES: &[(u16, &str)] = &[
    (400, "Bad Request"),
    (401, "Unauthorized"),
    (403, "Forbidden"),
    (404, "Not Found"),
    (405, "Method Not Allowed"),
    (407, "Proxy Authentication Required"),
    (408, "Request Timeout"),
    (413, "Payload Too Large"),
    (413, "Request Entity Too Large"),
    (429, "Too Many Requests"),
    (500, "Internal Server Error"),
    (502, "Bad Gateway"),
    (503, "Service Unavailable"),
    (503, "Service Temporarily Unavailable"),
    (504, "Gateway Timeout"),
    (504, "Gateway Time-out"),
];

/// The HTTP status a non-ClickHouse error answer names: the crate's
/// `"<status> <reason>"` for an empty body, a status opening the `<title>` or
/// `<h1>` of a proxy's HTML page, or `"<status> <reason>"` anywhere in the body.
fn http_status(body: &str) -> Option<u16> {
    let leading_status = |text: &str| -> Option<u16> {
        let text = text.trim_start();
        let code = text.get(..3)?.parse::<u16>().ok()?;
        let after = text[3..].chars().next();
        ((400..600).contains(&code) && after.is_none_or(|c| !c.is_ascii_digit())).then_some(code)
    };
    if let Some(code) = leading_status(body) {
        return Some(code);
    }
    let lower = body.to_ascii_lowercase();
    for tag in ["<title>", "<h1>"] {
        if let Some(code) = lower.find(tag).and_then(|i| leading_status(&lower[i + tag.len()..])) {
            return Some(code);
        }
    }
    STATUSES.iter().find(|(code, reason)| lower.contains(&format!("{code} {}", reason.to_ascii_lowercase()))).map(|(code, _)| *code)
}

/// A body made readable for a log line: tags dropped, whitespace collapsed, at most 300 characters.
fn excerpt(body: &str) -> String {
    let mut text = String::with_capacity(body.len().min(400));
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c => text.push(c),
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::new();
    for w in words {
        if !out.is_empty() {
            out.push(' ');
        }
        // Repeated words (a title and a heading saying the same) are kept: they are short.
        out.push_str(w);
        if out.chars().count() > 300 {
            out = out.chars().take(300).collect::<String>() + "…";
            break;
        }
    }
    out
}

fn code_hint(code: u32) -> String {
    if CREDENTIAL_CODES.contains(&code) {
        format!(" ({CREDENTIAL_HINT})")
    } else if code == 164 {
        " (the destination user is read-only: give it a settings profile without `readonly`)".into()
    } else if code == 81 {
        " (the destination database is missing: check destination.database; Setup creates it)".into()
    } else {
        String::new()
    }
}

fn http_text(status: Option<u16>, message: &str) -> String {
    let mut s = match status {
        Some(code) => format!("ClickHouse's HTTP endpoint (or a proxy in front of it) answered HTTP {code} without a ClickHouse error"),
        None => "ClickHouse's HTTP endpoint (or a proxy in front of it) answered with an error that is not ClickHouse's".into(),
    };
    if !message.is_empty() {
        s.push_str(": ");
        s.push_str(message);
    }
    match status {
        Some(401 | 403 | 407) => s.push_str(&format!(" ({CREDENTIAL_HINT}, and any proxy's)")),
        Some(404 | 405) => s.push_str(" (check that destination.url is the root of ClickHouse's HTTP interface)"),
        _ => {}
    }
    s
}

/// Milliseconds as seconds for a message: `2000` → `2`, `1500` → `1.5`.
fn secs(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{}", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::error::Error as E;

    fn bad(body: &str) -> SinkError {
        SinkError::from_ch(E::BadResponse(body.into()), 60_000, "a query")
    }

    #[test]
    fn error_codes_are_parsed() {
        assert_eq!(exception_code("bad response: Code: 60. DB::Exception: Table x doesn't exist"), Some(60));
        assert_eq!(exception_code("network error"), None);
        assert_eq!(exception_code("Code: 241"), Some(241));
        assert_eq!(exception_code("Code: x"), None);
    }

    #[test]
    fn every_code_has_one_class() {
        for c in TRANSIENT_CODES {
            assert!(!TABLE_CODES.contains(c), "{c} is in both lists");
            assert!(!CREDENTIAL_CODES.contains(c), "{c} is transient and a credential error");
        }
        for c in CREDENTIAL_CODES {
            assert!(!TABLE_CODES.contains(c), "{c} is a table error and a credential error");
        }
    }

    #[test]
    fn server_exceptions_by_code() {
        // Texts as ClickHouse 26.9 sends them (the crate hands the body over as it is).
        let cases = [
            ("Code: 252. DB::Exception: Too many parts (300 with average size of 2.00 KiB) in table 'db.t'. Merges are processing significantly slower than inserts. (TOO_MANY_PARTS) (version 26.9.2.1)", Severity::Transient),
            ("Code: 241. DB::Exception: Memory limit (total) exceeded: would use 9.31 GiB. (MEMORY_LIMIT_EXCEEDED) (version 26.9.2.1)", Severity::Transient),
            ("Code: 202. DB::Exception: Too many simultaneous queries. Maximum: 100. (TOO_MANY_SIMULTANEOUS_QUERIES) (version 26.9.2.1)", Severity::Transient),
            ("Code: 242. DB::Exception: Table is in readonly mode (replica path: /clickhouse/tables/x/01). (TABLE_IS_READ_ONLY) (version 26.9.2.1)", Severity::Transient),
            ("Code: 999. DB::Exception: Coordination error: Connection loss. (KEEPER_EXCEPTION) (version 26.9.2.1)", Severity::Transient),
            ("Code: 319. DB::Exception: Unknown status, client must retry. (UNKNOWN_STATUS_OF_INSERT) (version 26.9.2.1)", Severity::Transient),
            ("Code: 60. DB::Exception: Table db.t does not exist. (UNKNOWN_TABLE) (version 26.9.2.1)", Severity::Table),
            ("Code: 16. DB::Exception: No such column c in table db.t. (NO_SUCH_COLUMN_IN_TABLE) (version 26.9.2.1)", Severity::Table),
            ("Code: 53. DB::Exception: Type mismatch in IN or VALUES section. (TYPE_MISMATCH) (version 26.9.2.1)", Severity::Table),
            ("Code: 33. DB::Exception: Cannot read all data. Bytes read: 3. Bytes expected: 8.: (at row 1): While executing BinaryRowInputFormat. (CANNOT_READ_ALL_DATA) (version 26.9.2.1)", Severity::Table),
            ("Code: 43. DB::Exception: Illegal type String of argument of function toYYYYMM. (ILLEGAL_TYPE_OF_ARGUMENT) (version 26.9.2.1)", Severity::Table),
            ("Code: 516. DB::Exception: default: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) (version 26.9.2.1)", Severity::Fatal),
            ("Code: 497. DB::Exception: sluice: Not enough privileges. To execute this query, it's necessary to have the grant INSERT ON db.t. (ACCESS_DENIED) (version 26.9.2.1)", Severity::Fatal),
            ("Code: 81. DB::Exception: Database db does not exist. (UNKNOWN_DATABASE) (version 26.9.2.1)", Severity::Fatal),
            ("Code: 164. DB::Exception: sluice: Cannot execute query in readonly mode. (READONLY) (version 26.9.2.1)", Severity::Fatal),
            ("Code: 62. DB::Exception: Syntax error: failed at position 1. (SYNTAX_ERROR) (version 26.9.2.1)", Severity::Fatal),
        ];
        for (body, severity) in cases {
            let e = bad(body);
            assert!(matches!(e, SinkError::Server { .. }), "{body}: {e:?}");
            assert_eq!(e.severity(), severity, "{body}");
            assert_eq!(e.is_transient(), severity == Severity::Transient);
        }
        let e = bad(cases[11].0);
        assert!(e.to_string().starts_with("ClickHouse error 516: default: Authentication failed"), "{e}");
        assert!(e.to_string().contains("check destination.user / destination.password"), "{e}");
        // An exception at the end of a streamed answer (the crate's `Other`/`Custom` text) is still a server error.
        let e = SinkError::from_ch(E::Custom("Code: 241. DB::Exception: Memory limit exceeded".into()), 1, "x");
        assert!(matches!(e, SinkError::Server { code: 241, .. }) && e.is_transient(), "{e:?}");
    }

    #[test]
    fn proxy_answers_by_status() {
        let nginx_502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.27.0</center>\r\n</body>\r\n</html>";
        let e = bad(nginx_502);
        assert!(matches!(e, SinkError::Http { status: Some(502), .. }), "{e:?}");
        assert_eq!(e.severity(), Severity::Transient);
        assert!(e.to_string().contains("HTTP 502") && e.to_string().contains("502 Bad Gateway nginx/1.27.0"), "{e}");
        assert!(!e.to_string().contains('<'), "{e}");
        let cases = [
            ("502 Bad Gateway", Some(502), Severity::Transient), // the crate's text for an empty body
            ("503 Service Unavailable", Some(503), Severity::Transient),
            ("504 Gateway Timeout", Some(504), Severity::Transient),
            ("429 Too Many Requests", Some(429), Severity::Transient),
            ("408 Request Timeout", Some(408), Severity::Transient),
            ("<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", Some(503), Severity::Transient),
            ("<HTML><HEAD><TITLE>504 Gateway Time-out</TITLE></HEAD></HTML>", Some(504), Severity::Transient),
            ("no healthy upstream", None, Severity::Transient),
            ("upstream connect error or disconnect/reset before headers. reset reason: connection failure", None, Severity::Transient),
            ("401 Unauthorized", Some(401), Severity::Fatal),
            ("<html><head><title>401 Authorization Required</title></head></html>", Some(401), Severity::Fatal),
            ("Error: 503 backend read error", None, Severity::Transient),
            ("<p>Please retry: 503 Service Unavailable</p>", Some(503), Severity::Transient),
            ("<html><head><title>403 Forbidden</title></head></html>", Some(403), Severity::Fatal),
            ("404 Not Found", Some(404), Severity::Fatal),
        ];
        for (body, status, severity) in cases {
            let e = bad(body);
            assert!(matches!(&e, SinkError::Http { status: s, .. } if *s == status), "{body}: {e:?}");
            assert_eq!(e.severity(), severity, "{body}");
        }
        assert!(bad("401 Unauthorized").to_string().contains("check destination.user / destination.password"));
        assert!(bad("404 Not Found").to_string().contains("destination.url"));
    }

    #[test]
    fn transport_timeout_and_client_errors() {
        let e = SinkError::from_ch(E::TimedOut, 2000, "INSERT INTO `db`.`t`");
        assert_eq!(e.severity(), Severity::Transient);
        assert_eq!(e.to_string(), "ClickHouse did not answer within 2 s (destination.request_timeout_ms) during INSERT INTO `db`.`t`");
        let e = SinkError::Timeout { timeout_ms: 1500, operation: "a query".into() };
        assert!(e.to_string().contains("within 1.5 s"), "{e}");
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        let e = SinkError::from_ch(E::Network(Box::new(io)), 1, "x");
        assert!(matches!(e, SinkError::Transport(_)) && e.is_transient(), "{e:?}");
        assert!(e.to_string().contains("Connection refused"), "{e}");
        let e = SinkError::from_ch(E::InvalidParams("invalid URL".into()), 1, "x");
        assert_eq!(e.severity(), Severity::Fatal);
        let e = SinkError::Encode { table: "t".into(), column: "c".into(), source: EncodeError::NullInNonNullable("Int64".into()) };
        assert_eq!((e.severity(), e.table()), (Severity::Table, Some("t")));
    }
}
