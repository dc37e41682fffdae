from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import ApiKey, model_names_split


class ModelNamesField(forms.CharField):
    """A list of model ids or aliases, typed separated by commas or one per line."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value):
        return model_names_split(super().to_python(value))


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    owner = forms.ChoiceField(
        label=_("Belongs to"), choices=ApiKey.Owner.choices, initial=ApiKey.Owner.PERSONAL
    )
    expires_at = forms.DateTimeField(
        label=_("Expires"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    allowed_models = ModelNamesField(
        label=_("Allowed models"),
        required=False,
        help_text=_("Comma-separated model ids or aliases; empty allows every model."),
    )
    monthly_budget = forms.DecimalField(
        label=_("Monthly budget (USD)"), required=False, min_value=0, decimal_places=2
    )
    rpm = forms.IntegerField(label=_("Requests per minute"), required=False, min_value=1)
    tpm = forms.IntegerField(label=_("Tokens per minute"), required=False, min_value=1)

    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError(
                _(
                    "This date has passed: the key would never work. Choose a later one, or "
                    "leave it empty for a key that does not expire."
                )
            )
        return expires_at
