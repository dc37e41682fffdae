#!/usr/bin/env bash
# Prepare and start AURAX for bench/api_load.py: a fake upstream on :${UPSTREAM_PORT:-8900}, AURAX
# on :${PORT:-8001} (one daphne process started by bin/serve; embedded mode unless
# DATABASE_URL/REDIS_URL are set), a user with an API key, a workspace budget and rate limits (so reservation and limit checks run on every request).
# Prints the API key on its last line. Stop with: kill $(cat "$DATA/pids")
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-/tmp/aurax-bench}
PORT=${PORT:-8001}
UPSTREAM_PORT=${UPSTREAM_PORT:-8900}
rm -rf "$DATA" && mkdir -p "$DATA"
export AURAX_DATA_DIR="$DATA" LOG_LEVEL=WARNING LOG_FORMAT=text
export OPENAI_API_KEY=sk-mock-upstream OPENAI_BASE_URL=http://127.0.0.1:$UPSTREAM_PORT/v1
$PY manage.py fake_upstream --port "$UPSTREAM_PORT" > "$DATA/upstream.log" 2>&1 &
echo $! > "$DATA/pids"
$PY manage.py migrate --noinput -v0
$PY manage.py aurax_startup > /dev/null
sleep 1
$PY manage.py providers check --refresh > /dev/null
$PY manage.py shell -c "
from accounts.models import User
from billing.models import RateLimit, RateLimitScope
from billing.services import budget_upsert
from decimal import Decimal
u = User.objects.create_user(email='bench@example.com', password='bench-password-1')
ws = u.memberships.get().workspace
budget_upsert(workspace_id=ws.pk, cost_limit=Decimal('1000000'), token_limit=None)
RateLimit.objects.create(scope=RateLimitScope.USER, user=u, rpm=10_000_000, tpm=100_000_000)
"
KEY=$($PY manage.py create_api_key --user bench@example.com --name bench)
# bin/serve as in production (uvloop, no form parsing, no access log), without the worker
# unless CELERY_WORKER=1 (bench/batch_load.py: the worker runs the batches).
CELERY_WORKER="${CELERY_WORKER:-0}" HOST=127.0.0.1 PORT="$PORT" VENV="$(dirname "$PY")/.." bin/serve > "$DATA/server.log" 2>&1 &
echo $! >> "$DATA/pids"
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.2; done
echo "$KEY"
