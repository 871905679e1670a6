-- Indexes for the questions users ask (README, "PostgreSQL"): a surgeon's cases over time, and
-- outcomes by success status. Procedures by facility go through surgical_robots_facility_idx.
CREATE INDEX IF NOT EXISTS surgical_procedures_surgeon_idx
    ON surgical_procedures (surgeon_id, start_time);
CREATE INDEX IF NOT EXISTS procedure_outcomes_success_idx
    ON procedure_outcomes (success_status);
