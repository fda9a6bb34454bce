-- Mirrors ../0005_verifications.sql.
CREATE TABLE verifications (
    id          BIGSERIAL PRIMARY KEY,
    pipe        TEXT COLLATE "C" NOT NULL REFERENCES pipes(name) ON DELETE CASCADE,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    state       TEXT NOT NULL,
    repair      BIGINT NOT NULL DEFAULT 0,
    request_json TEXT NOT NULL DEFAULT '{}',
    result_json TEXT NOT NULL DEFAULT '[]',
    error       TEXT
);
CREATE INDEX verifications_by_pipe ON verifications (pipe, id);
