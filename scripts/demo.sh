#!/usr/bin/env bash
# The main job in one command: set up, start the broker, build, and run a live demo
# (sim → Kafka → ingest → Parquet lake + PostgreSQL) that ends with a summary.
# Options after the script name go to `surgstream demo` (e.g. --duration 2m --robots 20).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
scripts/services.sh up
cargo build --release --locked --bin surgstream
exec ./target/release/surgstream demo "$@"
