-- One row per robot per day with a procedure or a maintenance entry: what the robot did that
-- day. A procedure counts on the day it started (or was booked for); minutes in use are the
-- durations of the procedures that started that day. Built from the month's fact_procedure and
-- fact_maintenance. month_key is carried from them, not computed as date_key / 100: `/` of two
-- integers truncates on DataFusion, PostgreSQL, Redshift and Athena but divides in floating point
-- on DuckDB.
WITH used AS (
    SELECT
        robot_id,
        date_key,
        month_key,
        COUNT(*) AS procedures,
        SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS completed,
        SUM(CASE WHEN status = 'aborted' THEN 1 ELSE 0 END) AS aborted,
        SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END) AS cancelled,
        SUM(COALESCE(duration_minutes, 0)) AS minutes_in_use,
        SUM(frames) AS frames,
        SUM(COALESCE(energy_wh, 0)) AS energy_wh
    FROM fact_procedure
    GROUP BY robot_id, date_key, month_key
),
serviced AS (
    SELECT
        robot_id,
        date_key,
        month_key,
        COUNT(*) AS maintenance_events,
        SUM(downtime_hours) AS downtime_hours,
        SUM(cost) AS maintenance_cost
    FROM fact_maintenance
    GROUP BY robot_id, date_key, month_key
),
days AS (
    SELECT robot_id, date_key, month_key FROM used
    UNION
    SELECT robot_id, date_key, month_key FROM serviced
)
SELECT
    d.robot_id,
    r.facility_id,
    d.date_key,
    d.month_key,
    COALESCE(u.procedures, 0) AS procedures,
    COALESCE(u.completed, 0) AS completed,
    COALESCE(u.aborted, 0) AS aborted,
    COALESCE(u.cancelled, 0) AS cancelled,
    COALESCE(u.minutes_in_use, 0) AS minutes_in_use,
    COALESCE(u.frames, 0) AS frames,
    ROUND(COALESCE(u.energy_wh, 0), 3) AS energy_wh,
    COALESCE(s.maintenance_events, 0) AS maintenance_events,
    COALESCE(s.downtime_hours, 0) AS downtime_hours,
    COALESCE(s.maintenance_cost, 0) AS maintenance_cost
FROM days d
JOIN surgical_robots r ON r.robot_id = d.robot_id
LEFT JOIN used u ON u.robot_id = d.robot_id AND u.date_key = d.date_key
LEFT JOIN serviced s ON s.robot_id = d.robot_id AND s.date_key = d.date_key
ORDER BY d.date_key, d.robot_id
