-- Utilisation per robot per month: cases that ran, hours in use, share of cases completed.
SELECT r.facility_id,
       r.robot_serial_number,
       r.robot_model,
       date_trunc('month', p.start_time AT TIME ZONE 'UTC')::date AS month,
       count(*) AS cases,
       count(*) FILTER (WHERE p.status = 'completed') AS completed,
       round(sum(p.duration_minutes) / 60.0, 1) AS hours_in_use
  FROM surgical_procedures p
  JOIN surgical_robots r USING (robot_id)
 WHERE p.status IN ('completed', 'aborted')
 GROUP BY r.facility_id, r.robot_serial_number, r.robot_model, month
 ORDER BY month, r.facility_id, r.robot_serial_number;
