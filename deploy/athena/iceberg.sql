-- Amazon Athena (engine version 3): the lake's Iceberg tables, as `surgstream iceberg register
-- --glue` puts them in the Glue Data Catalog. Nothing to create: each table is in the Glue
-- database of its Iceberg namespace (or in --glue-database), and every snapshot the ingestor or
-- `iceberg publish` commits moves Glue's metadata_location, so each query reads the newest
-- committed snapshot — only committed files, never an orphan (unlike deploy/athena/lake.sql's
-- directory table). Athena runs one statement at a time.
--
-- The workgroup's role needs glue:GetTable/GetDatabase on these databases and s3:GetObject /
-- ListBucket on the lake (+ kms:Decrypt under SSE-KMS): docs/security.md.

-- Frames per robot and hour of one day (the table is partitioned by hour(timestamp): the
-- predicate prunes files).
SELECT robot_id, date_trunc('hour', "timestamp") AS hour, count(*) AS frames,
       avg(grip_pressure) AS avg_grip_pressure, max(system_temperature) AS max_temperature
FROM surgstream.procedure_telemetry
WHERE "timestamp" >= TIMESTAMP '2026-12-01 00:00:00 UTC'
  AND "timestamp" <  TIMESTAMP '2026-12-02 00:00:00 UTC'
GROUP BY 1, 2
ORDER BY 1, 2;

-- The table as it was at an earlier snapshot (time travel, within --snapshots-older-than).
SELECT count(*) FROM surgstream.procedure_telemetry
FOR TIMESTAMP AS OF (current_timestamp - INTERVAL '1' HOUR);

-- Its snapshots, each with the publisher's watermark and Kafka offsets in its summary.
SELECT committed_at, snapshot_id, operation, summary['surgstream.watermark'] AS watermark
FROM "surgstream"."procedure_telemetry$snapshots"
ORDER BY committed_at DESC;

-- The raw archive: every record the ingestor consumed, byte for byte (one table per topic).
SELECT kafka_partition, min(kafka_offset) AS first, max(kafka_offset) AS last, count(*) AS records
FROM "raw"."surgical_telemetry_v1"
GROUP BY 1
ORDER BY 1;
