#!/usr/bin/env bash
# The warehouse refresh benchmark: a feed goes through Kafka and the ingestor into a scratch lake
# and database (not timed), then `surgstream warehouse` builds the star schema from nothing
# (timed, with its peak RSS), runs again with nothing changed, and once more after one late
# change (an outcome's update; a procedure's when no outcome exists yet). One JSON line per run
# is appended to target/bench-warehouse/results.jsonl; the answers of warehouse/queries/*.sql go
# to target/bench-warehouse/answers-<stamp>.txt. The feed is checked: the lake must hold every
# frame the simulator delivered, or the benchmark stops.
#
#   scripts/bench-warehouse.sh --seed                 # the data model's two-year backfill
#   scripts/bench-warehouse.sh --live 100 1000 600    # ROOMS HZ SECONDS of a live fleet
#   --compression zstd                                # the feed's codec (default lz4; zstd keeps
#                                                     # the broker's log at ~90 B/frame, lz4 ~118)
#   options after --: passed to `surgstream warehouse` (e.g. -- --memory-limit 256MiB)
#
# Disk: a live feed needs about (log + 34) bytes per frame at once (the broker's log and the
# lake); the script refuses to start when the working tree's file system (where
# scripts/services.sh keeps the broker's data, and where the lake goes) has less.
# Needs the services (scripts/services.sh up). BENCH_BIN=path uses that binary.
set -euo pipefail
cd "$(dirname "$0")/.."

BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
feed=() label="" compression=lz4 frames_planned=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seed) feed=(--profile seed --start-time 2024-01-01T00:00:00Z); label="seed"; shift ;;
        --live)
            feed=(--profile live --fast --robots "$2" --hz "$3" --duration "$4s"
                --start-time 2026-01-01T08:00:00Z)
            label="live-$2x$3Hz-$4s"; frames_planned=$(($2 * $3 * $4)); shift 4 ;;
        --compression) compression="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "bench-warehouse.sh: unknown option $1 (expected --seed or --live ROOMS HZ SECONDS)" >&2; exit 2 ;;
    esac
done
[[ ${#feed[@]} -gt 0 ]] || { echo "bench-warehouse.sh: say --seed or --live ROOMS HZ SECONDS" >&2; exit 2; }

if [[ $frames_planned -gt 0 ]]; then
    case "$compression" in zstd|gzip) per_frame=90 ;; none) per_frame=227 ;; *) per_frame=118 ;; esac
    need=$((frames_planned * (per_frame + 34)))
    have=$(( $(df --output=avail -B1 . | tail -1) ))
    if [[ $need -gt $have ]]; then
        echo "bench-warehouse.sh: $frames_planned frames need about $((need >> 30)) GiB at once (broker log at ~$per_frame B/frame with $compression, lake ~34 B/frame); $((have >> 30)) GiB free on $(df --output=target . | tail -1)" >&2
        exit 1
    fi
fi

if [[ -n "${BENCH_BIN:-}" ]]; then
    bin="$BENCH_BIN"
else
    cargo build --release --locked --quiet --bin surgstream
    bin=target/release/surgstream
fi
stamp="$(date +%s)"
prefix="whbench-$stamp."
out="target/bench-warehouse"
lake="$out/lake-$stamp"
db="surgstream_whbench_$stamp"
mkdir -p "$out"
psql "$PG/postgres" -qc "CREATE DATABASE $db"
topics=(--telemetry-topic "${prefix}surgical.telemetry.v1" --events-topic "${prefix}surgical.events.v1")
"$bin" create-topics --brokers "$BROKERS" --prefix "$prefix" >/dev/null
"$bin" migrate --database-url "$PG/$db" >/dev/null
echo "[bench-warehouse] feeding $label through Kafka and the ingestor" >&2
"$bin" sim --brokers "$BROKERS" "${topics[@]}" "${feed[@]}" --seed 1 --compression "$compression" \
    --report "$out/sim-$stamp.json" >/dev/null
"$bin" ingest --brokers "$BROKERS" --database-url "$PG/$db" "${topics[@]}" \
    --telemetry-dlq-topic "${prefix}surgical.telemetry.dlq.v1" \
    --events-dlq-topic "${prefix}surgical.events.dlq.v1" \
    --group "whbench-$stamp" --lake "$lake" --until-idle 5s 2>"$out/ingest-$stamp.log" >/dev/null
sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["frames"])' "$out/sim-$stamp.json")
stored=$(psql "$PG/$db" -Atc "SELECT coalesce(sum(rows), 0) FROM lake_files")
echo "[bench-warehouse] the simulator delivered $sent frames; the lake holds $stored" >&2
if [[ "$sent" != "$stored" ]]; then
    echo "bench-warehouse.sh: the lake holds $stored frames of the $sent delivered (see $out/ingest-$stamp.log)" >&2
    exit 1
fi
# The topics are not needed any more: give the broker its disk back.
for t in telemetry.v1 events.v1 telemetry.dlq.v1 events.dlq.v1; do
    java -cp "$HOME/.cache/surgstream/kafka-4.1.1/libs/*" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$BROKERS" --delete --topic "${prefix}surgical.$t" >/dev/null 2>&1 || true
done

run() { # name: one timed refresh
    local name="$1"; shift
    /usr/bin/time -v -o "$out/time-$stamp-$name.txt" \
        "$bin" warehouse --database-url "$PG/$db" --lake "$lake" --group "whbench-$stamp" --json "$@" \
        >"$out/report-$stamp-$name.json" 2>"$out/warehouse-$stamp-$name.log"
    python3 - "$label" "$name" "$out/report-$stamp-$name.json" "$out/time-$stamp-$name.txt" \
        "$(du -sb "$lake/procedure_telemetry" | cut -f1)" "$*" <<'EOF' | tee -a "$out/results.jsonl"
import json, sys
label, name, report, timing, lake_bytes, options = sys.argv[1:7]
r = json.load(open(report))
t = {}
for line in open(timing):
    k, _, v = line.strip().rpartition(": ")
    t[k] = v
rss_kib = int(t["Maximum resident set size (kbytes)"])
wall = t["Elapsed (wall clock) time (h:mm:ss or m:ss)"]
parts = [float(p) for p in wall.split(":")]
seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
print(json.dumps({
    "workload": label, "run": name, "options": options,
    "months_rebuilt": len(r["months"]), "dimensions": r["dimensions"],
    "files_scanned": r["files_scanned"], "frames_scanned": r["frames_scanned"],
    "lake_bytes": int(lake_bytes),
    "wall_seconds": round(seconds, 2),
    "frames_per_second": round(r["frames_scanned"] / seconds) if seconds else None,
    "cpu_seconds": round(float(t["User time (seconds)"]) + float(t["System time (seconds)"]), 2),
    "peak_rss_mib": round(rss_kib / 1024, 1),
    "rows": dict(r["rows"]),
}))
EOF
}

run full "$@"
run unchanged "$@"
# One procedure's outcome arrives late (its update time moves): one month to rebuild. A short
# live feed may have no outcome yet (no procedure finished): then one procedure changes.
changed=$(psql "$PG/$db" -qAtc "UPDATE procedure_outcomes SET updated_at = now()
    WHERE outcome_id = (SELECT outcome_id FROM procedure_outcomes ORDER BY outcome_id LIMIT 1)
    RETURNING outcome_id")
if [[ -n "$changed" ]]; then
    run one-late-outcome "$@"
else
    psql "$PG/$db" -qc "UPDATE surgical_procedures SET updated_at = now()
        WHERE procedure_id = (SELECT procedure_id FROM surgical_procedures ORDER BY procedure_id LIMIT 1)"
    run one-changed-procedure "$@"
fi
# The README's answers, from this warehouse.
for q in warehouse/queries/*.sql; do
    printf -- '-- %s\n' "$q"
    psql "$PG/$db" -P footer=off -f "$q"
done > "$out/answers-$stamp.txt"
echo "[bench-warehouse] answers: $out/answers-$stamp.txt" >&2
psql "$PG/postgres" -qc "DROP DATABASE $db" || true
rm -rf "$lake"
