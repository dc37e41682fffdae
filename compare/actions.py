"""What a comparison socket's frames may ask for, as plain sync functions run on
aurax.db_threads: check the frame and the user's access, call one service."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from aurax.phrases import number, phrase
from chat.actions import MAX_CONTENT, ActionRefused
from chat.services import (
    SettingsRefused,
    conversation_create_with_answers,
    conversation_settings_clean,
)
from workspaces.models import Role
from workspaces.selectors import membership_get, membership_get_by_workspace_id

from .comparisons import MAX_MODELS, MIN_MODELS, Comparison


def comparison_request(*, user, frame: dict) -> dict:
    """The keywords of a Comparison from a `compare` frame: the workspace it names (404 if
    the user is not a member, 403 for a viewer) and the checked question, models and
    settings. ActionRefused names what is wrong."""
    membership = membership_get(
        user=user, workspace_slug=str(frame.get("workspace") or ""), minimum_role=Role.MEMBER
    )
    question = frame.get("content")
    if not isinstance(question, str) or not question.strip():
        raise ActionRefused("invalid", gettext_noop("The message is empty."))
    if len(question) > MAX_CONTENT:
        raise ActionRefused("invalid", gettext_noop("The message is too long."))
    models = frame.get("models")
    if (
        not isinstance(models, list)
        or not MIN_MODELS <= len(models) <= MAX_MODELS
        or not all(isinstance(m, str) and m.strip() for m in models)
    ):
        raise ActionRefused(
            "invalid",
            phrase(
                gettext_noop("Choose from %(low)s to %(high)s models to compare."),
                low=number(MIN_MODELS),
                high=number(MAX_MODELS),
            ),
            param="models",
        )
    system_prompt = frame.get("system_prompt") or ""
    if not isinstance(system_prompt, str):
        raise ActionRefused("invalid", gettext_noop("The system prompt must be text."))
    try:
        temperature, max_tokens = conversation_settings_clean(
            temperature=frame.get("temperature"), max_tokens=frame.get("max_tokens")
        )
    except SettingsRefused as refused:
        raise ActionRefused(refused.code, refused.said, param=refused.param) from None
    return {
        "user": user,
        "workspace": membership.workspace,
        "question": question,
        "models": [m.strip()[:200] for m in models],
        "system_prompt": system_prompt[:50_000],
        "temperature": temperature,
        "max_tokens": max_tokens,
    }


def comparison_keep(*, user, comparison: Comparison, slot) -> int:
    """Keep the comparison as a chat conversation, answer `slot` on screen: its id. The user
    must still be a member (not a viewer) of the workspace it was made in."""
    membership_get_by_workspace_id(
        user=user, workspace_id=comparison.workspace.pk, minimum_role=Role.MEMBER
    )
    answers = comparison.kept_answers()
    kept = None
    if isinstance(slot, int) and not isinstance(slot, bool):
        kept = next((i for i, a in enumerate(answers) if a["slot"] == slot), None)
    if kept is None:
        raise ActionRefused(
            "invalid",
            gettext_noop("This answer cannot be kept: it failed or has no text."),
            param="slot",
        )
    conversation = conversation_create_with_answers(
        user=user,
        workspace=comparison.workspace,
        question=comparison.question,
        answers=answers,
        kept=kept,
        system_prompt=comparison.system_prompt,
        temperature=comparison.temperature,
        max_tokens=comparison.max_tokens,
    )
    return conversation.pk
