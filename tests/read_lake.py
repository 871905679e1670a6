"""Reads one lake file with pyarrow (an outside reader) and checks the data model's types.

usage: python3 tests/read_lake.py FILE.parquet
"""
import decimal
import sys
import uuid

import pyarrow as pa
import pyarrow.parquet as pq

DECIMALS = {
    "arm_position_x": (10, 4), "arm_position_y": (10, 4), "arm_position_z": (10, 4),
    "arm_rotation": (6, 2), "grip_pressure": (6, 2), "tremor_compensation": (5, 2),
    "camera_zoom": (4, 2), "camera_angle": (6, 2), "force_feedback_x": (8, 4),
    "force_feedback_y": (8, 4), "force_feedback_z": (8, 4), "system_temperature": (5, 2),
    "power_consumption": (8, 2),
}


def main(path):
    pf = pq.ParquetFile(path)
    table = pf.read()
    schema = table.schema
    for name in ("telemetry_id", "procedure_id", "robot_id"):
        t = schema.field(name).type
        storage = getattr(t, "storage_type", t)
        assert storage == pa.binary(16), f"{name}: {t}"
        col = pf.schema.column(pf.schema.names.index(name))
        assert str(col.logical_type) == "UUID", f"{name} logical type {col.logical_type}"
    assert schema.field("timestamp").type == pa.timestamp("us", tz="UTC"), schema.field("timestamp").type
    assert schema.field("seq").type == pa.int64()
    assert schema.field("tool_type").type == pa.string()
    for name, (p, s) in DECIMALS.items():
        assert schema.field(name).type == pa.decimal128(p, s), f"{name}: {schema.field(name).type}"
    row = table.slice(0, 1).to_pylist()[0]
    assert isinstance(row["arm_position_x"], decimal.Decimal)
    assert isinstance(row["procedure_id"], (uuid.UUID, bytes)), type(row["procedure_id"])
    assert row["timestamp"].tzinfo is not None
    print(f"pyarrow {pa.__version__}: {table.num_rows} rows, {len(schema)} columns, types OK")


if __name__ == "__main__":
    main(sys.argv[1])
