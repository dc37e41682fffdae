# Two commands do everything on a fresh machine with Python 3.11+:
#   make run    set up and serve on http://127.0.0.1:$(PORT) (embedded mode unless DATABASE_URL/REDIS_URL)
#   make test   the whole suite: embedded mode, then services mode when DATABASE_URL/REDIS_URL are set
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export LOG_FORMAT ?= text

.PHONY: install setup run worker test test-embedded test-services test-browser lint fmt messages clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

setup: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py ensure_admin
	$(PY) manage.py aurax_startup

run: setup
	PORT=$(PORT) bin/serve

worker: install
	$(VENV)/bin/celery -A aurax worker --beat --loglevel INFO

# Browser tests run in their own pytest process: Playwright's sync API keeps an event loop
# running in the main thread, which async tests cannot share.
test-embedded: install
	env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest -rs -m "not browser" $(PYTEST_ARGS)

test-services: install
	@if [ -n "$$DATABASE_URL$$REDIS_URL" ]; then \
		echo "== services mode: DATABASE_URL=$${DATABASE_URL:-unset} REDIS_URL=$${REDIS_URL:-unset}"; \
		$(PY) -m pytest -rs -m "not browser" $(PYTEST_ARGS); \
	else echo "== services mode skipped: DATABASE_URL and REDIS_URL are not set"; fi

test-browser: install
	env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest -rs -m browser $(PYTEST_ARGS)

test: test-embedded test-services test-browser

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Needs GNU gettext; the compiled .mo files are committed so a plain machine needs nothing.
messages: install
	$(PY) manage.py makemessages -l pt_BR -l es --ignore '.venv/*' --ignore 'staticfiles/*' --ignore 'bench/*'
	$(PY) manage.py makemessages -d djangojs -l pt_BR -l es --ignore '.venv/*' --ignore 'staticfiles/*' --ignore 'bench/*' --ignore 'static/vendor/*'
	$(PY) manage.py compilemessages --ignore '.venv/*'

clean:
	rm -rf $(VENV) staticfiles var
