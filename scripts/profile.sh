#!/usr/bin/env bash
# Profiles the ingestor's end-to-end path with callgrind (instruction counts: repeatable on a
# noisy machine, unlike timings). A live feed of --rooms × --hz for --seconds is sent to fresh
# topics as fast as the broker takes it (the same bytes every run: fixed seed and start time),
# then `surgstream ingest --until-idle` drains it under valgrind into a scratch lake and
# database; the inclusive and self costs are printed and kept in target/profile/.
# With --backfill SCALE the feed is the seed profile's backfill at that scale instead (two years
# of procedures: each flush writes one small file per event hour, the drain's path).
#
#   scripts/profile.sh [--rooms 10] [--hz 1000] [--seconds 30]
#   scripts/profile.sh --backfill 0.2
#
# Needs the services (scripts/services.sh up) and valgrind (installed from Debian if missing).
# PROFILE_BIN=path profiles that binary instead of building this checkout (before/after pairs).
set -euo pipefail
cd "$(dirname "$0")/.."

ROOMS=10 HZ=1000 SECONDS_=30 BACKFILL=
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rooms) ROOMS="$2"; shift 2 ;;
        --hz) HZ="$2"; shift 2 ;;
        --seconds) SECONDS_="$2"; shift 2 ;;
        --backfill) BACKFILL="$2"; shift 2 ;;
        *) echo "profile.sh: unknown option $1 (expected --rooms N, --hz N, --seconds N, --backfill SCALE)" >&2; exit 2 ;;
    esac
done

if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
    echo "[profile] installing valgrind" >&2
    apt-get install -y -qq valgrind >/dev/null
fi
BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
PG="${PROFILE_PG:-postgres://postgres@127.0.0.1:5432}"
stamp="$(date +%s)"
prefix="profile-$stamp."
out="target/profile"
mkdir -p "$out"
db="surgstream_profile"
psql "$PG/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
    || psql "$PG/postgres" -qc "CREATE DATABASE $db"

if [[ -n "${PROFILE_BIN:-}" ]]; then
    bin="$PROFILE_BIN" # another build, e.g. a copy of the one before a change
else
    # Release code with line tables (Cargo.toml's `profiling` profile): callgrind's lines.
    cargo build --profile profiling --locked --quiet
    bin=target/profiling/surgstream
fi
if [[ -n "$BACKFILL" ]]; then
    # Two years that end before today, so that no frame is stamped in the future.
    feed=(--scale "$BACKFILL" --start-time 2024-01-01T00:00:00Z)
else
    feed=(--profile live --fast --robots "$ROOMS" --hz "$HZ" --duration "${SECONDS_}s"
        --start-time 2026-01-01T08:00:00Z)
fi
"$bin" create-topics --brokers "$BROKERS" --prefix "$prefix" >/dev/null
"$bin" sim --brokers "$BROKERS" \
    --telemetry-topic "${prefix}surgical.telemetry.v1" --events-topic "${prefix}surgical.events.v1" \
    "${feed[@]}" --seed 1 --report "$out/sim-$stamp.json" >/dev/null
echo "[profile] sent $(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['frames'])" "$out/sim-$stamp.json") frames to ${prefix}*" >&2

valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.$stamp" \
    "$bin" ingest --brokers "$BROKERS" --database-url "$PG/$db" \
    --telemetry-topic "${prefix}surgical.telemetry.v1" --events-topic "${prefix}surgical.events.v1" \
    --telemetry-dlq-topic "${prefix}surgical.telemetry.dlq.v1" \
    --events-dlq-topic "${prefix}surgical.events.dlq.v1" \
    --group "profile-$stamp" --lake "$out/lake-$stamp" --until-idle 5s \
    2> "$out/ingest-$stamp.log"
rm -rf "$out/lake-$stamp"
echo "[profile] callgrind output: $out/callgrind.out.$stamp" >&2
set +o pipefail # head closes the pipe early
echo "== inclusive =="
callgrind_annotate --inclusive=yes "$out/callgrind.out.$stamp" 2>/dev/null | head -60
echo "== self =="
callgrind_annotate "$out/callgrind.out.$stamp" 2>/dev/null | head -45
