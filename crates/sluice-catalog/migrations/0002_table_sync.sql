-- Tables added to or resynced in a live pipe are copied with their own snapshot
-- version (NULL: the pipe's initial one, kept in checkpoints).
ALTER TABLE pipe_tables ADD COLUMN snapshot_version INTEGER;
-- When the current copy of the table started (for rows/s and ETA).
ALTER TABLE pipe_tables ADD COLUMN copy_started_at TEXT;

-- Snapshot partitions: ranges of a table's first key column, copied in
-- parallel; each resumes after its own last acknowledged key.
CREATE TABLE snapshot_partitions (
    pipe          TEXT NOT NULL,
    destination   TEXT NOT NULL,
    idx           INTEGER NOT NULL,
    lo_json       TEXT,
    hi_json       TEXT,
    last_key_json TEXT,
    rows_copied   INTEGER NOT NULL DEFAULT 0,
    done          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pipe, destination, idx)
);
