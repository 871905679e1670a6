#!/usr/bin/env bash
# Installs the tools the build, the demo and the tests need, when missing. Idempotent.
#   - the pinned Rust toolchain's rustfmt and clippy (rust-toolchain.toml);
#   - a C compiler, make, pkg-config and OpenSSL's headers, for librdkafka (built from source by
#     rdkafka-sys, with TLS and SASL SCRAM);
#   - Java and Maven, for Apache Kafka (scripts/kafka.sh fetches its jars with Maven);
#   - pyarrow, the outside reader the end-to-end test checks the lake with, duckdb, the outside
#     engine the warehouse test recomputes the facts with, and confluent-kafka,
#     the outside producer of tests/compression.rs; pyiceberg (with SQLAlchemy and psycopg2), the
#     outside reader of the Iceberg tables.
# PostgreSQL's server is installed by scripts/services.sh, which starts it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

need_apt=()
command -v cc >/dev/null || need_apt+=(gcc)
command -v make >/dev/null || need_apt+=(make)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
# librdkafka's TLS links the system OpenSSL (found through pkg-config).
pkg-config --exists openssl 2>/dev/null || need_apt+=(libssl-dev)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
command -v pg_isready >/dev/null || need_apt+=(postgresql-client)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

command -v cargo >/dev/null || { log "error: cargo is not installed (rustup is expected on this kind of machine)"; exit 1; }
# The toolchain file pins the version; make sure its components are there.
toolchain="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)"
if ! rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^clippy'; then
    rustup component add --toolchain "$toolchain" rustfmt clippy
fi

if ! python3 -c 'import pyarrow' 2>/dev/null; then
    log "installing pyarrow (outside Parquet reader for the tests)"
    python3 -m pip install --quiet --disable-pip-version-check 'pyarrow>=15'
fi
if ! python3 -c 'import duckdb' 2>/dev/null; then
    log "installing duckdb (outside SQL engine the warehouse test recomputes the facts with)"
    python3 -m pip install --quiet --disable-pip-version-check 'duckdb>=1.1'
fi
if ! python3 -c 'import confluent_kafka' 2>/dev/null; then
    log "installing confluent-kafka (outside Kafka producer for the tests)"
    python3 -m pip install --quiet --disable-pip-version-check 'confluent-kafka>=2.3'
fi
if ! python3 -c 'import pyiceberg, sqlalchemy, psycopg2' 2>/dev/null; then
    log "installing pyiceberg with its SQL catalog (outside reader of the Iceberg tables for the tests)"
    python3 -m pip install --quiet --disable-pip-version-check 'pyiceberg[sql-postgres,pyarrow]==0.12.0'
fi
# Apache Spark (pyspark) with Iceberg's Spark runtime and PostgreSQL's JDBC driver: the outside
# engine tests/iceberg.rs reads the Iceberg table with.
scripts/spark.sh install >/dev/null
# A virtual environment NAME under the cache with PACKAGES, unless IMPORTS already import there.
venv_with() {
    local name="$1" imports="$2" why="$3"
    shift 3
    local venv="${SURGSTREAM_CACHE:-$HOME/.cache/surgstream}/$name"
    "$venv/bin/python" -c "import $imports" 2>/dev/null && return
    log "installing $* in $venv ($why)"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
}
# DuckDB's iceberg extension from PyPI is built for one DuckDB release: it gets a virtual
# environment of its own with that DuckDB, apart from the one the warehouse tests use.
venv_with duckdb-iceberg-venv 'duckdb_extension_iceberg, duckdb_extension_avro' \
    'outside reader of the Iceberg tables' \
    'duckdb==1.5.5' 'duckdb-extension-iceberg==1.5.5' 'duckdb-extension-avro==1.5.5'
# AWS's own MSK signer and boto3 (the reference signers) and moto's server (Glue, STS,
# Secrets Manager) for the AWS tests.
venv_with aws-venv 'aws_msk_iam_sasl_signer, boto3, moto.server, flask' \
    "the AWS tests' reference signers and emulator" \
    'aws-msk-iam-sasl-signer-python==1.0.2' 'boto3==1.44.18' 'moto[server]==5.2.6'
