"""The procedure archive (archive/ in the lake) as DuckDB reads it, with nothing of surgstream's.

Usage: procedure_archive.py LAKE_DIR [DATABASE_URL]

Prints one JSON object: per archived table (surgical_procedures, procedure_outcomes,
status_audit), every row of every archive object, read by DuckDB as a Hive-partitioned
dataset (month=YYYY-MM), with the partition's month beside each row as `_month`; timestamps
as microseconds since the epoch, decimals and dates as text, so that the test compares them
with PostgreSQL's rows exactly. With DATABASE_URL, also `iceberg`: the same for the archive's
Iceberg tables (`archive.<table>` in the SQL catalog there), read by pyiceberg.
"""

import datetime
import decimal
import glob
import json
import os
import sys

import duckdb

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def plain(v):
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return (v - EPOCH) // datetime.timedelta(microseconds=1)
    if isinstance(v, (datetime.date, decimal.Decimal)):
        return str(v)
    return v


def main():
    lake = sys.argv[1]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    out = {}
    for table in ("surgical_procedures", "procedure_outcomes", "status_audit"):
        pattern = os.path.join(lake, "archive", table, "month=*", "*.parquet")
        if not glob.glob(pattern):
            out[table] = []
            continue
        cur = con.execute(
            f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = true)"
        )
        names = [d[0] for d in cur.description]
        rows = []
        for r in cur.fetchall():
            row = {n: plain(v) for n, v in zip(names, r)}
            row["_month"] = str(row.pop("month"))
            # The Iceberg tables' partition column, the directory's month as yyyymm.
            key = row.pop("month_key")
            if int(row["_month"].replace("-", "")) != key:
                sys.exit(f"{table}: month_key {key} in the directory month={row['_month']}")
            rows.append(row)
        out[table] = rows
    if len(sys.argv) > 2:
        from pyiceberg.catalog.sql import SqlCatalog

        url = sys.argv[2].replace("postgres://", "postgresql+psycopg2://", 1)
        catalog = SqlCatalog("surgstream", uri=url, init_catalog_tables="false")
        out["iceberg"] = {}
        for table in ("surgical_procedures", "procedure_outcomes", "status_audit"):
            rows = []
            for r in catalog.load_table(f"archive.{table}").scan().to_arrow().to_pylist():
                r.pop("month_key")
                rows.append({n: plain(v) for n, v in r.items()})
            out["iceberg"][table] = rows
    print(json.dumps(out))


if __name__ == "__main__":
    main()
