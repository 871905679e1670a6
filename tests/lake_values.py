"""Reads lake files with pyarrow (an outside reader) and prints every row as JSON, for
tests/lake_values.rs to compare with the frames it sent.

usage: python3 tests/lake_values.py LAKE_ROOT RELATIVE_PATH...

Prints {"files": [{"path", "types": {column: pyarrow type}, "rows": [{column: value}]}]}, in
file order: ids as 32 hex digits, `timestamp` as integer µs since the epoch (UTC), DECIMAL
columns as the text of the `decimal.Decimal` pyarrow gives (its exponent checked against the
column's scale), `seq` as an integer, `tool_type` as the string.
"""
import datetime
import decimal
import json
import os
import sys
import uuid

import pyarrow as pa
import pyarrow.parquet as pq

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
MICROSECOND = datetime.timedelta(microseconds=1)


def value(name, t, v):
    if v is None:
        raise AssertionError(f"{name}: null")
    if name in ("telemetry_id", "procedure_id", "robot_id"):
        raw = v.bytes if isinstance(v, uuid.UUID) else v
        assert isinstance(raw, bytes) and len(raw) == 16, f"{name}: {v!r}"
        return raw.hex()
    if name == "timestamp":
        assert v.utcoffset() == datetime.timedelta(0), f"timestamp not UTC: {v!r}"
        return (v - EPOCH) // MICROSECOND
    if pa.types.is_decimal(t):
        assert isinstance(v, decimal.Decimal), f"{name}: {v!r}"
        assert v.as_tuple().exponent == -t.scale, f"{name}: {v} is not at scale {t.scale}"
        return str(v)
    return v


def main(root, paths):
    files = []
    for path in paths:
        table = pq.ParquetFile(os.path.join(root, path)).read()
        types = {f.name: f.type for f in table.schema}
        rows = [
            {name: value(name, types[name], v) for name, v in row.items()}
            for row in table.to_pylist()
        ]
        files.append({"path": path, "types": {k: str(t) for k, t in types.items()}, "rows": rows})
    json.dump({"pyarrow": pa.__version__, "files": files}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
