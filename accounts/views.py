from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .forms import PreferencesForm, ThemeForm
from .selectors import user_model_choices
from .services import user_update_preferences


@login_required
def preferences(request):
    form = PreferencesForm(
        request.POST or None, instance=request.user, models=user_model_choices(request=request)
    )
    if request.method == "POST" and form.is_valid():
        user_update_preferences(
            user=request.user,
            theme=form.cleaned_data["theme"],
            language=form.cleaned_data["language"],
            default_model=form.cleaned_data["default_model"],
        )
        language = form.cleaned_data["language"] or translation.get_language_from_request(request)
        translation.activate(language)
        messages.success(request, _("Preferences saved."))
        response = redirect("preferences")
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax")
        return response
    return render(request, "accounts/preferences.html", {"form": form})


@login_required
@require_POST
def theme_set(request):
    form = ThemeForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(_("Unknown theme."))
    user_update_preferences(user=request.user, theme=form.cleaned_data["theme"])
    if request.htmx:
        return HttpResponse(status=204)
    return redirect(request.POST.get("next") or "home")


@require_POST
def language_set(request):
    """The shell's language picker: remembered on the user when signed in, in a cookie always."""
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        return HttpResponseBadRequest(_("Unknown language."))
    if request.user.is_authenticated:
        user_update_preferences(user=request.user, language=language)
    next_url = request.POST.get("next", "/")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = "/"
    response = redirect(next_url)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax", max_age=365 * 86400
    )
    return response
