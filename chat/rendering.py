"""Model output → safe HTML. Raw HTML in the markdown is shown as text (markdown-it with
html=False), code is highlighted by Pygments, and nh3 drops anything that could still run:
event handler attributes, script/style, javascript:/data: URLs."""

from __future__ import annotations

import html

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

# Highlighting a huge block is slow and unreadable anyway: above this it stays plain.
HIGHLIGHT_MAX_CHARS = 100_000

_formatter = HtmlFormatter(nowrap=True, classprefix="hl-")


def _highlight(code: str, lang: str, attrs) -> str:
    if not lang or len(code) > HIGHLIGHT_MAX_CHARS:
        return ""  # markdown-it escapes it itself
    try:
        lexer = get_lexer_by_name(lang.split()[0].lower())
    except ClassNotFound:
        return ""
    return highlight(code, lexer, _formatter)


_md = (
    MarkdownIt(
        "commonmark", {"html": False, "linkify": False, "highlight": _highlight, "breaks": True}
    )
    .enable("table")
    .enable("strikethrough")
)

_ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "em",
    "del",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "span",
    "img",
}
_ALLOWED_ATTRS = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "span": {"class"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if attr == "class" and not all(c.startswith(("hl-", "language-")) for c in value.split()):
        return None
    return value


def markdown_render(text: str) -> str:
    rendered = _md.render(text)
    return nh3.clean(
        rendered,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRS,
        attribute_filter=_attribute_filter,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


# Where the highlight styles apply: an answer's code blocks. Not the whole answer (`.md` is
# the message body): each style's background would then paint every answer as a code box.
CODE_BLOCK = ".md pre"


def pygments_css() -> str:
    """static/chat/pygments.css: the light style, the dark one for the dark theme, and the dark
    one for the system theme when the system is dark."""

    def defs(style: str, scope: str) -> str:
        return HtmlFormatter(style=style, classprefix="hl-").get_style_defs(scope)

    return (
        "/* Generated from Pygments (chat/rendering.py classprefix hl-). */\n"
        + defs("default", CODE_BLOCK)
        + "\n"
        + defs("monokai", f'html[data-theme="dark"] {CODE_BLOCK}')
        + "\n@media (prefers-color-scheme: dark) {\n"
        + defs("monokai", f'html[data-theme="system"] {CODE_BLOCK}')
        + "\n}\n"
    )


def plain_escape(text: str) -> str:
    return html.escape(text)
