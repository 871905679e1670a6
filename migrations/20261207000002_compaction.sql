-- Compaction (crates/surgstream-ingest/src/compact.rs, docs/lake.md "Compaction"): small committed files of
-- closed hours rewritten into large sorted month files, swapped in the manifest in one
-- transaction that also records the swap here, for the Iceberg publisher to follow.

-- One swap: which files it replaced, which it added. `xid` orders it among the manifest's
-- commits (the publisher follows both in transaction order, see lake_files.xid); `replaced`
-- and `added` are kept whole (path, xid, rows, bytes, event times) because a later compaction
-- may replace this one's files before the publisher has followed it.
CREATE TABLE lake_compactions (
    id             BIGSERIAL   PRIMARY KEY,
    consumer_group TEXT        NOT NULL,
    topic          TEXT        NOT NULL,
    xid            xid8        NOT NULL DEFAULT pg_current_xact_id(),
    replaced       JSONB       NOT NULL,
    added          JSONB       NOT NULL,
    rows           BIGINT      NOT NULL CHECK (rows > 0),
    bytes_before   BIGINT      NOT NULL,
    bytes_after    BIGINT      NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX lake_compactions_xid_idx ON lake_compactions (consumer_group, topic, xid);

-- A compaction's output spans many Kafka partitions and offsets: it names none. Rows the
-- ingestor commits keep all three; `compaction_id` tells the two kinds apart.
ALTER TABLE lake_files
    ALTER COLUMN partition DROP NOT NULL,
    ALTER COLUMN first_offset DROP NOT NULL,
    ALTER COLUMN last_offset DROP NOT NULL,
    ADD COLUMN compaction_id BIGINT REFERENCES lake_compactions (id),
    ADD CONSTRAINT lake_files_source_check
        CHECK ((compaction_id IS NULL) = (partition IS NOT NULL AND first_offset IS NOT NULL AND last_offset IS NOT NULL));

-- Files a compaction replaced: out of the manifest (no reader of the committed lake sees them),
-- but still referenced by older Iceberg snapshots, so kept (the sweeper leaves them alone)
-- until a grace has passed and no retained snapshot references them.
CREATE TABLE lake_retired (
    consumer_group TEXT        NOT NULL,
    path           TEXT        NOT NULL,
    compaction_id  BIGINT      NOT NULL REFERENCES lake_compactions (id),
    retired_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, path)
);
CREATE INDEX lake_retired_path_idx ON lake_retired (path);
