-- Mirrors ../0003_version_clock.sql.
ALTER TABLE checkpoints ADD COLUMN next_version BIGINT;
