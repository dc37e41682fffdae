import re

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from workspaces.models import Workspace

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_ ]{0,40}?)\s*\}\}")


class PromptTemplate(models.Model):
    """A reusable prompt with `{{variables}}`. Shared with a workspace, or personal
    (`owner` set): visible only to its author, inside the workspace it was made in."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="prompt_templates"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="prompt_templates",
        help_text=_("Set for a personal template."),
    )
    title = models.CharField(max_length=120)
    body = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        indexes = [models.Index(fields=["workspace", "owner", "title"])]

    def __str__(self) -> str:
        return self.title

    @property
    def is_personal(self) -> bool:
        return self.owner_id is not None

    @property
    def variables(self) -> list[str]:
        seen: list[str] = []
        for name in VARIABLE.findall(self.body):
            if name.strip() not in seen:
                seen.append(name.strip())
        return seen

    def render(self, values: dict[str, str]) -> str:
        return VARIABLE.sub(lambda m: values.get(m.group(1).strip(), m.group(0)), self.body)
