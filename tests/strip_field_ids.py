"""Rewrites lake files as the lake wrote them before the Iceberg tables existed: the same rows,
types and sort, with no Parquet field ids, for tests/iceberg.rs to check that readers of the
table then match their columns by name (the table's name mapping).

usage: python3 tests/strip_field_ids.py FILE...

Prints {"files": n, "field_ids_before": k, "field_ids_after": 0}, counting the columns that
carried a field id.
"""
import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def field_ids(path):
    schema = pq.ParquetFile(path).schema_arrow
    return sum(1 for f in schema if f.metadata and b"PARQUET:field_id" in f.metadata)


def main(paths):
    before = after = 0
    for path in paths:
        before += field_ids(path)
        table = pq.read_table(path)
        bare = pa.schema([f.remove_metadata() for f in table.schema])
        # Keep the id columns' UUID annotation (the extension type carries it, not the metadata).
        bare = pa.schema(
            [bare.field(i).with_type(table.schema.field(i).type) for i in range(len(bare))]
        )
        pq.write_table(table.cast(bare).replace_schema_metadata(None), path, compression="zstd")
        after += field_ids(path)
    json.dump({"files": len(paths), "field_ids_before": before, "field_ids_after": after}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
