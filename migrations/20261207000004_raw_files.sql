-- The raw record archive (crates/surgstream-lake/src/raw.rs, docs/lake.md "The raw archive"):
-- every record the ingestor consumed, byte for byte, in `raw/topic=…/date=…/hour=…/part-….parquet`.
-- A raw file is committed like a lake file: named here in the transaction that moves
-- `ingest_offsets` past its records (and names the typed files or applies the events of the
-- same range), so each consumed offset is archived exactly once. Files no row names are orphans
-- for the sweeper.
CREATE TABLE raw_files (
    consumer_group TEXT        NOT NULL,
    path           TEXT        NOT NULL,
    topic          TEXT        NOT NULL,
    partition      INT         NOT NULL,
    -- The flushed range (shared by the files of its hours), not the file's own first and last
    -- record.
    first_offset   BIGINT      NOT NULL,
    last_offset    BIGINT      NOT NULL CHECK (last_offset >= first_offset),
    records        BIGINT      NOT NULL CHECK (records > 0),
    bytes          BIGINT      NOT NULL,
    -- Earliest and latest Kafka timestamp of its records (NULL: none had one).
    min_timestamp  TIMESTAMPTZ,
    max_timestamp  TIMESTAMPTZ,
    committed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, path)
);
-- Look-ups by path alone (the sweeper, a fenced consumer's clean-up).
CREATE INDEX raw_files_path_idx ON raw_files (path);
-- A replay's selection: one group's files of one topic by time.
CREATE INDEX raw_files_time_idx ON raw_files (consumer_group, topic, max_timestamp);
