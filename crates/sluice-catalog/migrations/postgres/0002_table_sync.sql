-- Mirrors ../0002_table_sync.sql.
ALTER TABLE pipe_tables ADD COLUMN snapshot_version BIGINT;
ALTER TABLE pipe_tables ADD COLUMN copy_started_at TEXT;

CREATE TABLE snapshot_partitions (
    pipe          TEXT COLLATE "C" NOT NULL,
    destination   TEXT COLLATE "C" NOT NULL,
    idx           BIGINT NOT NULL,
    lo_json       TEXT,
    hi_json       TEXT,
    last_key_json TEXT,
    rows_copied   BIGINT NOT NULL DEFAULT 0,
    done          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (pipe, destination, idx)
);
