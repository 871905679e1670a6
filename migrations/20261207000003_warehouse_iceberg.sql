-- The warehouse's tables as Iceberg tables (`warehouse.fact_procedure`, … in the Iceberg SQL
-- catalog): each rebuilt month (or the dimensions) is written as a new object under
-- warehouse_iceberg/<table>/data/, recorded here in the same transaction as the month's rows,
-- and the Iceberg table is then made to list exactly the current rows (retired_at IS NULL).
-- A retired object is deleted once past its grace and listed by no retained snapshot.
CREATE TABLE warehouse.iceberg_files (
    path        TEXT PRIMARY KEY,
    tbl         TEXT NOT NULL,
    part        TEXT NOT NULL,          -- 'YYYY-MM', or 'dimensions'
    month_key   INT,                    -- the fact tables' partition; NULL for a dimension
    rows        BIGINT NOT NULL CHECK (rows >= 0),
    bytes       BIGINT NOT NULL CHECK (bytes > 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    retired_at  TIMESTAMPTZ
);
CREATE INDEX iceberg_files_current_idx ON warehouse.iceberg_files (tbl, part) WHERE retired_at IS NULL;
CREATE INDEX iceberg_files_retired_idx ON warehouse.iceberg_files (retired_at) WHERE retired_at IS NOT NULL;
