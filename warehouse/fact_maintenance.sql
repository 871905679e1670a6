-- One row per maintenance log entry, with the robot's facility. Free text (issues found, actions
-- taken) stays in PostgreSQL: it is for reading, not aggregating.
SELECT
    m.maintenance_id,
    m.robot_id,
    r.facility_id,
    m.technician_id,
    CAST(
        CAST(EXTRACT(YEAR FROM m.maintenance_date) AS INT) * 10000
            + CAST(EXTRACT(MONTH FROM m.maintenance_date) AS INT) * 100
            + CAST(EXTRACT(DAY FROM m.maintenance_date) AS INT)
    AS INT) AS date_key,
    CAST(
        CAST(EXTRACT(YEAR FROM m.maintenance_date) AS INT) * 100
            + CAST(EXTRACT(MONTH FROM m.maintenance_date) AS INT)
    AS INT) AS month_key,
    m.maintenance_date,
    m.maintenance_type,
    CASE WHEN m.maintenance_type = 'emergency' THEN 1 ELSE 0 END AS unplanned,
    CASE WHEN m.parts_replaced <> '' THEN 1 ELSE 0 END AS parts_replaced,
    m.downtime_hours,
    m.cost,
    m.next_maintenance_date
FROM robot_maintenance_logs m
JOIN surgical_robots r ON r.robot_id = m.robot_id
ORDER BY date_key, maintenance_id
