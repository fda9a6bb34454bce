-- A pending checkpoint rebase: when set (the reason), the next saved
-- checkpoint may be anywhere (the pipe moved to another server, whose binlog
-- file numbers are unrelated); saving it clears the column. NULL: checkpoints
-- only move forward.
ALTER TABLE checkpoints ADD COLUMN rebase_reason TEXT;
