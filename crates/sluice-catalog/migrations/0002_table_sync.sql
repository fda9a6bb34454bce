-- Tables added to or resynced in a live pipe are copied with their own snapshot
-- version (NULL: the pipe's initial one, kept in checkpoints).
ALTER TABLE pipe_tables ADD COLUMN snapshot_version INTEGER;
