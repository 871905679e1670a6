-- Amazon Redshift: the warehouse's star schema, loaded from the Parquet that `surgstream
-- warehouse` writes to the lake's object store (docs/warehouse-engines.md, path (a)).
--
-- Placeholders, to replace before running (all inside single-quoted strings but ${MONTH_KEY}):
--   ${BUCKET}        the lake's bucket            (--lake s3://BUCKET/PREFIX)
--   ${PREFIX}        the lake's prefix, no slashes at either end (lake at the bucket root:
--                    drop "${PREFIX}/" from the paths)
--   ${IAM_ROLE_ARN}  a role the cluster or workgroup may assume, with s3:GetObject and
--                    s3:ListBucket on the prefix (and kms:Decrypt under SSE-KMS)
--   ${MONTH}         'YYYY-MM' and ${MONTH_KEY} yyyymm, in section 4 only
--
-- Files read (docs/warehouse-engines.md has the layout):
--   s3://${BUCKET}/${PREFIX}/warehouse/<dimension>/part-0.parquet
--   s3://${BUCKET}/${PREFIX}/warehouse/<fact>/month=YYYY-MM/part-0.parquet
--
-- COPY … FORMAT AS PARQUET maps columns by position and needs the same number of columns as the
-- file, and each column's type must be the file's: the column order and types below are those of
-- the Parquet files (not of PostgreSQL's warehouse schema, which differs in a few integer and
-- decimal widths). Change a table here only together with its warehouse/*.sql file.
--   * ids are the UUIDs' canonical text, VARCHAR(36);
--   * timestamps are INT64 microseconds, UTC: TIMESTAMP (UTC by convention, as in Redshift);
--   * VARCHAR(n) counts bytes in Redshift and characters in PostgreSQL: the lengths are four
--     times PostgreSQL's, so that any UTF-8 value fits (COPY from Parquet cannot truncate);
--   * NOT NULL where PostgreSQL's warehouse schema has it (the same rows load there);
--   * primary keys are informational (Redshift does not enforce them): the DELETE + COPY
--     patterns below never load a row twice.
-- The bucket must be in the cluster's Region (COPY from Parquet takes no REGION option).

CREATE SCHEMA IF NOT EXISTS warehouse;

-- ---------------------------------------------------------------------------------------------
-- 1. Dimensions: small, replicated to every node (DISTSTYLE ALL), so that no star join moves a
--    dimension row whatever the fact table's distribution.

CREATE TABLE IF NOT EXISTS warehouse.dim_date (
    date_key     INTEGER NOT NULL,
    "date"       DATE    NOT NULL,
    year         INTEGER NOT NULL,
    quarter      INTEGER NOT NULL,
    month        INTEGER NOT NULL,
    month_key    INTEGER NOT NULL,
    day_of_month INTEGER NOT NULL,
    day_of_week  BIGINT  NOT NULL,   -- ISO: Monday = 1 … Sunday = 7 (BIGINT in the Parquet)
    weekend      BOOLEAN NOT NULL,
    PRIMARY KEY (date_key)
)
DISTSTYLE ALL
SORTKEY (date_key);

CREATE TABLE IF NOT EXISTS warehouse.dim_facility (
    facility_id             VARCHAR(200) NOT NULL,
    facility_name           VARCHAR(800) NOT NULL,
    robots                  BIGINT       NOT NULL,
    operational_robots      BIGINT       NOT NULL,
    first_installation_date DATE         NOT NULL,
    PRIMARY KEY (facility_id)
)
DISTSTYLE ALL
SORTKEY (facility_id);

CREATE TABLE IF NOT EXISTS warehouse.dim_robot (
    robot_id              VARCHAR(36)   NOT NULL,
    robot_serial_number   VARCHAR(200)  NOT NULL,
    robot_model           VARCHAR(400)  NOT NULL,
    manufacturer          VARCHAR(400)  NOT NULL,
    facility_id           VARCHAR(200)  NOT NULL,
    facility_name         VARCHAR(800)  NOT NULL,
    installation_date     DATE          NOT NULL,
    installation_date_key INTEGER       NOT NULL,
    status                VARCHAR(80)   NOT NULL,
    firmware_version      VARCHAR(80)   NOT NULL,
    last_maintenance_date DATE,
    total_procedures      INTEGER       NOT NULL,
    maintenance_events    BIGINT        NOT NULL,
    maintenance_cost      DECIMAL(22,2) NOT NULL,
    downtime_hours        DECIMAL(22,2) NOT NULL,
    PRIMARY KEY (robot_id)
)
DISTSTYLE ALL
SORTKEY (robot_id);

CREATE TABLE IF NOT EXISTS warehouse.dim_surgeon (
    surgeon_id         VARCHAR(200) NOT NULL,
    surgeon_name       VARCHAR(800) NOT NULL,
    procedures         BIGINT       NOT NULL,
    procedure_types    BIGINT       NOT NULL,
    first_procedure_at TIMESTAMP    NOT NULL,
    last_procedure_at  TIMESTAMP    NOT NULL,
    PRIMARY KEY (surgeon_id)
)
DISTSTYLE ALL
SORTKEY (surgeon_id);

-- ---------------------------------------------------------------------------------------------
-- 2. Facts.
--
-- Distribution: DISTKEY (robot_id) on all three facts, not procedure_id.
--   * Every dimension is DISTSTYLE ALL, so a fact-to-dimension join never redistributes,
--     whatever the fact's key. The key only decides how evenly rows spread over the slices and
--     whether fact-to-fact work is local.
--   * procedure_id is unique (perfect spread) but nothing joins or groups on it: the outcome and
--     the telemetry aggregates are already columns of the row.
--   * robot_id is the key the facts share: fact_robot_day.sql groups fact_procedure and
--     fact_maintenance by (robot_id, date_key) and joins them on it, and per-robot analyses join
--     the three facts on it. With the same DISTKEY that work needs no redistribution.
--   * The price is skew when there are few robots per slice (the sample fleet has 50). After a
--     load, check SELECT "table", skew_rows FROM svv_table_info WHERE schema = 'warehouse';
--     if skew_rows is high, ALTER TABLE warehouse.fact_procedure ALTER DISTSTYLE EVEN (or AUTO).
--
-- Sort: COMPOUND SORTKEY (month_key, date_key). Month reloads (DELETE … WHERE month_key = …) and
-- date-range filters read only the blocks whose zone maps match; date_key order is also
-- month_key order, so one sort serves both. COPY appends unsorted rows; automatic table sort
-- (or VACUUM SORT ONLY, outside a transaction) sorts them.

CREATE TABLE IF NOT EXISTS warehouse.fact_procedure (
    procedure_id                 VARCHAR(36)      NOT NULL,
    robot_id                     VARCHAR(36)      NOT NULL,
    facility_id                  VARCHAR(200)     NOT NULL,
    surgeon_id                   VARCHAR(200)     NOT NULL,
    date_key                     INTEGER          NOT NULL,
    month_key                    INTEGER          NOT NULL,
    procedure_type               VARCHAR(400)     NOT NULL,
    procedure_category           VARCHAR(200)     NOT NULL,
    status                       VARCHAR(80)      NOT NULL,
    scheduled_start              TIMESTAMP        NOT NULL,
    start_time                   TIMESTAMP,
    end_time                     TIMESTAMP,
    duration_minutes             INTEGER,
    patient_age                  INTEGER          NOT NULL,
    patient_age_band             VARCHAR(8)       NOT NULL,
    patient_gender               VARCHAR(80)      NOT NULL,
    complexity_score             DECIMAL(3,2)     NOT NULL,
    has_outcome                  BOOLEAN          NOT NULL,
    success_status               VARCHAR(80),
    complicated                  BIGINT,          -- 0/1, NULL without an outcome (BIGINT in the Parquet)
    blood_loss_ml                INTEGER,
    hospital_stay_days           INTEGER,
    readmission_30day            BOOLEAN,
    patient_satisfaction_score   INTEGER,
    recovery_score               INTEGER,
    follow_up_required           BOOLEAN,
    frames                       BIGINT           NOT NULL,
    first_frame_at               TIMESTAMP,
    last_frame_at                TIMESTAMP,
    force_mean_n                 DOUBLE PRECISION,
    force_p95_n                  DOUBLE PRECISION,
    force_max_n                  DOUBLE PRECISION,
    tremor_compensation_mean_pct DOUBLE PRECISION,
    grip_pressure_mean           DOUBLE PRECISION,
    grip_pressure_max            DOUBLE PRECISION,  -- DOUBLE in the Parquet (DECIMAL(6,2) in PostgreSQL)
    system_temperature_max_c     DECIMAL(5,2),
    energy_wh                    DOUBLE PRECISION,
    camera_zoom_min              DECIMAL(4,2),
    camera_zoom_max              DECIMAL(4,2),
    PRIMARY KEY (procedure_id)
)
DISTKEY (robot_id)
COMPOUND SORTKEY (month_key, date_key);

CREATE TABLE IF NOT EXISTS warehouse.fact_maintenance (
    maintenance_id        VARCHAR(36)   NOT NULL,
    robot_id              VARCHAR(36)   NOT NULL,
    facility_id           VARCHAR(200)  NOT NULL,
    technician_id         VARCHAR(200)  NOT NULL,
    date_key              INTEGER       NOT NULL,
    month_key             INTEGER       NOT NULL,
    maintenance_date      DATE          NOT NULL,
    maintenance_type      VARCHAR(200)  NOT NULL,
    unplanned             BIGINT        NOT NULL,  -- 0/1 (BIGINT in the Parquet)
    parts_replaced        BIGINT        NOT NULL,  -- 0/1 (BIGINT in the Parquet)
    downtime_hours        DECIMAL(6,2)  NOT NULL,
    cost                  DECIMAL(10,2) NOT NULL,
    next_maintenance_date DATE,
    PRIMARY KEY (maintenance_id)
)
DISTKEY (robot_id)
COMPOUND SORTKEY (month_key, date_key);

CREATE TABLE IF NOT EXISTS warehouse.fact_robot_day (
    robot_id           VARCHAR(36)      NOT NULL,
    facility_id        VARCHAR(200)     NOT NULL,
    date_key           INTEGER          NOT NULL,
    month_key          INTEGER          NOT NULL,
    procedures         BIGINT           NOT NULL,
    completed          BIGINT           NOT NULL,
    aborted            BIGINT           NOT NULL,
    cancelled          BIGINT           NOT NULL,
    minutes_in_use     BIGINT           NOT NULL,
    frames             BIGINT           NOT NULL,
    energy_wh          DOUBLE PRECISION NOT NULL,
    maintenance_events BIGINT           NOT NULL,
    downtime_hours     DECIMAL(22,2)    NOT NULL,
    maintenance_cost   DECIMAL(22,2)    NOT NULL,
    PRIMARY KEY (robot_id, date_key)
)
DISTKEY (robot_id)
COMPOUND SORTKEY (month_key, date_key);

-- ---------------------------------------------------------------------------------------------
-- 3. Full load: every table from its whole prefix (a fact's prefix holds every month=… folder).
--    Re-runnable: one transaction empties and reloads the seven tables, so readers see the old
--    warehouse or the new one. (Not TRUNCATE: in Redshift it commits the open transaction.)
--    Load after a refresh has finished (PostgreSQL's warehouse.refresh_state has the times):
--    a refresh rewrites a month's three files one after the other.

BEGIN;

DELETE FROM warehouse.dim_date;
DELETE FROM warehouse.dim_facility;
DELETE FROM warehouse.dim_robot;
DELETE FROM warehouse.dim_surgeon;
DELETE FROM warehouse.fact_procedure;
DELETE FROM warehouse.fact_maintenance;
DELETE FROM warehouse.fact_robot_day;

COPY warehouse.dim_date
FROM 's3://${BUCKET}/${PREFIX}/warehouse/dim_date/'
IAM_ROLE '${IAM_ROLE_ARN}'
FORMAT AS PARQUET;

COPY warehouse.dim_facility
FROM 's3://${BUCKET}/${PREFIX}/warehouse/dim_facility/'
IAM_ROLE '${IAM_ROLE_ARN}'
FORMAT AS PARQUET;

COPY warehouse.dim_robot
FROM 's3://${BUCKET}/${PREFIX}/warehouse/dim_robot/'
IAM_ROLE '${IAM_ROLE_ARN}'
FORMAT AS PARQUET;

COPY warehouse.dim_surgeon
FROM 's3://${BUCKET}/${PREFIX}/warehouse/dim_surgeon/'
IAM_ROLE '${IAM_ROLE_ARN}'
FORMAT AS PARQUET;

COPY warehouse.fact_procedure
FROM 's3://${BUCKET}/${PREFIX}/warehouse/fact_procedure/'
IAM_ROLE '${IAM_ROLE_ARN}'
FORMAT AS PARQUET;

COPY warehouse.fact_maintenance
FROM 's3://${BUCKET}/${PREFIX}/warehouse/fact_maintenance/'
IAM_ROLE '${IAM_ROLE_ARN}'
FORMAT AS PARQUET;

COPY warehouse.fact_robot_day
FROM 's3://${BUCKET}/${PREFIX}/warehouse/fact_robot_day/'
IAM_ROLE '${IAM_ROLE_ARN}'
FORMAT AS PARQUET;

COMMIT;

-- ---------------------------------------------------------------------------------------------
-- 4. Incremental reload: templates (commented out, so that this file runs as sections 1–3);
--    use them instead of section 3 once the tables are loaded.
--
-- `surgstream warehouse` rebuilds a month's three facts together and records it in
-- PostgreSQL's warehouse.refresh_state (part = 'YYYY-MM', refreshed_at); the dimensions are
-- part = 'dimensions'. Reload what changed since your last load:
--   SELECT part, refreshed_at FROM warehouse.refresh_state WHERE refreshed_at > <last load>;
-- A month that left refresh_state (its procedures moved to another month) is gone: delete it
-- (4c). refresh_state is the authority on which months exist, not the listing of the prefix.
--
-- 4a. One month, e.g. ${MONTH} = '2024-12', ${MONTH_KEY} = 202412. The trailing slash matters:
--     COPY takes every object whose key starts with the prefix ('month=2024-1' would also match
--     2024-10, -11 and -12).
--
--   BEGIN;
--   DELETE FROM warehouse.fact_procedure   WHERE month_key = ${MONTH_KEY};
--   DELETE FROM warehouse.fact_maintenance WHERE month_key = ${MONTH_KEY};
--   DELETE FROM warehouse.fact_robot_day   WHERE month_key = ${MONTH_KEY};
--   COPY warehouse.fact_procedure
--   FROM 's3://${BUCKET}/${PREFIX}/warehouse/fact_procedure/month=${MONTH}/'
--   IAM_ROLE '${IAM_ROLE_ARN}'
--   FORMAT AS PARQUET;
--   COPY warehouse.fact_maintenance
--   FROM 's3://${BUCKET}/${PREFIX}/warehouse/fact_maintenance/month=${MONTH}/'
--   IAM_ROLE '${IAM_ROLE_ARN}'
--   FORMAT AS PARQUET;
--   COPY warehouse.fact_robot_day
--   FROM 's3://${BUCKET}/${PREFIX}/warehouse/fact_robot_day/month=${MONTH}/'
--   IAM_ROLE '${IAM_ROLE_ARN}'
--   FORMAT AS PARQUET;
--   COMMIT;
--
-- 4b. The dimensions (after part = 'dimensions' changed): the same DELETE + COPY as section 3,
--     for the four dim_ tables only, in one transaction.
--
-- 4c. A month that no longer exists:
--
--   BEGIN;
--   DELETE FROM warehouse.fact_procedure   WHERE month_key = ${MONTH_KEY};
--   DELETE FROM warehouse.fact_maintenance WHERE month_key = ${MONTH_KEY};
--   DELETE FROM warehouse.fact_robot_day   WHERE month_key = ${MONTH_KEY};
--   COMMIT;
--
-- Deleted rows are reclaimed by automatic VACUUM DELETE (or VACUUM DELETE ONLY, outside a
-- transaction).
