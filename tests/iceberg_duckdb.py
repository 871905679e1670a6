"""Reads the Iceberg table with DuckDB's iceberg extension, from the table's current metadata
file (what DuckDB users point iceberg_scan at), for tests/iceberg.rs.

The extension comes from PyPI (duckdb-extension-iceberg, with duckdb-extension-avro for the
manifests) and is built for one DuckDB release, so this runs in a virtual environment of its
own with that DuckDB (scripts/setup.sh makes it: $SURGSTREAM_CACHE/duckdb-iceberg-venv), apart
from the DuckDB the warehouse tests use.

usage: <venv>/bin/python tests/iceberg_duckdb.py METADATA_LOCATION

Prints {"duckdb", "rows", "procedures", "frames_per_procedure": {procedure_id as 32 hex digits:
[frames, min seq, max seq, sum of force_feedback_z as text]}, "types": {column: DuckDB type}}.
"""
import glob
import json
import os
import sys

import duckdb
import duckdb_extension_avro
import duckdb_extension_iceberg


def extension(module, name):
    found = glob.glob(
        os.path.join(os.path.dirname(module.__file__), "extensions", "*", f"{name}.duckdb_extension")
    )
    if not found:
        raise SystemExit(f"no {name}.duckdb_extension in {module.__file__}")
    return found[0]


def main(location):
    con = duckdb.connect()
    con.execute(f"LOAD '{extension(duckdb_extension_avro, 'avro')}'")
    con.execute(f"LOAD '{extension(duckdb_extension_iceberg, 'iceberg')}'")
    con.execute("SET TimeZone = 'UTC'")
    path = location.removeprefix("file://")
    scan = f"iceberg_scan('{path}')"
    stats = con.execute(
        f"""SELECT replace(CAST(procedure_id AS VARCHAR), '-', '') AS id, count(*),
                   min(seq), max(seq), CAST(sum(force_feedback_z) AS VARCHAR)
              FROM {scan} GROUP BY procedure_id"""
    ).fetchall()
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    json.dump(
        {
            "duckdb": duckdb.__version__,
            "rows": sum(r[1] for r in stats),
            "procedures": len(stats),
            "frames_per_procedure": {r[0]: [r[1], r[2], r[3], r[4]] for r in stats},
            "types": types,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main(sys.argv[1])
