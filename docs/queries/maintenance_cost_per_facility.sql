-- Maintenance cost per facility: spend, downtime and emergencies.
SELECT r.facility_id,
       r.facility_name,
       count(*) AS logs,
       sum(m.cost) AS total_cost_usd,
       round(sum(m.downtime_hours), 1) AS downtime_hours,
       count(*) FILTER (WHERE m.maintenance_type = 'emergency') AS emergencies
  FROM robot_maintenance_logs m
  JOIN surgical_robots r USING (robot_id)
 GROUP BY r.facility_id, r.facility_name
 ORDER BY total_cost_usd DESC;
