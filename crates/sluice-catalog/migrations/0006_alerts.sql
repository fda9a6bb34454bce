-- Alerts: the global configuration (channels + rules) and per-pipe rules as
-- JSON with their secrets sealed; the state of each alert (pending while its
-- condition has held for less than its duration, firing once it fired), so
-- that a restart neither fires an alert again nor loses its recovery; and the
-- outbox of messages still to deliver, retried with backoff.
CREATE TABLE alert_config (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    config_json TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE pipe_alerts (
    pipe        TEXT PRIMARY KEY REFERENCES pipes(name) ON DELETE CASCADE,
    config_json TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE alert_states (
    pipe        TEXT NOT NULL,
    rule        TEXT NOT NULL,
    subject     TEXT NOT NULL DEFAULT '',
    since       TEXT NOT NULL,
    firing      INTEGER NOT NULL DEFAULT 0,
    fired_at    TEXT,
    summary     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (pipe, rule, subject)
);
CREATE TABLE alert_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel     TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    next_at     TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_at);
