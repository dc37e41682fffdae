from django import forms

from .models import User


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["theme", "language"]


class ThemeForm(forms.Form):
    theme = forms.ChoiceField(choices=User.Theme.choices)
