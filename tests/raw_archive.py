"""The raw archive (raw/ in the lake) against the topics, with nothing of surgstream's:
confluent-kafka reads every record of each topic from its low to its high watermark, pyarrow
reads raw/ as a Hive-partitioned dataset, and DuckDB counts it by SQL. With --catalog, pyiceberg
also reads each topic's raw Iceberg table (raw.<topic>) through the SQL catalog in PostgreSQL.

Usage: raw_archive.py [--catalog DATABASE_URL] BROKERS LAKE_DIR TOPIC [TOPIC …]

Prints one JSON object: per topic, the records Kafka has, the rows raw/ holds, and how many
records are missing from raw/, more than once in it, in it but not in the topic, or archived
with another key, value, headers, timestamp or timestamp type than the topic has; plus
examples of each. With --catalog, the same under "iceberg" per topic, for the raw table.
"""

import hashlib
import json
import re
import sys

import duckdb
import pyarrow.dataset as ds
from confluent_kafka import Consumer, TopicPartition, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME


def digest(key, headers, value):
    h = hashlib.sha256()
    for part in (key, value):
        h.update(b"\x00" if part is None else b"\x01" + len(part).to_bytes(8, "big") + part)
    for k, v in headers:
        k = k.encode() if isinstance(k, str) else k
        h.update(len(k).to_bytes(8, "big") + k)
        h.update(b"\x00" if v is None else b"\x01" + len(v).to_bytes(8, "big") + v)
    return h.hexdigest()


def from_kafka(brokers, topic):
    c = Consumer({"bootstrap.servers": brokers, "group.id": "raw-archive-check",
                  "enable.auto.commit": False, "enable.partition.eof": False})
    md = c.list_topics(topic, timeout=10)
    records = {}
    ends = {}
    assign = []
    for p in md.topics[topic].partitions:
        low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high
            assign.append(TopicPartition(topic, p, low))
    c.assign(assign)
    idle = 0
    while ends:
        m = c.poll(1.0)
        if m is None:
            idle += 1
            if idle > 30:
                raise SystemExit(f"{topic}: no record for 30 s, still waiting for {ends}")
            continue
        idle = 0
        if m.error():
            raise SystemExit(f"{topic}: {m.error()}")
        p, o = m.partition(), m.offset()
        if p not in ends or o >= ends[p]:
            continue
        ts_type, ts = m.timestamp()
        kind = {TIMESTAMP_CREATE_TIME: "CreateTime", TIMESTAMP_LOG_APPEND_TIME: "LogAppendTime"}.get(ts_type)
        records[(p, o)] = (digest(m.key(), m.headers() or [], m.value()), ts if kind else None, kind)
        if o + 1 >= ends[p]:
            del ends[p]
    c.close()
    return records


def from_raw(lake, topic):
    dataset = ds.dataset(f"{lake}/raw", format="parquet", partitioning="hive")
    return rows_of(dataset.to_table(filter=ds.field("topic") == topic))


def from_iceberg(url, topic):
    """The raw table of topic, read by pyiceberg: raw.<the topic's name, lower case, with every
    character but letters, digits and _ made _>."""
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("surgstream", uri=url.replace("postgres://", "postgresql+psycopg2://", 1),
                         init_catalog_tables="false")
    table = catalog.load_table("raw." + re.sub(r"[^a-z0-9_]", "_", topic.lower()))
    arrow = table.scan().to_arrow()
    if str(arrow.schema.field("kafka_timestamp").type) != "timestamp[us, tz=UTC]":
        raise SystemExit(f"raw table of {topic}: kafka_timestamp is {arrow.schema.field('kafka_timestamp').type}")
    return rows_of(arrow), len(table.current_snapshot().manifests(table.io))


def rows_of(table):
    rows = {}
    twice = []
    cols = table.to_pydict()
    for i in range(table.num_rows):
        key = (cols["kafka_partition"][i], cols["kafka_offset"][i])
        headers = [(h["key"], h["value"]) for h in cols["headers"][i]]
        ts = cols["kafka_timestamp"][i]
        ts = None if ts is None else int(ts.timestamp() * 1000 + 0.5)
        row = (digest(cols["key"][i], headers, cols["value"][i]), ts, cols["kafka_timestamp_type"][i])
        if key in rows:
            twice.append(key)
        rows[key] = row
    return rows, twice


def compare(kafka, raw, twice):
    missing = sorted(set(kafka) - set(raw))
    unexpected = sorted(set(raw) - set(kafka))
    altered = sorted(k for k in set(kafka) & set(raw) if kafka[k] != raw[k])
    return {
        "kafka_records": len(kafka),
        "raw_rows": len(raw) + len(twice),
        "missing": len(missing),
        "duplicated": len(twice),
        "unexpected": len(unexpected),
        "altered": len(altered),
        "examples": {"missing": missing[:5], "duplicated": twice[:5],
                     "unexpected": unexpected[:5], "altered": altered[:5]},
    }


def main():
    args = sys.argv[1:]
    catalog = None
    if args[:1] == ["--catalog"]:
        catalog, args = args[1], args[2:]
    brokers, lake, topics = args[0], args[1], args[2:]
    out = {}
    for topic in topics:
        kafka = from_kafka(brokers, topic)
        out[topic] = compare(kafka, *from_raw(lake, topic))
        if catalog:
            (rows, twice), manifests = from_iceberg(catalog, topic)
            out[topic]["iceberg"] = compare(kafka, rows, twice)
            out[topic]["iceberg"]["manifests"] = manifests
    # DuckDB's own count of the same files, by SQL.
    counts = duckdb.sql(
        f"SELECT topic, count(*), count(DISTINCT (kafka_partition, kafka_offset)) "
        f"FROM read_parquet('{lake}/raw/**/*.parquet', hive_partitioning = true) GROUP BY topic"
    ).fetchall()
    out["duckdb"] = {t: {"rows": n, "distinct_offsets": d} for t, n, d in counts}
    print(json.dumps(out))


main()
