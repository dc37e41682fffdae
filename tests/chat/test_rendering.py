import re
from html.parser import HTMLParser

from django.conf import settings

from chat.rendering import markdown_render, pygments_css


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def elements(html):
    parser = _Elements()
    parser.feed(html)
    return parser.elements


HOSTILE = """
<script>alert(1)</script>
<img src=x onerror="alert(2)">
[click](javascript:alert(3))
![pic](javascript:alert(4))
<a href="javascript:alert(5)">raw link</a>
<iframe src="https://evil.example"></iframe>
<div style="position:fixed" onclick="alert(6)">overlay</div>
[data](data:text/html;base64,PHNjcmlwdD5hbGVydCg3KTwvc2NyaXB0Pg==)
"""


def test_hostile_model_output_renders_inert():
    html = markdown_render(HOSTILE)
    found = elements(html)
    assert {tag for tag, _ in found} <= {"p", "br", "a", "img", "code", "pre", "span"}
    for tag, attrs in found:
        assert not any(name.startswith("on") or name == "style" for name in attrs), (tag, attrs)
        for name in ("href", "src"):
            assert not attrs.get(name, "").lower().startswith(("javascript:", "data:")), (
                tag,
                attrs,
            )
    assert "&lt;script&gt;" in html  # shown as text, not dropped silently


def test_code_blocks_are_highlighted_and_escaped():
    html = markdown_render("```python\nprint('<b>hi</b>')\n```")
    assert '<code class="language-python">' in html and 'class="hl-' in html
    assert "<b>" not in html and "&lt;b&gt;" in html


def test_a_giant_code_block_renders_quickly_without_highlighting():
    import time

    code = "x = 1\n" * 40_000
    started = time.monotonic()
    html = markdown_render(f"```python\n{code}```")
    assert time.monotonic() - started < 2
    assert html.count("x = 1") == 40_000


def test_safe_links_keep_working():
    html = markdown_render("[docs](https://example.com/a?b=1)")
    assert (
        'href="https://example.com/a?b=1"' in html and 'rel="noopener noreferrer nofollow"' in html
    )


def css_rules(css: str) -> dict[str, str]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    return {
        selector.strip(): body.strip()
        for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css)
    }


def test_the_highlight_styles_paint_code_blocks_and_not_whole_answers():
    rules = css_rules(pygments_css())
    answer_rules = [s for s in rules if ".md" in s]
    assert answer_rules and all(".md pre" in s for s in answer_rules), [
        s for s in answer_rules if ".md pre" not in s
    ]
    assert rules[".md pre"] == "background: #f8f8f8;"
    assert rules['html[data-theme="dark"] .md pre'] == "background: #272822; color: #F8F8F2"
    assert rules['html[data-theme="system"] .md pre'].startswith("background: #272822")
    # The tokens keep each theme's colours.
    assert rules[".md pre .hl-k"].startswith("color: #008000")
    assert rules['html[data-theme="dark"] .md pre .hl-k'].startswith("color: #66D9EF")
    assert "@media (prefers-color-scheme: dark)" in pygments_css()


def test_the_served_stylesheet_is_the_generated_one():
    served = (settings.BASE_DIR / "static" / "chat" / "pygments.css").read_text()
    assert served == pygments_css(), (
        "regenerate static/chat/pygments.css from chat.rendering.pygments_css()"
    )
