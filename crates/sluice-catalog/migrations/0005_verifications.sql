-- Verification runs (`sluice verify`): one row per run, its progress and
-- result (per-table JSON, see sluice-verify's `TableResult`) updated as the
-- run goes. Deleted with the pipe.
CREATE TABLE verifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    pipe        TEXT NOT NULL REFERENCES pipes(name) ON DELETE CASCADE,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    state       TEXT NOT NULL,
    repair      INTEGER NOT NULL DEFAULT 0,
    request_json TEXT NOT NULL DEFAULT '{}',
    result_json TEXT NOT NULL DEFAULT '[]',
    error       TEXT
);
CREATE INDEX verifications_by_pipe ON verifications (pipe, id);
