"""Reads the Iceberg table surgstream.procedure_telemetry with pyiceberg (an outside reader)
through its SQL catalog in PostgreSQL, and prints what it read as JSON, for tests/iceberg.rs.

usage: python3 tests/iceberg_read.py POSTGRES_URL [--catalog NAME] [--snapshot ID] [--no-rows | --keys]

Prints {"pyiceberg", "format_version", "snapshot": {"id", "summary"}, "snapshots": [ids],
"manifests": how many the snapshot lists,
"partition_spec", "schema": {column: iceberg type}, "types": {column: arrow type},
"files": [data file paths the scan plans], "rows": [{column: value}]}: values as
tests/lake_values.py prints them (ids as 32 hex digits, timestamps as µs UTC, decimals as text
at the column's scale). With --keys, each row is only [procedure_id, seq].
"""
import argparse
import json
import os
import sys

import pyiceberg
from pyiceberg.catalog.sql import SqlCatalog

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lake_values import value  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--catalog", default="surgstream")
    p.add_argument("--snapshot", type=int)
    p.add_argument("--no-rows", action="store_true")
    p.add_argument("--keys", action="store_true")
    a = p.parse_args()
    url = a.url.replace("postgres://", "postgresql+psycopg2://", 1)
    catalog = SqlCatalog(a.catalog, uri=url, init_catalog_tables="false")
    table = catalog.load_table("surgstream.procedure_telemetry")
    snapshot = table.snapshot_by_id(a.snapshot) if a.snapshot else table.current_snapshot()
    scan = table.scan(snapshot_id=snapshot.snapshot_id) if snapshot else table.scan()
    files = sorted(task.file.file_path for task in scan.plan_files())
    out = {
        "pyiceberg": pyiceberg.__version__,
        "format_version": table.metadata.format_version,
        "snapshot": {
            "id": snapshot.snapshot_id if snapshot else None,
            "summary": dict(snapshot.summary.additional_properties) if snapshot else {},
            "operation": str(snapshot.summary.operation) if snapshot else None,
        },
        "snapshots": [s.snapshot_id for s in table.metadata.snapshots],
        "manifests": len(snapshot.manifests(table.io)) if snapshot else 0,
        "partition_spec": str(table.spec()),
        "schema": {f.name: str(f.field_type) for f in table.schema().fields},
        "files": files,
    }
    if a.keys:
        arrow = scan.select("procedure_id", "seq").to_arrow()
        ids = arrow.column("procedure_id").to_pylist()
        seqs = arrow.column("seq").to_pylist()
        out["rows"] = [
            [value("procedure_id", None, i), s] for i, s in zip(ids, seqs)
        ]
    elif not a.no_rows:
        arrow = scan.to_arrow()
        types = {f.name: f.type for f in arrow.schema}
        out["types"] = {k: str(t) for k, t in types.items()}
        out["rows"] = [
            {name: value(name, types[name], v) for name, v in row.items()}
            for row in arrow.to_pylist()
        ]
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
