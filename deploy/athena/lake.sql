-- Amazon Athena (engine version 3): the raw telemetry lake as an external table, its
-- partitions projected (nothing to register, no MSCK REPAIR).
--
-- Placeholders, to replace before running:
--   ${BUCKET}, ${PREFIX}  the lake: --lake s3://BUCKET/PREFIX (lake at the bucket root: drop
--                         "${PREFIX}/" from both paths)
--   ${START_DATE}         the first date= folder, YYYY-MM-DD (the earliest event time, UTC)
-- ${date} and ${hour} in storage.location.template are Athena's own (each projected value):
-- leave them. With envsubst, name the variables to replace:
--   envsubst '${BUCKET} ${PREFIX} ${START_DATE}' < deploy/athena/lake.sql
-- Athena runs one statement at a time: run the two statements separately.
--
-- COMMITTED OR NOT: Athena reads every file under the prefix. Only the files named in
-- PostgreSQL's lake_files are committed; a crash between writing a file and committing it
-- leaves an orphan whose frames can also be in the file committed instead, so they count twice
-- until `surgstream sweep` (or the ingestor's own sweep, every --sweep-interval) removes it.
-- Run `surgstream sweep` before reading, or read the warehouse tables
-- (deploy/athena/warehouse.sql), which are built from the committed files only. To keep to the
-- committed files here, filter on Athena's "$path" (the object's s3:// URL) against the
-- manifest: "$path" IN ('s3://${BUCKET}/${PREFIX}/' || path for each lake_files row of the
-- ingestor's consumer group).
--
-- Types are the files': the three ids are FIXED_LEN_BYTE_ARRAY(16) with the UUID logical type,
-- read as binary (check on your engine version that Athena accepts that column as binary);
-- `timestamp` is INT64 microseconds UTC (Athena may return Hive-table timestamps at millisecond
-- precision); decimals exactly as written. The partitions are the frames' event time in UTC;
-- `date` is declared string, as Athena advises for partition keys (ISO dates compare
-- correctly as text). Redshift Spectrum does not use this table's projection:
-- deploy/redshift/spectrum.sql defines its own, in another Glue database.

CREATE DATABASE IF NOT EXISTS surgstream_lake;

CREATE EXTERNAL TABLE IF NOT EXISTS surgstream_lake.procedure_telemetry (
    telemetry_id        binary,
    procedure_id        binary,
    robot_id            binary,
    seq                 bigint,
    `timestamp`         timestamp,
    arm_position_x      decimal(10,4),
    arm_position_y      decimal(10,4),
    arm_position_z      decimal(10,4),
    arm_rotation        decimal(6,2),
    tool_type           string,
    grip_pressure       decimal(6,2),
    tremor_compensation decimal(5,2),
    camera_zoom         decimal(4,2),
    camera_angle        decimal(6,2),
    force_feedback_x    decimal(8,4),
    force_feedback_y    decimal(8,4),
    force_feedback_z    decimal(8,4),
    system_temperature  decimal(5,2),
    power_consumption   decimal(8,2)
)
PARTITIONED BY (`date` string, `hour` int)
STORED AS PARQUET
LOCATION 's3://${BUCKET}/${PREFIX}/procedure_telemetry/'
TBLPROPERTIES (
    'projection.enabled'            = 'true',
    'projection.date.type'          = 'date',
    'projection.date.format'        = 'yyyy-MM-dd',
    'projection.date.range'         = '${START_DATE},NOW',
    'projection.date.interval'      = '1',
    'projection.date.interval.unit' = 'DAYS',
    'projection.hour.type'          = 'integer',
    'projection.hour.range'         = '0,23',
    'projection.hour.digits'        = '2',
    'storage.location.template'     = 's3://${BUCKET}/${PREFIX}/procedure_telemetry/date=${date}/hour=${hour}/'
);

-- Queries: filter on "date" (and hour) so that Athena lists only those folders; in queries the
-- columns are double-quoted ("date", "timestamp"). One procedure's frames, by its UUID text:
--
--   SELECT seq, "timestamp", force_feedback_x, force_feedback_y, force_feedback_z
--   FROM surgstream_lake.procedure_telemetry
--   WHERE "date" BETWEEN '2024-12-05' AND '2024-12-06'
--     AND procedure_id = from_hex(replace('0b7e5c2a-5f0e-4a43-9d3b-2f1c8e6a9b10', '-', ''))
--   ORDER BY seq;
--
-- An id back to text: lower(to_hex(procedure_id)) gives the 32 hex digits without dashes.
