"""Shared conversations over the socket: teammates watch the live stream, only the author
changes anything, and unsharing or removal cuts watchers off."""

import pytest
from asgiref.sync import sync_to_async

from chat import generation, services
from chat.models import Conversation
from tests.chat.helpers import frames_until, of_type, socket_for
from tests.factories import UserFactory
from tests.gateway.conftest import model_for
from workspaces import services as workspace_services
from workspaces.models import Membership, Role

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_shared_http_client_closed"),
]


@sync_to_async
def _team():
    owner, member, viewer, outsider = (UserFactory() for _ in range(4))
    workspace = workspace_services.workspace_create(owner=owner, name="Owl team")
    Membership.objects.create(workspace=workspace, user=member, role=Role.MEMBER)
    Membership.objects.create(workspace=workspace, user=viewer, role=Role.VIEWER)
    return workspace, owner, member, viewer, outsider


@sync_to_async
def _share(conversation_id, user):
    conversation = Conversation.objects.select_related("workspace").get(pk=conversation_id)
    services.conversation_share(conversation=conversation, actor=user)


@sync_to_async
def _unshare(conversation_id, user):
    conversation = Conversation.objects.select_related("workspace").get(pk=conversation_id)
    services.conversation_unshare(conversation=conversation, actor=user)


async def _start(socket, workspace, credential, content):
    await socket.send_json_to(
        {
            "type": "send",
            "content": content,
            "model": model_for(credential),
            "workspace": workspace.slug,
        }
    )
    return (await frames_until(socket, of_type("generation_started")))[-1]


async def test_a_teammate_watches_a_shared_stream_live_but_cannot_change_it(
    transactional_db, credential, fake_upstream
):
    workspace, owner, member, viewer, _ = await _team()
    author, _, _ = await socket_for(owner)
    started = await _start(author, workspace, credential, "@tokens=150 @delay=0.02 owls")
    conversation_id = started["conversation_id"]
    await _share(conversation_id, owner)

    watchers = []
    for user in (member, viewer):
        socket, _, _ = await socket_for(user)
        await socket.send_json_to({"type": "subscribe", "conversation_id": conversation_id})
        subscribed = (await frames_until(socket, of_type("subscribed")))[-1]
        assert subscribed["streaming_message_id"] == started["message_id"]
        watchers.append(socket)

    member_socket = watchers[0]
    for frame in (
        {"type": "stop", "conversation_id": conversation_id},
        {"type": "send", "conversation_id": conversation_id, "content": "hijack"},
        {"type": "regenerate", "message_id": started["message_id"]},
        {"type": "edit", "message_id": started["parent_id"], "content": "mine now"},
    ):
        await member_socket.send_json_to(frame)
        reply = await frames_until(member_socket, of_type("error"))
        assert reply[-1]["code"] == "forbidden", frame

    for socket in (author, *watchers):
        frames = await frames_until(socket, of_type("generation_finished"))
        assert frames[-1]["status"] == "complete"  # the refused stop did not stop it
        assert any(f["type"] in ("delta", "snapshot") for f in frames)
    for socket in (author, *watchers):
        await socket.disconnect()
    await generation.generations_wait()


async def test_unsharing_cuts_a_watching_teammate_off_the_stream(
    transactional_db, credential, fake_upstream
):
    workspace, owner, member, _, _ = await _team()
    author, _, _ = await socket_for(owner)
    started = await _start(author, workspace, credential, "@tokens=300 @delay=0.02 owls")
    conversation_id = started["conversation_id"]
    await _share(conversation_id, owner)
    watcher, _, _ = await socket_for(member)
    await watcher.send_json_to({"type": "subscribe", "conversation_id": conversation_id})
    await frames_until(watcher, of_type("delta"))

    await _unshare(conversation_id, owner)
    lost = (await frames_until(watcher, of_type("access_lost")))[-1]
    assert lost["conversation_id"] == conversation_id
    assert lost["reason"] == "unshared"
    # The author keeps the stream (and may stop it); the teammate receives nothing more of it.
    await frames_until(author, of_type("delta"))
    await author.send_json_to({"type": "stop", "conversation_id": conversation_id})
    await frames_until(author, of_type("generation_finished"), timeout=20)
    while not await watcher.receive_nothing(timeout=0.1):
        frame = await watcher.receive_json_from()
        assert frame["type"] not in ("delta", "snapshot", "generation_finished"), frame
    await watcher.send_json_to({"type": "subscribe", "conversation_id": conversation_id})
    assert (await watcher.receive_json_from(timeout=3))["code"] == "not_found"
    await author.disconnect()
    await watcher.disconnect()
    await generation.generations_wait()


async def test_another_workspace_s_user_gets_not_found_frames_for_a_shared_conversation(
    transactional_db, credential, fake_upstream
):
    workspace, owner, _, _, outsider = await _team()
    author, _, _ = await socket_for(owner)
    started = await _start(author, workspace, credential, "@tokens=100 @delay=0.01 secret")
    conversation_id = started["conversation_id"]
    await _share(conversation_id, owner)
    intruder, _, _ = await socket_for(outsider)
    for frame in (
        {"type": "subscribe", "conversation_id": conversation_id},
        {"type": "sync", "conversation_id": conversation_id},
        {"type": "stop", "conversation_id": conversation_id},
        {"type": "send", "conversation_id": conversation_id, "content": "hi"},
        {"type": "send", "content": "new in their team", "workspace": workspace.slug},
        {"type": "regenerate", "message_id": started["message_id"]},
        {"type": "edit", "message_id": started["parent_id"], "content": "mine now"},
    ):
        await intruder.send_json_to(frame)
        reply = await intruder.receive_json_from(timeout=3)
        assert reply["type"] == "error" and reply["code"] == "not_found", frame
    finished = (await frames_until(author, of_type("generation_finished")))[-1]
    assert finished["status"] == "complete"
    assert await intruder.receive_nothing(timeout=0.2)
    await author.disconnect()
    await intruder.disconnect()
    await generation.generations_wait()


async def test_a_viewer_cannot_start_a_conversation_in_the_workspace(
    transactional_db, credential, fake_upstream
):
    workspace, _, _, viewer, _ = await _team()
    socket, _, _ = await socket_for(viewer)
    await socket.send_json_to(
        {
            "type": "send",
            "content": "hi",
            "workspace": workspace.slug,
            "model": model_for(credential),
        }
    )
    reply = await socket.receive_json_from(timeout=3)
    assert reply["type"] == "error" and reply["code"] == "forbidden"
    assert reply["message"].startswith("Viewers of a workspace may read")  # not "this conversation"
    assert not await sync_to_async(Conversation.objects.filter(user=viewer).exists)()
    await socket.disconnect()


async def test_a_removed_member_stops_receiving_a_shared_stream(
    transactional_db, credential, fake_upstream
):
    workspace, owner, member, _, _ = await _team()
    author, _, _ = await socket_for(owner)
    started = await _start(author, workspace, credential, "@tokens=300 @delay=0.02 owls")
    conversation_id = started["conversation_id"]
    await _share(conversation_id, owner)
    watcher, _, _ = await socket_for(member)
    await watcher.send_json_to({"type": "subscribe", "conversation_id": conversation_id})
    await frames_until(watcher, of_type("delta"))

    await sync_to_async(workspace_services.member_remove)(
        actor_membership=await Membership.objects.aget(workspace=workspace, user=owner),
        target=await Membership.objects.select_related("workspace", "user").aget(
            workspace=workspace, user=member
        ),
    )
    lost = (await frames_until(watcher, of_type("access_lost")))[-1]
    assert lost["conversation_id"] == conversation_id
    # The page says the workspace is gone, not that the conversation was unshared.
    assert lost["reason"] == "membership_ended"
    await author.send_json_to({"type": "stop", "conversation_id": conversation_id})
    await frames_until(author, of_type("generation_finished"), timeout=20)
    await author.disconnect()
    await watcher.disconnect()
    await generation.generations_wait()
