-- Utilisation and upkeep per facility: robot-days with activity, hours in surgery per active
-- robot-day, maintenance downtime and cost.
SELECT
    d.facility_name,
    COUNT(*) AS robot_days,
    CAST(SUM(r.minutes_in_use) / 60e0 / COUNT(*) AS DECIMAL(6, 2)) AS surgery_h_per_day,
    SUM(r.procedures) AS procedures,
    CAST(SUM(r.downtime_hours) AS DECIMAL(10, 1)) AS downtime_h,
    CAST(SUM(r.maintenance_cost) AS DECIMAL(12, 0)) AS maintenance_cost
FROM warehouse.fact_robot_day r
JOIN warehouse.dim_facility d ON d.facility_id = r.facility_id
GROUP BY d.facility_name
ORDER BY procedures DESC, d.facility_name
