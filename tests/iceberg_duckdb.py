"""Reads the Iceberg table with DuckDB's iceberg extension, from the table's current metadata
file (what DuckDB users point iceberg_scan at), for tests/iceberg.rs.

The extension comes from PyPI (duckdb-extension-iceberg, with duckdb-extension-avro for the
manifests) and is built for one DuckDB release, so this runs in a virtual environment of its
own with that DuckDB (scripts/setup.sh makes it: $SURGSTREAM_CACHE/duckdb-iceberg-venv), apart
from the DuckDB the warehouse tests use.

usage: <venv>/bin/python tests/iceberg_duckdb.py METADATA_LOCATION [RAW_METADATA_LOCATION …]

Prints {"duckdb", "rows", "procedures", "frames_per_procedure": {procedure_id as 32 hex digits:
[frames, min seq, max seq, sum of force_feedback_z as text]}, "types": {column: DuckDB type}}; with
raw tables' metadata files, also "raw": [{"rows", "distinct_offsets", "key_bytes", "value_bytes",
"headers", "types"}] for each, in order.
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


def raw_table(con, location):
    scan = f"iceberg_scan('{location.removeprefix('file://')}')"
    n, d, k, v, h = con.execute(
        f"""SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)),
                   coalesce(sum(octet_length(key)), 0), coalesce(sum(octet_length(value)), 0),
                   coalesce(sum(len(headers)), 0)
              FROM {scan}"""
    ).fetchone()
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    return {"rows": n, "distinct_offsets": d, "key_bytes": k, "value_bytes": v, "headers": h,
            "types": types}


def main(location, raw):
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
            "raw": [raw_table(con, r) for r in raw],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
