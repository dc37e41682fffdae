"""Every model in the admin site opens, searches and filters for an operator."""

import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model", sorted(admin.site._registry, key=lambda m: m._meta.label), ids=lambda m: m._meta.label
)
def test_every_admin_list_opens_and_searches(staff_client, model):
    model_admin = admin.site._registry[model]
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert staff_client.get(url).status_code == 200
    if model_admin.search_fields:
        assert staff_client.get(url, {"q": "x"}).status_code == 200


def test_conversation_admin_shows_no_message_text(staff_client, user):
    from chat.models import Conversation, Message
    from workspaces.models import Membership

    conversation = Conversation.objects.create(
        workspace=Membership.objects.get(user=user).workspace, user=user, title="Visible title"
    )
    Message.objects.create(conversation=conversation, role="user", content="private words")
    url = reverse("admin:chat_conversation_change", args=[conversation.pk])
    html = staff_client.get(url).content.decode()
    assert "Visible title" in html and "private words" not in html


def test_every_app_has_its_own_section_name_in_the_admin(staff_client):
    apps = staff_client.get(reverse("admin:index")).context["app_list"]

    names = [str(app["name"]) for app in apps]
    assert len(names) == len(set(names)), names
    assert "Users" in names


def test_attachment_admin_lists_files_by_size_without_their_content(staff_client, user):
    from chat import services
    from workspaces.models import Membership

    services.attachment_create(
        workspace=Membership.objects.get(user=user).workspace,
        user=user,
        name="minutes.txt",
        data=b"the private minutes " * 100,
    )
    listing = staff_client.get(reverse("admin:chat_attachment_changelist")).content.decode()
    assert "minutes.txt" in listing and "2.0\xa0KB" in listing
    assert "the private minutes" not in listing
    attachment_id = services.Attachment.objects.get().pk
    page = staff_client.get(reverse("admin:chat_attachment_change", args=[attachment_id]))
    html = page.content.decode()
    assert "minutes.txt" in html and "the private minutes" not in html


def test_admin_pages_name_the_sites_icon(staff_client):
    """Without it the browser asks for /favicon.ico, which does not exist."""
    html = staff_client.get(reverse("admin:index")).content.decode()
    assert '<link rel="icon" href="/static/img/favicon.svg"' in html
    assert 'id="site-name"' in html  # the admin's own header is still there
