import time

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_answers_while_the_process_lives(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_every_dependency_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {
        "database": "ok",
        "cache": "ok",
        "channel_layer": "ok",
        "broker": "ok",
    }


@override_settings(
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
)
def test_readyz_reports_a_stopped_cache_as_503_without_hanging(client):
    started = time.monotonic()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["cache"] == "failed"
    assert "cache" in body["failed"]
    assert body["checks"]["database"] == "ok"
    assert time.monotonic() - started < 10


def test_readyz_reports_an_unreachable_broker_as_503(client, settings):
    from aurax.celery import app

    old = app.conf.broker_url, app.conf.broker_transport_options
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    app.conf.broker_transport_options = {}
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = old
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "failed"


def test_readyz_reports_an_unreachable_database_as_503(client):
    from django.db import connections

    # The probe runs in a worker thread, which opens its own connection from these settings.
    db_settings = connections.settings["default"]
    original = dict(db_settings)

    def drop_pool():
        # A PostgreSQL pool keeps connections made with the old settings; start afresh.
        if hasattr(connections["default"], "close_pool"):
            connections["default"].close_pool()

    if connections["default"].vendor == "sqlite":
        # An unopenable path is SQLite's equivalent of a wrong database URL.
        db_settings["NAME"] = "/nonexistent-dir/aurax.sqlite3"
    else:
        db_settings.update(HOST="127.0.0.1", PORT="1")
    drop_pool()
    try:
        response = client.get("/readyz")
    finally:
        db_settings.clear()
        db_settings.update(original)
        drop_pool()
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "failed"
