import pytest

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
