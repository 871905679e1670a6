-- The warehouse (warehouse/*.sql, `surgstream warehouse`): the star schema, loaded from what
-- DataFusion computed over the lake and the relational tables. Facts are replaced one month
-- (month_key = yyyymm) at a time, dimensions whole, each in one transaction with its row in
-- warehouse.refresh_state; readers never see a half-loaded partition.
CREATE SCHEMA IF NOT EXISTS warehouse;

CREATE TABLE warehouse.refresh_state (
    part         TEXT        PRIMARY KEY,  -- 'dimensions' or a month 'YYYY-MM'
    fingerprint  TEXT        NOT NULL,     -- digest of the inputs it was built from
    rows         BIGINT      NOT NULL,
    frames       BIGINT      NOT NULL,     -- telemetry rows scanned to build it
    refreshed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE warehouse.dim_date (
    date_key     INTEGER PRIMARY KEY,
    date         DATE     NOT NULL,
    year         INTEGER  NOT NULL,
    quarter      INTEGER  NOT NULL,
    month        INTEGER  NOT NULL,
    month_key    INTEGER  NOT NULL,
    day_of_month INTEGER  NOT NULL,
    day_of_week  INTEGER  NOT NULL,
    weekend      BOOLEAN  NOT NULL
);

CREATE TABLE warehouse.dim_facility (
    facility_id             VARCHAR(50)  PRIMARY KEY,
    facility_name           VARCHAR(200) NOT NULL,
    robots                  BIGINT       NOT NULL,
    operational_robots      BIGINT       NOT NULL,
    first_installation_date DATE         NOT NULL
);

CREATE TABLE warehouse.dim_robot (
    robot_id              UUID          PRIMARY KEY,
    robot_serial_number   VARCHAR(50)   NOT NULL,
    robot_model           VARCHAR(100)  NOT NULL,
    manufacturer          VARCHAR(100)  NOT NULL,
    facility_id           VARCHAR(50)   NOT NULL,
    facility_name         VARCHAR(200)  NOT NULL,
    installation_date     DATE          NOT NULL,
    installation_date_key INTEGER       NOT NULL,
    status                VARCHAR(20)   NOT NULL,
    firmware_version      VARCHAR(20)   NOT NULL,
    last_maintenance_date DATE,
    total_procedures      INTEGER       NOT NULL,
    maintenance_events    BIGINT        NOT NULL,
    maintenance_cost      DECIMAL(20,2) NOT NULL,
    downtime_hours        DECIMAL(16,2) NOT NULL
);

CREATE TABLE warehouse.dim_surgeon (
    surgeon_id         VARCHAR(50)  PRIMARY KEY,
    surgeon_name       VARCHAR(200) NOT NULL,
    procedures         BIGINT       NOT NULL,
    procedure_types    BIGINT       NOT NULL,
    first_procedure_at TIMESTAMPTZ  NOT NULL,
    last_procedure_at  TIMESTAMPTZ  NOT NULL
);

CREATE TABLE warehouse.fact_procedure (
    procedure_id                 UUID         PRIMARY KEY,
    robot_id                     UUID         NOT NULL,
    facility_id                  VARCHAR(50)  NOT NULL,
    surgeon_id                   VARCHAR(50)  NOT NULL,
    date_key                     INTEGER      NOT NULL,
    month_key                    INTEGER      NOT NULL,
    procedure_type               VARCHAR(100) NOT NULL,
    procedure_category           VARCHAR(50)  NOT NULL,
    status                       VARCHAR(20)  NOT NULL,
    scheduled_start              TIMESTAMPTZ  NOT NULL,
    start_time                   TIMESTAMPTZ,
    end_time                     TIMESTAMPTZ,
    duration_minutes             INTEGER,
    patient_age                  INTEGER      NOT NULL,
    patient_age_band             VARCHAR(8)   NOT NULL,
    patient_gender               VARCHAR(20)  NOT NULL,
    complexity_score             DECIMAL(3,2) NOT NULL,
    has_outcome                  BOOLEAN      NOT NULL,
    success_status               VARCHAR(20),
    complicated                  INTEGER,
    blood_loss_ml                INTEGER,
    hospital_stay_days           INTEGER,
    readmission_30day            BOOLEAN,
    patient_satisfaction_score   INTEGER,
    recovery_score               INTEGER,
    follow_up_required           BOOLEAN,
    frames                       BIGINT       NOT NULL,
    first_frame_at               TIMESTAMPTZ,
    last_frame_at                TIMESTAMPTZ,
    force_mean_n                 DOUBLE PRECISION,
    force_p95_n                  DOUBLE PRECISION,
    force_max_n                  DOUBLE PRECISION,
    tremor_compensation_mean_pct DOUBLE PRECISION,
    grip_pressure_mean           DOUBLE PRECISION,
    grip_pressure_max            DECIMAL(6,2),
    system_temperature_max_c     DECIMAL(5,2),
    energy_wh                    DOUBLE PRECISION,
    camera_zoom_min              DECIMAL(4,2),
    camera_zoom_max              DECIMAL(4,2)
);
CREATE INDEX fact_procedure_month_idx ON warehouse.fact_procedure (month_key);
CREATE INDEX fact_procedure_date_idx ON warehouse.fact_procedure (date_key);

CREATE TABLE warehouse.fact_maintenance (
    maintenance_id        UUID          PRIMARY KEY,
    robot_id              UUID          NOT NULL,
    facility_id           VARCHAR(50)   NOT NULL,
    technician_id         VARCHAR(50)   NOT NULL,
    date_key              INTEGER       NOT NULL,
    month_key             INTEGER       NOT NULL,
    maintenance_date      DATE          NOT NULL,
    maintenance_type      VARCHAR(50)   NOT NULL,
    unplanned             INTEGER       NOT NULL,
    parts_replaced        INTEGER       NOT NULL,
    downtime_hours        DECIMAL(6,2)  NOT NULL,
    cost                  DECIMAL(10,2) NOT NULL,
    next_maintenance_date DATE
);
CREATE INDEX fact_maintenance_month_idx ON warehouse.fact_maintenance (month_key);

CREATE TABLE warehouse.fact_robot_day (
    robot_id           UUID          NOT NULL,
    facility_id        VARCHAR(50)   NOT NULL,
    date_key           INTEGER       NOT NULL,
    month_key          INTEGER       NOT NULL,
    procedures         BIGINT        NOT NULL,
    completed          BIGINT        NOT NULL,
    aborted            BIGINT        NOT NULL,
    cancelled          BIGINT        NOT NULL,
    minutes_in_use     BIGINT        NOT NULL,
    frames             BIGINT        NOT NULL,
    energy_wh          DOUBLE PRECISION NOT NULL,
    maintenance_events BIGINT        NOT NULL,
    downtime_hours     DECIMAL(16,2) NOT NULL,
    maintenance_cost   DECIMAL(20,2) NOT NULL,
    PRIMARY KEY (robot_id, date_key)
);
CREATE INDEX fact_robot_day_month_idx ON warehouse.fact_robot_day (month_key);

-- A refresh asks the manifest for the files whose event times overlap a month's procedures.
CREATE INDEX lake_files_event_time_idx ON lake_files (consumer_group, min_event_time);
