from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from .services import ENDPOINTS

ENDPOINT_LABELS = {
    "/v1/chat/completions": _("Chat completions (/v1/chat/completions)"),
    "/v1/embeddings": _("Embeddings (/v1/embeddings)"),
    "/v1/responses": _("Responses (/v1/responses)"),
}


class KeyChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, key):
        return f"{key.name} ({key.prefix}…)"


class BatchStartForm(forms.Form):
    """A batch started from the page: its file of requests as /v1/files takes it, run as one
    of the user's API keys in this workspace (as a batch started through the API is)."""

    file = forms.FileField(
        label=_("Requests"),
        help_text=_("JSON Lines: one request a line, as OpenAI's Batch API takes them."),
        widget=forms.ClearableFileInput(attrs={"accept": ".jsonl,.json,.txt"}),
    )
    endpoint = forms.ChoiceField(
        label=_("Endpoint"), choices=[(e, ENDPOINT_LABELS.get(e, e)) for e in ENDPOINTS]
    )
    key = KeyChoiceField(
        label=_("Run as API key"),
        queryset=None,
        empty_label=None,
        help_text=_(
            "Its allowed models, budget and rate limits apply; revoking it stops the batch."
        ),
    )
    description = forms.CharField(label=_("Description"), required=False, max_length=512)

    def __init__(self, *args, keys, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["key"].queryset = keys

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.BATCH_FILE_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(limit)s.")
                % {"limit": filesizeformat(settings.BATCH_FILE_MAX_BYTES)}
            )
        return upload
