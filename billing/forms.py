from django import forms
from django.utils.formats import localize
from django.utils.translation import gettext_lazy as _

from .models import Budget


class BudgetForm(forms.ModelForm):
    class Meta:
        model = Budget
        fields = ["cost_limit", "token_limit", "soft_threshold_percent", "hard"]
        widgets = {"soft_threshold_percent": forms.NumberInput(attrs={"min": 1, "max": 100})}

    def __init__(self, *args, plan=None, **kwargs):
        """`plan`: the workspace's plan, whose caps the limits must stay within (the staff
        admin does not pass one, so operators are not limited)."""
        super().__init__(*args, **kwargs)
        self.plan = plan
        if plan is not None:
            if plan.max_budget_cost is not None:
                self.fields["cost_limit"].help_text = _("USD per month, at most %(max)s.") % {
                    "max": localize(plan.max_budget_cost)
                }
            if plan.max_budget_tokens is not None:
                self.fields["token_limit"].help_text = _("Tokens per month, at most %(max)s.") % {
                    "max": localize(plan.max_budget_tokens)
                }

    def clean(self):
        # What every budget must be is checked by Budget.clean(); here only the plan's caps.
        data = super().clean()
        if self.plan is not None:
            from .plans import budget_limit_errors

            errors = budget_limit_errors(
                plan=self.plan,
                cost_limit=data.get("cost_limit"),
                token_limit=data.get("token_limit"),
            )
            if errors:
                raise forms.ValidationError(errors)
        return data
