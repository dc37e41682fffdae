import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.stored_names import stored_name_display

from .models import Role, Workspace
from .signals import workspace_models_requested

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class WorkspaceForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ["name", "color"]
        widgets = {"color": forms.TextInput(attrs={"type": "color"})}

    def clean_color(self):
        color = self.cleaned_data["color"]
        if not _COLOR.match(color):
            raise ValidationError(_("Pick a colour like #4f46e5."))
        return color.lower()


class WorkspaceSettingsForm(WorkspaceForm):
    """The default model is picked among the models the workspace's members can use (the apps
    that know them answer `workspace_models_requested`); a saved one no longer available stays
    listed, marked, until someone picks another."""

    default_model = forms.ChoiceField(label=_("Default model"), required=False)

    class Meta(WorkspaceForm.Meta):
        fields = [
            "name",
            "color",
            "default_model",
            "public_links_enabled",
            "response_cache_enabled",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["default_model"]
        field.help_text = Workspace._meta.get_field("default_model").help_text
        choices = [("", _("No default"))]
        for _receiver, models in workspace_models_requested.send(
            sender=Workspace, workspace=self.instance
        ):
            choices += [(m["value"], stored_name_display(m["label"])) for m in models or ()]
        saved = self.instance.default_model
        if saved and all(value != saved for value, _label in choices):
            choices.append((saved, _("%(model)s (no longer available)") % {"model": saved}))
        field.choices = choices


class DeleteWorkspaceForm(forms.Form):
    confirm_name = forms.CharField(label=_("Type the workspace's name to confirm"))


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email"))
    role = forms.ChoiceField(
        label=_("Role"),
        choices=[(r, label) for r, label in Role.choices if r != Role.OWNER],
        initial=Role.MEMBER,
    )

    def __init__(self, *args, roles: list[str] | None = None, **kwargs):
        """`roles`: the ones to offer, those the inviter may give. A posted role outside them
        is left to the service, which says why it refuses."""
        super().__init__(*args, **kwargs)
        if roles is not None:
            self.fields["role"].choices = [
                (r, label) for r, label in self.fields["role"].choices if r in roles
            ]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=[(r, label) for r, label in Role.choices if r != Role.OWNER])


class TransferForm(forms.Form):
    membership_id = forms.IntegerField()
