#!/usr/bin/env python3
"""An outside producer for tests/compression.rs: replays a `surgstream sim --output` file into
Kafka with confluent-kafka (not our code), compressing record batches with the codec given.

    produce_compressed.py FILE BROKERS TELEMETRY_TOPIC EVENTS_TOPIC CODEC

The file's layout is crates/surgstream-sim/src/file.rs's: the magic `SURGSIM1`, then per
record kind u8 (0 telemetry, 1 event), at i64 LE (µs), key [16], len u32 LE, value [len].
Each record carries the headers the simulator sends. Prints the number of records delivered;
exits non-zero when any delivery fails.
"""
import struct
import sys

from confluent_kafka import Producer

HEADER = struct.Struct("<Bq16sI")


def records(path):
    with open(path, "rb") as f:
        if f.read(8) != b"SURGSIM1":
            sys.exit(f"{path}: not a surgstream sim --output file")
        while True:
            head = f.read(HEADER.size)
            if not head:
                return
            if len(head) != HEADER.size:
                sys.exit(f"{path}: truncated record header")
            kind, at, key, n = HEADER.unpack(head)
            value = f.read(n)
            if len(value) != n:
                sys.exit(f"{path}: truncated record value")
            yield kind, at, key, value


def main():
    path, brokers, telemetry, events, codec = sys.argv[1:6]
    producer = Producer(
        {
            "bootstrap.servers": brokers,
            "compression.type": codec,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
        }
    )
    failed = []
    delivered = [0]

    def report(err, _msg):
        if err is not None:
            failed.append(str(err))
        else:
            delivered[0] += 1

    for kind, at, key, value in records(path):
        topic, schema = (
            (telemetry, "surgstream.v1.TelemetryBatch")
            if kind == 0
            else (events, "surgstream.v1.Event")
        )
        while True:
            try:
                producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=[
                        ("content-type", b"application/x-protobuf"),
                        ("schema", schema.encode()),
                    ],
                    on_delivery=report,
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(60)
    if failed or remaining:
        sys.exit(f"{len(failed)} deliveries failed ({failed[:3]}), {remaining} undelivered")
    print(delivered[0])


if __name__ == "__main__":
    main()
