from django import forms
from django.utils.translation import gettext_lazy as _


class ConversationSettingsForm(forms.Form):
    model = forms.CharField(max_length=200, required=False)
    system_prompt = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=50_000
    )
    # As typed: chat.services judges them (a socket's send brings them too), and says why
    # it refuses one.
    temperature = forms.CharField(required=False, max_length=100)
    max_tokens = forms.CharField(required=False, max_length=100)


class ConversationRenameForm(forms.Form):
    title = forms.CharField(max_length=200, label=_("Title"))


class BranchSelectForm(forms.Form):
    message_id = forms.IntegerField()
