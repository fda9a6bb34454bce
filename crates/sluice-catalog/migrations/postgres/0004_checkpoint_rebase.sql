-- Mirrors ../0004_checkpoint_rebase.sql.
ALTER TABLE checkpoints ADD COLUMN rebase_reason TEXT;
