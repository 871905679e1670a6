#!/usr/bin/env bash
# Iceberg freshness at a live rate: how long after a frame's timestamp the snapshot holding it
# is committed. A paced live fleet (ROOMS rooms at HZ frames/s, SECONDS long) goes through
# Kafka to an ingestor with `--max-age 1s --iceberg-interval INTERVAL` (release build, fresh
# topics, database and lake); afterwards pyiceberg walks every snapshot's added files and
# prints, per file, commit time − its oldest frame and commit time − its newest frame.
#
#   scripts/bench-iceberg-freshness.sh [ROOMS HZ SECONDS INTERVAL]    # default: 100 1000 60 10s
#
# Needs the services (scripts/services.sh up). BENCH_BIN=path uses that binary.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOMS=${1:-100}; HZ=${2:-1000}; SECS=${3:-60}; INTERVAL=${4:-10s}
if [[ -n "${BENCH_BIN:-}" ]]; then
    B="$BENCH_BIN"
else
    cargo build --release --locked --quiet --bin surgstream
    B=target/release/surgstream
fi
stamp=$(date +%s); P=fresh$stamp.; DB=fresh_$stamp; LAKE=target/bench-freshness/lake-$stamp
LOG=target/bench-freshness/ingest-$stamp.log
mkdir -p target/bench-freshness
cleanup() {
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
    rm -rf "$LAKE"
    for t in telemetry.v1 events.v1 telemetry.dlq.v1 events.dlq.v1; do
        java -cp "$HOME/.cache/surgstream/kafka-4.1.1/libs/*" org.apache.kafka.tools.TopicCommand \
            --bootstrap-server 127.0.0.1:9092 --delete --topic "${P}surgical.$t" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $DB"
URL=postgres://postgres@127.0.0.1:5432/$DB
T=(--telemetry-topic ${P}surgical.telemetry.v1 --events-topic ${P}surgical.events.v1)
$B create-topics --prefix $P >/dev/null
$B migrate --database-url $URL >/dev/null
$B ingest --database-url $URL --lake $LAKE --group fm "${T[@]}" \
  --telemetry-dlq-topic ${P}surgical.telemetry.dlq.v1 --events-dlq-topic ${P}surgical.events.dlq.v1 \
  --max-age 1s --iceberg-interval $INTERVAL > "$LOG" 2>&1 &
ING=$!
sleep 5
$B sim --profile live --robots $ROOMS --hz $HZ --duration ${SECS}s "${T[@]}" --report target/bench-freshness/sim-$stamp.json 2>&1 | tail -1
sleep 5
kill -TERM $ING; wait $ING || true
sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["frames"])' target/bench-freshness/sim-$stamp.json)
python3 - "$URL" "$sent" <<'PY'
import sys
from pyiceberg.catalog.sql import SqlCatalog
url = sys.argv[1].replace("postgres://", "postgresql+psycopg2://", 1)
t = SqlCatalog("surgstream", uri=url, init_catalog_tables="false").load_table("surgstream.procedure_telemetry")
ts_id = t.schema().find_field("timestamp").field_id
from pyiceberg.conversions import from_bytes
from pyiceberg.types import TimestamptzType
lat_old, lat_new, rows = [], [], 0
snaps = {s.snapshot_id: s for s in t.metadata.snapshots}
for s in t.metadata.snapshots:
    for m in s.manifests(t.io):
        if m.added_snapshot_id != s.snapshot_id:
            continue
        for e in m.fetch_manifest_entry(t.io, discard_deleted=True):
            if e.snapshot_id != s.snapshot_id: continue
            lo = from_bytes(TimestamptzType(), e.data_file.lower_bounds[ts_id]) / 1e6
            hi = from_bytes(TimestamptzType(), e.data_file.upper_bounds[ts_id]) / 1e6
            c = s.timestamp_ms / 1e3
            lat_old.append(c - lo); lat_new.append(c - hi); rows += e.data_file.record_count
q = lambda v, p: sorted(v)[min(len(v)-1, int(p*len(v)))]
print(f"snapshots {len(snaps)}, files {len(lat_old)}, rows {rows}")
if not lat_old:
    sys.exit("no file was published")
if rows != int(sys.argv[2]):
    sys.exit(f"the table holds {rows} rows, the simulator delivered {sys.argv[2]}")
print(f"frame -> visible in a snapshot: oldest frame of each file p50 {q(lat_old,.5):.2f}s p99 {q(lat_old,.99):.2f}s max {max(lat_old):.2f}s; newest frame p50 {q(lat_new,.5):.2f}s max {max(lat_new):.2f}s")
PY
