"""The procedure archive (archive/ in the lake) as DuckDB reads it, with nothing of surgstream's.

Usage: procedure_archive.py LAKE_DIR

Prints one JSON object: per archived table (surgical_procedures, procedure_outcomes,
status_audit), every row of every archive object, read by DuckDB as a Hive-partitioned
dataset (month=YYYY-MM), with the partition's month beside each row as `_month`; timestamps
as microseconds since the epoch, decimals and dates as text, so that the test compares them
with PostgreSQL's rows exactly.
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
        pattern = os.path.join(lake, "archive", table, "*", "*.parquet")
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
            rows.append(row)
        out[table] = rows
    print(json.dumps(out))


if __name__ == "__main__":
    main()
