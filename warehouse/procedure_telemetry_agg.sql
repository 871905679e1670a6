-- One row per procedure with telemetry in the lake: the aggregates fact_procedure carries.
-- Input: procedure_telemetry (the lake's committed files; procedure_id is the UUID's 16 bytes).
-- Force is the magnitude of the feedback vector, sqrt(x² + y² + z²), in newtons. Energy is the
-- mean power times the span between the first and the last frame (exact for evenly spaced frames,
-- which is how robots sample). p95 is PERCENTILE_CONT: exact, interpolated (Athena: approx_percentile).
WITH frames AS (
    SELECT
        procedure_id,
        "timestamp" AS frame_at,
        SQRT(
            CAST(force_feedback_x AS DOUBLE) * CAST(force_feedback_x AS DOUBLE)
            + CAST(force_feedback_y AS DOUBLE) * CAST(force_feedback_y AS DOUBLE)
            + CAST(force_feedback_z AS DOUBLE) * CAST(force_feedback_z AS DOUBLE)
        ) AS force_n,
        CAST(tremor_compensation AS DOUBLE) AS tremor_compensation,
        CAST(grip_pressure AS DOUBLE) AS grip_pressure,
        system_temperature,
        CAST(power_consumption AS DOUBLE) AS power_w,
        camera_zoom
    FROM procedure_telemetry
)
SELECT
    procedure_id,
    COUNT(*) AS frames,
    MIN(frame_at) AS first_frame_at,
    MAX(frame_at) AS last_frame_at,
    AVG(force_n) AS force_mean_n,
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY force_n) AS force_p95_n,
    MAX(force_n) AS force_max_n,
    AVG(tremor_compensation) AS tremor_compensation_mean_pct,
    AVG(grip_pressure) AS grip_pressure_mean,
    MAX(grip_pressure) AS grip_pressure_max,
    MAX(system_temperature) AS system_temperature_max_c,
    AVG(power_w) * (DATE_PART('epoch', MAX(frame_at)) - DATE_PART('epoch', MIN(frame_at))) / 3600.0 AS energy_wh,
    MIN(camera_zoom) AS camera_zoom_min,
    MAX(camera_zoom) AS camera_zoom_max
FROM frames
GROUP BY procedure_id
