"""Reads the Iceberg table surgstream.procedure_telemetry with Apache Spark (pyspark, local mode,
Iceberg's Spark runtime) through the JDBC catalog in PostgreSQL, and prints what it found as JSON,
for tests/iceberg.rs.

usage: python3 tests/iceberg_spark.py JARS_DIR DATABASE WAREHOUSE [--catalog NAME] [--raw TABLE …]

DATABASE is host:port/name (user postgres, no password, as scripts/services.sh sets up);
WAREHOUSE the lake's URL. Prints {"spark", "rows", "procedures", "frames_per_procedure":
{procedure_id as 32 hex digits: [frames, min seq, max seq, sum of force_feedback_z as text]}, "types":
{column: Spark type}, "snapshots", "files"}; with --raw, also "raw": {TABLE: {"rows", "distinct_offsets",
"key_bytes", "value_bytes", "headers", "types"}} for each raw table named (raw.<topic>).
"""
import argparse
import glob
import json
import os
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("jars")
    p.add_argument("database")
    p.add_argument("warehouse")
    p.add_argument("--catalog", default="surgstream")
    p.add_argument("--raw", nargs="*", default=[])
    a = p.parse_args()

    from pyspark.sql import SparkSession

    jars = ",".join(sorted(glob.glob(os.path.join(a.jars, "*.jar"))))
    c = f"spark.sql.catalog.{a.catalog}"
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("surgstream-iceberg-check")
        .config("spark.jars", jars)
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        .config(c, "org.apache.iceberg.spark.SparkCatalog")
        .config(f"{c}.type", "jdbc")
        .config(f"{c}.uri", f"jdbc:postgresql://{a.database}")
        .config(f"{c}.jdbc.user", "postgres")
        .config(f"{c}.jdbc.schema-version", "V1")
        .config(f"{c}.warehouse", a.warehouse)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    table = f"{a.catalog}.surgstream.procedure_telemetry"
    df = spark.table(table)
    # Spark has no UUID type: Iceberg's runtime gives uuid columns as their text.
    stats = spark.sql(
        f"""SELECT lower(replace(CAST(procedure_id AS STRING), '-', '')) AS id, count(*) AS frames,
                   min(seq) AS lo, max(seq) AS hi, CAST(sum(force_feedback_z) AS STRING) AS force_z
              FROM {table} GROUP BY procedure_id"""
    ).collect()
    out = {
        "spark": spark.version,
        "rows": df.count(),
        "procedures": len(stats),
        "frames_per_procedure": {
            r["id"]: [r["frames"], r["lo"], r["hi"], r["force_z"]] for r in stats
        },
        "types": {f.name: f.dataType.simpleString() for f in df.schema.fields},
        "snapshots": [
            r["snapshot_id"] for r in spark.sql(f"SELECT snapshot_id FROM {table}.snapshots").collect()
        ],
        "files": sorted(r["file_path"] for r in spark.sql(f"SELECT file_path FROM {table}.files").collect()),
    }
    out["raw"] = {}
    for name in a.raw:
        raw = f"{a.catalog}.{name}"
        r = spark.sql(
            f"""SELECT count(*) AS n, count(DISTINCT kafka_partition, kafka_offset) AS d,
                       coalesce(sum(length(key)), 0) AS k, coalesce(sum(length(value)), 0) AS v,
                       coalesce(sum(size(headers)), 0) AS h
                  FROM {raw}"""
        ).collect()[0]
        out["raw"][name] = {
            "rows": r["n"], "distinct_offsets": r["d"], "key_bytes": r["k"],
            "value_bytes": r["v"], "headers": r["h"],
            "types": {f.name: f.dataType.simpleString() for f in spark.table(raw).schema.fields},
        }
    json.dump(out, sys.stdout)
    spark.stop()


if __name__ == "__main__":
    main()
