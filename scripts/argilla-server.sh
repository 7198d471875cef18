#!/usr/bin/env bash
# A local Argilla 2.8 server for `curate review`, without Docker: argilla-server + the noida-db
# Elasticsearch/Redis emulator, on 127.0.0.1 only, from the venv of requirements-argilla-server.txt.
#
#   scripts/argilla-server.sh start [STATE_DIR]   # background start; waits until /api/v1/version answers
#   scripts/argilla-server.sh env   [STATE_DIR]   # prints `export ARGILLA_API_URL=... ARGILLA_API_KEY=...`
#   scripts/argilla-server.sh stop  [STATE_DIR]   # stops the processes it started (by PID)
#
# STATE_DIR (default .cache/argilla-server; mode 700, its files 600) keeps the database, the PIDs, the log and
# `env` (the owner's API key and password). The owner's secrets reach the server through the environment, never a
# command line (the process list), and stay out of the log. Data survive a stop/start. Sign in to the UI as
# `owner` with the password in STATE_DIR/env. ARGILLA_SERVER_VENV overrides the venv (default .venv-argilla-server).
set -euo pipefail
umask 077  # the database and the log hold the owner's key: nothing in STATE_DIR is readable by others

command=${1:-}
STATE=${2:-${ARGILLA_STATE_DIR:-.cache/argilla-server}}
VENV=${ARGILLA_SERVER_VENV:-.venv-argilla-server}
PY=$VENV/bin/python

alive() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {  # URL TIMEOUT_S PIDNAME
  "$PY" - "$1" "$2" "$STATE/$3.pid" "$STATE/stack.log" <<'EOF'
import os, sys, time, urllib.request
url, timeout, pidfile, log = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
pid, deadline = int(open(pidfile).read()), time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(f"process {pid} exited before {url} answered; last log lines:\n" + open(log).read()[-3000:])
        time.sleep(0.1)
sys.exit(f"{url} did not answer within {timeout:.0f} s; see {log}")
EOF
}

create_owner() {  # the owner from $OWNER_API_KEY / $OWNER_PASSWORD; its report (which echoes the key) is dropped
  "$PY" - >/dev/null 2>>"$STATE/stack.log" <<'EOF'
import asyncio, os
from argilla_server.cli.database.users.create import _create
from argilla_server.enums import UserRole
password, key = os.environ["OWNER_PASSWORD"], os.environ["OWNER_API_KEY"]
asyncio.run(_create("Owner", "owner", UserRole.owner, password, api_key=key, workspace=["curation"]))
EOF
}

start() {
  if [ ! -x "$PY" ]; then
    echo "error: $VENV is missing: python3 -m venv $VENV && $VENV/bin/pip install -r requirements-argilla-server.txt" >&2
    exit 2
  fi
  mkdir -p "$STATE/home"
  chmod -R go-rwx "$STATE"  # a state folder of an older version of this script was world-readable
  if alive server; then
    echo "Argilla already running: $(grep ARGILLA_API_URL "$STATE/env" | cut -d= -f2)"
    return
  fi
  local es redis api noida
  es=$(free_port); redis=$(free_port); api=$(free_port)
  noida=$("$PY" -c 'import noida_db, os; print(os.path.join(os.path.dirname(noida_db.__file__), "noida-db"))')
  chmod +x "$noida"
  export ARGILLA_HOME_PATH=$STATE/home
  export ARGILLA_DATABASE_URL="sqlite+aiosqlite:///$STATE/home/argilla.db?check_same_thread=False"
  export ARGILLA_SEARCH_ENGINE=elasticsearch
  export ARGILLA_ELASTICSEARCH=http://127.0.0.1:$es
  export ARGILLA_REDIS_URL=redis://127.0.0.1:$redis/0
  export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
  # the binary itself, not the `noida-db` wrapper script, which does not forward signals
  setsid nohup "$noida" start --data-dir "$STATE/noida" --host 127.0.0.1 --only elasticsearch,redis \
    --elasticsearch-port "$es" --redis-port "$redis" >>"$STATE/stack.log" 2>&1 </dev/null &
  echo $! >"$STATE/noida.pid"
  wait_http "http://127.0.0.1:$es/" 15 noida
  "$PY" -m argilla_server database migrate >>"$STATE/stack.log" 2>&1
  if [ ! -f "$STATE/env" ]; then
    local key password
    key=$("$PY" -c 'import secrets; print("owner." + secrets.token_urlsafe(24))')
    password=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(12))')
    OWNER_API_KEY=$key OWNER_PASSWORD=$password create_owner
    printf 'ARGILLA_API_KEY=%s\nARGILLA_OWNER_PASSWORD=%s\n' "$key" "$password" >"$STATE/env"
  fi
  sed -i '/^ARGILLA_API_URL=/d' "$STATE/env"
  echo "ARGILLA_API_URL=http://127.0.0.1:$api" >>"$STATE/env"
  setsid nohup "$PY" -m argilla_server start --host 127.0.0.1 --port "$api" >>"$STATE/stack.log" 2>&1 </dev/null &
  echo $! >"$STATE/server.pid"
  wait_http "http://127.0.0.1:$api/api/v1/version" 120 server
  echo "Argilla running at http://127.0.0.1:$api (workspace curation; credentials in $STATE/env)"
}

stop() {
  local name pid
  for name in server noida; do
    if alive "$name"; then
      pid=$(cat "$STATE/$name.pid")
      kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$STATE/$name.pid"
  done
  echo "Argilla stopped ($STATE)"
}

case "$command" in
  start) start ;;
  stop) stop ;;
  env) grep -E '^ARGILLA_API_(URL|KEY)=' "$STATE/env" | sed 's/^/export /' ;;
  *) echo "usage: $0 start|env|stop [STATE_DIR]" >&2; exit 2 ;;
esac
