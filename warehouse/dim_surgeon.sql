-- One row per surgeon (known through their procedures). No patient is named anywhere in the
-- warehouse: patient_id stays in PostgreSQL.
SELECT
    surgeon_id,
    MAX(surgeon_name) AS surgeon_name,
    COUNT(*) AS procedures,
    COUNT(DISTINCT procedure_type) AS procedure_types,
    MIN(COALESCE(start_time, scheduled_start)) AS first_procedure_at,
    MAX(COALESCE(start_time, scheduled_start)) AS last_procedure_at
FROM surgical_procedures
GROUP BY surgeon_id
ORDER BY surgeon_id
