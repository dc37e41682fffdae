from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from providers.selectors import model_choices_for
from workspaces.models import Role
from workspaces.selectors import page_membership_get

from .comparisons import MAX_MODELS, MIN_MODELS


def _first_models(choices: list[dict], preferred: str) -> list[str]:
    """The models a comparison starts with: the user's default (when the menu lists it), then
    the next ones the menu offers, MIN_MODELS in all (a menu of one model offers it twice:
    two answers of one model compare too)."""
    values = [c["value"] for c in choices]
    if not values:
        return []
    first = [preferred] if preferred in values else []
    ordered = first + [v for v in values if v not in first]
    return (ordered + [ordered[-1]] * MIN_MODELS)[:MIN_MODELS]


@login_required
@require_GET
def compare_page(request):
    membership = page_membership_get(request)
    choices = model_choices_for(user=request.user, workspace=membership.workspace)
    return render(
        request,
        "compare/page.html",
        {
            "workspace": membership.workspace,
            "model_choices": choices,
            "first_models": _first_models(
                choices, request.user.default_model or membership.workspace.default_model
            ),
            "can_compare": membership.has_role(Role.MEMBER),
            "min_models": MIN_MODELS,
            "max_models": MAX_MODELS,
        },
    )
