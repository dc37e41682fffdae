import re

import pytest
from django.urls import reverse

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
