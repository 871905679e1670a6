#!/usr/bin/env bash
# Apache Spark (local mode, from PyPI's pyspark) with what it needs to read the lake's Iceberg
# tables: Iceberg's Spark runtime and PostgreSQL's JDBC driver from Maven Central
# (deploy/spark/pom.xml), fetched once into $SURGSTREAM_CACHE/spark-jars-<iceberg version>.
#
#   scripts/spark.sh install   installs pyspark (the version deploy/spark/pom.xml names) and
#                              fetches the jars; prints the jars' directory
#   scripts/spark.sh sql FILE.sql | -e 'SQL'
#                              runs SQL on the lake's Iceberg tables, the catalog `surgstream` as
#                              Spark's default one (so `warehouse.fact_procedure` and
#                              `surgstream.surgstream.procedure_telemetry` name the tables), and prints the
#                              result. The lake and database: $SURGSTREAM_LAKE (./data/lake) and
#                              $DATABASE_URL (postgres://postgres@127.0.0.1:5432/surgstream), as
#                              `scripts/demo.sh` leaves them.
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

sql() {
    local text
    case "${1:-}" in
        -e) [[ $# -eq 2 ]] || die "usage: scripts/spark.sh sql -e 'SELECT …'"; text="$2" ;;
        "") die "usage: scripts/spark.sh sql FILE.sql | -e 'SQL'" ;;
        *) [[ -f "$1" ]] || die "no such SQL file: $1"; text="$(cat "$1")" ;;
    esac
    local jars lake url
    jars="$(install)"
    lake="${SURGSTREAM_LAKE:-./data/lake}"
    case "$lake" in
        s3://*|file://*) ;;
        *) [[ -d "$lake" ]] || die "no lake at $lake (run scripts/demo.sh first, or set SURGSTREAM_LAKE)"
           lake="file://$(cd "$lake" && pwd)" ;;
    esac
    url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/surgstream}"
    SQL_TEXT="$text" python3 - "$jars" "$lake" "$url" <<'PY'
import glob, os, sys
from urllib.parse import urlsplit
from pyspark.sql import SparkSession
jars, lake, url = sys.argv[1:]
u = urlsplit(url)
c = "spark.sql.catalog.surgstream"
b = (SparkSession.builder.master("local[*]").appName("surgstream-sql")
     .config("spark.jars", ",".join(sorted(glob.glob(os.path.join(jars, "*.jar")))))
     .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
     .config(c, "org.apache.iceberg.spark.SparkCatalog")
     .config(f"{c}.type", "jdbc")
     .config(f"{c}.uri", f"jdbc:postgresql://{u.hostname}:{u.port or 5432}{u.path}")
     .config(f"{c}.jdbc.user", u.username or "postgres")
     .config(f"{c}.jdbc.schema-version", "V1")
     .config(f"{c}.warehouse", lake)
     .config("spark.sql.defaultCatalog", "surgstream")
     .config("spark.sql.session.timeZone", "UTC")
     .config("spark.ui.enabled", "false")
     .config("spark.ui.showConsoleProgress", "false"))
if u.password:
    b = b.config(f"{c}.jdbc.password", u.password)
spark = b.getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
for statement in [s for s in os.environ["SQL_TEXT"].split(";") if s.strip() and not all(
        l.strip().startswith("--") or not l.strip() for l in s.splitlines())]:
    spark.sql(statement).show(1000, truncate=False)
spark.stop()
PY
}

case "${1:-}" in
    install) install ;;
    sql) shift; sql "$@" ;;
    *) die "usage: scripts/spark.sh install | sql FILE.sql | sql -e 'SQL'" ;;
esac
