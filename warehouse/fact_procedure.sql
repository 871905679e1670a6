-- One row per procedure: its relational facts, its outcome (NULL until one arrives) and its
-- telemetry aggregates (NULL when the lake holds no frame of it: scheduled, cancelled).
-- Inputs: surgical_procedures (procedure_key = the UUID's 16 bytes, as in the lake),
-- procedure_outcomes, surgical_robots, procedure_telemetry_agg.
-- The procedure's day is its start, or its booked start when it never started (UTC).
WITH p AS (
    SELECT
        sp.*,
        COALESCE(sp.start_time, sp.scheduled_start) AS procedure_at
    FROM surgical_procedures sp
)
SELECT
    p.procedure_id,
    p.robot_id,
    r.facility_id,
    p.surgeon_id,
    CAST(
        CAST(EXTRACT(YEAR FROM p.procedure_at) AS INT) * 10000
            + CAST(EXTRACT(MONTH FROM p.procedure_at) AS INT) * 100
            + CAST(EXTRACT(DAY FROM p.procedure_at) AS INT)
    AS INT) AS date_key,
    CAST(
        CAST(EXTRACT(YEAR FROM p.procedure_at) AS INT) * 100
            + CAST(EXTRACT(MONTH FROM p.procedure_at) AS INT)
    AS INT) AS month_key,
    p.procedure_type,
    p.procedure_category,
    p.status,
    p.scheduled_start,
    p.start_time,
    p.end_time,
    p.duration_minutes,
    p.patient_age,
    CASE
        WHEN p.patient_age < 18 THEN '0-17'
        WHEN p.patient_age < 40 THEN '18-39'
        WHEN p.patient_age < 65 THEN '40-64'
        WHEN p.patient_age < 80 THEN '65-79'
        ELSE '80+'
    END AS patient_age_band,
    p.patient_gender,
    p.complexity_score,
    o.outcome_id IS NOT NULL AS has_outcome,
    o.success_status,
    CASE WHEN o.outcome_id IS NULL THEN NULL
         WHEN o.success_status <> 'successful' OR o.complications <> '' THEN 1 ELSE 0 END AS complicated,
    o.blood_loss_ml,
    o.hospital_stay_days,
    o.readmission_30day,
    o.patient_satisfaction_score,
    o.recovery_score,
    o.follow_up_required,
    COALESCE(t.frames, 0) AS frames,
    t.first_frame_at,
    t.last_frame_at,
    ROUND(t.force_mean_n, 4) AS force_mean_n,
    ROUND(t.force_p95_n, 4) AS force_p95_n,
    ROUND(t.force_max_n, 4) AS force_max_n,
    ROUND(t.tremor_compensation_mean_pct, 2) AS tremor_compensation_mean_pct,
    ROUND(t.grip_pressure_mean, 2) AS grip_pressure_mean,
    CAST(t.grip_pressure_max AS DECIMAL(6, 2)) AS grip_pressure_max,
    t.system_temperature_max_c,
    ROUND(t.energy_wh, 3) AS energy_wh,
    t.camera_zoom_min,
    t.camera_zoom_max
FROM p
JOIN surgical_robots r ON r.robot_id = p.robot_id
LEFT JOIN procedure_outcomes o ON o.procedure_id = p.procedure_id
LEFT JOIN procedure_telemetry_agg t ON t.procedure_id = p.procedure_key
ORDER BY date_key, procedure_id
