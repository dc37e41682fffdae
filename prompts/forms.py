from django import forms
from django.utils.translation import gettext_lazy as _

from .models import PromptTemplate


class PromptTemplateForm(forms.ModelForm):
    personal = forms.BooleanField(label=_("Only for me"), required=False)

    class Meta:
        model = PromptTemplate
        fields = ["title", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 8})}
        help_texts = {"body": _("Use {{name}} for a value filled in before sending.")}
