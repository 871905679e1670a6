-- One row per facility (the data model knows facilities through their robots).
SELECT
    facility_id,
    MAX(facility_name) AS facility_name,
    COUNT(*) AS robots,
    SUM(CASE WHEN status = 'operational' THEN 1 ELSE 0 END) AS operational_robots,
    MIN(installation_date) AS first_installation_date
FROM surgical_robots
GROUP BY facility_id
ORDER BY facility_id
