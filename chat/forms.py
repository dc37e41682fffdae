from django import forms
from django.utils.translation import gettext_lazy as _


class ConversationSettingsForm(forms.Form):
    model = forms.CharField(max_length=200, required=False)
    system_prompt = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=50_000
    )
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    max_tokens = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)


class ConversationRenameForm(forms.Form):
    title = forms.CharField(max_length=200, label=_("Title"))


class BranchSelectForm(forms.Form):
    message_id = forms.IntegerField()
