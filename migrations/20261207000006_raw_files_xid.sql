-- The raw archive's Iceberg tables (`raw.<topic>`, crates/surgstream-iceberg/src/raw.rs) follow
-- `raw_files` as the telemetry table follows `lake_files`: by the id of the transaction that
-- committed each row, below a watermark kept in the table's snapshots (see
-- 20261207000001_iceberg.sql for why a transaction id and not a sequence). Rows committed before
-- this migration get the migration's own id.
ALTER TABLE raw_files ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX raw_files_xid_idx ON raw_files (consumer_group, topic, xid);
