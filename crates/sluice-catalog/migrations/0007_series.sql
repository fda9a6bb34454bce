-- Time series of each pipe and of each of its tables (lag, changes/s, batch
-- duration, snapshot rows/s...), written by the server's sampler every 10 s.
-- Two resolutions: 10 s points kept for a day, 5 min points (downsampled from
-- the 10 s points) kept for 30 days; older points are pruned, so the size is
-- bounded. `subject` is '' for the pipe, else the table's destination name.
-- `at` is the point's start in epoch seconds, a multiple of `resolution`.
CREATE TABLE series_points (
    pipe        TEXT NOT NULL REFERENCES pipes(name) ON DELETE CASCADE,
    subject     TEXT NOT NULL,
    metric      TEXT NOT NULL,
    resolution  INTEGER NOT NULL,
    at          BIGINT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pipe, subject, metric, resolution, at)
);
CREATE INDEX series_points_age ON series_points (resolution, at);
-- Counters of a pipe that outlive the process (e.g. `changes_applied`).
CREATE TABLE pipe_counters (
    pipe        TEXT NOT NULL REFERENCES pipes(name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    value       BIGINT NOT NULL,
    PRIMARY KEY (pipe, name)
);
