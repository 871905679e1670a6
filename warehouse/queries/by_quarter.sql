-- The trend: per quarter, procedures, energy drawn in surgery, and the share of complicated
-- outcomes, through the date dimension.
SELECT
    d.year,
    d.quarter,
    COUNT(*) AS procedures,
    SUM(f.frames) AS frames,
    CAST(SUM(f.energy_wh) / 1000.0 AS DECIMAL(10, 2)) AS energy_kwh,
    CAST(100.0 * AVG(1.0 * f.complicated) AS DECIMAL(5, 1)) AS complicated_pct
FROM warehouse.fact_procedure f
JOIN warehouse.dim_date d ON d.date_key = f.date_key
GROUP BY d.year, d.quarter
ORDER BY d.year, d.quarter
