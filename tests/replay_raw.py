"""A lake rebuilt from the raw archive against the original, read by pyarrow (nothing of
surgstream's).

Usage: replay_raw.py LAKE_A LAKE_B TOPIC_A:TOPIC_B [TOPIC_A:TOPIC_B …]

Prints one JSON object: the frames of both lakes (every column of every frame, sorted by
procedure_id and seq) and, per replayed topic pair, the raw archives' records (partition,
offset, key, headers, value) — each compared for equality.
"""

import glob
import json
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds


def frames(lake):
    # The data files (not the Iceberg table's metadata/ beside them).
    files = sorted(glob.glob(f"{lake}/procedure_telemetry/date=*/hour=*/*.parquet"))
    t = ds.dataset(files, format="parquet").to_table()
    # UUID columns as their 16 bytes (pyarrow sorts no extension type).
    cols = [c.cast(c.type.storage_type) if hasattr(c.type, "storage_type") else c for c in t.columns]
    t = pa.table(cols, names=t.column_names)
    return t.sort_by([("procedure_id", "ascending"), ("seq", "ascending")])


def raw(lake, topic):
    t = ds.dataset(f"{lake}/raw", format="parquet", partitioning="hive").to_table(
        filter=ds.field("topic") == topic,
        columns=["kafka_partition", "kafka_offset", "key", "headers", "value"])
    return t.sort_by([("kafka_partition", "ascending"), ("kafka_offset", "ascending")])


def first_difference(a, b):
    for name in a.column_names:
        ca, cb = a.column(name), b.column(name)
        if not ca.equals(cb):
            diff = pc.not_equal(ca, cb) if name != "headers" else None
            at = None
            if diff is not None:
                idx = pc.indices_nonzero(pc.fill_null(diff, True))
                at = idx[0].as_py() if len(idx) else None
            return {"column": name, "row": at}
    return None


def main():
    a, b = sys.argv[1], sys.argv[2]
    out = {}
    fa, fb = frames(a), frames(b)
    out["frames"] = {"a": fa.num_rows, "b": fb.num_rows, "columns": fa.num_columns,
                     "schema_equal": fa.schema.equals(fb.schema),
                     "equal": fa.num_rows == fb.num_rows and fa.equals(fb),
                     "first_difference": first_difference(fa, fb) if fa.num_rows == fb.num_rows else None}
    for pair in sys.argv[3:]:
        ta, tb = pair.split(":")
        ra, rb = raw(a, ta), raw(b, tb)
        out[ta] = {"a": ra.num_rows, "b": rb.num_rows,
                   "equal": ra.num_rows == rb.num_rows and ra.equals(rb),
                   "first_difference": first_difference(ra, rb) if ra.num_rows == rb.num_rows else None}
    print(json.dumps(out))


main()
