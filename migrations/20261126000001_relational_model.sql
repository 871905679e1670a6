-- The relational half of the data model (../shared/data-model.md), plus the ingest's own tables.
-- Column names are the data model's, verbatim. TIMESTAMP columns are TIMESTAMPTZ: every instant is
-- UTC on the wire and must not shift with a session's time zone.

CREATE TABLE surgical_robots (
    robot_id              UUID PRIMARY KEY,
    robot_serial_number   VARCHAR(50)  NOT NULL UNIQUE,
    robot_model           VARCHAR(100) NOT NULL,
    manufacturer          VARCHAR(100) NOT NULL,
    installation_date     DATE         NOT NULL,
    facility_id           VARCHAR(50)  NOT NULL,
    facility_name         VARCHAR(200) NOT NULL,
    status                VARCHAR(20)  NOT NULL
        CONSTRAINT surgical_robots_status_check CHECK (status IN ('operational', 'maintenance', 'retired')),
    last_maintenance_date DATE,
    total_procedures      INTEGER      NOT NULL DEFAULT 0
        CONSTRAINT surgical_robots_total_procedures_check CHECK (total_procedures >= 0),
    firmware_version      VARCHAR(20)  NOT NULL,
    created_at            TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX surgical_robots_facility_idx ON surgical_robots (facility_id);

-- `scheduled` extends the data model's four statuses: a procedure booked but not begun.
-- `scheduled_start` is the booked start; `start_time`/`end_time` are set when it starts/ends.
CREATE TABLE surgical_procedures (
    procedure_id       UUID PRIMARY KEY,
    robot_id           UUID         NOT NULL REFERENCES surgical_robots (robot_id),
    procedure_type     VARCHAR(100) NOT NULL,
    procedure_category VARCHAR(50)  NOT NULL,
    scheduled_start    TIMESTAMPTZ  NOT NULL,
    start_time         TIMESTAMPTZ,
    end_time           TIMESTAMPTZ,
    duration_minutes   INTEGER
        CONSTRAINT surgical_procedures_duration_check CHECK (duration_minutes >= 0),
    surgeon_id         VARCHAR(50)  NOT NULL,
    surgeon_name       VARCHAR(200) NOT NULL,
    patient_id         VARCHAR(50)  NOT NULL,
    patient_age        INTEGER      NOT NULL
        CONSTRAINT surgical_procedures_patient_age_check CHECK (patient_age BETWEEN 0 AND 130),
    patient_gender     VARCHAR(20)  NOT NULL,
    complexity_score   DECIMAL(3,2) NOT NULL
        CONSTRAINT surgical_procedures_complexity_check CHECK (complexity_score BETWEEN 1.0 AND 5.0),
    status             VARCHAR(20)  NOT NULL
        CONSTRAINT surgical_procedures_status_check
        CHECK (status IN ('scheduled', 'in_progress', 'completed', 'aborted', 'cancelled')),
    created_at         TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT surgical_procedures_time_order_check CHECK (end_time >= start_time)
);
CREATE INDEX surgical_procedures_robot_time_idx ON surgical_procedures (robot_id, start_time);
CREATE INDEX surgical_procedures_status_idx ON surgical_procedures (status);

CREATE TABLE procedure_outcomes (
    outcome_id                 UUID PRIMARY KEY,
    procedure_id               UUID        NOT NULL UNIQUE REFERENCES surgical_procedures (procedure_id),
    success_status             VARCHAR(20) NOT NULL
        CONSTRAINT procedure_outcomes_success_status_check CHECK (success_status IN ('successful', 'complicated', 'failed')),
    blood_loss_ml              INTEGER     NOT NULL
        CONSTRAINT procedure_outcomes_blood_loss_check CHECK (blood_loss_ml >= 0),
    complications              TEXT        NOT NULL DEFAULT '',
    hospital_stay_days         INTEGER     NOT NULL
        CONSTRAINT procedure_outcomes_stay_check CHECK (hospital_stay_days >= 0),
    readmission_30day          BOOLEAN     NOT NULL,
    patient_satisfaction_score INTEGER     NOT NULL
        CONSTRAINT procedure_outcomes_satisfaction_check CHECK (patient_satisfaction_score BETWEEN 1 AND 10),
    surgeon_notes              TEXT        NOT NULL DEFAULT '',
    recovery_score             INTEGER     NOT NULL
        CONSTRAINT procedure_outcomes_recovery_check CHECK (recovery_score BETWEEN 1 AND 100),
    follow_up_required         BOOLEAN     NOT NULL,
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                 TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE robot_maintenance_logs (
    maintenance_id        UUID PRIMARY KEY,
    robot_id              UUID          NOT NULL REFERENCES surgical_robots (robot_id),
    maintenance_date      DATE          NOT NULL,
    maintenance_type      VARCHAR(50)   NOT NULL
        CONSTRAINT robot_maintenance_logs_type_check CHECK (maintenance_type IN ('routine', 'emergency', 'upgrade', 'calibration')),
    technician_id         VARCHAR(50)   NOT NULL,
    technician_name       VARCHAR(200)  NOT NULL,
    issues_found          TEXT          NOT NULL DEFAULT '',
    actions_taken         TEXT          NOT NULL DEFAULT '',
    parts_replaced        TEXT          NOT NULL DEFAULT '',
    downtime_hours        DECIMAL(6,2)  NOT NULL
        CONSTRAINT robot_maintenance_logs_downtime_check CHECK (downtime_hours >= 0),
    next_maintenance_date DATE,
    cost                  DECIMAL(10,2) NOT NULL
        CONSTRAINT robot_maintenance_logs_cost_check CHECK (cost >= 0),
    created_at            TIMESTAMPTZ   NOT NULL DEFAULT now()
);
CREATE INDEX robot_maintenance_logs_robot_idx ON robot_maintenance_logs (robot_id, maintenance_date);

-- Append-only audit of every status change applied by the event store.
CREATE TABLE status_audit (
    audit_id         BIGSERIAL PRIMARY KEY,
    entity           VARCHAR(20) NOT NULL CHECK (entity IN ('robot', 'procedure')),
    entity_id        UUID        NOT NULL,
    from_status      VARCHAR(20),
    to_status        VARCHAR(20) NOT NULL,
    event_id         UUID        NOT NULL,
    occurred_at      TIMESTAMPTZ NOT NULL,
    source_topic     TEXT        NOT NULL,
    source_partition INTEGER     NOT NULL,
    source_offset    BIGINT      NOT NULL,
    recorded_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX status_audit_entity_idx ON status_audit (entity_id);

-- Kafka offsets, stored with the data they produced: the source of truth on assignment.
-- `next_offset` is the first offset NOT yet durable in the lake / these tables.
CREATE TABLE ingest_offsets (
    consumer_group TEXT        NOT NULL,
    topic          TEXT        NOT NULL,
    partition      INTEGER     NOT NULL,
    next_offset    BIGINT      NOT NULL CHECK (next_offset >= 0),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- The manifest of the committed lake: a Parquet file exists for readers once it is named here.
CREATE TABLE lake_files (
    path           TEXT PRIMARY KEY,
    consumer_group TEXT        NOT NULL,
    topic          TEXT        NOT NULL,
    partition      INTEGER     NOT NULL,
    first_offset   BIGINT      NOT NULL,
    last_offset    BIGINT      NOT NULL,
    rows           BIGINT      NOT NULL CHECK (rows > 0),
    bytes          BIGINT      NOT NULL CHECK (bytes > 0),
    min_event_time TIMESTAMPTZ NOT NULL,
    max_event_time TIMESTAMPTZ NOT NULL,
    committed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (last_offset >= first_offset),
    CHECK (max_event_time >= min_event_time)
);
CREATE INDEX lake_files_source_idx ON lake_files (consumer_group, topic, partition, first_offset);
