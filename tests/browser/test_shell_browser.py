"""The foundation as a person uses it, in Chromium against a real server."""

import pytest

pytestmark = pytest.mark.browser

DARK_BG = "rgb(21, 23, 28)"
LIGHT_BG = "rgb(255, 255, 255)"


def background(page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def test_sign_up_log_in_dark_theme_survives_reload_and_language_switches(aurax_server, page):
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    page.goto(f"{aurax_server.url}/accounts/signup/")
    page.fill("input[name=email]", "browser@example.com")
    page.fill("input[name=password1]", "short")
    page.fill("input[name=password2]", "short")
    page.click("form button[type=submit]")
    assert page.locator(".errorlist, .errors, [class*=error]").count() > 0

    page.fill("input[name=password1]", "a long passphrase 42")
    page.fill("input[name=password2]", "a long passphrase 42")
    page.click("form button[type=submit]")
    page.wait_for_url(f"{aurax_server.url}/**")

    # Log out, then in again through the login form.
    page.goto(f"{aurax_server.url}/")
    page.click("text=Sign out")
    page.goto(f"{aurax_server.url}/accounts/login/")
    page.fill("input[name=login]", "browser@example.com")
    page.fill("input[name=password]", "a long passphrase 42")
    page.click("form button[type=submit]")
    page.wait_for_selector(".sidebar .whoami")

    page.emulate_media(color_scheme="light")
    assert background(page) == LIGHT_BG
    page.click("[data-theme-choice=dark]")
    page.wait_for_function("document.documentElement.dataset.theme === 'dark'")
    assert background(page) == DARK_BG
    page.wait_for_timeout(300)  # the choice is saved in the background
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert background(page) == DARK_BG

    # "System" follows the operating system's setting.
    page.click("[data-theme-choice=system]")
    page.emulate_media(color_scheme="dark")
    assert background(page) == DARK_BG
    page.emulate_media(color_scheme="light")
    assert background(page) == LIGHT_BG

    page.select_option("#language-select", "pt-br")
    page.wait_for_selector("text=Preferências")
    assert page.locator("html").get_attribute("lang") == "pt-br"
    page.reload()
    assert page.locator("text=Preferências").count() > 0

    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors


def test_the_shell_is_usable_on_a_phone(aurax_server, browser):
    aurax_server.create_user("phone@example.com", "a long passphrase 42")
    context = browser.new_context(viewport={"width": 390, "height": 800}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{aurax_server.url}/accounts/login/")
    page.fill("input[name=login]", "phone@example.com")
    page.fill("input[name=password]", "a long passphrase 42")
    page.click("form button[type=submit]")
    page.wait_for_selector(".sidebar .whoami")
    assert (
        not page.locator(".sidebar .nav").is_visible()
        or page.locator(".sidebar").bounding_box()["x"] < 0
    )
    page.click(".nav-button")
    page.wait_for_timeout(300)
    assert page.locator(".sidebar").bounding_box()["x"] >= 0
    page.screenshot(path=str(aurax_server.data_dir / "phone.png"))
    context.close()
