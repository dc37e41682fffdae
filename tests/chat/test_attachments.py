"""Files attached to chat messages: what is accepted and refused, who may read them, and what
happens to them with their conversation (chat.attachments)."""

import datetime as dt
import io
import json
import struct
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from chat import actions, services, tasks
from chat.attachments import AttachmentRefused, upload_read
from chat.models import Attachment, Conversation, Message
from tests.chat.files import docx, jpeg, noise_png, pdf, png, pptx, xlsx
from tests.factories import UserFactory
from workspaces import services as workspace_services
from workspaces.models import Membership, Role
from workspaces.selectors import personal_workspace_get

pytestmark = pytest.mark.django_db


def _refusal(name: str, data: bytes) -> str:
    with pytest.raises(AttachmentRefused) as refused:
        upload_read(name=name, data=data)
    return refused.value.message["text"] % refused.value.message.get("values", {})


# --- What a file is -----------------------------------------------------------------------


def test_an_image_is_known_by_its_bytes_not_its_name():
    read = upload_read(name="notes.txt", data=png())
    assert (read.kind, read.media_type, read.text) == ("image", "image/png", "")


def _size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_an_image_that_fits_goes_to_the_model_as_it_is():
    assert upload_read(name="owl.png", data=png(300, 200)).model_data is None


def test_a_photo_turned_by_its_exif_orientation_goes_to_the_model_upright():
    read = upload_read(name="photo.jpg", data=jpeg(40, 30, orientation=6))
    assert read.media_type == "image/jpeg" and read.model_media_type == "image/jpeg"
    assert _size(read.model_data) == (30, 40)


def test_a_large_image_goes_to_the_model_scaled_down_and_is_kept_whole():
    data = png(3000, 1000)
    read = upload_read(name="panorama.png", data=data)
    assert _size(read.model_data) == (2048, 683) and read.model_media_type == "image/png"
    client = _client(UserFactory())
    body = _upload(client, "panorama.png", data).json()
    assert client.get(body["url"]).content == data  # the file itself, as uploaded


def test_an_image_too_heavy_for_the_providers_goes_to_the_model_as_a_jpeg(monkeypatch):
    from chat import attachments

    monkeypatch.setattr(attachments, "MODEL_IMAGE_BYTES", 30_000)
    data = noise_png(120, 120)
    assert len(data) > 30_000
    read = upload_read(name="screenshot.png", data=data)
    assert read.model_media_type == "image/jpeg" and _size(read.model_data) == (120, 120)


def test_a_cut_off_image_is_refused_as_damaged():
    data = png(64, 64)
    assert "damaged" in _refusal("photo.png", data[: len(data) // 2])


def test_a_text_file_is_a_document_whose_text_the_model_reads():
    read = upload_read(name="notes.md", data="\ufeff# Owls\r\nThey eat mice.\r\n".encode())
    assert (read.kind, read.media_type) == ("document", "text/plain")
    assert read.text == "# Owls\nThey eat mice.\n"


def test_a_pdf_s_text_is_read_from_every_page():
    read = upload_read(name="report.pdf", data=pdf("Revenue rose 12 percent", "Costs fell"))
    assert (read.kind, read.media_type) == ("document", "application/pdf")
    assert read.text == "Revenue rose 12 percent\n\nCosts fell"


def test_a_damaged_pdf_is_refused():
    assert "damaged" in _refusal("report.pdf", b"%PDF-1.4\nthis is not a PDF at all")


def test_a_pdf_without_text_is_refused_with_what_to_do_instead():
    assert "attach its pages as images" in _refusal("scan.pdf", pdf())


def test_a_word_document_s_paragraphs_and_tables_are_read_in_order():
    data = docx("Minutes", "Owls were discussed.", table=[["Owl", "Prey"], ["Barn", "Mice"]])
    read = upload_read(name="minutes.docx", data=data)
    assert read.kind == "document" and read.media_type.endswith("wordprocessingml.document")
    assert read.text == "Minutes\nOwls were discussed.\nOwl | Prey\nBarn | Mice"


def test_a_damaged_word_document_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<not-closed")
    assert "damaged" in _refusal("minutes.docx", out.getvalue())


def test_an_excel_workbook_s_sheets_are_read_row_by_row():
    data = xlsx(
        {
            "Owls": [["Owl", "Prey", "Weight (g)", None], ["Barn", "Mice", 500.0], [None], []],
            "Empty": [],
            "Dates": [
                ["Seen", dt.date(2026, 3, 1)],
                ["At", dt.datetime(2026, 3, 1, 21, 30)],
                ["Ratio", 0.25],
            ],
        }
    )
    read = upload_read(name="owls.xlsx", data=data)
    assert read.kind == "document" and read.media_type.endswith("spreadsheetml.sheet")
    assert read.text == (
        "## Sheet: Owls\nOwl | Prey | Weight (g)\nBarn | Mice | 500\n\n"
        "## Sheet: Dates\nSeen | 2026-03-01\nAt | 2026-03-01 21:30:00\nRatio | 0.25"
    )


def test_a_powerpoint_presentation_s_slides_are_read_with_their_notes():
    data = pptx(
        {"title": "Owls", "bullets": ["Nocturnal", "Silent flight"], "notes": "Ask questions"},
        {"bullets": []},  # a slide with nothing to read
        {"title": "Diet", "table": [["Owl", "Prey"], ["Barn", "Mice"]]},
    )
    read = upload_read(name="owls.pptx", data=data)
    assert read.kind == "document" and read.media_type.endswith("presentationml.presentation")
    assert read.text == (
        "## Slide 1\nOwls\nNocturnal\nSilent flight\nNotes: Ask questions\n\n"
        "## Slide 3\nDiet\nOwl | Prey\nBarn | Mice"
    )


@pytest.mark.parametrize(
    "part, name, said",
    [
        ("xl/workbook.xml", "sheet.xlsx", "The Excel workbook is damaged and cannot be read."),
        (
            "ppt/presentation.xml",
            "slides.pptx",
            "The PowerPoint presentation is damaged and cannot be read.",
        ),
    ],
)
def test_a_damaged_workbook_or_presentation_is_refused(part, name, said):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(part, "<not-closed")
    assert _refusal(name, out.getvalue()) == said


def test_a_workbook_or_presentation_without_text_is_refused():
    assert _refusal("empty.xlsx", xlsx({"One": [], "Two": [[None, ""]]})) == (
        "The Excel workbook has no values to read."
    )
    assert _refusal("empty.pptx", pptx({"bullets": []})) == (
        "The PowerPoint presentation has no text to read."
    )


def test_a_long_workbook_is_read_only_as_far_as_the_model_is_given(monkeypatch):
    monkeypatch.setattr("chat.attachments.MAX_TEXT_CHARS", 100)
    rows = [[f"row {n}", n] for n in range(1000)]
    read = upload_read(name="long.xlsx", data=xlsx({"One": rows, "Two": [["never read"]]}))
    assert read.text.startswith("## Sheet: One\nrow 0 | 0\nrow 1 | 1")
    assert 100 < len(read.text) < 200 and "Two" not in read.text


def test_an_office_document_that_unpacks_too_large_is_refused(monkeypatch):
    monkeypatch.setattr("chat.attachments.MAX_UNPACKED_BYTES", 1000)
    assert "damaged" in _refusal("big.xlsx", xlsx({"S": [["x" * 2000]]}))


def test_an_office_file_of_another_kind_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("visio/document.xml", "<VisioDocument/>")
    assert "cannot be attached" in _refusal("drawing.vsdx", out.getvalue())


def test_a_binary_file_is_refused_naming_what_may_be_attached():
    archive = b"PK\x03\x04" + struct.pack("<10I", *range(10)) + b"\x00" * 20
    said = _refusal("backup.zip", archive)
    assert said.startswith("“backup.zip” cannot be attached") and "PDFs" in said


def test_an_empty_file_is_refused():
    assert _refusal("empty.txt", b"") == "The file is empty."


def test_a_file_over_the_limit_is_refused(settings):
    settings.CHAT_ATTACHMENT_MAX_BYTES = 1000
    assert _refusal("big.txt", b"a" * 1001) == "The file is larger than 1000\xa0bytes."
    assert upload_read(name="fits.txt", data=b"a" * 1000).kind == "document"


# --- Uploading, reading, taking back --------------------------------------------------------


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _upload(client, name: str, data: bytes, **extra):
    return client.post("/chat/attachments/", {"file": SimpleUploadedFile(name, data), **extra})


def test_an_upload_answers_what_was_kept_and_the_file_reads_back_as_uploaded():
    alice = UserFactory()
    client = _client(alice)
    response = _upload(client, "owl.png", png())
    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "image" and body["media_type"] == "image/png"
    assert body["name"] == "owl.png" and body["size"] == len(png())
    attachment = Attachment.objects.get(pk=body["id"])
    assert attachment.workspace == personal_workspace_get(user=alice)
    assert attachment.conversation is None
    got = client.get(body["url"])
    assert got.status_code == 200 and got.content == png()
    assert got["Content-Type"] == "image/png"
    assert got["Content-Disposition"].startswith("inline")
    assert got["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got["Content-Security-Policy"]


def test_a_document_is_downloaded_not_opened_on_the_site():
    client = _client(UserFactory())
    body = _upload(client, "notes.txt", b"hoot").json()
    got = client.get(body["url"])
    assert got["Content-Type"] == "text/plain; charset=utf-8"
    assert got["Content-Disposition"] == 'attachment; filename="notes.txt"'


def test_a_refused_upload_says_why_and_keeps_nothing():
    response = _upload(_client(UserFactory()), "tool.exe", b"MZ\x90\x00\x03\x00\x00\x00")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "attachment_refused"
    assert "cannot be attached" in response.json()["error"]["message"]
    assert not Attachment.objects.exists()


def test_an_upload_without_a_file_is_refused():
    response = _client(UserFactory()).post("/chat/attachments/", {})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "No file was sent."


def test_nobody_else_reads_or_deletes_an_upload_not_sent():
    alice, mallory = UserFactory(), UserFactory()
    body = _upload(_client(alice), "owl.png", png()).json()
    intruder = _client(mallory)
    assert intruder.get(body["url"]).status_code == 404
    assert intruder.post(f"/chat/attachments/{body['id']}/delete/").status_code == 404
    assert Attachment.objects.filter(pk=body["id"]).exists()


def test_an_upload_goes_only_to_a_workspace_of_the_uploader():
    alice, bob = UserFactory(), UserFactory()
    elsewhere = personal_workspace_get(user=bob)
    response = _upload(_client(alice), "owl.png", png(), workspace=elsewhere.slug)
    assert response.status_code == 404
    assert not Attachment.objects.exists()


def test_a_viewer_cannot_attach_files():
    owner, viewer = UserFactory(), UserFactory()
    workspace = workspace_services.workspace_create(owner=owner, name="Owl team")
    Membership.objects.create(workspace=workspace, user=viewer, role=Role.VIEWER)
    response = _upload(_client(viewer), "owl.png", png(), workspace=workspace.slug)
    assert response.status_code == 403
    assert not Attachment.objects.exists()


def test_an_upload_taken_back_is_deleted_but_a_sent_one_stays():
    alice = UserFactory()
    client = _client(alice)
    taken_back = _upload(client, "a.txt", b"first").json()
    assert client.post(f"/chat/attachments/{taken_back['id']}/delete/").status_code == 204
    assert not Attachment.objects.filter(pk=taken_back["id"]).exists()
    sent = _upload(client, "b.txt", b"second").json()
    actions.send(user=alice, frame={"content": "", "attachments": [sent["id"]]})
    response = client.post(f"/chat/attachments/{sent['id']}/delete/")
    assert response.status_code == 409
    assert Attachment.objects.filter(pk=sent["id"]).exists()


# --- Sending ----------------------------------------------------------------------------------


def _uploaded(user, name="owl.png", data=None, workspace=None) -> Attachment:
    return services.attachment_create(
        workspace=workspace or personal_workspace_get(user=user),
        user=user,
        name=name,
        data=png() if data is None else data,
    )


def test_a_message_is_sent_with_its_files_which_then_belong_to_its_conversation():
    alice = UserFactory()
    image, notes = _uploaded(alice), _uploaded(alice, "notes.txt", b"hoot")
    conversation_id, answer, created = actions.send(
        user=alice, frame={"content": "What is this?", "attachments": [image.pk, notes.pk]}
    )
    assert created
    question = answer.parent
    question.refresh_from_db()
    assert [a["name"] for a in question.attachments] == ["owl.png", "notes.txt"]
    assert question.attachments[0] == {
        "id": image.pk,
        "name": "owl.png",
        "kind": "image",
        "media_type": "image/png",
        "size": len(png()),
    }
    assert set(
        Attachment.objects.filter(conversation_id=conversation_id).values_list("pk", flat=True)
    ) == {image.pk, notes.pk}


def test_files_alone_make_a_message_but_nothing_at_all_does_not():
    alice = UserFactory()
    _cid, answer, _ = actions.send(
        user=alice, frame={"content": "", "attachments": [_uploaded(alice).pk]}
    )
    assert answer.parent.content == ""
    conversation = Conversation.objects.get(pk=_cid)
    assert conversation.title == "owl.png"  # until a title is generated: the files' names
    with pytest.raises(actions.ActionRefused) as refused:
        actions.send(user=alice, frame={"content": " ", "attachments": []})
    assert refused.value.message == "The message is empty."


@pytest.mark.parametrize("whose", ["another user's", "already sent"])
def test_a_file_that_is_not_the_sender_s_to_send_is_refused_and_nothing_is_made(whose):
    alice, mallory = UserFactory(), UserFactory()
    if whose == "another user's":
        file = _uploaded(alice)
    else:
        file = _uploaded(mallory)
        actions.send(user=mallory, frame={"content": "first", "attachments": [file.pk]})
    conversations = Conversation.objects.count()
    messages = Message.objects.count()
    with pytest.raises(actions.ActionRefused) as refused:
        actions.send(user=mallory, frame={"content": "mine now", "attachments": [file.pk]})
    assert refused.value.code == "attachment_not_found"
    assert (Conversation.objects.count(), Message.objects.count()) == (conversations, messages)


def test_a_file_sent_meanwhile_from_another_tab_undoes_the_send():
    alice = UserFactory()
    file = _uploaded(alice)
    conversation = services.conversation_create(
        user=alice, workspace=personal_workspace_get(user=alice)
    )
    Attachment.objects.filter(pk=file.pk).update(conversation=conversation)  # the other tab
    with pytest.raises(services.AttachmentsGone):
        services.message_send(conversation=conversation, content="hi", attachments=[file])
    assert not Message.objects.filter(conversation=conversation).exists()


def test_a_message_carries_at_most_ten_files():
    alice = UserFactory()
    with pytest.raises(actions.ActionRefused) as refused:
        actions.send(user=alice, frame={"content": "x", "attachments": list(range(1, 12))})
    assert refused.value.message["text"] == "A message can carry at most %(count)s files."


def test_an_edited_message_keeps_its_files():
    alice = UserFactory()
    file = _uploaded(alice)
    _cid, answer, _ = actions.send(
        user=alice, frame={"content": "What is it?", "attachments": [file.pk]}
    )
    services.message_finish(message_id=answer.pk, content="An owl.", status="complete")
    _question, second = services.message_edit(message=answer.parent, content="Which bird?")
    assert second.parent.attachments == answer.parent.attachments


# --- With their conversation -----------------------------------------------------------------


def test_files_go_with_their_conversation():
    alice = UserFactory()
    conversation_id, _answer, _ = actions.send(
        user=alice, frame={"content": "x", "attachments": [_uploaded(alice).pk]}
    )
    services.conversation_delete(conversation=Conversation.objects.get(pk=conversation_id))
    assert not Attachment.objects.exists()


def test_uploads_never_sent_are_deleted_after_a_day_by_the_beat_task(settings):
    alice = UserFactory()
    old = _uploaded(alice, "old.txt", b"old")
    _uploaded(alice, "new.txt", b"new")
    sent = _uploaded(alice, "sent.txt", b"sent")
    actions.send(user=alice, frame={"content": "x", "attachments": [sent.pk]})
    day_ago = timezone.now() - dt.timedelta(hours=25)
    Attachment.objects.filter(pk__in=[old.pk, sent.pk]).update(created_at=day_ago)
    assert "chat.attachments_unsent_delete" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert tasks.attachments_unsent_delete() == 1
    assert set(Attachment.objects.values_list("name", flat=True)) == {"new.txt", "sent.txt"}


def test_a_copy_of_a_shared_conversation_has_its_own_copies_of_the_files():
    owner, member = UserFactory(), UserFactory()
    workspace = workspace_services.workspace_create(owner=owner, name="Owl team")
    Membership.objects.create(workspace=workspace, user=member, role=Role.MEMBER)
    file = _uploaded(owner, workspace=workspace)
    conversation = services.conversation_create(user=owner, workspace=workspace)
    _q, answer = services.message_send(conversation=conversation, content="x", attachments=[file])
    services.message_finish(message_id=answer.pk, content="An owl.", status="complete")
    services.conversation_share(conversation=conversation, actor=owner)
    copy = services.conversation_copy(conversation=conversation, user=member)
    services.conversation_delete(conversation=conversation)
    question = copy.messages.get(role="user")
    (described,) = question.attachments
    assert described["id"] != file.pk and described["name"] == "owl.png"
    copied = Attachment.objects.get(pk=described["id"])
    assert copied.conversation == copy and bytes(copied.data) == png()
    assert _client(member).get(f"/chat/attachments/{copied.pk}/").content == png()


def test_a_shared_conversation_s_files_are_read_by_members_until_it_is_unshared():
    owner, member, outsider = UserFactory(), UserFactory(), UserFactory()
    workspace = workspace_services.workspace_create(owner=owner, name="Owl team")
    Membership.objects.create(workspace=workspace, user=member, role=Role.MEMBER)
    file = _uploaded(owner, workspace=workspace)
    conversation = services.conversation_create(user=owner, workspace=workspace)
    services.message_send(conversation=conversation, content="x", attachments=[file])
    url = f"/chat/attachments/{file.pk}/"
    assert _client(member).get(url).status_code == 404  # not shared yet
    services.conversation_share(conversation=conversation, actor=owner)
    assert _client(member).get(url).status_code == 200
    assert _client(outsider).get(url).status_code == 404
    services.conversation_unshare(conversation=conversation, actor=owner)
    assert _client(member).get(url).status_code == 404


def test_a_public_link_shows_the_conversation_s_files_and_only_those_while_it_works():
    alice = UserFactory()
    workspace = personal_workspace_get(user=alice)
    workspace.public_links_enabled = True
    workspace.save()
    file, elsewhere = _uploaded(alice), _uploaded(alice, "other.png")
    conversation = services.conversation_create(user=alice, workspace=workspace)
    services.message_send(conversation=conversation, content="x", attachments=[file])
    link = services.public_link_create(conversation=conversation, actor=alice)
    anonymous = Client()
    page = anonymous.get(f"/p/{link.token}/").content.decode()
    assert f'src="/p/{link.token}/files/{file.pk}/"' in page
    got = anonymous.get(f"/p/{link.token}/files/{file.pk}/")
    assert got.status_code == 200 and got.content == png()
    assert anonymous.get(f"/p/{link.token}/files/{elsewhere.pk}/").status_code == 404
    services.public_link_revoke(conversation=conversation, actor=alice)
    assert anonymous.get(f"/p/{link.token}/files/{file.pk}/").status_code == 404


def test_a_member_who_leaves_loses_their_uploads_not_sent():
    owner, member = UserFactory(), UserFactory()
    workspace = workspace_services.workspace_create(owner=owner, name="Owl team")
    Membership.objects.create(workspace=workspace, user=member, role=Role.MEMBER)
    _uploaded(member, workspace=workspace)
    kept = _uploaded(member)  # in their personal workspace
    workspace_services.member_remove(
        actor_membership=Membership.objects.get(workspace=workspace, user=owner),
        target=Membership.objects.get(workspace=workspace, user=member),
    )
    assert list(Attachment.objects.all()) == [kept]


# --- Shown and exported ---------------------------------------------------------------------


def test_the_thread_shows_images_and_links_documents_and_exports_name_them():
    alice = UserFactory()
    image, notes = _uploaded(alice), _uploaded(alice, "notes.txt", b"hoot")
    conversation_id, answer, _ = actions.send(
        user=alice, frame={"content": "Look", "attachments": [image.pk, notes.pk]}
    )
    services.message_finish(message_id=answer.pk, content="Seen.", status="complete")
    client = _client(alice)
    html = client.get(f"/c/{conversation_id}/thread/").content.decode()
    assert f'<img src="/chat/attachments/{image.pk}/" alt="owl.png"' in html
    assert f'<a href="/chat/attachments/{notes.pk}/" download>notes.txt</a>' in html
    markdown = client.get(f"/c/{conversation_id}/export.md").content.decode()
    assert "_Attached: `owl.png`, `notes.txt`_" in markdown
    exported = json.loads(client.get(f"/c/{conversation_id}/export.json").content)
    assert exported["messages"][0]["attachments"] == [
        {"name": "owl.png", "kind": "image", "media_type": "image/png", "size": len(png())},
        {"name": "notes.txt", "kind": "document", "media_type": "text/plain", "size": 4},
    ]


def test_a_shared_conversation_passing_on_keeps_its_files_when_the_uploader_s_account_goes(
    staff_client,
):
    from django.urls import reverse

    leaver, member = UserFactory(), UserFactory()
    workspace = workspace_services.workspace_create(owner=leaver, name="Owl team")
    Membership.objects.create(workspace=workspace, user=member, role=Role.ADMIN)
    file = _uploaded(leaver, workspace=workspace)
    conversation = services.conversation_create(user=leaver, workspace=workspace)
    services.message_send(conversation=conversation, content="x", attachments=[file])
    services.conversation_share(conversation=conversation, actor=leaver)
    staff_client.post(reverse("admin:accounts_user_delete", args=[leaver.pk]), {"post": "yes"})
    conversation.refresh_from_db()
    assert conversation.user == member
    assert _client(member).get(f"/chat/attachments/{file.pk}/").content == png()


def test_a_user_with_many_files_waiting_is_told_to_send_or_remove_some(monkeypatch):
    monkeypatch.setattr(services, "MAX_UNSENT", 2)
    alice = UserFactory()
    client = _client(alice)
    assert _upload(client, "a.txt", b"a").status_code == 201
    assert _upload(client, "b.txt", b"b").status_code == 201
    refused = _upload(client, "c.txt", b"c")
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        "You have 2 files waiting to be sent: send or remove some first."
    )
    actions.send(user=alice, frame={"content": "x", "attachments": [Attachment.objects.first().pk]})
    assert _upload(client, "c.txt", b"c").status_code == 201  # one was sent: room again


def _uploads_held_together(monkeypatch, *uploads) -> list[str]:
    """Run `uploads` (each a (workspace, user, name, data)) on threads at once, each held
    after reading its file until the others have read theirs: "kept" or "refused" each."""
    import threading

    from django.db import connection

    all_read = threading.Barrier(len(uploads), timeout=10)

    def read_together(**kwargs):
        read = upload_read(**kwargs)
        all_read.wait()
        return read

    monkeypatch.setattr(services, "upload_read", read_together)
    outcomes = []

    def upload(workspace, user, name, data) -> None:
        try:
            services.attachment_create(workspace=workspace, user=user, name=name, data=data)
            outcomes.append("kept")
        except AttachmentRefused:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=upload, args=args) for args in uploads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return sorted(outcomes)


@pytest.mark.django_db(transaction=True)
def test_two_uploads_at_once_cannot_both_take_the_last_place(monkeypatch):
    """Both pass the first count while reading their files (held there together); the count
    made again under the user's lock lets one in and refuses the other."""
    monkeypatch.setattr(services, "MAX_UNSENT", 2)
    alice = UserFactory()
    workspace = personal_workspace_get(user=alice)
    _uploaded(alice, "a.txt", b"a")
    outcomes = _uploads_held_together(
        monkeypatch,
        (workspace, alice, "b.txt", b"x"),
        (workspace, alice, "c.txt", b"x"),
    )
    assert outcomes == ["kept", "refused"]
    assert Attachment.objects.filter(uploaded_by=alice).count() == 2


def test_a_workspace_keeps_files_up_to_its_limit_then_says_how_to_make_room(settings):
    settings.WORKSPACE_FILES_MAX_BYTES = 10
    alice, bob = UserFactory(), UserFactory()
    team = workspace_services.workspace_create(owner=alice, name="Files team")
    Membership.objects.create(workspace=team, user=bob, role=Role.MEMBER)
    first = _uploaded(alice, "a.txt", b"123456", workspace=team)
    conversation = services.conversation_create(user=alice, workspace=team)
    services.message_send(conversation=conversation, content="x", attachments=[first])
    _uploaded(bob, "b.txt", b"123", workspace=team)  # 9 of 10: sent and waiting both count

    with pytest.raises(AttachmentRefused) as refused:
        _uploaded(bob, "c.txt", b"12", workspace=team)
    from aurax.phrases import phrase_say

    assert phrase_say(refused.value.message) == (
        "The files of this workspace's chats take 9\xa0bytes of the 10\xa0bytes it may keep: "
        "delete conversations with files you no longer need to make room."
    )
    # The page's upload says it too, and keeps nothing.
    response = _upload(_client(bob), "c.txt", b"12", workspace=team.slug)
    assert response.status_code == 400
    assert "9\xa0bytes of the 10\xa0bytes" in response.json()["error"]["message"]
    assert Attachment.objects.filter(workspace=team).count() == 2
    # Another workspace has its own room; deleting a conversation frees its files' room.
    _uploaded(bob, "d.txt", b"12345")
    services.conversation_delete(conversation=conversation)
    _uploaded(bob, "c.txt", b"1234567", workspace=team)

    settings.WORKSPACE_FILES_MAX_BYTES = 0  # no limit
    _uploaded(bob, "e.txt", b"x" * 100, workspace=team)


@pytest.mark.django_db(transaction=True)
def test_two_members_uploading_at_once_cannot_both_take_a_workspaces_last_room(
    monkeypatch, settings
):
    """Both pass the first check while reading their files (held there together); the check
    made again under the workspace's lock lets one in and refuses the other."""
    settings.WORKSPACE_FILES_MAX_BYTES = 3
    alice, bob = UserFactory(), UserFactory()
    team = workspace_services.workspace_create(owner=alice, name="Race team")
    Membership.objects.create(workspace=team, user=bob, role=Role.MEMBER)
    _uploaded(alice, "a.txt", b"a", workspace=team)
    outcomes = _uploads_held_together(
        monkeypatch, (team, alice, "b.txt", b"bb"), (team, bob, "b.txt", b"bb")
    )
    assert outcomes == ["kept", "refused"]
    assert Attachment.objects.filter(workspace=team).count() == 2
