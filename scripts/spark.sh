#!/usr/bin/env bash
# Apache Spark (local mode, from PyPI's pyspark) with what it needs to read the lake's Iceberg
# tables: Iceberg's Spark runtime and PostgreSQL's JDBC driver from Maven Central
# (deploy/spark/pom.xml), fetched once into $SURGSTREAM_CACHE/spark-jars-<iceberg version>.
#
#   scripts/spark.sh install   installs pyspark (the version deploy/spark/pom.xml names) and
#                              fetches the jars; prints the jars' directory
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/deploy/spark/pom.xml"
ICEBERG_VERSION="$(sed -n 's:.*<iceberg.version>\(.*\)</iceberg.version>.*:\1:p' "$POM")"
PYSPARK_VERSION="$(sed -n 's:.*<pyspark.version>\(.*\)</pyspark.version>.*:\1:p' "$POM")"
CACHE="${SURGSTREAM_CACHE:-$HOME/.cache/surgstream}"
JARS="$CACHE/spark-jars-$ICEBERG_VERSION"

log() { printf '[spark] %s\n' "$*" >&2; }
die() { printf '[spark] error: %s\n' "$*" >&2; exit 1; }

install() {
    command -v java >/dev/null || die "java is needed to run Spark (Java 17 or newer)"
    if [[ "$(python3 -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null)" != "$PYSPARK_VERSION" ]]; then
        log "installing pyspark $PYSPARK_VERSION from PyPI (once, about 320 MiB)"
        python3 -m pip install --quiet --disable-pip-version-check "pyspark==$PYSPARK_VERSION" \
            || die "cannot install pyspark $PYSPARK_VERSION"
    fi
    if [[ ! -f "$JARS/.complete" ]]; then
        log "fetching Iceberg $ICEBERG_VERSION's Spark runtime and PostgreSQL's JDBC driver into $JARS (once)"
        rm -rf "$JARS"
        mkdir -p "$JARS"
        mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DexcludeTransitive=true \
            -DoutputDirectory="$JARS" >"$JARS/fetch.log" 2>&1 \
            || { tail -30 "$JARS/fetch.log" >&2; die "cannot fetch the jars (log: $JARS/fetch.log)"; }
        touch "$JARS/.complete"
    fi
    echo "$JARS"
}

case "${1:-}" in
    install) install ;;
    *) die "usage: scripts/spark.sh install" ;;
esac
