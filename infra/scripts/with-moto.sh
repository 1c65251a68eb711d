#!/usr/bin/env bash
# Runs a command against a private moto server (the AWS emulator the tests use):
#   infra/scripts/with-moto.sh CMD [ARGS...]   start moto, run CMD, stop moto (also on failure)
#   infra/scripts/with-moto.sh --serve         start moto for development and print the exports
#   infra/scripts/with-moto.sh --stop          stop the development moto started by --serve
# moto listens on 127.0.0.1 on a free port; CMD sees AWS_ENDPOINT_URL and test credentials.
# Nested calls (CMD itself calling this script) reuse the running server.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VIRTUAL_ENV:-$ROOT/.venv}"
# moto's server with DynamoDB's per-item atomicity (see moto_server.py).
MOTO_PYTHON="${MOTO_PYTHON:-$VENV/bin/python}"
PYTHON="${PYTHON:-python3}"
DEV_STATE="$VENV/.reimbi-dev-moto"

die() { printf 'with-moto: %s\n' "$*" >&2; exit 1; }

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

answers() {
  "$PYTHON" - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=2).read()
PY
}

# Starts moto in the background; sets MOTO_PID, MOTO_URL and MOTO_LOG.
start_moto() {
  "$MOTO_PYTHON" -c 'import moto.server' 2>/dev/null || die "moto is not installed for $MOTO_PYTHON: run 'make venv'"
  local port
  port="$(free_port)"
  MOTO_URL="http://127.0.0.1:$port"
  MOTO_LOG="${TMPDIR:-/tmp}/reimbi-moto-$port.log"
  "$MOTO_PYTHON" "$ROOT/infra/scripts/moto_server.py" 127.0.0.1 "$port" >"$MOTO_LOG" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 150); do
    answers "$MOTO_URL" && return 0
    kill -0 "$MOTO_PID" 2>/dev/null || { cat "$MOTO_LOG" >&2; die "moto exited before answering"; }
    sleep 0.2
  done
  kill "$MOTO_PID" 2>/dev/null || true
  die "moto did not answer at $MOTO_URL within 30 s (log: $MOTO_LOG)"
}

export_env() {
  export AWS_ENDPOINT_URL="$1"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  # Never fall back to a developer's real profile or the instance metadata service.
  unset AWS_PROFILE AWS_SESSION_TOKEN
  export AWS_EC2_METADATA_DISABLED=true
  export REIMBI_MOTO_SESSION="$1"
}

case "${1:-}" in
  "")
    die "usage: with-moto.sh CMD [ARGS...] | --serve | --stop"
    ;;
  --serve)
    if [ -f "$DEV_STATE" ] && read -r pid url <"$DEV_STATE" && kill -0 "$pid" 2>/dev/null && answers "$url"; then
      printf 'moto already runs (pid %s)\n' "$pid"
    else
      start_moto
      printf '%s %s\n' "$MOTO_PID" "$MOTO_URL" >"$DEV_STATE"
      pid="$MOTO_PID" url="$MOTO_URL"
      printf 'moto started (pid %s, log %s); stop it with: make moto-stop\n' "$pid" "$MOTO_LOG"
    fi
    printf '\nexport AWS_ENDPOINT_URL=%s AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1\n' "$url"
    ;;
  --stop)
    if [ -f "$DEV_STATE" ] && read -r pid _ <"$DEV_STATE"; then
      kill "$pid" 2>/dev/null && printf 'moto (pid %s) stopped\n' "$pid" || printf 'moto (pid %s) was not running\n' "$pid"
      rm -f "$DEV_STATE"
    else
      printf 'no development moto is recorded\n'
    fi
    ;;
  *)
    if [ -n "${REIMBI_MOTO_SESSION:-}" ] && answers "$REIMBI_MOTO_SESSION"; then
      exec "$@"
    fi
    start_moto
    stop_moto() { kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; }
    trap stop_moto EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    export_env "$MOTO_URL"
    printf 'with-moto: moto at %s (pid %s, log %s)\n' "$MOTO_URL" "$MOTO_PID" "$MOTO_LOG"
    "$@"
    ;;
esac
