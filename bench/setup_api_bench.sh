#!/usr/bin/env bash
# Prepare and start AURAX for bench/api_load.py: a fake upstream on :8900, AURAX on :${PORT:-8001}
# (one daphne process, embedded mode unless DATABASE_URL/REDIS_URL are set), a user with an API
# key, a workspace budget and rate limits (so reservation and limit checks run on every request).
# Prints the API key on its last line. Stop with: kill $(cat "$DATA/pids")
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-/tmp/aurax-bench}
PORT=${PORT:-8001}
rm -rf "$DATA" && mkdir -p "$DATA"
export AURAX_DATA_DIR="$DATA" LOG_LEVEL=WARNING LOG_FORMAT=text
export OPENAI_API_KEY=sk-mock-upstream OPENAI_BASE_URL=http://127.0.0.1:8900/v1
$PY manage.py fake_upstream --port 8900 > "$DATA/upstream.log" 2>&1 &
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
$PY -m daphne -b 127.0.0.1 -p "$PORT" aurax.asgi:application > "$DATA/server.log" 2>&1 &
echo $! >> "$DATA/pids"
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.2; done
echo "$KEY"
