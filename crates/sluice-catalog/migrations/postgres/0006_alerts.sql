-- Mirrors ../0006_alerts.sql.
CREATE TABLE alert_config (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    config_json TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE pipe_alerts (
    pipe        TEXT COLLATE "C" PRIMARY KEY REFERENCES pipes(name) ON DELETE CASCADE,
    config_json TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE alert_states (
    pipe        TEXT COLLATE "C" NOT NULL,
    rule        TEXT COLLATE "C" NOT NULL,
    subject     TEXT COLLATE "C" NOT NULL DEFAULT '',
    since       TEXT NOT NULL,
    firing      BIGINT NOT NULL DEFAULT 0,
    fired_at    TEXT,
    summary     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (pipe, rule, subject)
);
CREATE TABLE alert_outbox (
    id          BIGSERIAL PRIMARY KEY,
    channel     TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    next_at     TEXT COLLATE "C" NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_at);
