"""ClickHouse's HTTP interface over the real ClickHouse engine embedded in chDB.

Test infrastructure for Sluice, not a ClickHouse replacement: SQL, table engines
(ReplacingMergeTree(ver, is_deleted) + FINAL, Atomic databases, EXCHANGE TABLES),
formats and error codes are those of the ClickHouse 26.9 engine in the PyPI wheel
`chdb-core` (one persistent chDB session in --data); this file adds the HTTP
protocol of https://clickhouse.com/docs/interfaces/http:

- `/ping`, `/replicas_status` and `GET /` without a query -> `Ok.`; any other
  path is the query endpoint, as on a real server.
- The query from the `query` URL parameter, the POST body, or both (the text is
  then `query + "\n" + body`, as in ClickHouse), or multipart/form-data fields
  `query` and `param_*` (what clickhouse-rs sends for queries with parameters).
  The data of `INSERT ... FORMAT X` (the body after the query, or inline after
  `FORMAT X\n`) is spooled to <data>/tmp and loaded with
  `INSERT ... FROM INFILE '<file>' [SETTINGS ...] FORMAT X`, then deleted;
  `INSERT ... VALUES` runs as is. One statement per request (a final `;` is ok).
- `database`/`X-ClickHouse-Database`, `default_format`/`X-ClickHouse-Format`
  (default TabSeparated), `query_id`, `param_<name>` for `{name:Type}`
  placeholders (chDB's own typed parameter support).
- Any other URL parameter is a setting for that one query: `SET name = 'value'`
  before it; afterwards the session's settings are put back (also after a
  client's own `SET`, which, as without `session_id`, does not last). Unknown
  settings fail with Code 115 as on the real server; HTTP-only parameters
  (`wait_end_of_query`, `buffer_size`, `session_*`, `user`, ...) are ignored.
- `decompress=1`: body in ClickHouse's native compressed framing (CityHash128
  v1.0.2 checksum, method 0x82 LZ4 / 0x90 ZSTD / 0x02 none, sizes); a bad
  checksum is Code 40. `compress=1`: the response in that framing (LZ4).
- Request `Content-Encoding` gzip, deflate, zstd, lz4, xz, bz2; responses are
  compressed per `Accept-Encoding` (same list; clickhouse-rs 0.15 asks for lz4)
  unless `enable_http_compression=0` (its default is 1 since 25.10).
- Errors: body `Code: N. DB::Exception: ... (NAME) (version V)`, header
  `X-ClickHouse-Exception-Code`, HTTP status per ClickHouse's
  exceptionCodeToHTTPStatus (400 syntax/parse, 404 unknown table/db/setting,
  else mostly 500). Success: `X-ClickHouse-Query-Id`, `-Format`, `-Timezone`,
  `-Summary`, `-Server-Display-Name`; always Content-Length and keep-alive.

Deliberately not done: authentication (any user/password/basic auth is
accepted), sessions (`session_id` is ignored; there is one shared engine
session), `readonly` (ignored: a read-only session could not restore its
settings) and read-only GET, progress headers, streaming (results are built
whole), brotli/snappy, external data, and parallel execution: statements run one
at a time under a global lock (per-request USE/SET state lives in the one
session); `/ping` never takes it. chDB's `default` database has engine Overlay,
not Atomic (databases created with CREATE DATABASE are Atomic).

Usage: python clickhouse_http.py --host 127.0.0.1 --port 38123 --data DIR [--log FILE]
"""

import argparse, bz2, gzip, json, lzma, os, re, signal, socket, struct, sys, threading, time, uuid, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import lz4.block, lz4.frame, zstandard
from chdb import session as chdb_session
from clickhouse_cityhash.cityhash import CityHash128

# URL parameters of the HTTP protocol itself (ClickHouse's reserved names), never settings.
PROTOCOL_PARAMS = {
    "query", "database", "default_format", "user", "password", "quota_key", "query_id", "session_id",
    "session_timeout", "session_check", "close_session", "compress", "decompress", "buffer_size",
    "wait_end_of_query", "role", "stacktrace", "client_protocol_version", "readonly",
}
STATUS_BY_NAME = {}
for _status, _names in {
    400: "BAD_ARGUMENTS CANNOT_COMPILE_REGEXP CANNOT_PARSE_TEXT CANNOT_PARSE_ESCAPE_SEQUENCE CANNOT_PARSE_QUOTED_STRING "
         "CANNOT_PARSE_DATE CANNOT_PARSE_DATETIME CANNOT_PARSE_NUMBER CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING "
         "CANNOT_PARSE_IPV4 CANNOT_PARSE_IPV6 CANNOT_PARSE_INPUT_ASSERTION_FAILED CANNOT_PARSE_UUID DUPLICATE_COLUMN "
         "ILLEGAL_COLUMN UNKNOWN_ELEMENT_IN_AST UNKNOWN_TYPE_OF_AST_NODE THERE_IS_NO_COLUMN TOO_DEEP_AST TOO_BIG_AST "
         "UNEXPECTED_AST_STRUCTURE SYNTAX_ERROR INCORRECT_DATA TYPE_MISMATCH VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    404: "UNKNOWN_TABLE UNKNOWN_FUNCTION UNKNOWN_IDENTIFIER UNKNOWN_TYPE UNKNOWN_STORAGE UNKNOWN_DATABASE "
         "UNKNOWN_SETTING UNKNOWN_DIRECTION_OF_SORTING UNKNOWN_AGGREGATE_FUNCTION UNKNOWN_FORMAT "
         "UNKNOWN_DATABASE_ENGINE UNKNOWN_TYPE_OF_QUERY UNKNOWN_ROLE",
    401: "REQUIRED_PASSWORD", 403: "UNKNOWN_USER WRONG_PASSWORD AUTHENTICATION_FAILED SET_NON_GRANTED_ROLE ACCESS_DENIED",
    413: "QUERY_IS_TOO_LARGE", 501: "NOT_IMPLEMENTED", 503: "SOCKET_TIMEOUT CANNOT_OPEN_FILE CANNOT_SCHEDULE_TASK",
    411: "HTTP_LENGTH_REQUIRED", 408: "TIMEOUT_EXCEEDED", 415: "UNSUPPORTED_MEDIA_TYPE",
}.items():
    STATUS_BY_NAME.update(dict.fromkeys(_names.split(), _status))
CONTENT_TYPES = [("TabSeparated", "text/tab-separated-values"), ("TSV", "text/tab-separated-values"),
                 ("CSV", "text/csv"), ("JSON", "application/json"), ("XML", "application/xml")]
BINARY_FORMATS = ("RowBinary", "Native", "Parquet", "Arrow", "ORC", "Avro", "Protobuf", "MsgPack", "CapnProto", "BSON")
# Settings chDB changes from the server's defaults, put back to what clickhouse-server uses.
SERVER_DEFAULTS = {"date_time_input_format": "basic", "implicit_select": "0"}
M64 = (1 << 64) - 1
TOKEN = re.compile(rb"""\s+|--[^\n]*|\#[^\n]*|/\*.*?\*/|'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`"""
                   rb"""|[A-Za-z_][A-Za-z_0-9]*|[0-9.]+(?:[eE][-+]?\d+)?|.""", re.S)
SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")

LOCK = threading.Lock()
STATE = {"session": None, "tmp": None, "log": sys.stderr, "version": "26.9", "tz": "UTC",
         "baseline": {}, "host": socket.gethostname()}


class CHError(Exception):
    def __init__(self, code, name, message):
        super().__init__(message)
        self.code, self.name, self.message = code, name, message


def from_chdb(exc):
    """Turns a chDB exception ('Code: N. DB::Exception: ... (NAME)', sometimes nested) into a CHError."""
    text = str(exc).strip()
    m = re.match(r"Code: (\d+)\. DB::Exception: ", text)
    if not m:
        return CHError(1002, "UNKNOWN_EXCEPTION", text)
    code = int(m.group(1))
    while m:  # errors raised inside FROM INFILE come wrapped twice
        text = text[m.end():]
        m = re.match(r"Code: \d+\. DB::Exception: ", text)
    name = re.search(r"\(([A-Z][A-Z0-9_]+)\)$", text)
    name = name.group(1) if name else "UNKNOWN_EXCEPTION"
    text = re.sub(r"(\(version [^)]*\))\. \([A-Z0-9_]+\)$", r"\1", text)  # "... (NAME) (version V). (NAME)"
    text = re.sub(r" \(version [^)]*\)$", "", text)
    if not text.endswith(f"({name})"):
        text += f" ({name})"
    return CHError(code, name, text)


# ---- ClickHouse native compressed framing -------------------------------------------------------

def checksum(block):
    """CityHash128 (v1.0.2) of method byte + sizes + data, as ClickHouse writes it (low64, high64 LE)."""
    h = CityHash128(block)
    return struct.pack("<QQ", h >> 64, h & M64)


def native_decompress(body, verify=True):
    out, i, n = bytearray(), 0, len(body)
    while i < n:
        if n - i < 25:
            raise CHError(33, "CANNOT_READ_ALL_DATA", "Cannot read all data: truncated compressed block header")
        method, size, raw = struct.unpack_from("<BII", body, i + 16)
        if size < 9 or size > (1 << 30) or raw > (1 << 30):
            raise CHError(39, "TOO_LARGE_SIZE_COMPRESSED", f"Too large size_compressed_without_checksum: {size}")
        block = bytes(body[i + 16:i + 16 + size])
        if len(block) != size:
            raise CHError(33, "CANNOT_READ_ALL_DATA", f"Cannot read all data: compressed block of {size} bytes is truncated")
        if verify and checksum(block) != bytes(body[i:i + 16]):
            raise CHError(40, "CHECKSUM_DOESNT_MATCH",
                          f"Checksum doesn't match: corrupted data. Reference: {bytes(body[i:i + 16]).hex()}. "
                          f"Actual: {checksum(block).hex()}. Size of compressed block: {size}")
        if method not in (0x82, 0x90, 0x02):
            raise CHError(89, "UNKNOWN_COMPRESSION_METHOD", f"Unknown compression method: {method}")
        try:
            out += (lz4.block.decompress(block[9:], uncompressed_size=raw) if method == 0x82 else block[9:] if method == 0x02
                    else zstandard.ZstdDecompressor().decompress(block[9:], max_output_size=raw))
        except Exception as e:
            raise CHError(271, "CANNOT_DECOMPRESS", f"Cannot decompress: {e}")
        i += 16 + size
    return bytes(out)


def native_compress(data, block_size=1 << 20):
    out = bytearray()
    for i in range(0, max(len(data), 1), block_size):
        chunk = data[i:i + block_size]
        comp = lz4.block.compress(chunk, store_size=False)
        block = struct.pack("<BII", 0x82, len(comp) + 9, len(chunk)) + comp
        out += checksum(block) + block
    return bytes(out)


# ---- HTTP content encodings ---------------------------------------------------------------------

DECODERS = {"gzip": gzip.decompress, "x-gzip": gzip.decompress, "xz": lzma.decompress, "bz2": bz2.decompress,
            "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b), "lz4": lz4.frame.decompress,
            "deflate": lambda b: zlib.decompress(b) if b[:1] == b"x" else zlib.decompress(b, -15)}
ENCODERS = [("gzip", lambda b: gzip.compress(b, 3)), ("deflate", lambda b: zlib.compress(b, 3)),  # level 3 as in
            ("zstd", lambda b: zstandard.ZstdCompressor(3).compress(b)), ("lz4", lz4.frame.compress),  # the server
            ("xz", lzma.compress), ("bz2", bz2.compress)]


def decode_body(body, encoding):
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity", "none"):
        return body
    if encoding not in DECODERS:
        raise CHError(48, "NOT_IMPLEMENTED", f"Unknown HTTP compression method '{encoding}'")
    try:
        return DECODERS[encoding](body)
    except Exception as e:
        raise CHError(271, "CANNOT_DECOMPRESS", f"Cannot decompress {encoding} request body: {e}")


# ---- just enough SQL lexing ---------------------------------------------------------------------

def top_level_words(text, start=0):
    """Yields (WORD, start, end) for words outside brackets, quotes and comments, and (';', start, end)."""
    depth, pos, n = 0, start, len(text)
    while pos < n:
        m = TOKEN.match(text, pos)
        tok, pos = m.group(), m.end()
        c = tok[:1]
        if c in b"([{":
            depth += 1
        elif c in b")]}":
            depth -= 1
        elif depth == 0 and (c.isalpha() or c == b"_"):
            yield tok.upper().decode(), m.start(), pos
        elif depth == 0 and c == b";":
            yield ";", m.start(), pos


def analyse(text):
    """Splits one request's text into the statement and, for `INSERT ... FORMAT X <data>`, its data.

    Returns (first word, sql, data, format, insert head up to SETTINGS/FORMAT, insert SETTINGS clause)."""
    words = top_level_words(text)
    first = next(words, ("", 0, 0))[0]
    if first == "INSERT":
        settings_at = None
        for word, s, e in words:
            if word in ("VALUES", "SELECT", "WITH", "FROM", ";"):
                break  # data in the statement itself (VALUES), INSERT SELECT or the client's own FROM INFILE
            if word == "SETTINGS" and settings_at is None:
                settings_at = s
            if word == "FORMAT":
                _, _, end = next(words, ("", 0, e))
                fmt = text[e:end].strip().decode()
                while end < len(text) and text[end] in b" \t\f":
                    end += 1
                end += 2 if text[end:end + 2] == b"\r\n" else 1 if text[end:end + 1] == b"\n" else 0
                head = text[:s if settings_at is None else settings_at].decode().strip()
                settings = "" if settings_at is None else text[settings_at:s].decode().strip()
                return first, None, memoryview(text)[end:], fmt, head, settings
        return first, text.decode(), None, None, None, None
    fmt, last, settled = None, None, False
    for word, s, e in words:
        if word == ";":
            pos = e
            while pos < len(text):  # only blanks, comments and more ';' may follow
                m = TOKEN.match(text, pos)
                tok = m.group()
                if not (tok.isspace() or tok == b";" or tok[:1] in b"-#/" and len(tok) > 1):
                    raise CHError(62, "SYNTAX_ERROR", f"Syntax error (Multi-statements are not allowed): failed at position {s + 1}")
                pos = m.end()
            break
        if not settled and last == "FORMAT":
            fmt = text[s:e].decode()
        elif not settled and fmt:  # FORMAT x may only be followed by SETTINGS; else `format` was a name
            settled, fmt = word == "SETTINGS", fmt if word == "SETTINGS" else None
        last = word
    return first, text.decode(), None, fmt, None, None


def sql_string(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---- running statements -------------------------------------------------------------------------

def engine(sql, fmt="TabSeparated", params=None):
    try:
        return STATE["session"].query(sql, fmt, params=params or None)
    except Exception as e:
        raise from_chdb(e)


def changed_settings():
    out = {}
    for line in engine("SELECT name, value FROM system.settings WHERE changed", "TSVRaw").bytes().decode().splitlines():
        name, _, value = line.partition("\t")
        if name != "database":
            out[name] = value
    return out


def restore_settings():
    """Puts the session's settings back to the baseline after a query that changed them."""
    base, now = STATE["baseline"], changed_settings()
    for name in set(base) | set(now):
        if base.get(name) != now.get(name):
            try:
                engine(f"SET {name} = " + (sql_string(base[name]) if name in base else "DEFAULT"))
            except CHError as e:
                log(f"could not restore setting {name}: {e.message}")


def run(text, database, fmt, settings, params, note):
    """Runs one statement; returns (result bytes, summary dict, output format)."""
    if not text.strip():
        raise CHError(62, "SYNTAX_ERROR", "Empty query")
    first, sql, data, out_fmt, head, insert_settings = analyse(text)
    if fmt.lower() in ("dataframe", "arrowtable", "debug"):  # chDB-only output kinds
        raise CHError(73, "UNKNOWN_FORMAT", f"Unknown output format {fmt}")
    path = os.path.join(STATE["tmp"], f"insert-{uuid.uuid4().hex}.bin") if data is not None else None
    try:
        if path:  # INSERT ... FORMAT X with data: spool it and let the engine read the file
            with open(path, "wb") as f:
                f.write(data)
            sql = f"{head} FROM INFILE {sql_string(path)} {insert_settings} FORMAT {out_fmt}"
        note["sql"] = sql
        with LOCK:
            engine(f"USE `{database.replace('`', '``')}`")  # cheap (<0.1 ms); also undoes a client's USE
            try:
                for name, value in settings.items():
                    if not SETTING_NAME.match(name):
                        raise CHError(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'")
                    engine(f"SET {name} = {sql_string(value)}")
                t0 = time.monotonic_ns()
                try:
                    res = engine(sql, fmt, params)
                except CHError as e:  # keep the spool file out of data errors
                    if path:
                        e.message = e.message.replace(f": (in file/uri {path})", "").replace(
                            ": While executing File: data for INSERT was parsed from file", "")
                    raise
                elapsed = time.monotonic_ns() - t0
            finally:
                if settings or first == "SET":
                    restore_settings()
    finally:
        if path and os.path.exists(path):
            os.unlink(path)
    body = res.bytes()
    summary = {"read_rows": res.rows_read(), "read_bytes": res.bytes_read(), "written_rows": res.rows_written(),
               "written_bytes": res.bytes_written(), "total_rows_to_read": res.rows_read(),
               "result_rows": 0, "result_bytes": len(body), "elapsed_ns": elapsed}
    return body, {k: str(v) for k, v in summary.items()}, (out_fmt if data is None and out_fmt else fmt)


def content_type(fmt):
    if fmt.startswith(BINARY_FORMATS):
        return "application/octet-stream"
    for prefix, ctype in CONTENT_TYPES:
        if fmt.startswith(prefix):
            return ctype + "; charset=UTF-8"
    return "text/plain; charset=UTF-8"


def parse_multipart(body, ctype):
    """The fields of a multipart/form-data body (query and param_* from clickhouse-rs)."""
    m = re.search(r'boundary="?([^";]+)"?', ctype)
    if not m:
        raise CHError(36, "BAD_ARGUMENTS", "multipart/form-data without boundary")
    fields = {}
    for part in body.split(b"--" + m.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if b"filename=" in head:
            raise CHError(48, "NOT_IMPLEMENTED", "External data (file parts) is not supported by this test server")
        if name:
            fields[name.group(1).decode()] = value[:-2].decode() if value.endswith(b"\r\n") else value.decode()
    return fields


def log(line):
    STATE["log"].write(time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")
    STATE["log"].flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "ClickHouse"

    def log_message(self, fmt, *args):  # http.server's own messages (malformed requests) only
        log("http: " + (fmt % args))

    def log_request(self, *args):  # serve() logs one line per request itself
        pass

    def do_GET(self):
        self.serve(b"")

    def do_POST(self):
        self.serve(self.read_body())

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, body, headers):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def serve(self, body):
        t0, url = time.monotonic(), urlsplit(self.path)
        qs = dict(parse_qsl(url.query, keep_blank_values=True))
        if url.path in ("/ping", "/replicas_status") or (url.path == "/" and self.command == "GET" and "query" not in qs):
            return self.reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
        query_id = qs.get("query_id") or str(uuid.uuid4())
        headers = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Server-Display-Name": STATE["host"],
                   "X-ClickHouse-Timezone": STATE["tz"]}
        status, size_in, note = 200, len(body), {"sql": qs.get("query", "")}
        try:
            body = decode_body(body, self.headers.get("Content-Encoding"))
            ctype = self.headers.get("Content-Type", "")
            if ctype.startswith("multipart/form-data"):
                qs.update(parse_multipart(body, ctype))
                body = b""
            if qs.get("decompress") in ("1", "true") and body:
                body = native_decompress(body, qs.get("http_native_compression_disable_checksumming_on_decompress") not in ("1", "true"))
            query = qs.get("query", "").encode()
            text = query + b"\n" + body if query and body else query or body
            database = qs.get("database") or self.headers.get("X-ClickHouse-Database") or "default"
            fmt = qs.get("default_format") or self.headers.get("X-ClickHouse-Format") or "TabSeparated"
            params = {k[6:]: v for k, v in qs.items() if k.startswith("param_")}
            settings = {k: v for k, v in qs.items() if k not in PROTOCOL_PARAMS and not k.startswith("param_")}
            result, summary, out_fmt = run(text, database, fmt, settings, params, note)
            headers.update({"Content-Type": content_type(out_fmt), "X-ClickHouse-Format": out_fmt,
                            "X-ClickHouse-Summary": json.dumps(summary, separators=(",", ":"))})
            if qs.get("compress") in ("1", "true"):
                result = native_compress(result)
                headers["Content-Type"] = "application/octet-stream"
            accept = (self.headers.get("Accept-Encoding") or "").lower()
            if accept and qs.get("enable_http_compression", "1") not in ("0", "false"):
                for name, encode in ENCODERS:
                    if name in accept:
                        result, headers["Content-Encoding"] = encode(result), name
                        break
        except CHError as e:
            msg = e.message if e.message.endswith(f"({e.name})") else f"{e.message}. ({e.name})"
            status, result = STATUS_BY_NAME.get(e.name, 500), f"Code: {e.code}. DB::Exception: {msg} (version {STATE['version']})\n".encode()
            headers.update({"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(e.code)})
        except Exception as e:  # a bug here or a malformed request: still answer like ClickHouse
            status, result = 500, f"Code: 1002. DB::Exception: {type(e).__name__}: {e}. (UNKNOWN_EXCEPTION) (version {STATE['version']})\n".encode()
            headers.update({"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": "1002"})
        self.reply(status, result, headers)
        shown = note["sql"][:160].replace("\n", " ")
        log(f"{self.command} {status} {size_in}B->{len(result)}B {1000 * (time.monotonic() - t0):.0f}ms {shown!r}"
            + ("" if status == 200 else " " + result[:200].decode("utf-8", "replace").strip().replace("\n", " ")))


class Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 resets bursts of new connections
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=38123)
    ap.add_argument("--data", required=True, help="directory for the engine's data and temporary insert files")
    ap.add_argument("--log", help="file for one line per request (default: stderr)")
    a = ap.parse_args()
    if a.host not in ("127.0.0.1", "localhost"):
        ap.error("this test server only binds to loopback")
    STATE["tmp"] = os.path.join(a.data, "tmp")
    os.makedirs(STATE["tmp"], exist_ok=True)
    for stale in os.listdir(STATE["tmp"]):
        os.unlink(os.path.join(STATE["tmp"], stale))
    if a.log:
        STATE["log"] = open(a.log, "a", buffering=1)
    STATE["session"] = chdb_session.Session(os.path.join(a.data, "chdb"))
    for name, value in SERVER_DEFAULTS.items():
        engine(f"SET {name} = {sql_string(value)}")
    STATE["baseline"] = changed_settings()
    STATE["version"], STATE["tz"] = engine("SELECT version(), timezone()", "TSVRaw").bytes().decode().strip().split("\t")
    server = Server((a.host, a.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log(f"ClickHouse {STATE['version']} (chDB) on http://{a.host}:{a.port}/, data in {a.data}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if LOCK.acquire(timeout=30):
            STATE["session"].close()
        log("stopped")


if __name__ == "__main__":
    main()
