"""The sign-in and sign-up cards on a short window: all of the card can be reached."""

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/"])
@pytest.mark.parametrize("height", [600, 720])
def test_the_whole_card_is_reachable_on_a_short_window(aurax_server, page, path, height):
    page.set_viewport_size({"width": 1280, "height": height})
    page.goto(f"{aurax_server.url}{path}")

    card = page.locator(".entrance-card").bounding_box()
    assert card["y"] >= 0
    submit = page.locator("form button[type=submit]").first
    submit.scroll_into_view_if_needed()
    box = submit.bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] <= height
    # Nothing of the card lies above the page's top, where no scrolling reaches.
    page.evaluate("window.scrollTo(0, 0)")
    assert page.locator(".entrance-card").bounding_box()["y"] >= 0


def test_the_card_stays_centred_on_a_tall_window(aurax_server, page):
    page.set_viewport_size({"width": 1280, "height": 1200})
    page.goto(f"{aurax_server.url}/accounts/login/")

    card = page.locator(".entrance-card").bounding_box()
    assert abs(card["y"] - (1200 - card["y"] - card["height"])) <= 2
    assert abs(card["x"] - (1280 - card["x"] - card["width"])) <= 2
    assert page.evaluate("document.documentElement.scrollHeight") == 1200
