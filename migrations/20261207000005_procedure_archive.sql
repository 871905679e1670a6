-- The procedure archive (`surgstream archive`, `ingest --archive-after`): finished procedures
-- older than the retention leave PostgreSQL for the lake's `archive/` — their row, their outcome
-- and their status audit, as month-partitioned Parquet — in the transaction that records the
-- objects here. `surgstream restore` brings them back.

-- Every archive object: `archive/<table>/month=YYYY-MM/part-<run>.parquet`. An object no row
-- names is an interrupted run's and is swept.
CREATE TABLE archive_files (
    path       TEXT        PRIMARY KEY,
    table_name TEXT        NOT NULL
        CHECK (table_name IN ('surgical_procedures', 'procedure_outcomes', 'status_audit')),
    month_key  INTEGER     NOT NULL,  -- yyyymm of the procedures' coalesce(start_time, scheduled_start)
    run        UUID        NOT NULL,  -- the archive batch that wrote it
    rows       BIGINT      NOT NULL,
    bytes      BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX archive_files_month_idx ON archive_files (table_name, month_key);
CREATE INDEX archive_files_run_idx ON archive_files (run, month_key);

-- What stays of an archived procedure in PostgreSQL: where it went, and what the warehouse's
-- planner and the event store need without opening the archive. Its patient, surgeon and
-- outcome columns are in the archive only. A row here is the procedure's archived version: a
-- restore deletes it (the object keeps the rows, no longer live).
CREATE TABLE archived_procedures (
    procedure_id       UUID        PRIMARY KEY,
    robot_id           UUID        NOT NULL REFERENCES surgical_robots (robot_id),
    status             VARCHAR(20) NOT NULL,
    month_key          INTEGER     NOT NULL,
    run                UUID        NOT NULL,
    start_time         TIMESTAMPTZ,
    end_time           TIMESTAMPTZ,
    updated_at         TIMESTAMPTZ NOT NULL,  -- the procedure's, as archived
    outcome_updated_at TIMESTAMPTZ,           -- its outcome's, as archived
    archived_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX archived_procedures_month_idx ON archived_procedures (month_key);
CREATE INDEX archived_procedures_run_idx ON archived_procedures (run, month_key);
