#!/usr/bin/env bash
# Local services for the demo and the tests, on 127.0.0.1:
#   - Apache Kafka (KRaft, one combined broker+controller, scripts/kafka.sh) on :9092 (controller
#     :9093), with the project's topics; `up --brokers 3` starts a three-node cluster on
#     :9092-9094 (controllers :9193-9195) with replicated topics instead;
#   - PostgreSQL from Debian's packages on :5432, installed and started when it is not running,
#     reachable as postgres@127.0.0.1 without a password (trust on loopback only), with the
#     `surgstream` database;
#   - s3s-fs 0.14.1 (S3-compatible server over a directory) on :9000, bucket `surgstream`
#     (access key / secret `surgstream` / `surgstream-secret`), for `--lake s3://surgstream/...`.
# Installs what is missing (Kafka's jars fetched once with Maven, s3s-fs built once with cargo,
# both cached) and is idempotent: what already runs is left running.
#
#   scripts/services.sh up [--brokers 1|3] | down | status | install
#
# Environment: SURGSTREAM_CACHE (default ~/.cache/surgstream) holds Kafka's jars and s3s-fs;
# SURGSTREAM_SERVICES_DIR (default ./.services) holds the brokers' data and logs.
set -euo pipefail

CACHE="${SURGSTREAM_CACHE:-$HOME/.cache/surgstream}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${SURGSTREAM_SERVICES_DIR:-$ROOT/.services}"
KAFKA="$ROOT/scripts/kafka.sh"
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

install_s3s() {
    if [[ -x "$S3S" ]]; then return; fi
    command -v cargo >/dev/null || die "cargo is needed to build s3s-fs $S3S_VERSION"
    log "building s3s-fs $S3S_VERSION, an S3-compatible server (about 3 minutes, once; cached in $S3S_ROOT)"
    mkdir -p "$CACHE"
    (cd "$CACHE" && cargo install --quiet --locked "s3s-fs@$S3S_VERSION" --features binary --root "$S3S_ROOT") \
        || die "cannot build s3s-fs $S3S_VERSION (see cargo's output above)"
}

pid_of() {
    local pid
    [[ -f "$DIR/$1.pid" ]] || return 1
    pid="$(cat "$DIR/$1.pid")"
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
        pid_of s3 >/dev/null || { tail -20 "$DIR/s3.log" >&2; die "s3s-fs exited at start (log: $DIR/s3.log)"; }
        sleep 0.2
    done
    die "s3s-fs did not open $S3_HOST:$S3_PORT within 10s (log: $DIR/s3.log)"
}

# ---------------------------------------------------------------------------------- Kafka

BROKERS=1

voters() {
    local v="" i
    for ((i = 1; i <= BROKERS; i++)); do
        if ((BROKERS == 1)); then v="1@$KAFKA_HOST:9093"; else v+="${v:+,}$i@$KAFKA_HOST:$((9192 + i))"; fi
    done
    echo "$v"
}

kafka_data_exists() { compgen -G "$DIR/kafka-*/data/meta.properties" >/dev/null; }

start_kafka() {
    if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
        log "Kafka already listening on $KAFKA_HOST:$KAFKA_PORT"
        return
    fi
    "$KAFKA" install
    local i port cport heap=1g
    ((BROKERS == 1)) || heap=768m
    for ((i = 1; i <= BROKERS; i++)); do
        port=$((KAFKA_PORT + i - 1))
        if ((BROKERS == 1)); then cport=9093; else cport=$((9192 + i)); fi
        mkdir -p "$DIR/kafka-$i"
        log "starting Kafka $("$KAFKA" version) node $i of $BROKERS on $KAFKA_HOST:$port (data and log in $DIR/kafka-$i)"
        nohup "$KAFKA" node --dir "$DIR/kafka-$i" --node-id "$i" --port "$port" \
            --controller-port "$cport" --voters "$(voters)" --heap "$heap" \
            >"$DIR/kafka-$i/kafka.log" 2>&1 &
        echo $! >"$DIR/kafka-$i.pid"
    done
    # A fresh node listens within seconds. One that was not stopped cleanly (the machine or
    # the session ended under it) first recovers every partition's log and waits out its old
    # registration: a minute or more with a thousand partitions. Wait while it is alive.
    local waited
    for ((i = 1; i <= BROKERS; i++)); do
        port=$((KAFKA_PORT + i - 1))
        for ((waited = 0; waited < 1500; waited++)); do
            port_open "$KAFKA_HOST" "$port" && break
            pid_of "kafka-$i" >/dev/null \
                || { tail -30 "$DIR/kafka-$i/kafka.log" >&2; die "Kafka node $i exited at start (log: $DIR/kafka-$i/kafka.log)"; }
            ((waited == 0 || waited % 75 != 0)) \
                || log "Kafka node $i still starting after $((waited / 5))s (recovering its logs? see $DIR/kafka-$i/kafka.log)"
            sleep 0.2
        done
        port_open "$KAFKA_HOST" "$port" || die "Kafka node $i did not open $KAFKA_HOST:$port within 300s (log: $DIR/kafka-$i/kafka.log)"
    done
}

# The demo's topics, with Kafka's own topic tool (the surgstream binary may not be built yet).
create_topics() {
    local libs
    libs="$CACHE/kafka-$("$KAFKA" version)/libs"
    local tool=(java -Xmx256m -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.yaml" -cp "$libs/*"
        org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT")
    local existing spec rf=$((BROKERS < 3 ? BROKERS : 3))
    existing="$("${tool[@]}" --list 2>"$DIR/topic.err")" || { cat "$DIR/topic.err" >&2; die "cannot list Kafka's topics"; }
    for spec in surgical.telemetry.v1:4 surgical.events.v1:2 surgical.telemetry.dlq.v1:1 surgical.events.dlq.v1:1; do
        local name="${spec%%:*}" parts="${spec##*:}"
        grep -qx "$name" <<<"$existing" && continue
        "${tool[@]}" --create --if-not-exists --topic "$name" --partitions "$parts" \
            --replication-factor "$rf" >/dev/null 2>"$DIR/topic.err" \
            || { cat "$DIR/topic.err" >&2; die "cannot create topic $name"; }
        log "created topic $name ($parts partitions, replication $rf)"
    done
}

stop_kafka() {
    local f pid stopped=()
    for f in "$DIR"/kafka-*.pid; do
        [[ -e "$f" ]] || continue
        local name; name="$(basename "$f" .pid)"
        if pid="$(pid_of "$name")"; then
            kill "$pid" && stopped+=("$pid")
            log "stopping Kafka ${name#kafka-} (pid $pid)"
        fi
        rm -f "$f"
    done
    # A controlled shutdown moves leadership away first: give each broker its time.
    for pid in "${stopped[@]}"; do
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
    done
}

# ----------------------------------------------------------------------------- PostgreSQL

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

# Puts LINES at the top of the pg_hba.conf HBA (its rules match in order: these come first),
# the first line a comment that holds MARKER; does nothing, and fails, when MARKER is there.
pg_hba_prepend() {
    local hba="$1" marker="$2"
    shift 2
    grep -q "$marker" "$hba" && return 1
    local tmp; tmp="$(mktemp)"
    { printf '%s\n' "$@"; cat "$hba"; } >"$tmp"
    cat "$tmp" >"$hba" && rm -f "$tmp"
}

# Trust on loopback for the tests and the demo (passwordless postgres@127.0.0.1, as they and
# their users expect on a development machine); every other rule of the cluster stays.
pg_trust_loopback() {
    local hba="$1"
    pg_hba_prepend "$hba" 'surgstream: trust on loopback' \
        "# surgstream: trust on loopback (scripts/services.sh), for the tests and the demo" \
        "host    all    all    127.0.0.1/32    trust" \
        "host    all    all    ::1/128         trust" || return 1
    log "allowed passwordless connections on loopback in $hba"
}

# TLS for PostgreSQL with a certificate of a local CA ($DIR/pg-tls/ca.pem, for clients'
# sslrootcert), issued to 127.0.0.1 alone, so that sslmode=verify-full works on 127.0.0.1 and is
# refused on "localhost" (tests/pg_tls.rs checks both). Members of the role surgstream_tls may
# connect only over TLS (a pg_hba rule), which lets a test prove that a connection was encrypted.
pg_tls() {
    local version="$1" tls="$DIR/pg-tls" server=/var/lib/postgresql/surgstream-tls
    local q=(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qtA)
    local fresh=0
    if [[ "$("${q[@]}" -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")" != t ]]; then
        log "PostgreSQL user $PG_USER is not a superuser: TLS left as the cluster has it"
        return
    fi
    command -v openssl >/dev/null || die "openssl is needed for PostgreSQL's TLS certificate (scripts/setup.sh installs it)"
    # Another checkout's services.sh may have issued the server's certificate under its own CA.
    if ! openssl verify -CAfile "$tls/ca.pem" "$server/server.pem" >/dev/null 2>&1; then
        log "making a local CA and a TLS certificate for PostgreSQL on 127.0.0.1 ($tls/ca.pem)"
        mkdir -p "$tls" "$server"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=surgstream local CA" \
            -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
            -keyout "$server/server.key" -out "$tls/server.csr" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1\n' >"$tls/server.ext"
        openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
            -CAcreateserial -days 3650 -extfile "$tls/server.ext" -out "$server/server.pem" 2>/dev/null
        chown -R postgres:postgres "$server"
        chmod 600 "$server/server.key"
        fresh=1
    fi
    # A new certificate under the same file name is read on a reload too.
    if ((fresh)) || [[ "$("${q[@]}" -c "SHOW ssl_cert_file")" != "$server/server.pem" ]]; then
        "${q[@]}" -c "ALTER SYSTEM SET ssl = on" \
            -c "ALTER SYSTEM SET ssl_cert_file = '$server/server.pem'" \
            -c "ALTER SYSTEM SET ssl_key_file = '$server/server.key'" \
            -c "SELECT pg_reload_conf()" >/dev/null || die "cannot turn on PostgreSQL's TLS"
        log "PostgreSQL serves TLS with $server/server.pem (CA: $tls/ca.pem)"
    fi
    "${q[@]}" -c "DO \$\$ BEGIN CREATE ROLE surgstream_tls NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" \
        || die "cannot create role surgstream_tls"
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if [[ -w "$hba" ]] && pg_hba_prepend "$hba" 'surgstream: TLS only' \
        "# surgstream: TLS only for members of surgstream_tls (scripts/services.sh)" \
        "hostnossl    all    +surgstream_tls    127.0.0.1/32    reject"; then
        "${q[@]}" -c "SELECT pg_reload_conf()" >/dev/null
    fi
}

# RDS IAM authentication, as far as a local PostgreSQL can stand for it: members of the role
# surgstream_iam log in only over TLS, with a password that PAM (pam_exec) checks the way RDS
# checks an IAM token's shape and time (an `rds-db` SigV4 presigned URL for that user, not
# expired, nor signed with temporary credentials that have expired: the tests' credentials end
# their session token in `-expires-<ms>`), logging each token offered to
# /var/lib/postgresql/surgstream-iam/tokens.log. It cannot check the signature (it has no
# secret key): tests/aws_tokens.rs compares the signature with boto3's instead.
pg_iam() {
    local version="$1" dir=/var/lib/postgresql/surgstream-iam
    local q=(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qtA)
    [[ -w /etc/pam.d ]] || { log "cannot write /etc/pam.d: RDS IAM stand-in left out"; return; }
    [[ -e /lib/x86_64-linux-gnu/security/pam_exec.so || -e /usr/lib/x86_64-linux-gnu/security/pam_exec.so ]] \
        || { log "no pam_exec.so: RDS IAM stand-in left out"; return; }
    mkdir -p "$dir"
    cat >"$dir/check-token" <<'CHECK'
#!/bin/bash
# pam_exec (expose_authtok) for PostgreSQL: the password on stdin is an RDS IAM token.
IFS= read -r -d '' token || true
now=$(date +%s)
re='^[^/]+:[0-9]+/\?Action=connect&DBUser=([^&]+)&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=([^&%]+)%2F[0-9]{8}%2F[a-z0-9-]+%2Frds-db%2Faws4_request&X-Amz-Date=([0-9]{8}T[0-9]{6}Z)&X-Amz-Expires=([0-9]+)&X-Amz-SignedHeaders=host(&X-Amz-Security-Token=([^&]+))?&X-Amz-Signature=[0-9a-f]{64}$'
verdict=ACCEPTED key=- signed=0
if [[ $token =~ $re ]]; then
    dbuser=${BASH_REMATCH[1]} key=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]} expires=${BASH_REMATCH[4]} session=${BASH_REMATCH[6]}
    signed=$(date -u -d "${d:0:4}-${d:4:2}-${d:6:2} ${d:9:2}:${d:11:2}:${d:13:2}" +%s)
    [[ $dbuser == "$PAM_USER" ]] || verdict=REJECTED:user
    ((now <= signed + expires)) || verdict=REJECTED:expired
    if [[ $session =~ -expires-([0-9]+)$ ]] && ((now * 1000 > BASH_REMATCH[1])); then
        verdict=REJECTED:credentials-expired
    fi
else
    verdict=REJECTED:shape
fi
echo "$now $verdict $PAM_USER $key $signed" >>/var/lib/postgresql/surgstream-iam/tokens.log
[[ $verdict == ACCEPTED ]]
CHECK
    chmod 755 "$dir/check-token"
    touch "$dir/tokens.log"
    chown postgres:postgres "$dir/tokens.log" 2>/dev/null || chmod 666 "$dir/tokens.log"
    printf 'auth required pam_exec.so expose_authtok quiet %s\naccount required pam_permit.so\n' \
        "$dir/check-token" >/etc/pam.d/surgstream-rds-iam
    "${q[@]}" -c "DO \$\$ BEGIN CREATE ROLE surgstream_iam NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" \
        || die "cannot create role surgstream_iam"
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if [[ -w "$hba" ]] && pg_hba_prepend "$hba" 'surgstream: RDS IAM stand-in' \
        "# surgstream: RDS IAM stand-in for members of surgstream_iam (scripts/services.sh)" \
        "hostssl      all    +surgstream_iam    127.0.0.1/32    pam pamservice=surgstream-rds-iam" \
        "hostnossl    all    +surgstream_iam    127.0.0.1/32    reject"; then
        "${q[@]}" -c "SELECT pg_reload_conf()" >/dev/null
        log "members of surgstream_iam log in to PostgreSQL with RDS IAM tokens, over TLS (PAM $dir/check-token)"
    fi
}

start_postgres() {
    if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then return; fi
    if [[ -z "$(pg_bin)" ]] || ! command -v pg_ctlcluster >/dev/null; then
        log "installing PostgreSQL from Debian's packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null \
            || die "cannot install PostgreSQL (apt-get install postgresql)"
    fi
    local version
    version="$(basename "$(dirname "$(pg_bin)")")"
    if [[ ! -f "/etc/postgresql/$version/main/postgresql.conf" ]]; then
        log "creating PostgreSQL $version cluster 'main'"
        pg_createcluster "$version" main >/dev/null || die "cannot create a PostgreSQL $version cluster"
    fi
    local conf="/etc/postgresql/$version/main"
    pg_trust_loopback "$conf/pg_hba.conf" || true
    # Kafka's controller listens on :9093 and s3s-fs on :9000; PostgreSQL keeps :5432.
    if ! grep -qE "^port *= *$PG_PORT" "$conf/postgresql.conf"; then
        die "the PostgreSQL $version cluster in $conf is not on port $PG_PORT"
    fi
    log "starting PostgreSQL $version on $PG_HOST:$PG_PORT"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 \
        || pg_ctlcluster --skip-systemctl-redirect "$version" main restart \
        || die "cannot start PostgreSQL $version (see /var/log/postgresql/postgresql-$version-main.log)"
    for _ in $(seq 1 100); do
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && return
        sleep 0.2
    done
    die "PostgreSQL is not accepting connections on $PG_HOST:$PG_PORT (log: /var/log/postgresql/postgresql-$version-main.log)"
}

check_postgres() {
    start_postgres
    local hba version
    version="$(basename "$(dirname "$(pg_bin)")")"
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    # Already running before us (a machine that had it started), asking for passwords on
    # loopback: trust loopback in the Debian cluster and reload it.
    if ! psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc 'SELECT 1' >/dev/null 2>&1 \
        && [[ -w "$hba" ]] && pg_trust_loopback "$hba"; then
        pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
        sleep 1
    fi
    psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc 'SELECT 1' >/dev/null 2>&1 \
        || die "PostgreSQL on $PG_HOST:$PG_PORT refuses $PG_USER without a password: allow it on loopback (pg_hba.conf 'host all all 127.0.0.1/32 trust') or set PGUSER/PGPASSWORD"
    # The database's stored offsets and lake manifest describe this broker's topics: a broker
    # starting from an empty data directory (new topics, offsets from 0) gets a new database and
    # lake too, or the ingestor would resume past records the new topics have not reached yet.
    if ! kafka_data_exists && ! port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
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
    pg_tls "$version"
    pg_iam "$version"
}

status() {
    local ok=0 f
    if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
        local pids=""
        for f in "$DIR"/kafka-*.pid; do [[ -e "$f" ]] && pids+=" $(basename "$f" .pid)=$(cat "$f")"; done
        echo "kafka      up    $KAFKA_HOST:$KAFKA_PORT${pids:+ (pids$pids)}"
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

cmd="${1:-}"
shift || true
while (($#)); do
    case "$1" in
        --brokers) BROKERS="$2"; shift 2 ;;
        *) die "unknown option $1" ;;
    esac
done
[[ "$BROKERS" == 1 || "$BROKERS" == 3 ]] || die "--brokers is 1 or 3"

case "$cmd" in
    up)
        mkdir -p "$DIR"
        check_postgres
        start_kafka
        create_topics
        start_s3
        status
        ;;
    down)
        stop_kafka
        if pid="$(pid_of s3)"; then
            kill "$pid" && log "stopped s3s-fs (pid $pid)"
            rm -f "$DIR/s3.pid"
        fi
        ;;
    status) status ;;
    install) "$KAFKA" install; install_s3s ;;
    *) echo "usage: $0 up [--brokers 1|3] | down | status | install" >&2; exit 2 ;;
esac
