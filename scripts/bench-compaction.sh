#!/usr/bin/env bash
# The compaction benchmark: the data model's two-year seed backfill (at --scale N) goes through
# Kafka and the ingestor into a scratch lake and database (not timed; the ingestor does not
# compact), the warehouse is built from it (timed: without its Iceberg tables, with them, and
# once more with nothing to rebuild), then `surgstream compact` merges the small
# files and follows the swap into the Iceberg table (timed, with its peak RSS), and the
# warehouse is rebuilt from the compacted files (timed). pyiceberg reads the table after it: it
# must hold every frame the simulator delivered, from the compacted files. One JSON line is
# appended to target/bench-compaction/results.jsonl.
#
#   scripts/bench-compaction.sh            # --scale 1: ~490,000 frames in ~8,300 files
#   scripts/bench-compaction.sh --scale 10
#
# Needs the services (scripts/services.sh up). BENCH_BIN=path uses that binary;
# BENCH_COMPACT_ARGS="--target-rows 100000" passes options to `surgstream compact`.
set -euo pipefail
cd "$(dirname "$0")/.."

BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
scale=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --scale) scale="$2"; shift 2 ;;
        *) echo "bench-compaction.sh: unknown option $1 (expected --scale N)" >&2; exit 2 ;;
    esac
done
if [[ -n "${BENCH_BIN:-}" ]]; then
    bin="$BENCH_BIN"
else
    cargo build --release --locked --quiet --bin surgstream
    bin=target/release/surgstream
fi
stamp="$(date +%s)"
prefix="cbench-$stamp."
out="target/bench-compaction"
lake="$out/lake-$stamp"
db="surgstream_cbench_$stamp"
group="cbench-$stamp"
mkdir -p "$out"
cleanup() {
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    rm -rf "$lake"
    for t in telemetry.v1 events.v1 telemetry.dlq.v1 events.dlq.v1; do
        java -cp "$HOME/.cache/surgstream/kafka-4.1.1/libs/*" org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "$BROKERS" --delete --topic "${prefix}surgical.$t" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT
psql "$PG/postgres" -qc "CREATE DATABASE $db"
topics=(--telemetry-topic "${prefix}surgical.telemetry.v1" --events-topic "${prefix}surgical.events.v1")
db_lake=(--database-url "$PG/$db" --lake "$lake" --group "$group")
"$bin" create-topics --brokers "$BROKERS" --prefix "$prefix" >/dev/null
"$bin" migrate --database-url "$PG/$db" >/dev/null
echo "[bench-compaction] feeding the seed backfill (scale $scale) through Kafka and the ingestor" >&2
"$bin" sim --brokers "$BROKERS" "${topics[@]}" --profile seed --scale "$scale" --seed 1 \
    --start-time 2024-01-01T00:00:00Z --report "$out/sim-$stamp.json" >/dev/null
"$bin" ingest --brokers "$BROKERS" "${db_lake[@]}" "${topics[@]}" \
    --telemetry-dlq-topic "${prefix}surgical.telemetry.dlq.v1" \
    --events-dlq-topic "${prefix}surgical.events.dlq.v1" \
    --until-idle 5s --no-compact 2>"$out/ingest-$stamp.log" >/dev/null

timed() { # name command…: runs it under /usr/bin/time -v, its stdout to $out/<name>-$stamp.json
    local name="$1"; shift
    /usr/bin/time -v -o "$out/time-$stamp-$name.txt" "$@" >"$out/$name-$stamp.json" 2>"$out/$name-$stamp.log"
}
manifest() {
    psql "$PG/$db" -Atc "SELECT json_build_object('files', count(*), 'rows', sum(rows), 'bytes', sum(bytes))
                          FROM lake_files WHERE consumer_group = '$group'"
}
before=$(manifest)
# The warehouse without and with its Iceberg tables (each a full build: publishing to Iceberg
# or not is part of a month's digest), then a run with nothing to rebuild (the Iceberg sync
# alone).
timed warehouse-no-iceberg "$bin" warehouse "${db_lake[@]}" --no-iceberg --json
timed warehouse-hour-files "$bin" warehouse "${db_lake[@]}" --json
timed warehouse-unchanged "$bin" warehouse "${db_lake[@]}" --json
warehouse_iceberg=$(psql "$PG/$db" -Atc "SELECT json_build_object('files', count(*), 'bytes', sum(bytes))
                                         FROM warehouse.iceberg_files WHERE retired_at IS NULL")
# shellcheck disable=SC2086 # BENCH_COMPACT_ARGS: extra options, split on spaces
timed compact "$bin" compact "${db_lake[@]}" --telemetry-topic "${prefix}surgical.telemetry.v1" --json ${BENCH_COMPACT_ARGS:-}
after=$(manifest)
timed warehouse-compacted "$bin" warehouse "${db_lake[@]}" --json
python3 - "$PG/$db" > "$out/pyiceberg-$stamp.json" <<'EOF'
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
url = sys.argv[1].replace("postgres://", "postgresql+psycopg2://", 1)
table = SqlCatalog("surgstream", uri=url, init_catalog_tables="false").load_table("surgstream.procedure_telemetry")
scan = table.scan()
print(json.dumps({"files": len(list(scan.plan_files())), "rows": scan.select("seq").to_arrow().num_rows,
                  "manifests": len(table.current_snapshot().manifests(table.io))}))
EOF
python3 - "$scale" "$out" "$stamp" "$before" "$after" "$warehouse_iceberg" <<'EOF' | tee -a "$out/results.jsonl"
import json, os, sys
scale, out, stamp, before, after, wh_iceberg = sys.argv[1:7]
before, after = json.loads(before), json.loads(after)
def timing(name):
    t = {}
    for line in open(f"{out}/time-{stamp}-{name}.txt"):
        k, _, v = line.strip().rpartition(": ")
        t[k] = v
    parts = [float(p) for p in t["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")]
    return {"wall_seconds": round(sum(p * 60 ** i for i, p in enumerate(reversed(parts))), 2),
            "cpu_seconds": round(float(t["User time (seconds)"]) + float(t["System time (seconds)"]), 2),
            "peak_rss_mib": round(int(t["Maximum resident set size (kbytes)"]) / 1024, 1)}
sent = json.load(open(f"{out}/sim-{stamp}.json"))["frames"]
read = json.load(open(f"{out}/pyiceberg-{stamp}.json"))
report = json.load(open(f"{out}/compact-{stamp}.json"))
if not (sent == before["rows"] == after["rows"] == read["rows"]) or read["files"] != after["files"]:
    sys.exit(f"bench-compaction.sh: frames sent {sent}, in the lake {before['rows']} → {after['rows']}, "
             f"read by pyiceberg {read['rows']} from {read['files']} files (manifest: {after['files']})")
c = timing("compact")
print(json.dumps({
    "scale": int(scale), "frames": sent, "compact_args": os.environ.get("BENCH_COMPACT_ARGS", ""),
    "before": {**before, "bytes_per_frame": round(before["bytes"] / sent, 1), "rows_per_file": round(sent / before["files"])},
    "after": {**after, "bytes_per_frame": round(after["bytes"] / sent, 1), "rows_per_file": round(sent / after["files"])},
    "compact": {**c, "cpu_seconds_per_million_frames": round(c["cpu_seconds"] / sent * 1e6, 2),
                "merge_seconds": round(report["compaction"]["seconds"], 2),
                "iceberg_seconds": round(report["iceberg"]["seconds"], 2),
                "compactions": report["compaction"]["compactions"]},
    "iceberg_manifests_after": read["manifests"],
    "warehouse_hour_files_no_iceberg": timing("warehouse-no-iceberg"),
    "warehouse_hour_files": timing("warehouse-hour-files"),
    "warehouse_unchanged": timing("warehouse-unchanged"),
    "warehouse_iceberg_files": json.loads(wh_iceberg),
    "warehouse_compacted": timing("warehouse-compacted"),
}))
EOF
