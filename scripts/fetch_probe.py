#!/usr/bin/env python3
"""Is it the broker? A plain consumer with nothing downstream on a live feed.

Creates fresh topics, streams a live fleet into them with `surgstream sim` (in wall-clock time),
and reads them at the same time with a bare librdkafka consumer (confluent-kafka) in its own
group that only counts: per partition, how old each record is when it arrives (now - its Kafka
timestamp, the producer's send time). If this consumer falls behind too, the broker (or the
fetch settings) is what holds records back, not the ingestor.

    python3 -m pip install confluent-kafka
    scripts/services.sh up && cargo build --release
    python3 scripts/fetch_probe.py --rate 100000 --seconds 60                      # librdkafka's defaults
    python3 scripts/fetch_probe.py --rate 100000 --seconds 60 fetch.min.bytes=1048576 fetch.wait.max.ms=100

Trailing KEY=VALUE arguments are consumer properties. Prints a line every 10 s and a summary
per partition (records, p50, p99, max age in seconds).
"""

import argparse
import subprocess
import sys
import time

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic


def quantile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--rate", type=int, default=100_000, help="frames/s in all")
    ap.add_argument("--hz", type=int, default=1000, help="frames/s of each room")
    ap.add_argument("--seconds", type=int, default=60, help="how long the fleet streams")
    ap.add_argument("--partitions", type=int, default=4, help="of the telemetry topic")
    ap.add_argument("--surgstream", default="target/release/surgstream")
    ap.add_argument("props", nargs="*", help="consumer properties, KEY=VALUE")
    a = ap.parse_args()
    props = {}
    for p in a.props:
        key, sep, value = p.partition("=")
        if not sep or not key:
            sys.exit(f"fetch_probe: {p!r} is not KEY=VALUE")
        props[key] = value

    prefix = f"probe-{int(time.time())}"
    telemetry, events = f"{prefix}.surgical.telemetry.v1", f"{prefix}.surgical.events.v1"
    admin = AdminClient({"bootstrap.servers": a.brokers})
    created = admin.create_topics([NewTopic(telemetry, a.partitions, 1), NewTopic(events, 2, 1)])
    for topic, future in created.items():
        future.result()
    consumer = Consumer({"bootstrap.servers": a.brokers, "group.id": prefix, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, **props})
    consumer.subscribe([telemetry])
    rooms = -(-a.rate // a.hz)
    sim = subprocess.Popen(
        [a.surgstream, "sim", "--profile", "live", "--brokers", a.brokers, "--robots", str(rooms), "--hz", str(a.hz),
         "--speed", "1", "--duration", f"{a.seconds}s", "--telemetry-topic", telemetry, "--events-topic", events],
        stdout=subprocess.DEVNULL)
    print(f"fetch_probe: {rooms} rooms x {a.hz} Hz into {telemetry}; consumer properties {props or 'librdkafka defaults'}",
          flush=True)
    ages, start, last_print, last_record = {}, time.time(), time.time(), time.time()
    while True:
        m = consumer.poll(0.5)
        now = time.time()
        if m is not None and m.error() is None:
            last_record = now
            ages.setdefault(m.partition(), []).append(now - m.timestamp()[1] / 1000)
        if now - last_print >= 10:
            last_print = now
            recent = " ".join(f"p{p} {max(v[-200:]):.2f}s" for p, v in sorted(ages.items()))
            print(f"  t={now - start:4.0f}s records={sum(map(len, ages.values()))} newest ages: {recent}", flush=True)
        if sim.poll() is not None and now - last_record > 10:
            break
    consumer.close()
    if sim.returncode != 0:
        sys.exit(f"fetch_probe: surgstream sim failed with exit code {sim.returncode}")
    for p, v in sorted(ages.items()):
        v.sort()
        print(f"partition {p}: records {len(v)}  age p50 {quantile(v, .5):.2f}s  p99 {quantile(v, .99):.2f}s  max {v[-1]:.2f}s")


if __name__ == "__main__":
    main()
