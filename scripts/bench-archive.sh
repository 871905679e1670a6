#!/usr/bin/env bash
# The procedure archive at the seed's volumes: a seed backfill (SCALE × the data model's 5,000
# procedures over two years, SAMPLES frames each) through Kafka into a fresh database and lake,
# then `surgstream archive` of its first year (everything that finished more than a year before
# the window's end), timed with its peak RSS, and PostgreSQL's size of the three tables it
# empties before and after (VACUUM FULL, so that the freed pages show). Then `restore --month`
# of the busiest archived month, timed.
#
#   scripts/bench-archive.sh [SCALE SAMPLES]    # default: 1 100
#
# Needs the services (scripts/services.sh up). BENCH_BIN=path uses that binary.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-1}; SAMPLES=${2:-100}
if [[ -n "${BENCH_BIN:-}" ]]; then
    B="$BENCH_BIN"
else
    cargo build --release --locked --quiet --bin surgstream
    B=target/release/surgstream
fi
stamp=$(date +%s); P=arch$stamp.; DB=arch_$stamp; LAKE=target/bench-archive/lake-$stamp
mkdir -p target/bench-archive
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
START=$(date -u -d '-800 days' +%Y-%m-%dT00:00:00Z)
$B create-topics --prefix $P >/dev/null
$B migrate --database-url $URL >/dev/null
$B sim --profile seed --scale $SCALE --samples $SAMPLES --start-time $START "${T[@]}" 2>&1 | tail -1
$B ingest --database-url $URL --lake $LAKE --group arch "${T[@]}" \
  --telemetry-dlq-topic ${P}surgical.telemetry.dlq.v1 --events-dlq-topic ${P}surgical.events.dlq.v1 \
  --until-idle 5s --no-iceberg --no-compact 2>&1 | tail -1
size() {
    psql -qAt -h 127.0.0.1 -U postgres -d $DB -c "VACUUM FULL surgical_procedures" -c "VACUUM FULL procedure_outcomes" -c "VACUUM FULL status_audit" >/dev/null
    psql -qAt -h 127.0.0.1 -U postgres -d $DB -c "SELECT (SELECT count(*) FROM surgical_procedures) || ' procedures, ' || (SELECT count(*) FROM procedure_outcomes) || ' outcomes, ' || (SELECT count(*) FROM status_audit) || ' audit rows: ' || pg_size_pretty(pg_total_relation_size('surgical_procedures') + pg_total_relation_size('procedure_outcomes') + pg_total_relation_size('status_audit')) || ' (' || (pg_total_relation_size('surgical_procedures') + pg_total_relation_size('procedure_outcomes') + pg_total_relation_size('status_audit')) || ' bytes)'"
}
echo "before: $(size)"
# A year before the window's end (the start + 730 days), as a duration from now.
OLDER=$(( $(date +%s) - $(date -u -d "$START + 365 days" +%s) ))s
/usr/bin/time -f "archive: %e s wall, %U s user, %S s system, peak RSS %M KiB" \
    $B archive --database-url $URL --lake $LAKE --older-than $OLDER
echo "after: $(size)"
psql -qAt -h 127.0.0.1 -U postgres -d $DB -c "SELECT 'archived_procedures: ' || count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('archived_procedures')) || '; archive objects: ' || (SELECT count(*) FROM archive_files) || ', ' || pg_size_pretty((SELECT sum(bytes) FROM archive_files)::bigint) FROM archived_procedures"
MONTH=$(psql -qAt -h 127.0.0.1 -U postgres -d $DB -c "SELECT to_char(to_date(month_key::text, 'YYYYMM'), 'YYYY-MM') FROM archived_procedures GROUP BY month_key ORDER BY count(*) DESC LIMIT 1")
/usr/bin/time -f "restore --month $MONTH: %e s wall, peak RSS %M KiB" \
    $B restore --database-url $URL --lake $LAKE --month $MONTH
