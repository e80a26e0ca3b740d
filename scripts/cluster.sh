#!/usr/bin/env bash
# A Spark standalone cluster on this machine: one master and ONE worker, both bound to 127.0.0.1,
# started from the pyspark installation's own sbin/spark-daemon.sh (the pip package has no
# start-master.sh / start-worker.sh).
#
#   scripts/cluster.sh up       start master + worker, wait until the worker is registered
#   scripts/cluster.sh down     stop worker then master (idempotent; waits until they are gone)
#   scripts/cluster.sh status   print the master's view (exit 0 iff up with >= 1 alive worker)
#
# Submit to it with  spark-submit --master spark://127.0.0.1:7077 ...  (see docs/cluster.md).
#
# Settings (environment, all optional):
#   FF_CLUSTER_DIR        logs, pid files, worker work dirs  (default: <repo>/warehouse/cluster, git-ignored)
#   FF_MASTER_PORT        master RPC port                    (default: 7077)
#   FF_MASTER_UI_PORT     master web UI + /json              (default: 8780; 8080 is often taken)
#   FF_WORKER_UI_PORT     worker web UI + /json              (default: 8781)
#   FF_WORKER_CORES       cores the worker offers            (default: 2)
#   FF_WORKER_MEMORY      memory the worker offers           (default: 3g)
#   FF_CLUSTER_TIMEOUT    seconds `up` waits for the worker  (default: 240)
#   PYSPARK_PYTHON        Python of the executors' workers   (default: <repo>/.venv/bin/python)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${FF_PYTHON:-$REPO/.venv/bin/python}"
[[ -x "$PY" ]] || { echo "cluster.sh: no Python at $PY (run \`make setup\` or set FF_PYTHON)" >&2; exit 1; }

SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export SPARK_HOME
CLUSTER_DIR="${FF_CLUSTER_DIR:-$REPO/warehouse/cluster}"
MASTER_PORT="${FF_MASTER_PORT:-7077}"
MASTER_UI_PORT="${FF_MASTER_UI_PORT:-8780}"
WORKER_UI_PORT="${FF_WORKER_UI_PORT:-8781}"
WORKER_CORES="${FF_WORKER_CORES:-2}"
WORKER_MEMORY="${FF_WORKER_MEMORY:-3g}"
TIMEOUT="${FF_CLUSTER_TIMEOUT:-240}"
MASTER_URL="spark://127.0.0.1:$MASTER_PORT"
MASTER_JSON="http://127.0.0.1:$MASTER_UI_PORT/json/"

MASTER_CLASS=org.apache.spark.deploy.master.Master
WORKER_CLASS=org.apache.spark.deploy.worker.Worker

# What spark-daemon.sh and the daemons read.
export SPARK_LOCAL_IP=127.0.0.1
export SPARK_LOG_DIR="$CLUSTER_DIR/logs"
export SPARK_PID_DIR="$CLUSTER_DIR/pids"
export SPARK_CONF_DIR="$CLUSTER_DIR/conf"      # empty: no stray spark-defaults/spark-env from elsewhere
export SPARK_IDENT_STRING=ff
export SPARK_DAEMON_MEMORY="${SPARK_DAEMON_MEMORY:-512m}"
export SPARK_LOCAL_DIRS="$CLUSTER_DIR/tmp"
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PY}"
export TZ=UTC

daemon() { "$SPARK_HOME/sbin/spark-daemon.sh" "$@"; }
pid_file() { echo "$SPARK_PID_DIR/spark-$SPARK_IDENT_STRING-$1-1.pid"; }

# The pid recorded for a daemon class, if that process is still a running java.
live_pid() {
  local file; file="$(pid_file "$1")"
  [[ -f "$file" ]] || return 1
  local pid; pid="$(cat "$file")"
  [[ "$(ps -p "$pid" -o comm= 2>/dev/null || true)" =~ java ]] || return 1
  echo "$pid"
}

# Prints "<alive workers> <cores> <status>" from the master's JSON, or fails if it does not answer.
master_state() {
  "$PY" - "$MASTER_JSON" <<'EOF'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        d = json.load(r)
except Exception:
    sys.exit(1)
print(d.get("aliveworkers", 0), d.get("cores", 0), d.get("status", "?"))
EOF
}

port_free() {  # SO_REUSEADDR like the daemons' own servers: TIME_WAIT leftovers do not count
  "$PY" -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()' "$1"
}

stop_one() {  # stop_one <class> <label>: TERM via spark-daemon.sh, wait, KILL only that pid if it lingers
  local cls="$1" label="$2" pid
  if ! pid="$(live_pid "$cls")"; then
    rm -f "$(pid_file "$cls")"
    echo "$label: not running"
    return 0
  fi
  daemon stop "$cls" 1 >/dev/null
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { echo "$label: stopped (pid $pid)"; return 0; }
    sleep 0.5
  done
  echo "$label: still alive 30s after TERM, sending KILL to pid $pid" >&2
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$(pid_file "$cls")"
}

cmd_up() {
  mkdir -p "$SPARK_LOG_DIR" "$SPARK_PID_DIR" "$SPARK_CONF_DIR" "$SPARK_LOCAL_DIRS" "$CLUSTER_DIR/work"
  local master_pid worker_pid ports=()
  # Check every port before starting anything, so a clash leaves nothing half-started.
  live_pid "$MASTER_CLASS" >/dev/null || ports+=("$MASTER_PORT" "$MASTER_UI_PORT")
  live_pid "$WORKER_CLASS" >/dev/null || ports+=("$WORKER_UI_PORT")
  for port in "${ports[@]}"; do
    port_free "$port" || {
      echo "cluster.sh: port $port on 127.0.0.1 is in use by another process; choose others with FF_MASTER_PORT / FF_MASTER_UI_PORT / FF_WORKER_UI_PORT" >&2
      exit 1
    }
  done
  if master_pid="$(live_pid "$MASTER_CLASS")"; then
    echo "master: already running (pid $master_pid)"
  else
    daemon start "$MASTER_CLASS" 1 --host 127.0.0.1 --port "$MASTER_PORT" --webui-port "$MASTER_UI_PORT"
  fi
  if worker_pid="$(live_pid "$WORKER_CLASS")"; then
    echo "worker: already running (pid $worker_pid)"
  else
    daemon start "$WORKER_CLASS" 1 --host 127.0.0.1 --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" \
      --webui-port "$WORKER_UI_PORT" --work-dir "$CLUSTER_DIR/work" "$MASTER_URL"
  fi

  local waited=0 state=""
  while (( waited < TIMEOUT )); do
    if state="$(master_state)" && (( ${state%% *} >= 1 )); then
      echo "cluster up: $MASTER_URL  (master UI http://127.0.0.1:$MASTER_UI_PORT, worker UI http://127.0.0.1:$WORKER_UI_PORT;" \
           "alive workers / cores / status: $state; ${waited}s)"
      echo "logs: $SPARK_LOG_DIR"
      return 0
    fi
    for cls in "$MASTER_CLASS" "$WORKER_CLASS"; do
      if ! live_pid "$cls" >/dev/null; then
        echo "cluster.sh: ${cls##*.} died while starting; last lines of its log:" >&2
        tail -n 20 "$SPARK_LOG_DIR"/spark-"$SPARK_IDENT_STRING"-"$cls"-1-*.out >&2 || true
        cmd_down >&2
        exit 1
      fi
    done
    sleep 2
    waited=$((waited + 2))
  done
  echo "cluster.sh: no worker registered with $MASTER_URL after ${TIMEOUT}s (master JSON $MASTER_JSON said: ${state:-no answer})." >&2
  echo "  Logs: $SPARK_LOG_DIR. Stopping what was started; raise FF_CLUSTER_TIMEOUT on a slow machine." >&2
  cmd_down >&2
  exit 1
}

cmd_down() {
  stop_one "$WORKER_CLASS" worker
  stop_one "$MASTER_CLASS" master
}

cmd_status() {
  local mp wp state
  mp="$(live_pid "$MASTER_CLASS" || echo -)"; wp="$(live_pid "$WORKER_CLASS" || echo -)"
  echo "master pid: $mp  worker pid: $wp  ($CLUSTER_DIR)"
  if state="$(master_state)"; then
    echo "$MASTER_URL  alive workers / cores / status: $state  (UI http://127.0.0.1:$MASTER_UI_PORT)"
    (( ${state%% *} >= 1 )) && return 0
  else
    echo "master JSON $MASTER_JSON does not answer"
  fi
  return 1
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
