-- Worker labels (`sluice server --labels k=v,...`): a JSON object of strings,
-- matched against a pipe's placement constraint.
ALTER TABLE workers ADD COLUMN labels_json TEXT NOT NULL DEFAULT '{}';
