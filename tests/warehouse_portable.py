#!/usr/bin/env python3
"""The warehouse's SQL files on a second engine, for tests/warehouse.rs: DuckDB (not DataFusion,
not our code) runs warehouse/*.sql as they are, over the same inputs — PostgreSQL's relational
tables (read with psql) and the lake's committed files — and every table must equal what
`surgstream warehouse` built (its Parquet under LAKE_DIR/warehouse/).

    warehouse_portable.py LAKE_DIR COMMITTED_LIST DATABASE_URL

The files run over all history at once; the embedded build runs them one month at a time: the
same rows either way. Doubles the files round are compared within the rounding's last digit;
everything else exactly. Prints a JSON summary; exits 1 on any difference.
"""
import json
import math
import os
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
SQL = ROOT / "warehouse"

# The inputs as crates/surgstream-warehouse/src/input.rs gives them to DataFusion: the data
# model's types, UUIDs as canonical text, procedure_key as the UUID's 16 bytes, no patient_id.
INPUTS = {
    "surgical_robots": [
        ("robot_id", "VARCHAR"), ("robot_serial_number", "VARCHAR"), ("robot_model", "VARCHAR"),
        ("manufacturer", "VARCHAR"), ("installation_date", "DATE"), ("facility_id", "VARCHAR"),
        ("facility_name", "VARCHAR"), ("status", "VARCHAR"), ("last_maintenance_date", "DATE"),
        ("total_procedures", "INTEGER"), ("firmware_version", "VARCHAR"),
    ],
    "surgical_procedures": [
        ("procedure_id", "VARCHAR"), ("robot_id", "VARCHAR"), ("procedure_type", "VARCHAR"),
        ("procedure_category", "VARCHAR"), ("scheduled_start", "TIMESTAMPTZ"),
        ("start_time", "TIMESTAMPTZ"), ("end_time", "TIMESTAMPTZ"),
        ("duration_minutes", "INTEGER"), ("surgeon_id", "VARCHAR"), ("surgeon_name", "VARCHAR"),
        ("patient_age", "INTEGER"), ("patient_gender", "VARCHAR"),
        ("complexity_score", "DECIMAL(3,2)"), ("status", "VARCHAR"),
    ],
    "procedure_outcomes": [
        ("outcome_id", "VARCHAR"), ("procedure_id", "VARCHAR"), ("success_status", "VARCHAR"),
        ("blood_loss_ml", "INTEGER"), ("complications", "VARCHAR"),
        ("hospital_stay_days", "INTEGER"), ("readmission_30day", "BOOLEAN"),
        ("patient_satisfaction_score", "INTEGER"), ("recovery_score", "INTEGER"),
        ("follow_up_required", "BOOLEAN"),
    ],
    "robot_maintenance_logs": [
        ("maintenance_id", "VARCHAR"), ("robot_id", "VARCHAR"), ("maintenance_date", "DATE"),
        ("maintenance_type", "VARCHAR"), ("technician_id", "VARCHAR"),
        ("technician_name", "VARCHAR"), ("parts_replaced", "VARCHAR"),
        ("downtime_hours", "DECIMAL(6,2)"), ("next_maintenance_date", "DATE"),
        ("cost", "DECIMAL(10,2)"),
    ],
}

# The build order of crates/surgstream-warehouse (sql.rs), and each table's key.
STEPS = [
    ("procedure_telemetry_agg", None),
    ("fact_procedure", ["procedure_id"]),
    ("fact_maintenance", ["maintenance_id"]),
    ("fact_robot_day", ["robot_id", "date_key"]),
    ("dim_date", ["date_key"]),
    ("dim_facility", ["facility_id"]),
    ("dim_robot", ["robot_id"]),
    ("dim_surgeon", ["surgeon_id"]),
]

# Columns the files ROUND: a different summation order may move the last kept digit.
ROUNDED = {
    "force_mean_n": 4, "force_p95_n": 4, "force_max_n": 4,
    "tremor_compensation_mean_pct": 2, "grip_pressure_mean": 2, "energy_wh": 3,
}


def export(database_url, table, columns, out):
    """One input table from PostgreSQL as CSV (psql's \\copy: a real client, no driver)."""
    cols = ", ".join(
        f"{c}::text" if t == "VARCHAR" else
        f"to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS {c}" if t == "TIMESTAMPTZ" else c
        for c, t in columns
    )
    subprocess.run(
        ["psql", database_url, "-v", "ON_ERROR_STOP=1", "-qc",
         f"\\copy (SELECT {cols} FROM {table}) TO '{out}' WITH (FORMAT csv, HEADER true, NULL '\\N')"],
        check=True,
    )


def literal(text):
    """A SQL string literal (DuckDB prepares no parameters in CREATE … AS)."""
    return "'" + text.replace("'", "''") + "'"


def same(column, a, b):
    if a is None or b is None:
        return a is None and b is None
    numbers = (int, float, Decimal)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        a, b = float(a), float(b)
        if a == b:
            return True
        scale = ROUNDED.get(column)
        return scale is not None and math.isclose(a, b, rel_tol=0, abs_tol=10 ** -scale * 1.001)
    return a == b


def main():
    lake, listing, database_url = sys.argv[1:4]
    files = [os.path.join(lake, p) for p in Path(listing).read_text().split() if p]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    summary = {"tables": {}, "differences": []}
    with tempfile.TemporaryDirectory() as tmp:
        for table, columns in INPUTS.items():
            csv = os.path.join(tmp, f"{table}.csv")
            export(database_url, table, columns, csv)
            types = ", ".join(f"'{c}': '{t}'" for c, t in columns)
            extra = (
                ", from_hex(replace(procedure_id, '-', '')) AS procedure_key"
                if table == "surgical_procedures" else ""
            )
            con.execute(
                f"CREATE TABLE {table} AS SELECT *{extra} FROM read_csv({literal(csv)}, "
                f"header = true, columns = {{{types}}}, nullstr = '\\N')"
            )
    con.execute(
        "CREATE VIEW procedure_telemetry AS SELECT * FROM read_parquet(["
        + ", ".join(literal(f) for f in files) + "])"
    )
    con.execute("""
        CREATE TABLE calendar AS
        WITH days AS (
            SELECT CAST(COALESCE(start_time, scheduled_start) AS DATE) AS d FROM surgical_procedures
            UNION ALL SELECT maintenance_date FROM robot_maintenance_logs
            UNION ALL SELECT next_maintenance_date FROM robot_maintenance_logs
            UNION ALL SELECT installation_date FROM surgical_robots
        )
        SELECT CAST(range AS DATE) AS day
        FROM range((SELECT min(d) FROM days), (SELECT max(d) FROM days) + INTERVAL 1 DAY, INTERVAL 1 DAY)
    """)

    for table, key in STEPS:
        text = (SQL / f"{table}.sql").read_text().strip().rstrip(";")
        con.execute(f"CREATE TABLE {table} AS {text}")
        if key is None:
            continue
        pattern = os.path.join(lake, "warehouse", table, "**", "*.parquet")
        embedded = con.execute(
            f"SELECT * FROM read_parquet($p, hive_partitioning = false)", {"p": pattern}
        )
        names = [d[0] for d in embedded.description]
        theirs = {tuple(r[names.index(k)] for k in key): r for r in embedded.fetchall()}
        duck = con.execute(f"SELECT {', '.join(names)} FROM {table}")
        ours = {tuple(r[names.index(k)] for k in key): r for r in duck.fetchall()}
        summary["tables"][table] = {"rows": len(ours), "embedded_rows": len(theirs)}
        for k in sorted(set(ours) | set(theirs), key=str):
            a, b = ours.get(k), theirs.get(k)
            if a is None or b is None:
                summary["differences"].append(
                    {"table": table, "key": str(k), "only_in": "duckdb" if b is None else "embedded"}
                )
                continue
            for n, x, y in zip(names, a, b):
                if not same(n, x, y):
                    summary["differences"].append(
                        {"table": table, "key": str(k), "column": n, "duckdb": str(x), "embedded": str(y)}
                    )
    summary["differences_total"] = len(summary["differences"])
    summary["differences"] = summary["differences"][:20]
    print(json.dumps(summary))
    return 1 if summary["differences_total"] else 0


if __name__ == "__main__":
    sys.exit(main())
