#!/usr/bin/env bash
# Sets up what the tests need on a fresh machine of this kind and runs them all:
# formatting, clippy (warnings are errors), unit tests, and the integration tests against a
# real Apache Kafka and a real PostgreSQL started by scripts/services.sh (the fault tests start
# their own Kafka clusters, tests/kafka_cluster.rs), then 30 s of fuzzing per record decoder
# (scripts/fuzz.sh; longer runs: scripts/fuzz.sh 600).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "tools"
scripts/setup.sh

step "services"
scripts/services.sh up

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
# Integration tests each use fresh topics, a fresh database and a fresh lake: they run in parallel.
cargo test --workspace --locked --no-fail-fast

step "fuzz the record decoders (30 s each)"
scripts/fuzz.sh 30
