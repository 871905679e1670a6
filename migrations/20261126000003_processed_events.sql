-- Every event id the store has processed, applied or rejected, with where it was read: a replay
-- of the events topic (offsets reset, a second consumer group on the same database) is
-- recognised event by event and changes nothing, not even the dead-letter topic.
CREATE TABLE IF NOT EXISTS processed_events (
    event_id         UUID        PRIMARY KEY,
    outcome          VARCHAR(10) NOT NULL CHECK (outcome IN ('applied', 'rejected')),
    source_topic     TEXT        NOT NULL,
    source_partition INTEGER     NOT NULL,
    source_offset    BIGINT      NOT NULL,
    processed_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
