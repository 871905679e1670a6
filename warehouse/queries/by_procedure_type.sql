-- Telemetry against outcomes: per procedure type, the mean tremor compensation and force, the
-- peak force, and how often the outcome was complicated (procedures with frames and an outcome).
SELECT
    f.procedure_type,
    COUNT(*) AS procedures,
    CAST(AVG(f.tremor_compensation_mean_pct) AS DECIMAL(6, 2)) AS tremor_comp_pct,
    CAST(AVG(f.force_p95_n) AS DECIMAL(8, 3)) AS force_p95_n,
    CAST(MAX(f.force_max_n) AS DECIMAL(8, 3)) AS peak_force_n,
    CAST(100.0 * AVG(1.0 * f.complicated) AS DECIMAL(5, 1)) AS complicated_pct
FROM warehouse.fact_procedure f
WHERE f.frames > 0 AND f.has_outcome
GROUP BY f.procedure_type
ORDER BY procedures DESC, f.procedure_type
LIMIT 8
