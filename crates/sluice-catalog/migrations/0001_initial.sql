-- Pipes, their tables, checkpoints and state history.
CREATE TABLE pipes (
    name        TEXT PRIMARY KEY,
    spec_json   TEXT NOT NULL,
    state       TEXT NOT NULL,
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE pipe_tables (
    pipe          TEXT NOT NULL REFERENCES pipes(name) ON DELETE CASCADE,
    destination   TEXT NOT NULL,
    source_schema TEXT NOT NULL,
    source_table  TEXT NOT NULL,
    mapping_json  TEXT NOT NULL,
    state         TEXT NOT NULL,
    snapshot_done INTEGER NOT NULL DEFAULT 0,
    last_key_json TEXT,
    rows_copied   INTEGER NOT NULL DEFAULT 0,
    rows_estimated INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    PRIMARY KEY (pipe, destination)
);

CREATE TABLE checkpoints (
    pipe             TEXT PRIMARY KEY REFERENCES pipes(name) ON DELETE CASCADE,
    binlog_file      TEXT NOT NULL,
    binlog_pos       INTEGER NOT NULL,
    gtid_set         TEXT,
    snapshot_version INTEGER NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE pipe_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    pipe        TEXT NOT NULL,
    at          TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX pipe_events_pipe ON pipe_events(pipe, id);
