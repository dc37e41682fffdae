import pytest
from django.urls import reverse

from billing.pricing import cost_compute
from chat.models import Conversation, Message
from providers.models import Scope
from providers.services import catalog_refresh, credential_create
from tests.factories import UserFactory
from workspaces.models import Membership

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def credential(fake_upstream, settings):
    settings.PROVIDER_TRUST_ENV = False
    credential = credential_create(
        actor=None,
        scope=Scope.GLOBAL,
        kind="openai",
        name="Fake",
        api_key="sk-x",
        base_url=fake_upstream.base_url("openai"),
        allow_private_network=True,
    )
    catalog_refresh(credential.id)
    return credential


def test_the_composer_shows_the_input_cost_before_sending(logged_in_client, user, credential):
    url = reverse("chat_input_estimate")
    short = logged_in_client.post(url, {"model": "gpt-4o-mini", "content": "hello"}).json()
    long = logged_in_client.post(url, {"model": "gpt-4o-mini", "content": "hello " * 500}).json()
    assert long["tokens"] > short["tokens"] > 0
    expected = cost_compute(
        provider_kind="openai", model="gpt-4o-mini", input_tokens=long["tokens"], output_tokens=0
    )
    assert long["known"] and long["cost"] == str(expected.amount)


def test_the_estimate_counts_the_conversation_so_far(logged_in_client, user, credential):
    workspace = Membership.objects.get(user=user).workspace
    conversation = Conversation.objects.create(
        workspace=workspace, user=user, system_prompt="Be terse. " * 50
    )
    Message.objects.create(conversation=conversation, role="user", content="earlier words " * 100)
    url = reverse("chat_input_estimate")
    alone = logged_in_client.post(url, {"model": "gpt-4o-mini", "content": "next"}).json()
    within = logged_in_client.post(
        url, {"model": "gpt-4o-mini", "content": "next", "conversation_id": conversation.pk}
    ).json()
    assert within["tokens"] > alone["tokens"] + 100


def test_an_unknown_price_is_said_and_a_foreign_conversation_is_not_found(
    logged_in_client, credential
):
    url = reverse("chat_input_estimate")
    data = logged_in_client.post(url, {"model": "fake-small", "content": "hi"}).json()
    assert data["cost"] is None and data["known"] is False
    stranger = UserFactory()
    theirs = Conversation.objects.create(
        workspace=Membership.objects.get(user=stranger).workspace, user=stranger
    )
    assert (
        logged_in_client.post(
            url, {"model": "fake-small", "content": "hi", "conversation_id": theirs.pk}
        ).status_code
        == 404
    )


def test_the_files_attached_count_as_the_model_is_given_them(logged_in_client, user, credential):
    from billing.tokens import TOKENS_PER_IMAGE, tokens_estimate
    from chat import services
    from tests.chat.files import png

    workspace = Membership.objects.get(user=user).workspace
    report = "Revenue rose twelve percent in the third quarter. " * 40
    document = services.attachment_create(
        workspace=workspace, user=user, name="report.txt", data=report.encode()
    )
    image = services.attachment_create(workspace=workspace, user=user, name="owl.png", data=png())
    stranger = UserFactory()
    theirs = services.attachment_create(
        workspace=Membership.objects.get(user=stranger).workspace,
        user=stranger,
        name="secret.txt",
        data=b"word " * 500,
    )
    url = reverse("chat_input_estimate")

    def tokens(*files, **extra):
        body = {"model": "gpt-4o-mini", "content": "Sum it up", "attachments": files, **extra}
        return logged_in_client.post(url, body).json()["tokens"]

    alone = tokens()
    assert tokens(document.pk) >= alone + tokens_estimate(text=report)
    assert tokens(image.pk) == alone + TOKENS_PER_IMAGE
    assert tokens(theirs.pk) == alone  # another's file is not read, nor counted
    # Once sent, the files count with the conversation they are in.
    conversation = services.conversation_create(user=user, workspace=workspace)
    _question, answer = services.message_send(
        conversation=conversation, content="Sum it up", attachments=[document, image]
    )
    services.message_finish(message_id=answer.pk, content="Up.", status="complete")
    within = tokens(conversation_id=conversation.pk)
    assert within >= alone + tokens_estimate(text=report) + TOKENS_PER_IMAGE
