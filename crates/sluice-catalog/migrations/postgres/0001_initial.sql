-- Pipes, their tables, checkpoints and state history (Postgres; mirrors
-- ../0001_initial.sql: same tables and columns, integers as BIGINT, text
-- keys that are sorted compared byte-wise (COLLATE "C") as on SQLite).
CREATE TABLE pipes (
    name        TEXT COLLATE "C" PRIMARY KEY,
    spec_json   TEXT NOT NULL,
    state       TEXT NOT NULL,
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE pipe_tables (
    pipe          TEXT COLLATE "C" NOT NULL REFERENCES pipes(name) ON DELETE CASCADE,
    destination   TEXT COLLATE "C" NOT NULL,
    source_schema TEXT COLLATE "C" NOT NULL,
    source_table  TEXT COLLATE "C" NOT NULL,
    mapping_json  TEXT NOT NULL,
    state         TEXT NOT NULL,
    snapshot_done BIGINT NOT NULL DEFAULT 0,
    last_key_json TEXT,
    rows_copied   BIGINT NOT NULL DEFAULT 0,
    rows_estimated BIGINT NOT NULL DEFAULT 0,
    error         TEXT,
    PRIMARY KEY (pipe, destination)
);

CREATE TABLE checkpoints (
    pipe             TEXT COLLATE "C" PRIMARY KEY REFERENCES pipes(name) ON DELETE CASCADE,
    binlog_file      TEXT NOT NULL,
    binlog_pos       BIGINT NOT NULL,
    gtid_set         TEXT,
    snapshot_version BIGINT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE pipe_events (
    id          BIGSERIAL PRIMARY KEY,
    pipe        TEXT COLLATE "C" NOT NULL,
    at          TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX pipe_events_pipe ON pipe_events(pipe, id);
