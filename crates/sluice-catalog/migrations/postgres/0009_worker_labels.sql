-- Mirrors ../0009_worker_labels.sql.
ALTER TABLE workers ADD COLUMN labels_json TEXT NOT NULL DEFAULT '{}';
