#!/usr/bin/env bash
# Fuzzes the record decoders with cargo-fuzz (libFuzzer): every byte string a topic can hold
# must be decoded and accepted (then make a valid Arrow batch and Parquet file) or refused with
# a reason, never panic. Installs cargo-fuzz when missing.
#   scripts/fuzz.sh [seconds per target, default 60] [target ...]
# cargo-fuzz drives rustc with -Z flags; RUSTC_BOOTSTRAP=1 lets the pinned stable toolchain take
# them. Sanitizer off (the crates forbid unsafe code): panics and aborts are what it finds.
# Inputs that fail are kept in fuzz/artifacts/<target>/, the corpus in fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

log() { printf '[fuzz] %s\n' "$*" >&2; }

seconds="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(decode_telemetry decode_event)

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz (once, about 2 minutes)"
    cargo install --locked cargo-fuzz@0.13.2
fi
export RUSTC_BOOTSTRAP=1
log "building ${targets[*]}"
cargo fuzz build -O -s none
for t in "${targets[@]}"; do
    log "$t for ${seconds}s"
    mkdir -p "corpus/$t"
    out="artifacts/$t.log"
    mkdir -p artifacts
    # The fuzzer's own status counts: a crash, a panic or a fuzzer that never started fails the
    # run (the whole output is kept in fuzz/$out).
    status=0
    cargo fuzz run -O -s none "$t" "corpus/$t" -- -max_total_time="$seconds" -print_final_stats=1 \
        >"$out" 2>&1 || status=$?
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|panicked|SUMMARY|ERROR' "$out" >&2 || true
    if ((status != 0)); then
        log "error: $t: cargo fuzz exited with status $status (output: fuzz/$out; failing inputs, if any: fuzz/artifacts/$t/)"
        exit 1
    fi
    if [[ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]]; then
        log "error: $t found failing inputs: fuzz/artifacts/$t/"
        exit 1
    fi
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)"
    if [[ -z "$runs" || "$runs" -eq 0 ]]; then
        log "error: $t executed no input (output: fuzz/$out)"
        exit 1
    fi
    log "$t: $runs inputs, no failure"
done
log "no failure"
