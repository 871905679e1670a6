-- One row per day from the first to the last day any fact or robot refers to (UTC).
-- Input: calendar (one column, day DATE: every day in that range). Each engine makes it its own
-- way (embedded: built in Rust; Athena: sequence() + UNNEST; Redshift: a numbers CTE): see
-- docs/warehouse-engines.md. Day of week is ISO (Monday 1 … Sunday 7) from EXTRACT(DOW), which
-- is 0 = Sunday here, in PostgreSQL and in Redshift (Athena's is ISO already).
SELECT
    CAST(
        CAST(EXTRACT(YEAR FROM day) AS INT) * 10000
            + CAST(EXTRACT(MONTH FROM day) AS INT) * 100
            + CAST(EXTRACT(DAY FROM day) AS INT)
    AS INT) AS date_key,
    day AS date,
    CAST(EXTRACT(YEAR FROM day) AS INT) AS year,
    CAST(EXTRACT(QUARTER FROM day) AS INT) AS quarter,
    CAST(EXTRACT(MONTH FROM day) AS INT) AS month,
    CAST(CAST(EXTRACT(YEAR FROM day) AS INT) * 100 + CAST(EXTRACT(MONTH FROM day) AS INT) AS INT) AS month_key,
    CAST(EXTRACT(DAY FROM day) AS INT) AS day_of_month,
    -- ISO: Monday = 1 … Sunday = 7
    CASE WHEN CAST(EXTRACT(DOW FROM day) AS INT) = 0 THEN 7 ELSE CAST(EXTRACT(DOW FROM day) AS INT) END AS day_of_week,
    CASE WHEN CAST(EXTRACT(DOW FROM day) AS INT) IN (0, 6) THEN TRUE ELSE FALSE END AS weekend
FROM calendar
ORDER BY date_key
