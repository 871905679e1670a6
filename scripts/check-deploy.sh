#!/usr/bin/env bash
# Validates the deployment artifacts (docker-compose.yml, deploy/) without a Docker engine, in two
# parts, and runs both even when the first fails:
#
#   1. Against the code, by the binary's own tests (src/deploy_checks.rs; `cargo test -p surgstream
#      --bin surgstream deploy_checks`, which `cargo test` in CI runs too): every `surgstream`
#      command line and environment variable in docker-compose.yml and
#      deploy/surgstream.env.example parses with the binary's clap definitions (AWS_* names must
#      be object_store S3 settings); every metric in the Prometheus rules, their unit tests
#      (deploy/prometheus/alerts.test.yml) and the Grafana dashboards is a series the binary's
#      /metrics renders; `promtool check config` and `promtool test rules` where promtool is
#      installed (skipped, and said so, otherwise).
#   2. Against each other, by scripts/check_deploy.py: YAML/JSON syntax; ports, mounts, hosts,
#      depends_on, image pins; alert rules' for/severity/summary/description; the Dockerfile fits
#      the build; `docker compose config -q` when a Compose client is installed.
#
#   scripts/check-deploy.sh [--install] [--no-compose]
#
#   --install      apt-get install what is missing first: promtool (Debian's `prometheus` package),
#                  PyYAML (python3-yaml), a Compose client (Debian's `docker-compose`, v1: enough
#                  for `config`, which needs no engine).
#   --no-compose   skip `docker compose config`.
#
# Exit status: 0 when every check passes, 1 otherwise. The tests name the file and the bad option
# or metric; check_deploy.py prints one ERROR line per problem.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
install=0
args=()
for a in "$@"; do
    case "$a" in
        --install) install=1 ;;
        --no-compose) args+=("$a") ;;
        -h | --help)
            awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
            exit 0
            ;;
        *) echo "check-deploy: unknown option $a (see --help)" >&2; exit 2 ;;
    esac
done

# A Python with PyYAML: the one on PATH, else Debian's.
pick_python() {
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import yaml' 2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    return 1
}

if ((install)); then
    need=()
    command -v promtool >/dev/null 2>&1 || need+=(prometheus)
    pick_python >/dev/null || need+=(python3-yaml)
    { docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; } || need+=(docker-compose)
    if ((${#need[@]})); then
        echo "check-deploy: installing ${need[*]}" >&2
        # Debian's prometheus package also installs its service (enabled where systemd runs);
        # only its promtool is used here.
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
    fi
fi

cd "$ROOT"
status=0

printf '==> against the code: cargo test -p surgstream --bin surgstream deploy_checks\n'
cargo test --locked -p surgstream --bin surgstream deploy_checks -- --nocapture || status=1

printf '\n==> against each other: scripts/check_deploy.py\n'
if PY="$(pick_python)"; then
    "$PY" "$ROOT/scripts/check_deploy.py" "${args[@]+"${args[@]}"}" || status=1
else
    echo "check-deploy: ERROR: Python 3 with PyYAML is needed (apt-get install -y python3-yaml, or pip install pyyaml; or run with --install)" >&2
    status=1
fi
exit "$status"
