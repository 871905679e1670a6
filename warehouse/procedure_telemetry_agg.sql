-- One row per procedure with telemetry in the lake: the aggregates fact_procedure carries.
-- Input: procedure_telemetry (the lake's committed files; procedure_id is the UUID's 16 bytes).
-- Force is the magnitude of the feedback vector, sqrt(x² + y² + z²), in newtons. Energy is the
-- mean power times the span between the first and the last frame (exact for evenly spaced
-- frames, which is how robots sample).
-- p95 is PERCENTILE_CONT(0.95)'s definition, written with ROW_NUMBER so that it needs a sort
-- (which spills to disk) rather than every value of a group in memory, and so that it is exact
-- on every engine (Athena has only approx_percentile): the values at 0-based ranks
-- floor(r) and ceil(r) of r = (n - 1) × 0.95, interpolated. The small side of each join comes
-- first: DataFusion builds its hash table from the left input (in memory, unspillable). Ranks
-- are compared as BIGINT: ROW_NUMBER() - 1 is a DECIMAL in DataFusion, and its comparison with
-- a DOUBLE missed ranks near 600,000 (p95 came out NULL for 1 kHz procedures).
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
        AVG(power_w) * (DATE_PART('epoch', MAX(frame_at)) - DATE_PART('epoch', MIN(frame_at))) / 3600.0 AS energy_wh,
        MIN(camera_zoom) AS camera_zoom_min,
        MAX(camera_zoom) AS camera_zoom_max
    FROM frames
    GROUP BY procedure_id
),
ranked AS (
    SELECT
        procedure_id,
        force_n,
        CAST(ROW_NUMBER() OVER (PARTITION BY procedure_id ORDER BY force_n) AS BIGINT) - 1 AS i
    FROM frames
),
p95 AS (
    SELECT
        r.procedure_id,
        MIN(CASE WHEN r.i = CAST(FLOOR((p.frames - 1) * 0.95) AS BIGINT) THEN r.force_n END) AS below,
        MIN(CASE WHEN r.i = CAST(CEIL((p.frames - 1) * 0.95) AS BIGINT) THEN r.force_n END) AS above,
        MIN((p.frames - 1) * 0.95 - FLOOR((p.frames - 1) * 0.95)) AS fraction
    FROM per_procedure p
    JOIN ranked r ON r.procedure_id = p.procedure_id
    WHERE r.i = CAST(FLOOR((p.frames - 1) * 0.95) AS BIGINT) OR r.i = CAST(CEIL((p.frames - 1) * 0.95) AS BIGINT)
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
JOIN p95 q ON q.procedure_id = p.procedure_id
