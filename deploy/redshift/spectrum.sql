-- Amazon Redshift, optional: (1) the raw telemetry lake as a Redshift Spectrum external table,
-- and (2) the input relations that warehouse/*.sql reads, for running those files on Redshift
-- itself instead of loading the embedded build's Parquet (docs/warehouse-engines.md, path (b)).
--
-- Placeholders, to replace before running (all inside single-quoted strings):
--   ${BUCKET}, ${PREFIX}  the lake: --lake s3://BUCKET/PREFIX (lake at the bucket root: drop
--                         "${PREFIX}/" from the paths)
--   ${IAM_ROLE_ARN}       a role the cluster may assume, with s3:GetObject and s3:ListBucket
--                         on the lake (kms:Decrypt under SSE-KMS) and the AWS Glue Data Catalog
--                         permissions of Redshift Spectrum
--   ${GROUP}              the ingestor's consumer group (optional filter of section 3 only)
--
-- CREATE EXTERNAL SCHEMA / TABLE and ALTER TABLE … ADD PARTITION cannot run inside a
-- transaction block: run them with autocommit on.

-- ---------------------------------------------------------------------------------------------
-- 1. The lake: procedure_telemetry/date=YYYY-MM-DD/hour=HH/part-….parquet (docs/lake.md).
--
-- Every file under the prefix is read, committed or not. A crash between writing a file and
-- committing it leaves an orphan that PostgreSQL's lake_files does not name, and its frames can
-- also be in the file that was committed instead: they count twice until `surgstream sweep`
-- (or the ingestor's own sweep, every --sweep-interval) removes it. Run `surgstream sweep`
-- before reading, read the warehouse tables instead, or keep to the committed files with the
-- "$path" filter of section 3.
--
-- Types are those of the files, which Spectrum requires: the three ids are
-- FIXED_LEN_BYTE_ARRAY(16) with the UUID logical type, read here as VARBYTE(16) (check on your
-- Redshift version that Spectrum accepts that column type for it); "timestamp" is INT64
-- microseconds UTC; decimals are DECIMAL(p,s) exactly as written.

-- The Glue database is not deploy/athena/lake.sql's (surgstream_lake): Spectrum ignores
-- Athena's partition projection, so it gets a table of its own, with registered partitions.
CREATE EXTERNAL SCHEMA IF NOT EXISTS surgstream_lake
FROM DATA CATALOG
DATABASE 'surgstream_spectrum'
IAM_ROLE '${IAM_ROLE_ARN}'
CREATE EXTERNAL DATABASE IF NOT EXISTS;

CREATE EXTERNAL TABLE surgstream_lake.procedure_telemetry (
    telemetry_id        VARBYTE(16),
    procedure_id        VARBYTE(16),
    robot_id            VARBYTE(16),
    seq                 BIGINT,
    "timestamp"         TIMESTAMP,      -- a reserved word in Redshift: keep the quotes
    arm_position_x      DECIMAL(10,4),
    arm_position_y      DECIMAL(10,4),
    arm_position_z      DECIMAL(10,4),
    arm_rotation        DECIMAL(6,2),
    tool_type           VARCHAR(200),
    grip_pressure       DECIMAL(6,2),
    tremor_compensation DECIMAL(5,2),
    camera_zoom         DECIMAL(4,2),
    camera_angle        DECIMAL(6,2),
    force_feedback_x    DECIMAL(8,4),
    force_feedback_y    DECIMAL(8,4),
    force_feedback_z    DECIMAL(8,4),
    system_temperature  DECIMAL(5,2),
    power_consumption   DECIMAL(8,2)
)
PARTITIONED BY ("date" DATE, hour INTEGER)
STORED AS PARQUET
LOCATION 's3://${BUCKET}/${PREFIX}/procedure_telemetry/';

-- ---------------------------------------------------------------------------------------------
-- 2. Partitions. Spectrum does not use Athena's partition projection: each date/hour folder is
--    registered once, before or after it fills (an empty partition reads as no rows). One
--    statement may add many partitions; a day:
--
--   ALTER TABLE surgstream_lake.procedure_telemetry ADD IF NOT EXISTS
--     PARTITION ("date" = '2024-12-05', hour = '0')
--       LOCATION 's3://${BUCKET}/${PREFIX}/procedure_telemetry/date=2024-12-05/hour=00/'
--     PARTITION ("date" = '2024-12-05', hour = '1')
--       LOCATION 's3://${BUCKET}/${PREFIX}/procedure_telemetry/date=2024-12-05/hour=01/'
--     …
--     PARTITION ("date" = '2024-12-05', hour = '23')
--       LOCATION 's3://${BUCKET}/${PREFIX}/procedure_telemetry/date=2024-12-05/hour=23/';
--
--    The statements for a range of days, from a shell (GNU date), e.g. daily from a scheduler
--    for today and tomorrow:
--
--   for d in $(seq 0 1); do
--     day=$(date -u -d "today + $d day" +%F)
--     printf "ALTER TABLE surgstream_lake.procedure_telemetry ADD IF NOT EXISTS"
--     for h in $(seq 0 23); do
--       printf "\n  PARTITION (\"date\" = '%s', hour = '%d') LOCATION 's3://%s/%s/procedure_telemetry/date=%s/hour=%02d/'" \
--         "$day" "$h" "$BUCKET" "$PREFIX" "$day" "$h"
--     done
--     printf ";\n"
--   done
--
--    Frames are partitioned by their own (event) time in UTC, so a backfill writes into past
--    days: register the whole range it covers.
--    Check: SELECT values, location FROM svv_external_partitions
--           WHERE schemaname = 'surgstream_lake' AND tablename = 'procedure_telemetry';

-- ---------------------------------------------------------------------------------------------
-- 3. Inputs of warehouse/*.sql on Redshift (path (b)). The files read unqualified names; these
--    views give them those names in one schema, and the files then run with
--      SET search_path TO warehouse_input;
--    after the dialect edits listed in docs/warehouse-engines.md.
--
-- The relational tables must first be readable in Redshift. These views assume a schema `src`
-- holding surgical_robots, surgical_procedures, procedure_outcomes and
-- robot_maintenance_logs with the data model's columns, UUID columns as their canonical text
-- (Redshift has no UUID type): e.g. a federated-query schema (CREATE EXTERNAL SCHEMA src FROM
-- POSTGRES …) over a PostgreSQL schema of views that cast the uuid columns ::text, or a
-- replica. Check how your integration maps PostgreSQL's uuid and timestamptz.
-- Views over external (Spectrum or federated) tables must be late-binding: WITH NO SCHEMA
-- BINDING, every table schema-qualified.
-- No patient identifier enters the warehouse: surgical_procedures omits patient_id.

CREATE SCHEMA IF NOT EXISTS warehouse_input;

CREATE OR REPLACE VIEW warehouse_input.surgical_robots AS
SELECT
    robot_id, robot_serial_number, robot_model, manufacturer, installation_date,
    facility_id, facility_name, status, last_maintenance_date, total_procedures,
    firmware_version
FROM src.surgical_robots
WITH NO SCHEMA BINDING;

-- procedure_key: the UUID's 16 bytes, to join the lake's binary procedure_id.
CREATE OR REPLACE VIEW warehouse_input.surgical_procedures AS
SELECT
    procedure_id,
    FROM_HEX(REPLACE(procedure_id, '-', '')) AS procedure_key,
    robot_id, procedure_type, procedure_category, scheduled_start, start_time, end_time,
    duration_minutes, surgeon_id, surgeon_name, patient_age, patient_gender,
    complexity_score, status
FROM src.surgical_procedures
WITH NO SCHEMA BINDING;

CREATE OR REPLACE VIEW warehouse_input.procedure_outcomes AS
SELECT
    outcome_id, procedure_id, success_status, blood_loss_ml, complications,
    hospital_stay_days, readmission_30day, patient_satisfaction_score, recovery_score,
    follow_up_required
FROM src.procedure_outcomes
WITH NO SCHEMA BINDING;

CREATE OR REPLACE VIEW warehouse_input.robot_maintenance_logs AS
SELECT
    maintenance_id, robot_id, maintenance_date, maintenance_type, technician_id,
    technician_name, parts_replaced, downtime_hours, next_maintenance_date, cost
FROM src.robot_maintenance_logs
WITH NO SCHEMA BINDING;

-- The lake. To read only committed files (what the embedded build reads), uncomment the
-- WHERE clause: Spectrum's "$path" pseudocolumn is the object's s3:// URL and
-- lake_files.path is relative to the lake's root. It needs lake_files in src too, and
-- ${GROUP} = the ingestor's consumer group. Check that your version allows "$path" in a view.
CREATE OR REPLACE VIEW warehouse_input.procedure_telemetry AS
SELECT
    telemetry_id, procedure_id, robot_id, seq, "timestamp",
    arm_position_x, arm_position_y, arm_position_z, arm_rotation, tool_type, grip_pressure,
    tremor_compensation, camera_zoom, camera_angle, force_feedback_x, force_feedback_y,
    force_feedback_z, system_temperature, power_consumption
FROM surgstream_lake.procedure_telemetry
-- WHERE "$path" IN (SELECT 's3://${BUCKET}/${PREFIX}/' || path FROM src.lake_files
--                   WHERE consumer_group = '${GROUP}')
WITH NO SCHEMA BINDING;

-- calendar(day DATE): every day from the first to the last any table refers to (UTC), as the
-- embedded build makes it. generate_series runs on the leader node only and cannot feed a
-- query over tables; a numbers CTE can: 0 … 9,999 days (27 years).
CREATE OR REPLACE VIEW warehouse_input.calendar AS
WITH digits AS (
    SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
    UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9
),
numbers AS (
    SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d AS n
    FROM digits a CROSS JOIN digits b CROSS JOIN digits c CROSS JOIN digits e
),
days AS (
    SELECT CAST(COALESCE(start_time, scheduled_start) AS DATE) AS d FROM src.surgical_procedures
    UNION ALL SELECT maintenance_date FROM src.robot_maintenance_logs
    UNION ALL SELECT next_maintenance_date FROM src.robot_maintenance_logs
    UNION ALL SELECT installation_date FROM src.surgical_robots
),
bounds AS (
    SELECT MIN(d) AS first_day, MAX(d) AS last_day FROM days
)
SELECT CAST(DATEADD(day, n, first_day) AS DATE) AS day
FROM numbers CROSS JOIN bounds
WHERE n <= DATEDIFF(day, first_day, last_day)
WITH NO SCHEMA BINDING;

-- procedure_telemetry_agg: warehouse/procedure_telemetry_agg.sql in Redshift's dialect, and
-- nothing else changed: DOUBLE PRECISION for DOUBLE, and the span between the first and the
-- last frame as DATEDIFF in microseconds (exact) instead of DATE_PART('epoch', …). p95 is the
-- file's ROW_NUMBER form of PERCENTILE_CONT(0.95); Redshift's own
-- PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY force_n) in per_procedure gives the same value.
-- Materialized, because it is the one step that scans the lake (the CTE frames is read twice:
-- if Redshift scans the lake twice, materialize frames first). To rebuild one month, restrict
-- the lake by "date" (a month's frames lie between its first start and its last end).
DROP TABLE IF EXISTS warehouse_input.procedure_telemetry_agg;

CREATE TABLE warehouse_input.procedure_telemetry_agg AS
WITH frames AS (
    SELECT
        procedure_id,
        "timestamp" AS frame_at,
        SQRT(
            CAST(force_feedback_x AS DOUBLE PRECISION) * CAST(force_feedback_x AS DOUBLE PRECISION)
            + CAST(force_feedback_y AS DOUBLE PRECISION) * CAST(force_feedback_y AS DOUBLE PRECISION)
            + CAST(force_feedback_z AS DOUBLE PRECISION) * CAST(force_feedback_z AS DOUBLE PRECISION)
        ) AS force_n,
        CAST(tremor_compensation AS DOUBLE PRECISION) AS tremor_compensation,
        CAST(grip_pressure AS DOUBLE PRECISION) AS grip_pressure,
        system_temperature,
        CAST(power_consumption AS DOUBLE PRECISION) AS power_w,
        camera_zoom
    FROM warehouse_input.procedure_telemetry
),
per_procedure AS (
    SELECT
        procedure_id,
        COUNT(*) AS frames,
        MIN(frame_at) AS first_frame_at,
        MAX(frame_at) AS last_frame_at,
        AVG(force_n) AS force_mean_n,
        MAX(force_n) AS force_max_n,
        AVG(tremor_compensation) AS tremor_compensation_mean_pct,
        AVG(grip_pressure) AS grip_pressure_mean,
        MAX(grip_pressure) AS grip_pressure_max,
        MAX(system_temperature) AS system_temperature_max_c,
        AVG(power_w) * DATEDIFF(microsecond, MIN(frame_at), MAX(frame_at)) / 3600000000.0 AS energy_wh,
        MIN(camera_zoom) AS camera_zoom_min,
        MAX(camera_zoom) AS camera_zoom_max
    FROM frames
    GROUP BY procedure_id
),
ranked AS (
    SELECT
        procedure_id,
        force_n,
        ROW_NUMBER() OVER (PARTITION BY procedure_id ORDER BY force_n) - 1 AS i
    FROM frames
),
p95 AS (
    SELECT
        r.procedure_id,
        MIN(CASE WHEN r.i = FLOOR((p.frames - 1) * 0.95) THEN r.force_n END) AS below,
        MIN(CASE WHEN r.i = CEIL((p.frames - 1) * 0.95) THEN r.force_n END) AS above,
        MIN((p.frames - 1) * 0.95 - FLOOR((p.frames - 1) * 0.95)) AS fraction
    FROM ranked r
    JOIN per_procedure p ON p.procedure_id = r.procedure_id
    WHERE r.i = FLOOR((p.frames - 1) * 0.95) OR r.i = CEIL((p.frames - 1) * 0.95)
    GROUP BY r.procedure_id
)
SELECT
    p.procedure_id,
    p.frames,
    p.first_frame_at,
    p.last_frame_at,
    p.force_mean_n,
    q.below + (q.above - q.below) * q.fraction AS force_p95_n,
    p.force_max_n,
    p.tremor_compensation_mean_pct,
    p.grip_pressure_mean,
    p.grip_pressure_max,
    p.system_temperature_max_c,
    p.energy_wh,
    p.camera_zoom_min,
    p.camera_zoom_max
FROM per_procedure p
JOIN p95 q ON q.procedure_id = p.procedure_id;

-- fact_robot_day.sql reads the month's facts: the loaded (or just built) warehouse tables.
CREATE OR REPLACE VIEW warehouse_input.fact_procedure AS
SELECT * FROM warehouse.fact_procedure;

CREATE OR REPLACE VIEW warehouse_input.fact_maintenance AS
SELECT * FROM warehouse.fact_maintenance;

-- Then, for example (each file edited per docs/warehouse-engines.md):
--   SET search_path TO warehouse_input;
--   BEGIN;
--   DELETE FROM warehouse.fact_procedure;
--   INSERT INTO warehouse.fact_procedure <the SELECT of warehouse/fact_procedure.sql>;
--   … fact_maintenance.sql, then fact_robot_day.sql (it reads the two above) …
--   COMMIT;
-- The files' SELECT lists are in the tables' column order (deploy/redshift/warehouse.sql).
