-- Amazon Athena (engine version 3): the warehouse's seven tables as external tables over the
-- Parquet that `surgstream warehouse` writes (docs/warehouse-engines.md, path (a)). Nothing is
-- loaded: a rebuilt month replaces its files in place and the next query reads them.
--
-- Placeholders, to replace before running:
--   ${BUCKET}, ${PREFIX}  the lake: --lake s3://BUCKET/PREFIX (lake at the bucket root: drop
--                         "${PREFIX}/" from the paths)
--   ${START_MONTH}        the first month of the facts, YYYY-MM
-- ${month} in storage.location.template is Athena's own (each projected value): leave it.
-- With envsubst, name the variables to replace:
--   envsubst '${BUCKET} ${PREFIX} ${START_MONTH}' < deploy/athena/warehouse.sql
-- Athena runs one statement at a time.
--
-- Layout: warehouse/<dimension>/part-0.parquet, warehouse/<fact>/month=YYYY-MM/part-0.parquet.
-- Types are the files' (Athena maps Parquet columns by name): ids are the UUIDs' canonical
-- text; timestamps INT64 microseconds UTC (Athena may return them at millisecond precision);
-- a few 0/1 and count columns are bigint because that is what the files hold.
-- The database is named warehouse, so warehouse/queries/*.sql find warehouse.<table> (with
-- the dialect notes of docs/warehouse-engines.md).
--
-- Facts are partitioned by month (the folder name, a string), projected as dates from
-- ${START_MONTH} to a year ahead: procedures booked for later months land in those months
-- (a procedure's month is its start, or its booked start). Months without files read as
-- empty. Which months exist is PostgreSQL's warehouse.refresh_state (part = 'YYYY-MM'), not the
-- listing: a month's files are removed after its row.

CREATE DATABASE IF NOT EXISTS warehouse;

-- ---------------------------------------------------------------------------------------------
-- Dimensions

CREATE EXTERNAL TABLE IF NOT EXISTS warehouse.dim_date (
    date_key     int,
    `date`       date,
    year         int,
    quarter      int,
    month        int,
    month_key    int,
    day_of_month int,
    day_of_week  bigint,    -- ISO: Monday = 1 … Sunday = 7
    weekend      boolean
)
STORED AS PARQUET
LOCATION 's3://${BUCKET}/${PREFIX}/warehouse/dim_date/';

CREATE EXTERNAL TABLE IF NOT EXISTS warehouse.dim_facility (
    facility_id             string,
    facility_name           string,
    robots                  bigint,
    operational_robots      bigint,
    first_installation_date date
)
STORED AS PARQUET
LOCATION 's3://${BUCKET}/${PREFIX}/warehouse/dim_facility/';

CREATE EXTERNAL TABLE IF NOT EXISTS warehouse.dim_robot (
    robot_id              string,
    robot_serial_number   string,
    robot_model           string,
    manufacturer          string,
    facility_id           string,
    facility_name         string,
    installation_date     date,
    installation_date_key int,
    status                string,
    firmware_version      string,
    last_maintenance_date date,
    total_procedures      int,
    maintenance_events    bigint,
    maintenance_cost      decimal(22,2),
    downtime_hours        decimal(22,2)
)
STORED AS PARQUET
LOCATION 's3://${BUCKET}/${PREFIX}/warehouse/dim_robot/';

CREATE EXTERNAL TABLE IF NOT EXISTS warehouse.dim_surgeon (
    surgeon_id         string,
    surgeon_name       string,
    procedures         bigint,
    procedure_types    bigint,
    first_procedure_at timestamp,
    last_procedure_at  timestamp
)
STORED AS PARQUET
LOCATION 's3://${BUCKET}/${PREFIX}/warehouse/dim_surgeon/';

-- ---------------------------------------------------------------------------------------------
-- Facts

CREATE EXTERNAL TABLE IF NOT EXISTS warehouse.fact_procedure (
    procedure_id                 string,
    robot_id                     string,
    facility_id                  string,
    surgeon_id                   string,
    date_key                     int,
    month_key                    int,
    procedure_type               string,
    procedure_category           string,
    status                       string,
    scheduled_start              timestamp,
    start_time                   timestamp,
    end_time                     timestamp,
    duration_minutes             int,
    patient_age                  int,
    patient_age_band             string,
    patient_gender               string,
    complexity_score             decimal(3,2),
    has_outcome                  boolean,
    success_status               string,
    complicated                  bigint,
    blood_loss_ml                int,
    hospital_stay_days           int,
    readmission_30day            boolean,
    patient_satisfaction_score   int,
    recovery_score               int,
    follow_up_required           boolean,
    frames                       bigint,
    first_frame_at               timestamp,
    last_frame_at                timestamp,
    force_mean_n                 double,
    force_p95_n                  double,
    force_max_n                  double,
    tremor_compensation_mean_pct double,
    grip_pressure_mean           double,
    grip_pressure_max            double,
    system_temperature_max_c     decimal(5,2),
    energy_wh                    double,
    camera_zoom_min              decimal(4,2),
    camera_zoom_max              decimal(4,2)
)
PARTITIONED BY (`month` string)
STORED AS PARQUET
LOCATION 's3://${BUCKET}/${PREFIX}/warehouse/fact_procedure/'
TBLPROPERTIES (
    'projection.enabled'             = 'true',
    'projection.month.type'          = 'date',
    'projection.month.format'        = 'yyyy-MM',
    'projection.month.range'         = '${START_MONTH},NOW+1YEARS',
    'projection.month.interval'      = '1',
    'projection.month.interval.unit' = 'MONTHS',
    'storage.location.template'      = 's3://${BUCKET}/${PREFIX}/warehouse/fact_procedure/month=${month}/'
);

CREATE EXTERNAL TABLE IF NOT EXISTS warehouse.fact_maintenance (
    maintenance_id        string,
    robot_id              string,
    facility_id           string,
    technician_id         string,
    date_key              int,
    month_key             int,
    maintenance_date      date,
    maintenance_type      string,
    unplanned             bigint,
    parts_replaced        bigint,
    downtime_hours        decimal(6,2),
    cost                  decimal(10,2),
    next_maintenance_date date
)
PARTITIONED BY (`month` string)
STORED AS PARQUET
LOCATION 's3://${BUCKET}/${PREFIX}/warehouse/fact_maintenance/'
TBLPROPERTIES (
    'projection.enabled'             = 'true',
    'projection.month.type'          = 'date',
    'projection.month.format'        = 'yyyy-MM',
    'projection.month.range'         = '${START_MONTH},NOW+1YEARS',
    'projection.month.interval'      = '1',
    'projection.month.interval.unit' = 'MONTHS',
    'storage.location.template'      = 's3://${BUCKET}/${PREFIX}/warehouse/fact_maintenance/month=${month}/'
);

CREATE EXTERNAL TABLE IF NOT EXISTS warehouse.fact_robot_day (
    robot_id           string,
    facility_id        string,
    date_key           int,
    month_key          int,
    procedures         bigint,
    completed          bigint,
    aborted            bigint,
    cancelled          bigint,
    minutes_in_use     bigint,
    frames             bigint,
    energy_wh          double,
    maintenance_events bigint,
    downtime_hours     decimal(22,2),
    maintenance_cost   decimal(22,2)
)
PARTITIONED BY (`month` string)
STORED AS PARQUET
LOCATION 's3://${BUCKET}/${PREFIX}/warehouse/fact_robot_day/'
TBLPROPERTIES (
    'projection.enabled'             = 'true',
    'projection.month.type'          = 'date',
    'projection.month.format'        = 'yyyy-MM',
    'projection.month.range'         = '${START_MONTH},NOW+1YEARS',
    'projection.month.interval'      = '1',
    'projection.month.interval.unit' = 'MONTHS',
    'storage.location.template'      = 's3://${BUCKET}/${PREFIX}/warehouse/fact_robot_day/month=${month}/'
);

-- A month: WHERE "month" = '2024-12' reads one folder. A date range on date_key alone reads
-- every projected month; add the month bound too.
