-- A file is committed by one consumer group: the manifest is keyed by (group, path). Two groups
-- that read the same topic into two lakes on one database (a replay into a second lake, a
-- second environment) write the same file names (part-<partition>-<first>-<last>); with the
-- path alone as the key, the second group's commit failed with a unique violation.
ALTER TABLE lake_files DROP CONSTRAINT lake_files_pkey;
ALTER TABLE lake_files ADD PRIMARY KEY (consumer_group, path);
-- Look-ups by path alone (the sweeper, a fenced consumer's clean-up).
CREATE INDEX lake_files_path_idx ON lake_files (path);
