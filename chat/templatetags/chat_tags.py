from decimal import Decimal

from django import template
from django.conf import settings
from django.utils.safestring import mark_safe

from chat.rendering import markdown_render
from chat.selectors import attachments_size_in, message_error_text

register = template.Library()


@register.filter
def markdown(text: str):
    # markdown_render's output went through nh3: it is safe by construction.
    return mark_safe(markdown_render(text or ""))  # noqa: S308


@register.filter
def usd(value) -> str:
    if value is None:
        return "—"
    value = Decimal(value)
    if value == 0:
        return "$0"
    if value < Decimal("0.01"):
        return f"${value:.5f}".rstrip("0")
    return f"${value:.4f}".rstrip("0").rstrip(".")


@register.filter
def ms(value) -> str:
    if value is None:
        return "—"
    return f"{value} ms" if value < 1000 else f"{value / 1000:.1f} s"


@register.filter
def error_text(message) -> str:
    return message_error_text(message=message)


@register.inclusion_tag("chat/_workspace_files.html")
def workspace_files(workspace) -> dict:
    """The room the files of a workspace's chats take, against WORKSPACE_FILES_MAX_BYTES
    (0: no limit), for its settings page."""
    used = attachments_size_in(workspace_id=workspace.pk)
    limit = settings.WORKSPACE_FILES_MAX_BYTES
    percent = min(100, round(used * 100 / limit)) if limit else None
    return {"used": used, "limit": limit, "percent": percent, "full": bool(limit) and used >= limit}
