-- The pipe's version clock: every `_peerdb_version` handed out so far is below
-- `next_version`. NULL: a pipe created before the clock, whose versions were
-- derived from binlog positions (the engine seeds the clock above them).
ALTER TABLE checkpoints ADD COLUMN next_version INTEGER;
