import os
import shutil
import tempfile

import pytest

from tests.factories import PASSWORD, UserFactory

# Fixture modules shared across the suite (fake upstream, live servers, browser).
pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.upstream", "tests.fixtures.browser"]

SERVICES_MODE = bool(os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"))


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """A file, not an in-memory database, for SQLite tests: work on several threads at once
    (the pipeline's database threads, Channels) then gets WAL and the busy timeout instead
    of shared-cache table locks that fail at once ("database table is locked")."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database.setdefault("TEST", {})["NAME"] = str(
            tmp_path_factory.mktemp("db") / "test.sqlite3"
        )


def pytest_configure(config):
    """The run's own STATIC_ROOT, for this process and every server and `collectstatic` it
    starts (they take the environment): collecting into the checkout's would change the files
    under a server that `make run` serves from it, which WhiteNoise then sends with their old
    length (pages that never finish loading). Set before any test module is imported (some
    build the ASGI application then) and created at once: WhiteNoise warns on every request
    handler it is built into while STATIC_ROOT does not exist (only the live-server tests
    collect static files)."""
    from django.conf import settings

    root = tempfile.mkdtemp(prefix="aurax-static-")
    config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))
    os.environ["STATIC_ROOT"] = settings.STATIC_ROOT = root


@pytest.fixture(scope="session", autouse=True)
def _usage_journal_dir(tmp_path_factory):
    """The ledger's journal of this run, not the one of a server on this machine."""
    from django.conf import settings

    settings.BILLING_USAGE_JOURNAL_DIR = str(tmp_path_factory.mktemp("usage-journal"))


@pytest.fixture(autouse=True)
def _ledger_written(request):
    """Rows a test queued are written before its database is emptied: for a test that uses
    the database, this teardown runs before the database fixtures' (it requests them)."""
    uses_db = "_django_db_helper" in request.fixturenames or request.node.get_closest_marker(
        "django_db"
    )
    if not uses_db:
        yield
        return
    request.getfixturevalue("_django_db_helper")
    yield
    from billing.ledger import ledger_flush
    from billing.quotas import leases_return

    ledger_flush()
    leases_return()


def pytest_collection_modifyitems(config, items):
    """Browser tests last, when one run holds both (`pytest` with no `-m`): Playwright's sync
    API leaves its event loop marked as running in the main thread for the rest of the
    session, and every asyncio test after it then fails to start its own loop ("Runner.run()
    cannot be called from a running event loop"). `make test` runs them in their own process
    anyway."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


def pytest_report_header(config):
    mode = "services (PostgreSQL/Redis)" if SERVICES_MODE else "embedded (SQLite, in-memory)"
    return f"aurax mode: {mode}"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import caches

    for cache in caches.all(initialized_only=False):
        cache.clear()
    yield


@pytest.fixture(autouse=True)
def _language_reset():
    """A page requested in a user's language leaves it active on the test's thread (the
    middleware activates it for each request): the next test starts in the default one."""
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture
def staff_client(client, db):
    """The test client signed in as a superuser (the admin site)."""
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def logged_in_client(client, user):
    client.force_login(user)
    return client
