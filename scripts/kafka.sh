#!/usr/bin/env bash
# Apache Kafka (KRaft) for the demo, the tests and the benchmarks, on loopback.
#
#   scripts/kafka.sh install
#       fetches Kafka's jars once through Maven (deploy/kafka/pom.xml) into
#       $SURGSTREAM_CACHE/kafka-<version>/libs (about 10 s from Maven Central, 54 MiB).
#   scripts/kafka.sh node --dir DIR --node-id N --port P --controller-port C --voters VOTERS
#                         [--cluster-id ID] [--heap 1g] [--replication R]
#                         [--extra FILE] [--scram 'SCRAM-SHA-512=[name=U,password=P]' ...]
#                         [--classpath DIR_OR_JAR]
#       runs one combined broker+controller in the foreground (exec: the caller's pid is the
#       JVM's, so kill -9 kills the broker): writes DIR/server.properties, formats DIR/data
#       with Kafka's own storage tool the first time, then starts `kafka.Kafka`. VOTERS is the
#       KRaft quorum, `1@127.0.0.1:9093` or `1@127.0.0.1:C1,2@127.0.0.1:C2,3@127.0.0.1:C3`;
#       every node of a cluster gets the same VOTERS and cluster id. R (default: the number of
#       voters, at most 3) is the replication of Kafka's internal topics and the default of new
#       topics; with 3 or more, min.insync.replicas is 2. --extra appends FILE to
#       server.properties (a later key wins: listeners, TLS, SASL, an authorizer); each --scram
#       creates a SCRAM user when the log directory is formatted (Kafka's --add-scram);
#       --classpath adds classes to the broker's (a test's SASL callback handler).
#
# scripts/services.sh starts the demo's single broker through `node`; the tests' clusters
# (tests/common/kafka.rs) do the same, so every broker here runs one configuration.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/deploy/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
CACHE="${SURGSTREAM_CACHE:-$HOME/.cache/surgstream}"
KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"

log() { printf '[kafka] %s\n' "$*" >&2; }
die() { printf '[kafka] error: %s\n' "$*" >&2; exit 1; }

install() {
    [[ -f "$KAFKA_HOME/.complete" ]] && return
    command -v java >/dev/null || die "java is needed to run Kafka (Java 17 or newer)"
    if ! command -v mvn >/dev/null; then
        log "installing Maven with apt-get"
        apt-get update -qq && apt-get install -y -qq --no-install-recommends maven \
            || die "cannot install Maven"
    fi
    log "fetching Apache Kafka $KAFKA_VERSION's jars from Maven Central into $LIBS (once)"
    rm -rf "$LIBS"
    mkdir -p "$LIBS"
    mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$LIBS" >"$KAFKA_HOME/fetch.log" 2>&1 \
        || { tail -30 "$KAFKA_HOME/fetch.log" >&2; die "cannot fetch Kafka's jars (log: $KAFKA_HOME/fetch.log)"; }
    [[ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "Maven fetched no kafka_2.13-$KAFKA_VERSION.jar"
    touch "$KAFKA_HOME/.complete"
}

java_opts() {
    local heap="$1"
    # The G1 settings of Kafka's own kafka-run-class.sh; a fixed heap sized for a 2-core,
    # shared machine (the page cache, not the heap, holds the log).
    echo "-Xms$heap -Xmx$heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
-XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true \
-Dlog4j2.configurationFile=$ROOT/deploy/kafka/log4j2.yaml"
}

node() {
    local dir="" id="" port="" cport="" voters="" cluster="c8n06DjOWIuL_hI05AKDWg" heap="1g" rf=""
    local extra="" scram=() classpath=""
    while (($#)); do
        case "$1" in
            --dir) dir="$2" ;;
            --node-id) id="$2" ;;
            --port) port="$2" ;;
            --controller-port) cport="$2" ;;
            --voters) voters="$2" ;;
            --cluster-id) cluster="$2" ;;
            --heap) heap="$2" ;;
            --replication) rf="$2" ;;
            --extra) extra="$2" ;;
            --classpath) classpath="$2" ;;
            --scram) scram+=(--add-scram "$2") ;;
            *) die "node: unknown option $1" ;;
        esac
        shift 2
    done
    [[ -n "$dir" && -n "$id" && -n "$port" && -n "$cport" && -n "$voters" ]] \
        || die "node needs --dir, --node-id, --port, --controller-port and --voters"
    install
    local n
    n="$(tr ',' '\n' <<<"$voters" | grep -c .)"
    [[ -n "$rf" ]] || rf=$((n < 3 ? n : 3))
    local isr=$((rf >= 3 ? 2 : 1))
    mkdir -p "$dir/data"
    cat >"$dir/server.properties" <<PROPS
# Written by scripts/kafka.sh: node $id of a KRaft cluster of $n (combined broker+controller).
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
# Topics are created by \`surgstream create-topics\`, with the partition counts ingest expects.
auto.create.topics.enable=false
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
# A consumer group forms as soon as its first member joins (tests and the demo start members
# one at a time; Kafka's default waits 3 s for more).
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
PROPS
    if [[ -n "$extra" ]]; then
        [[ -f "$extra" ]] || die "--extra $extra: no such file"
        { echo "# From $extra:"; cat "$extra"; } >>"$dir/server.properties"
    fi
    if [[ ! -f "$dir/data/meta.properties" ]]; then
        # shellcheck disable=SC2046
        java $(java_opts 256m) -cp "$LIBS/*" kafka.tools.StorageTool format \
            -t "$cluster" -c "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1 \
            || { cat "$dir/format.log" >&2; die "cannot format $dir/data"; }
    fi
    # shellcheck disable=SC2046
    exec java $(java_opts "$heap") -cp "$LIBS/*${classpath:+:$classpath}" kafka.Kafka "$dir/server.properties"
}

case "${1:-}" in
    install) install ;;
    node) shift; node "$@" ;;
    version) echo "$KAFKA_VERSION" ;;
    *) echo "usage: $0 install | node --dir DIR --node-id N --port P --controller-port C --voters V [...] | version" >&2; exit 2 ;;
esac
