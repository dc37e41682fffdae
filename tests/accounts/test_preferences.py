import re

import pytest
from django.urls import reverse

from providers.models import Scope
from tests.factories import UserFactory
from tests.providers.factories import credential
from workspaces.selectors import CURRENT_WORKSPACE_SESSION_KEY
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db


def test_theme_choice_is_saved_and_rendered_on_the_next_page(logged_in_client, user):
    assert 'data-theme="system"' in logged_in_client.get("/").content.decode()
    response = logged_in_client.post(
        reverse("theme_set"), {"theme": "dark"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 204
    user.refresh_from_db()
    assert user.theme == "dark"
    assert 'data-theme="dark"' in logged_in_client.get("/").content.decode()


def test_unknown_theme_is_refused(logged_in_client, user):
    response = logged_in_client.post(reverse("theme_set"), {"theme": "neon"})
    assert response.status_code == 400
    user.refresh_from_db()
    assert user.theme == "system"


def test_language_choice_is_saved_and_translates_the_shell(logged_in_client, user):
    response = logged_in_client.post(reverse("language_set"), {"language": "pt-br", "next": "/"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.language == "pt-br"
    html = logged_in_client.get("/").content.decode()
    assert 'lang="pt-br"' in html
    assert "Preferências" in html
    logged_in_client.post(reverse("language_set"), {"language": "es", "next": "/"})
    assert "Preferencias" in logged_in_client.get("/").content.decode()


def test_the_login_page_is_translated_for_an_anonymous_visitor(client):
    client.post(reverse("language_set"), {"language": "es", "next": "/"})
    html = client.get(reverse("account_login")).content.decode()
    assert "Iniciar sesión" in html


def test_unknown_language_is_refused(logged_in_client):
    assert logged_in_client.post(reverse("language_set"), {"language": "xx"}).status_code == 400


def test_language_redirect_never_leaves_the_site(client):
    response = client.post(
        reverse("language_set"), {"language": "es", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_preferences_page_saves_theme_and_language(logged_in_client, user):
    response = logged_in_client.post(reverse("preferences"), {"theme": "light", "language": "es"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.theme, user.language) == ("light", "es")


def test_the_javascript_catalog_translates_script_strings(logged_in_client):
    logged_in_client.post(reverse("language_set"), {"language": "pt-br", "next": "/"})
    catalog = logged_in_client.get(reverse("javascript-catalog")).content.decode()
    assert '"Copy": "Copiar"' in catalog
    assert reverse("javascript-catalog") in logged_in_client.get("/").content.decode()


@pytest.mark.parametrize("language", ["en", "es", "pt-br"])
def test_the_language_menu_names_each_language_in_its_own_words(client, language):
    client.post(reverse("language_set"), {"language": language, "next": "/"})
    html = client.get(reverse("account_login")).content.decode()
    menu = html[html.index('id="language-select"') : html.index("</select>")]
    options = re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', menu)
    assert options == [("en", "English"), ("pt-br", "Português (Brasil)"), ("es", "Español")]


def _choose_workspace(client, workspace):
    session = client.session
    session[CURRENT_WORKSPACE_SESSION_KEY] = workspace.pk
    session.save()


def _default_model_options(client) -> list[tuple[str, str, bool]]:
    html = client.get(reverse("preferences")).content.decode()
    select = re.search(r'<select name="default_model".*?</select>', html, re.S).group(0)
    return [
        (value, label, bool(selected))
        for value, selected, label in re.findall(
            r'<option value="([^"]*)"( selected)?>([^<]*)</option>', select
        )
    ]


def test_the_default_model_is_picked_among_the_models_of_the_current_workspace(
    logged_in_client, user
):
    shared = credential(name="Acme", models=["fake-small"])
    mine = credential(scope=Scope.USER, user=user, name="My key", models=["mine"])
    team = workspace_create(owner=user, name="Research")
    teams = credential(scope=Scope.WORKSPACE, workspace=team, name="Team key", models=["big"])
    elsewhere = workspace_create(owner=user, name="Elsewhere")
    credential(scope=Scope.WORKSPACE, workspace=elsewhere, name="Their key", models=["theirs"])
    _choose_workspace(logged_in_client, team)

    options = _default_model_options(logged_in_client)

    assert sorted(value for value, _label, _selected in options) == sorted(
        ["", f"{shared.id}:fake-small", f"{teams.id}:big", f"{mine.id}:mine"]
    )
    assert options[0] == ("", "No default", True)


def test_a_saved_default_model_is_where_a_new_chat_starts(logged_in_client, user):
    acme = credential(name="Acme", models=["fake-small", "fake-large"])

    response = logged_in_client.post(
        reverse("preferences"),
        {"theme": "system", "language": "", "default_model": f"{acme.id}:fake-large"},
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.default_model == f"{acme.id}:fake-large"
    assert (f"{acme.id}:fake-large", "fake-large (Acme)", True) in _default_model_options(
        logged_in_client
    )
    html = logged_in_client.get("/").content.decode()
    menu = re.search(r'<select name="model".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="([^"]*)" selected[^>]*>', menu) == [f"{acme.id}:fake-large"]


def test_a_model_the_user_cannot_use_is_refused_as_default(logged_in_client, user):
    credential(name="Acme", models=["fake-small"])
    stranger_workspace = workspace_create(owner=UserFactory(), name="Strangers")
    foreign = credential(scope=Scope.WORKSPACE, workspace=stranger_workspace, models=["theirs"])

    for model in ("gpt-4o-typo", f"{foreign.id}:theirs"):
        response = logged_in_client.post(
            reverse("preferences"), {"theme": "system", "language": "", "default_model": model}
        )
        assert response.status_code == 200
        user.refresh_from_db()
        assert user.default_model == ""


def test_a_default_model_no_longer_available_keeps_the_page_working(logged_in_client, user):
    acme = credential(name="Acme", models=["fake-small"])
    user.default_model = "retired-model"
    user.save()

    options = _default_model_options(logged_in_client)

    assert ("retired-model", "retired-model (no longer available)", True) in options
    assert (f"{acme.id}:fake-small", "fake-small (Acme)", False) in options
    response = logged_in_client.post(
        reverse("preferences"),
        {"theme": "dark", "language": "", "default_model": "retired-model"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.theme, user.default_model) == ("dark", "retired-model")


def test_the_preferences_form_is_translated(logged_in_client):
    logged_in_client.post(reverse("language_set"), {"language": "es", "next": "/"})

    html = logged_in_client.get(reverse("preferences")).content.decode()

    form = re.search(r'<form method="post" class="form">.*?</form>', html, re.S).group(0)
    labels = re.findall(r"<label[^>]*>([^<]*)</label>", form)
    assert labels == ["Tema:", "Idioma:", "Modelo predeterminado:"]
