#!/usr/bin/env bash
# Local services for the demo and the tests, on 127.0.0.1:
#   - Tansu 0.6.0 (Kafka-compatible broker, sqlite engine) on :9092, with the project's topics;
#   - the machine's PostgreSQL on :5432, with the `surgstream` database;
#   - s3s-fs 0.14.1 (S3-compatible server over a directory) on :9000, bucket `surgstream`
#     (access key / secret `surgstream` / `surgstream-secret`), for `--lake s3://surgstream/...`.
# Installs what is missing (Tansu is built once with cargo and cached) and is idempotent.
#
#   scripts/services.sh up | down | status
#
# Environment: SURGSTREAM_CACHE (default ~/.cache/surgstream) holds the Tansu and s3s-fs binaries;
# SURGSTREAM_SERVICES_DIR (default ./.services) holds the broker's data and log.
set -euo pipefail

TANSU_VERSION=0.6.0
CACHE="${SURGSTREAM_CACHE:-$HOME/.cache/surgstream}"
TANSU_ROOT="$CACHE/tansu-$TANSU_VERSION"
TANSU="$TANSU_ROOT/bin/tansu"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${SURGSTREAM_SERVICES_DIR:-$ROOT/.services}"
S3S_VERSION=0.14.1
S3S_ROOT="$CACHE/s3s-fs-$S3S_VERSION"
S3S="$S3S_ROOT/bin/s3s-fs"
S3_HOST=127.0.0.1
S3_PORT="${SURGSTREAM_S3_PORT:-9000}"
S3_BUCKET=surgstream
S3_ACCESS_KEY=surgstream
S3_SECRET_KEY=surgstream-secret
KAFKA_HOST=127.0.0.1
KAFKA_PORT=9092
PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER="${PGUSER:-postgres}"

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

install_tansu() {
    if [[ -x "$TANSU" ]]; then return; fi
    command -v cargo >/dev/null || die "cargo is needed to build Tansu $TANSU_VERSION"
    log "building Tansu $TANSU_VERSION with its sqlite engine (about 11 minutes on 2 cores, once; cached in $TANSU_ROOT)"
    mkdir -p "$CACHE"
    # Build outside the workspace so that its rust-toolchain.toml and target dir do not apply.
    (cd "$CACHE" && cargo install --locked "tansu@$TANSU_VERSION" --features libsql --root "$TANSU_ROOT") \
        || die "cannot build Tansu $TANSU_VERSION (see cargo's output above)"
}

install_s3s() {
    if [[ -x "$S3S" ]]; then return; fi
    command -v cargo >/dev/null || die "cargo is needed to build s3s-fs $S3S_VERSION"
    log "building s3s-fs $S3S_VERSION, an S3-compatible server (about 3 minutes, once; cached in $S3S_ROOT)"
    mkdir -p "$CACHE"
    (cd "$CACHE" && cargo install --locked "s3s-fs@$S3S_VERSION" --features binary --root "$S3S_ROOT") \
        || die "cannot build s3s-fs $S3S_VERSION (see cargo's output above)"
}

s3_pid() {
    local pid
    [[ -f "$DIR/s3.pid" ]] || return 1
    pid="$(cat "$DIR/s3.pid")"
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start_s3() {
    install_s3s
    if port_open "$S3_HOST" "$S3_PORT"; then
        log "S3 endpoint already listening on $S3_HOST:$S3_PORT"
        return
    fi
    # s3s-fs keeps bucket `b`, key `k` in the file <root>/b/k: a bucket is a directory.
    mkdir -p "$DIR/s3/$S3_BUCKET"
    log "starting s3s-fs on $S3_HOST:$S3_PORT (data in $DIR/s3)"
    RUST_LOG="${S3S_LOG:-warn}" nohup "$S3S" --host "$S3_HOST" --port "$S3_PORT" \
        --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" "$DIR/s3" >"$DIR/s3.log" 2>&1 &
    echo $! >"$DIR/s3.pid"
    for _ in $(seq 1 50); do
        port_open "$S3_HOST" "$S3_PORT" && return
        s3_pid >/dev/null || { tail -20 "$DIR/s3.log" >&2; die "s3s-fs exited at start (log: $DIR/s3.log)"; }
        sleep 0.2
    done
    die "s3s-fs did not open $S3_HOST:$S3_PORT within 10s (log: $DIR/s3.log)"
}

tansu_pid() {
    local pid
    [[ -f "$DIR/tansu.pid" ]] || return 1
    pid="$(cat "$DIR/tansu.pid")"
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start_tansu() {
    if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
        log "Kafka broker already listening on $KAFKA_HOST:$KAFKA_PORT"
        if [[ -e "$DIR/tansu/tansu.db" ]]; then index_tansu_headers; fi
        return
    fi
    install_tansu
    mkdir -p "$DIR/tansu"
    log "starting Tansu on $KAFKA_HOST:$KAFKA_PORT (data in $DIR/tansu)"
    # The sqlite path is taken relative to the working directory: start it from its data dir.
    # The backgrounded command is a simple one, so that $! is the broker itself (not a subshell
    # that `down` would kill while the broker lives on).
    (
        cd "$DIR/tansu"
        RUST_LOG="${TANSU_LOG:-warn}" nohup "$TANSU" broker \
            --listener-url "tcp://$KAFKA_HOST:$KAFKA_PORT" \
            --advertised-listener-url "tcp://$KAFKA_HOST:$KAFKA_PORT" \
            --storage-engine "sqlite://tansu.db" >"$DIR/tansu.log" 2>&1 &
        echo $! >"$DIR/tansu.pid"
    )
    for _ in $(seq 1 100); do
        if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
            index_tansu_headers
            return
        fi
        tansu_pid >/dev/null || { tail -20 "$DIR/tansu.log" >&2; die "Tansu exited at start (log: $DIR/tansu.log)"; }
        sleep 0.2
    done
    die "Tansu did not open $KAFKA_HOST:$KAFKA_PORT within 20s (log: $DIR/tansu.log)"
}

# Tansu 0.6.0's sqlite schema has no index on `header`, and a fetch reads each record's headers
# with a query joining on (topition, offset_id): every record fetched scans every header ever
# stored. Our events carry headers, so a consumer slowed quadratically with the broker's
# history (a 20,000-event backfill: over 60 s per fetch, clients timing out; with the index,
# drained in seconds). The index is what that join needs; Tansu creates its schema at start-up,
# so it is added once the broker listens (through Python's sqlite3: sqlite's locking makes this
# safe beside the running broker).
index_tansu_headers() {
    python3 - "$DIR/tansu/tansu.db" <<'PY' || die "could not index Tansu's header table"
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30)
for _ in range(100):
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'header'").fetchone():
        db.execute("CREATE INDEX IF NOT EXISTS header_record_idx ON header (topition, offset_id)")
        db.commit()
        sys.exit(0)
    time.sleep(0.1)
sys.exit("no header table in " + sys.argv[1])
PY
}

create_topics() {
    install_tansu
    local existing
    existing="$("$TANSU" topic list --broker "tcp://$KAFKA_HOST:$KAFKA_PORT" 2>/dev/null || true)"
    local spec
    for spec in surgical.telemetry.v1:4 surgical.events.v1:2 surgical.telemetry.dlq.v1:1 surgical.events.dlq.v1:1; do
        local name="${spec%%:*}" parts="${spec##*:}"
        if grep -q "\"$name\"\|\b$name\b" <<<"$existing"; then
            continue
        fi
        if "$TANSU" topic create "$name" --partitions "$parts" --broker "tcp://$KAFKA_HOST:$KAFKA_PORT" >/dev/null 2>"$DIR/topic.err"; then
            log "created topic $name ($parts partitions)"
        elif grep -qi "exist" "$DIR/topic.err"; then
            :
        else
            cat "$DIR/topic.err" >&2
            die "cannot create topic $name"
        fi
    done
}

check_postgres() {
    if ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then
        if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
            log "PostgreSQL is down: starting it"
            pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
            sleep 2
        fi
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" || die "PostgreSQL is not accepting connections on $PG_HOST:$PG_PORT"
    fi
    # The database's stored offsets and lake manifest describe this broker's topics: a broker
    # starting from an empty data directory (new topics, offsets from 0) gets a new database and
    # lake too, or the ingestor would resume past records the new topics have not reached yet.
    if [[ ! -e "$DIR/tansu/tansu.db" ]] && ! port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
        if psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'surgstream'" | grep -q 1; then
            psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "DROP DATABASE surgstream WITH (FORCE)" \
                || die "cannot drop database surgstream (stale offsets of an earlier broker)"
            log "dropped database surgstream: its offsets belonged to an earlier broker's topics"
        fi
        if [[ -d "$ROOT/data/lake" ]]; then
            rm -rf "$ROOT/data/lake"
            log "removed the demo lake data/lake: it belonged to an earlier broker's topics"
        fi
    fi
    if ! psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'surgstream'" | grep -q 1; then
        psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "CREATE DATABASE surgstream" \
            || die "cannot create database surgstream on $PG_HOST:$PG_PORT"
        log "created database surgstream"
    fi
}

status() {
    local ok=0
    if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
        echo "kafka      up    $KAFKA_HOST:$KAFKA_PORT$(tansu_pid >/dev/null && echo " (tansu pid $(tansu_pid))")"
    else
        echo "kafka      down  $KAFKA_HOST:$KAFKA_PORT"; ok=1
    fi
    if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then
        echo "postgres   up    $PG_HOST:$PG_PORT"
    else
        echo "postgres   down  $PG_HOST:$PG_PORT"; ok=1
    fi
    if port_open "$S3_HOST" "$S3_PORT"; then
        echo "s3         up    http://$S3_HOST:$S3_PORT bucket $S3_BUCKET (AWS_ENDPOINT=http://$S3_HOST:$S3_PORT AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true)"
    else
        echo "s3         down  $S3_HOST:$S3_PORT"; ok=1
    fi
    return $ok
}

case "${1:-}" in
    up)
        mkdir -p "$DIR"
        check_postgres
        start_tansu
        create_topics
        start_s3
        status
        ;;
    down)
        if pid="$(tansu_pid)"; then
            kill "$pid" && log "stopped Tansu (pid $pid)"
            rm -f "$DIR/tansu.pid"
        else
            log "Tansu is not running (from $DIR)"
        fi
        # A broker started by an older version of this script (its pid file named a wrapper).
        if pids="$(pgrep -f "^$TANSU broker")"; then
            kill $pids && log "stopped Tansu (pid $pids)"
        fi
        for _ in $(seq 1 50); do
            port_open "$KAFKA_HOST" "$KAFKA_PORT" || break
            sleep 0.2
        done
        if pid="$(s3_pid)"; then
            kill "$pid" && log "stopped s3s-fs (pid $pid)"
            rm -f "$DIR/s3.pid"
        fi
        ;;
    status) status ;;
    install) install_tansu; install_s3s ;;
    *) echo "usage: $0 up|down|status|install" >&2; exit 2 ;;
esac
