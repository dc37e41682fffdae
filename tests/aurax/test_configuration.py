"""Settings read from the environment: checked in a fresh interpreter, since settings are
fixed once Django is set up."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "db": settings.DATABASES["default"]["ENGINE"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "broker": settings.CELERY_BROKER_URL,
    "social": [a for a in settings.INSTALLED_APPS if "socialaccount.providers" in a],
    "secret": settings.SECRET_KEY,
    "static_root": str(settings.STATIC_ROOT),
    "site_url": settings.SITE_URL,
}))
"""


def probe(tmp_path, **env):
    unset = ("DATABASE_URL", "REDIS_URL", "STATIC_ROOT", "HOST", "PORT", "SITE_URL")
    base = {k: v for k, v in os.environ.items() if k not in unset}
    base.update(DJANGO_SETTINGS_MODULE="aurax.settings", AURAX_DATA_DIR=str(tmp_path), **env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_no_environment_gives_the_embedded_mode(tmp_path):
    result = probe(tmp_path)
    assert result["db"] == "django.db.backends.sqlite3"
    assert result["cache"].endswith("LocMemCache")
    assert result["layer"].endswith("InMemoryChannelLayer")
    assert result["broker"] == "filesystem://"
    assert result["social"] == []


def test_database_and_redis_urls_give_the_services_mode(tmp_path):
    result = probe(
        tmp_path,
        DATABASE_URL="postgres://u@db.invalid:5432/aurax",
        REDIS_URL="redis://cache.invalid:6379/0",
    )
    assert result["db"] == "django.db.backends.postgresql"
    assert result["cache"].endswith("RedisCache")
    assert result["layer"].endswith("PipelinedRedisPubSubChannelLayer")
    assert result["broker"] == "redis://cache.invalid:6379/0"


def test_social_providers_are_enabled_only_by_their_environment(tmp_path):
    result = probe(
        tmp_path,
        GITHUB_CLIENT_ID="id",
        GITHUB_CLIENT_SECRET="s",
        OIDC_CLIENT_ID="kc",
        OIDC_SERVER_URL="https://sso.invalid/realms/x",
    )
    assert result["social"] == [
        "allauth.socialaccount.providers.github",
        "allauth.socialaccount.providers.openid_connect",
    ]


def test_secrets_can_come_from_files_and_are_otherwise_generated_once(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    assert probe(tmp_path, SECRET_KEY_FILE=str(secret_file))["secret"] == "from-a-file"
    generated = probe(tmp_path / "fresh")
    assert generated["secret"] == probe(tmp_path / "fresh")["secret"]
    assert len(generated["secret"]) > 40


def test_static_files_are_collected_where_static_root_says(tmp_path):
    assert probe(tmp_path)["static_root"] == str(ROOT / "staticfiles")
    elsewhere = tmp_path / "static"
    assert probe(tmp_path, STATIC_ROOT=str(elsewhere))["static_root"] == str(elsewhere)


def test_links_point_where_the_server_answers_unless_site_url_says(tmp_path):
    assert probe(tmp_path)["site_url"] == "http://127.0.0.1:8000"
    assert probe(tmp_path, PORT="9000")["site_url"] == "http://127.0.0.1:9000"  # PORT=9000 make run
    assert probe(tmp_path, HOST="0.0.0.0", PORT="8100")["site_url"] == "http://127.0.0.1:8100"
    public = probe(tmp_path, PORT="9000", SITE_URL="https://chat.example.com")
    assert public["site_url"] == "https://chat.example.com"
