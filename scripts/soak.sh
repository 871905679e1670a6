#!/usr/bin/env bash
# A monitored long run: the simulator streams live operating rooms and the ingestor writes them,
# on the local broker, PostgreSQL and a lake directory, while Debian's Prometheus scrapes both
# every 5 s. At the end the feed stops, the ingestor drains, and the Prometheus HTTP API gives
# the verdict: sustained throughput, max consumer lag, p99 end-to-end latency, RSS at the start
# vs the end (a leak shows as growth), dead letters, and `surgstream verify`; plus a PNG of
# throughput, lag and RSS over time and a JSON summary, in the run's directory.
#
#   scripts/soak.sh --minutes 10 [--robots 20] [--hz 500] [--max-age 5s]
#
# Everything of a run is fresh and its own: topics soak-<stamp>.*, database surgstream_soak_<stamp>,
# directory data/soak-<stamp>/ (lake, Prometheus data, logs, soak.png, soak.json).
# Exit code 0 on a green verdict, 1 otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

minutes=10 robots=20 hz=500 max_age=5s
while (($#)); do
    case "$1" in
        --minutes) minutes="$2"; shift 2 ;;
        --robots) robots="$2"; shift 2 ;;
        --hz) hz="$2"; shift 2 ;;
        --max-age) max_age="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "soak: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$minutes" =~ ^[0-9]+$ && "$minutes" -ge 1 ]] || { echo "soak: --minutes must be a whole number ≥ 1, not $minutes" >&2; exit 2; }

log() { printf '[soak] %s\n' "$*" >&2; }

scripts/setup.sh
scripts/services.sh up >/dev/null
if ! command -v prometheus >/dev/null; then
    log "installing Debian's prometheus"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
python3 -c 'import matplotlib' 2>/dev/null || {
    log "installing matplotlib (for the PNG)"
    python3 -m pip install --quiet --disable-pip-version-check matplotlib
}
cargo build --release --locked --bin surgstream
BIN="$ROOT/target/release/surgstream"

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
run="$ROOT/data/soak-$stamp"
mkdir -p "$run"
prefix="soak-$stamp."
db="surgstream_soak_$(tr 'A-Z' 'a-z' <<<"$stamp")"
db_url="postgres://postgres@127.0.0.1:5432/$db"
group="soak-$stamp"
prom_port=19090 ingest_port=19464 sim_port=19465
topics=(--brokers 127.0.0.1:9092 --telemetry-topic "${prefix}surgical.telemetry.v1" --events-topic "${prefix}surgical.events.v1")

"$BIN" create-topics --brokers 127.0.0.1:9092 --prefix "$prefix" >/dev/null
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"
"$BIN" migrate --database-url "$db_url" >/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

cat >"$run/prometheus.yml" <<EOF
global: { scrape_interval: 5s, evaluation_interval: 5s }
scrape_configs:
  - job_name: surgstream-ingest
    static_configs: [{ targets: ["127.0.0.1:$ingest_port"] }]
  - job_name: surgstream-sim
    static_configs: [{ targets: ["127.0.0.1:$sim_port"] }]
EOF
prometheus --config.file="$run/prometheus.yml" --storage.tsdb.path="$run/prometheus" \
    --web.listen-address="127.0.0.1:$prom_port" >"$run/prometheus.log" 2>&1 &
pids+=($!)

"$BIN" ingest "${topics[@]}" --telemetry-dlq-topic "${prefix}surgical.telemetry.dlq.v1" \
    --events-dlq-topic "${prefix}surgical.events.dlq.v1" --database-url "$db_url" \
    --lake "$run/lake" --group "$group" --max-age "$max_age" \
    --metrics-addr "127.0.0.1:$ingest_port" --log-format json >"$run/ingest.log" 2>&1 &
ingest_pid=$!
pids+=("$ingest_pid")
"$BIN" sim "${topics[@]}" --profile live --robots "$robots" --hz "$hz" \
    --metrics-addr "127.0.0.1:$sim_port" --report "$run/sim-report.json" --log-format json \
    >"$run/sim.log" 2>&1 &
sim_pid=$!
pids+=("$sim_pid")
start="$(date +%s)"
log "running $minutes min: $robots rooms × $hz Hz → ingest (max age $max_age); Prometheus http://127.0.0.1:$prom_port; files in $run"

for ((m = 1; m <= minutes; m++)); do
    sleep 60
    kill -0 "$ingest_pid" 2>/dev/null || { log "the ingestor died (see $run/ingest.log)"; exit 1; }
    kill -0 "$sim_pid" 2>/dev/null || { log "the simulator died (see $run/sim.log)"; exit 1; }
    log "minute $m/$minutes: $(curl -s "127.0.0.1:$ingest_port/metrics" | awk '/^surgstream_frames_written_total /{print $2 " frames written"}')"
done
end="$(date +%s)"

log "stopping the feed; letting the ingestor drain"
kill -TERM "$sim_pid"; wait "$sim_pid" || true
sleep 20
# Two more scrapes of the drained state, then stop the ingestor (it flushes and exits).
kill -TERM "$ingest_pid"; wait "$ingest_pid" || { log "the ingestor did not exit cleanly"; }

set +e
"$BIN" verify "${topics[@]}" --database-url "$db_url" --lake "$run/lake" --group "$group" \
    --require-drained --json >"$run/verify.json" 2>"$run/verify.log"
verify_rc=$?
set -e
python3 scripts/soak_report.py --prometheus "http://127.0.0.1:$prom_port" --start "$start" \
    --end "$end" --max-age "$max_age" --verify "$run/verify.json" --verify-rc "$verify_rc" \
    --sim-report "$run/sim-report.json" --out "$run"
