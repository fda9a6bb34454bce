-- Mirrors ../0007_series.sql.
CREATE TABLE series_points (
    pipe        TEXT COLLATE "C" NOT NULL REFERENCES pipes(name) ON DELETE CASCADE,
    subject     TEXT COLLATE "C" NOT NULL,
    metric      TEXT COLLATE "C" NOT NULL,
    resolution  BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pipe, subject, metric, resolution, at)
);
CREATE INDEX series_points_age ON series_points (resolution, at);
CREATE TABLE pipe_counters (
    pipe        TEXT COLLATE "C" NOT NULL REFERENCES pipes(name) ON DELETE CASCADE,
    name        TEXT COLLATE "C" NOT NULL,
    value       BIGINT NOT NULL,
    PRIMARY KEY (pipe, name)
);
