-- Workers and pipe leases (several workers sharing one catalog): each worker
-- registers itself and heartbeats; a pipe is run by the holder of its lease,
-- whose fencing token grows on every acquisition. Times are Unix
-- milliseconds of the catalog database's clock. (0007 is taken on another branch.)
CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    api_address  TEXT NOT NULL,
    started_ms   INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL
);
CREATE TABLE pipe_leases (
    pipe       TEXT PRIMARY KEY REFERENCES pipes(name) ON DELETE CASCADE,
    owner      TEXT,
    expires_ms INTEGER NOT NULL,
    token      INTEGER NOT NULL
);
