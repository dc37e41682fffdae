from django import forms
from django.utils.translation import gettext_lazy as _

from .models import User


class PreferencesForm(forms.ModelForm):
    """`models`: the (value, label) the user may pick as their default model. A saved default
    no longer among them stays listed, marked, until they pick another (a new chat then
    starts on the workspace's default)."""

    default_model = forms.ChoiceField(label=_("Default model"), required=False)

    class Meta:
        model = User
        fields = ["theme", "language", "default_model"]

    def __init__(self, *args, models: list[tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", _("No default")), *models]
        saved = self.instance.default_model
        if saved and all(value != saved for value, _label in choices):
            choices.append((saved, _("%(model)s (no longer available)") % {"model": saved}))
        self.fields["default_model"].choices = choices


class ThemeForm(forms.Form):
    theme = forms.ChoiceField(choices=User.Theme.choices)
