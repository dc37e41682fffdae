#!/usr/bin/env bash
# Start the floor relay (bench/ws_floor.py) for bench/ws_load.py: the stamping fake upstream on
# :${UPSTREAM_PORT:-8910} and the relay on :${PORT:-8013}, with the files ws_load.py reads in
# $DATA. In-memory channel layer, or AURAX's Redis layer when REDIS_URL is set; FLOOR_THREAD_MS
# and FLOOR_LOOP_MS as in bench/ws_floor.py.
#
#   bench/ws_floor.sh          (re)start both
#   bench/ws_floor.sh stop     stop both
#
#   .venv/bin/python bench/ws_load.py run -n 200 --port 8013 --data /tmp/aurax-wsfloor
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-/tmp/aurax-wsfloor}
PORT=${PORT:-8013}
UPSTREAM_PORT=${UPSTREAM_PORT:-8910}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

stop() {
  for name in server upstream; do
    [ -f "$DATA/$name.pid" ] && kill "$(cat "$DATA/$name.pid")" 2>/dev/null || true
    rm -f "$DATA/$name.pid"
  done
  sleep 0.5
}

case "${1:-start}" in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac

[ -d "$DATA" ] && stop
rm -rf "$DATA" && mkdir -p "$DATA"
$PY bench/ws_load.py upstream --port "$UPSTREAM_PORT" --nice "${HARNESS_NICE:-0}" > "$DATA/upstream.log" 2>&1 &
echo $! > "$DATA/upstream.pid"
FLOOR_UPSTREAM="http://127.0.0.1:$UPSTREAM_PORT/v1" $PY bench/ws_floor.py "$PORT" \
  > "$DATA/server.log" 2>&1 &
echo $! > "$DATA/server.pid"
# ws_load.py reads a session cookie and conversation ids; the floor ignores both.
echo floor > "$DATA/session"
seq 1 100000 > "$DATA/conversations"
for _ in $(seq 1 100); do
  if (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null \
    && (echo > "/dev/tcp/127.0.0.1/$UPSTREAM_PORT") 2>/dev/null; then
    echo "floor relay on :$PORT (pid $(cat "$DATA/server.pid")), upstream on :$UPSTREAM_PORT"
    exit 0
  fi
  sleep 0.2
done
echo "did not start, see $DATA/*.log" >&2
exit 1
