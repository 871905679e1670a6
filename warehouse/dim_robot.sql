-- One row per robot, as it is now (type 1: a robot's model, facility and firmware are read at
-- each refresh; the facts keep the facility the robot had when they were built).
SELECT
    r.robot_id,
    r.robot_serial_number,
    r.robot_model,
    r.manufacturer,
    r.facility_id,
    r.facility_name,
    r.installation_date,
    CAST(
        CAST(EXTRACT(YEAR FROM r.installation_date) AS INT) * 10000
            + CAST(EXTRACT(MONTH FROM r.installation_date) AS INT) * 100
            + CAST(EXTRACT(DAY FROM r.installation_date) AS INT)
    AS INT) AS installation_date_key,
    r.status,
    r.firmware_version,
    r.last_maintenance_date,
    r.total_procedures,
    COALESCE(m.maintenance_events, 0) AS maintenance_events,
    COALESCE(m.maintenance_cost, 0) AS maintenance_cost,
    COALESCE(m.downtime_hours, 0) AS downtime_hours
FROM surgical_robots r
LEFT JOIN (
    SELECT
        robot_id,
        COUNT(*) AS maintenance_events,
        SUM(cost) AS maintenance_cost,
        SUM(downtime_hours) AS downtime_hours
    FROM robot_maintenance_logs
    GROUP BY robot_id
) m ON m.robot_id = r.robot_id
ORDER BY r.robot_id
