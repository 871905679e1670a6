#!/usr/bin/env bash
# Validates the deployment artifacts (docker-compose.yml, deploy/) against each other and against
# the code, without a Docker engine: YAML/JSON syntax; every --flag and environment variable given
# to `surgstream` is one its subcommand reads (src/cli.rs, clap); every metric in the alerts and the
# dashboard is one the code records; ports, mounts and hosts line up; the Dockerfile fits the build;
# `promtool check config|rules` and `promtool test rules` cases for the alerts; `docker compose
# config -q` when a Compose client is installed. The checks themselves are scripts/check_deploy.py.
#
#   scripts/check-deploy.sh [--install] [--strict] [--no-promtool] [--no-compose]
#
#   --install      apt-get install what is missing first: promtool (Debian's `prometheus` package),
#                  PyYAML (python3-yaml), a Compose client (Debian's `docker-compose`, v1: enough
#                  for `config`, which needs no engine).
#   --strict       also fail on PENDING items: what the deploy files use that the code does not
#                  provide yet (they are listed at the end either way).
#
# Exit status: 0 when every check passes (PENDING items allowed unless --strict), 1 otherwise;
# one ERROR line per problem.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
install=0
args=()
for a in "$@"; do
    case "$a" in
        --install) install=1 ;;
        -h | --help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) args+=("$a") ;;
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

if ! PY="$(pick_python)"; then
    echo "check-deploy: ERROR: Python 3 with PyYAML is needed (apt-get install -y python3-yaml, or pip install pyyaml; or run with --install)" >&2
    exit 1
fi
cd "$ROOT"
exec "$PY" "$ROOT/scripts/check_deploy.py" "${args[@]+"${args[@]}"}"
