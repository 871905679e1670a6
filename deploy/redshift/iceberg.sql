-- Amazon Redshift (provisioned or Serverless): the lake's Iceberg tables through the Glue Data
-- Catalog, where `surgstream iceberg register --glue` puts them and every later snapshot moves
-- them. Redshift reads the current snapshot's committed files only (deploy/redshift/spectrum.sql's
-- directory table reads every file under the prefix).
--
-- Placeholders, to replace before running:
--   ${ROLE_ARN}  an IAM role Redshift assumes: glue:GetTable/GetDatabase on the databases,
--                s3:GetObject/ListBucket on the lake (+ kms:Decrypt under SSE-KMS)
--   ${REGION}    the Glue catalog's region
--   envsubst '${ROLE_ARN} ${REGION}' < deploy/redshift/iceberg.sql

CREATE EXTERNAL SCHEMA IF NOT EXISTS surgstream_iceberg
FROM DATA CATALOG DATABASE 'surgstream'
IAM_ROLE '${ROLE_ARN}'
REGION '${REGION}';

CREATE EXTERNAL SCHEMA IF NOT EXISTS surgstream_raw
FROM DATA CATALOG DATABASE 'raw'
IAM_ROLE '${ROLE_ARN}'
REGION '${REGION}';

-- Frames and the hottest reading per robot and day.
SELECT robot_id, TRUNC("timestamp") AS day, COUNT(*) AS frames,
       MAX(system_temperature) AS max_temperature
FROM surgstream_iceberg.procedure_telemetry
WHERE "timestamp" >= '2026-12-01' AND "timestamp" < '2026-12-08'
GROUP BY 1, 2
ORDER BY 1, 2;

-- The raw archive's records per partition.
SELECT kafka_partition, COUNT(*) AS records, MAX(kafka_offset) AS last_offset
FROM surgstream_raw.surgical_telemetry_v1
GROUP BY 1
ORDER BY 1;
