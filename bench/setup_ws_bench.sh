#!/usr/bin/env bash
# Prepare and start AURAX for bench/ws_load.py (the chat WebSocket load test).
#
#   bench/setup_ws_bench.sh            fresh data: fake upstream on :${UPSTREAM_PORT:-8910}, one
#                                      daphne on :${PORT:-8011}, a user, ${CONVERSATIONS:-3000}
#                                      titled conversations and a session cookie
#   bench/setup_ws_bench.sh restart    restart daphne only (fresh process: clean CPU/RSS figures)
#   bench/setup_ws_bench.sh stop       stop what this script started
#
# Embedded mode (SQLite + in-memory channel layer) unless DATABASE_URL / REDIS_URL are set, e.g.
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/aurax_wsbench REDIS_URL=redis://127.0.0.1:6379/7
# (the PostgreSQL database is dropped and re-created, the Redis db flushed). With those set,
# WEB_PROCESSES=2 serves from two daphne processes on the one port (bin/serve).
# HARNESS_NICE=10 starts the upstream at that niceness (and `ws_load.py run --nice 10` the
# client): the server's threads then get a core first when they compete with the harness.
#
# The upstream is providers/fake_upstream.py served by `bench/ws_load.py upstream`, which stamps
# each streamed token with its emission time ("tok17@<0.1 ms clock>") so that the load script
# can measure the delay AURAX adds to every frame exactly. Files in $DATA: session (cookie),
# conversations (ids, one a line), server.pid, upstream.pid, *.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-/tmp/aurax-wsbench}
PORT=${PORT:-8011}
UPSTREAM_PORT=${UPSTREAM_PORT:-8910}
CONVERSATIONS=${CONVERSATIONS:-3000}
export AURAX_DATA_DIR="$DATA" LOG_LEVEL=WARNING LOG_FORMAT=text
export OPENAI_API_KEY=sk-mock-upstream OPENAI_BASE_URL=http://127.0.0.1:$UPSTREAM_PORT/v1
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

server_start() {
  # bin/serve as in production (uvloop, no access log), without the Celery worker.
  CELERY_WORKER=0 HOST=127.0.0.1 PORT="$PORT" VENV="$(dirname "$PY")/.." bin/serve \
    > "$DATA/server.log" 2>&1 &
  echo $! > "$DATA/server.pid"
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && return 0
    sleep 0.2
  done
  echo "daphne did not start, see $DATA/server.log" >&2
  return 1
}

server_stop() {
  if [ -f "$DATA/server.pid" ]; then
    pid=$(cat "$DATA/server.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$DATA/server.pid"
  fi
}

case "${1:-setup}" in
  restart)
    server_stop
    # Answers cut by the restart would leave their conversations busy.
    $PY manage.py chat_mark_interrupted --all > /dev/null
    if [ -n "${DATABASE_URL:-}" ]; then
      # An answer leaves a dead row version for every second it streamed (its growing text
      # is saved each second): where autovacuum is off, each run would be slower than the last.
      psql "$DATABASE_URL" -qc "VACUUM (ANALYZE)" > /dev/null
    fi
    server_start
    exit 0
    ;;
  stop)
    server_stop
    [ -f "$DATA/upstream.pid" ] && kill "$(cat "$DATA/upstream.pid")" 2>/dev/null || true
    rm -f "$DATA/upstream.pid"
    exit 0
    ;;
  setup) ;;
  *) echo "usage: $0 [setup|restart|stop]" >&2; exit 2 ;;
esac

if [ -d "$DATA" ]; then
  server_stop
  [ -f "$DATA/upstream.pid" ] && kill "$(cat "$DATA/upstream.pid")" 2>/dev/null || true
fi
rm -rf "$DATA" && mkdir -p "$DATA"
if [ -n "${DATABASE_URL:-}" ]; then
  db=${DATABASE_URL##*/}
  base=${DATABASE_URL%/*}
  psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" > /dev/null
fi
if [ -n "${REDIS_URL:-}" ]; then
  redis-cli -u "$REDIS_URL" flushdb > /dev/null
fi

$PY bench/ws_load.py upstream --port "$UPSTREAM_PORT" --nice "${HARNESS_NICE:-0}" > "$DATA/upstream.log" 2>&1 &
echo $! > "$DATA/upstream.pid"
$PY manage.py migrate --noinput -v0
$PY manage.py aurax_startup > /dev/null
sleep 1
$PY manage.py providers check --refresh > /dev/null
$PY manage.py shell -c "
from django.test import Client
from accounts.models import User
from workspaces.selectors import personal_workspace_get
from billing.models import RateLimit, RateLimitScope
from billing.services import budget_upsert
from chat.models import Conversation
from decimal import Decimal
u = User.objects.create_user(email='wsbench@example.com', password='bench-password-1')
ws = personal_workspace_get(user=u)
budget_upsert(workspace_id=ws.pk, cost_limit=Decimal('1000000'), token_limit=None)
RateLimit.objects.create(scope=RateLimitScope.USER, user=u, rpm=1_000_000, tpm=100_000_000)
# Titled conversations: no title generation after the first answer (streaming only is measured).
Conversation.objects.bulk_create(
    Conversation(workspace=ws, user=u, title=f'bench {i}', title_final=True, model='fake-small')
    for i in range($CONVERSATIONS)
)
ids = Conversation.objects.filter(user=u).order_by('pk').values_list('pk', flat=True)
open('$DATA/conversations', 'w').write(''.join(f'{i}\n' for i in ids))
c = Client()
c.force_login(u)
open('$DATA/session', 'w').write(c.cookies['sessionid'].value)
"
server_start
echo "AURAX on http://127.0.0.1:$PORT (pid $(cat "$DATA/server.pid")), upstream on :$UPSTREAM_PORT"
