from decimal import Decimal

import pytest
from celery.contrib.testing.worker import start_worker

from aurax.celery import app as celery_app
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Role


@pytest.fixture
def workspace(db):
    return WorkspaceFactory()


@pytest.fixture
def owner(workspace):
    return MembershipFactory(workspace=workspace, role=Role.OWNER).user


@pytest.fixture
def member(workspace):
    return MembershipFactory(workspace=workspace, role=Role.MEMBER, user=UserFactory()).user


@pytest.fixture
def celery_worker(tmp_path, settings):
    """A real Celery worker (solo pool, in this process) on a private queue."""
    if not settings.REDIS_URL:
        # A private filesystem queue, so no other worker on this machine takes our tasks.
        folder = tmp_path / "queue"
        folder.mkdir()
        previous = celery_app.conf.broker_transport_options
        celery_app.conf.broker_transport_options = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(tmp_path),
            "control_folder": str(tmp_path / "control"),
            "store_processed": False,
        }
        _reset_connection_pool()
    from billing import tasks

    assert tasks.usage_rollup.name in celery_app.tasks
    with start_worker(celery_app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        yield celery_app
    if not settings.REDIS_URL:
        celery_app.conf.broker_transport_options = previous
        _reset_connection_pool()


def _reset_connection_pool():
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield celery_app
    celery_app.conf.task_always_eager = False


@pytest.fixture
def plans(db):
    """The default plans by slug. Seeded by a migration, but a transactional test elsewhere
    may have flushed them, so they are ensured here."""
    from billing.models import Plan
    from billing.plans import plans_seed

    plans_seed()
    return {p.slug: p for p in Plan.objects.all()}


@pytest.fixture
def dollar_per_mtok(db):
    # $1,000 per million tokens in and out: 1,000 tokens cost $1.
    from billing.models import ModelPriceOverride

    return ModelPriceOverride.objects.create(
        provider_kind="openai",
        model="m",
        input_per_mtok=Decimal(1000),
        output_per_mtok=Decimal(1000),
    )


def record_call(workspace, user, **overrides):
    """Record a finished chat call (`usage_record`) of `user` in `workspace`: by default a
    successful one to openai's gpt-4o-mini with no tokens; `overrides` says what differs."""
    from billing.services import usage_record

    values = dict(
        workspace_id=workspace.id,
        user_id=user.id,
        credential_id=None,
        provider_kind="openai",
        model="gpt-4o-mini",
        input_tokens=0,
        output_tokens=0,
        estimated=False,
        status="ok",
        ttft_ms=10,
        duration_ms=100,
        source="chat",
    )
    values.update(overrides)
    return usage_record(**values)


def settle(workspace, user, reservation, input_tokens, output_tokens):
    """Record a finished call to model "m" of openai, settling `reservation`."""
    return record_call(
        workspace,
        user,
        model="m",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        reservation=reservation,
    )
