#!/usr/bin/env python3
"""An outside reader for tests/warehouse.rs: DuckDB (not our code, not DataFusion) recomputes
fact_procedure's telemetry aggregates from the raw lake's committed files, and compares them
with the warehouse's Parquet (warehouse/fact_procedure/month=*/) and with PostgreSQL's
warehouse.fact_procedure (exported by the test as CSV).

    warehouse_check.py LAKE_DIR COMMITTED_LIST PG_CSV

COMMITTED_LIST names the committed lake files (lake_files.path), one per line. Prints a JSON
summary; exits 1 on any mismatch.
"""
import json
import sys

import duckdb

# column -> tolerance: the column's scale (rounded doubles) or exact (decimals, counts, times).
COLUMNS = {
    "frames": 0,
    "first_frame_at": 0,
    "last_frame_at": 0,
    "force_mean_n": 1e-4,
    "force_p95_n": 1e-4,
    "force_max_n": 1e-4,
    "tremor_compensation_mean_pct": 1e-2,
    "grip_pressure_mean": 1e-2,
    "grip_pressure_max": 0,
    "system_temperature_max_c": 0,
    "energy_wh": 1e-3,
    "camera_zoom_min": 0,
    "camera_zoom_max": 0,
}

RECOMPUTE = """
WITH f AS (
    SELECT
        procedure_id AS pid,
        "timestamp" AS t,
        sqrt(CAST(force_feedback_x AS DOUBLE) ^ 2 + CAST(force_feedback_y AS DOUBLE) ^ 2
             + CAST(force_feedback_z AS DOUBLE) ^ 2) AS force,
        CAST(tremor_compensation AS DOUBLE) AS tremor,
        CAST(grip_pressure AS DOUBLE) AS grip,
        system_temperature AS temp,
        CAST(power_consumption AS DOUBLE) AS power,
        camera_zoom AS zoom
    FROM read_parquet($files)
)
SELECT
    {key} AS procedure_id,
    count(*) AS frames,
    epoch_us(min(t)) AS first_frame_at,
    epoch_us(max(t)) AS last_frame_at,
    avg(force) AS force_mean_n,
    quantile_cont(force, 0.95) AS force_p95_n,
    max(force) AS force_max_n,
    avg(tremor) AS tremor_compensation_mean_pct,
    avg(grip) AS grip_pressure_mean,
    CAST(max(grip) AS DOUBLE) AS grip_pressure_max,
    CAST(max(temp) AS DOUBLE) AS system_temperature_max_c,
    avg(power) * (epoch_us(max(t)) - epoch_us(min(t))) / 1e6 / 3600.0 AS energy_wh,
    CAST(min(zoom) AS DOUBLE) AS camera_zoom_min,
    CAST(max(zoom) AS DOUBLE) AS camera_zoom_max
FROM f
GROUP BY pid
"""


def key_expression(con, files):
    """procedure_id as canonical UUID text, whether DuckDB reads the column as UUID or BLOB."""
    kind = con.execute(
        "SELECT typeof(procedure_id) FROM read_parquet($files) LIMIT 1", {"files": files}
    ).fetchone()[0]
    if kind == "UUID":
        return "CAST(pid AS VARCHAR)"
    h = "lower(hex(pid))"
    return (
        f"substr({h}, 1, 8) || '-' || substr({h}, 9, 4) || '-' || substr({h}, 13, 4) || '-' "
        f"|| substr({h}, 17, 4) || '-' || substr({h}, 21, 12)"
    )


def rows(con, sql, params=None):
    cur = con.execute(sql, params or {})
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r)) for r in cur.fetchall()}


def compare(name, expected, actual, mismatches):
    """Every procedure with frames in `expected` is in `actual` with the same values, and
    `actual` has no frames for a procedure the lake has none of."""
    for pid, want in expected.items():
        got = actual.get(pid)
        if got is None:
            mismatches.append(f"{name}: procedure {pid} has frames in the lake but no row")
            continue
        for col, tol in COLUMNS.items():
            w, g = want[col], got[col]
            if g is None or abs(float(w) - float(g)) > tol + 1e-9 * abs(float(w)):
                mismatches.append(f"{name}: {pid} {col}: lake says {w}, warehouse says {g}")
    for pid, got in actual.items():
        if pid not in expected and int(got["frames"] or 0) != 0:
            mismatches.append(f"{name}: {pid} has {got['frames']} frames, the lake none")


def main():
    lake, listing, pg_csv = sys.argv[1:4]
    with open(listing) as f:
        files = [f"{lake}/{line.strip()}" for line in f if line.strip()]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    expected = rows(con, RECOMPUTE.format(key=key_expression(con, files)), {"files": files})

    select = ", ".join(
        ["CAST(procedure_id AS VARCHAR) AS procedure_id"]
        + [
            f"epoch_us({c}) AS {c}" if c.endswith("_at") else f"CAST({c} AS DOUBLE) AS {c}"
            for c in COLUMNS
        ]
    )
    parquet = rows(
        con,
        f"SELECT {select} FROM read_parquet('{lake}/warehouse/fact_procedure/*/*.parquet')",
    )
    pg = rows(
        con,
        f"SELECT {select} FROM read_csv('{pg_csv}', header = true, "
        "types = {'first_frame_at': 'TIMESTAMPTZ', 'last_frame_at': 'TIMESTAMPTZ'})",
    )
    mismatches = []
    compare("parquet", expected, parquet, mismatches)
    compare("postgres", expected, pg, mismatches)
    if set(parquet) != set(pg):
        mismatches.append(
            f"the Parquet holds {len(parquet)} procedures, PostgreSQL {len(pg)}: not the same set"
        )
    print(
        json.dumps(
            {
                "lake_files": len(files),
                "frames": sum(int(r["frames"]) for r in expected.values()),
                "procedures_with_frames": len(expected),
                "parquet_rows": len(parquet),
                "postgres_rows": len(pg),
                "mismatches": mismatches[:20],
                "mismatch_count": len(mismatches),
            }
        )
    )
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
