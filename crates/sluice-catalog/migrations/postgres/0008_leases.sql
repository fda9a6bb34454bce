-- Mirrors ../0008_leases.sql.
CREATE TABLE workers (
    id           TEXT COLLATE "C" PRIMARY KEY,
    api_address  TEXT NOT NULL,
    started_ms   BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);
CREATE TABLE pipe_leases (
    pipe       TEXT COLLATE "C" PRIMARY KEY REFERENCES pipes(name) ON DELETE CASCADE,
    owner      TEXT COLLATE "C",
    expires_ms BIGINT NOT NULL,
    token      BIGINT NOT NULL
);
