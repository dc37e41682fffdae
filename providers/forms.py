from django import forms
from django.utils.translation import gettext_lazy as _

from .adapters import REGISTRY, adapter_for


def _user_kinds():
    return [(kind, a.label) for kind, a in REGISTRY.items() if kind != "demo"]


class CredentialForm(forms.Form):
    """Add a key. The key field never renders a value back: keys are write-only."""

    kind = forms.ChoiceField(label=_("Provider"), choices=_user_kinds)
    name = forms.CharField(label=_("Name"), max_length=100)
    base_url = forms.URLField(
        label=_("Base URL"),
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=_("Leave empty for the provider's default."),
    )
    api_key = forms.CharField(
        label=_("API key"),
        required=False,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    allow_private_network = forms.BooleanField(
        label=_("Allow private network addresses"), required=False
    )

    def __init__(self, *args, is_admin: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not is_admin:
            del self.fields["allow_private_network"]

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind and adapter_for(kind).needs_api_key and not data.get("api_key"):
            self.add_error("api_key", _("This provider needs an API key."))
        # A base URL refused as invalid is not a missing one: its own error says enough.
        if (
            kind
            and not data.get("base_url")
            and "base_url" not in self.errors
            and not adapter_for(kind).default_base_url
        ):
            self.add_error("base_url", _("This provider needs a base URL."))
        return data
