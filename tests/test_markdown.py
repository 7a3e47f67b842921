"""Markdown rendering: CommonMark on the server, raw HTML off, nh3 allow-list, safe links only."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from markupsafe import Markup

from webapp.markdown import ALLOWED_TAGS, render_markdown


def elements(html: str) -> list[tuple[str, dict]]:
    """Every start tag in ``html`` with its attributes, as a browser would parse them."""
    found: list[tuple[str, dict]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, dict(attrs)))

    Collector().feed(str(html))
    return found


def test_renders_commonmark():
    html = render_markdown("# Title\n\nSome *em* and **strong**, `code`.\n\n- one\n- two\n")
    assert isinstance(html, Markup)
    assert "<h2>Title</h2>" in html  # under the page's own <h1>
    assert "<em>em</em>" in html and "<strong>strong</strong>" in html
    assert "<code>code</code>" in html and "<li>one</li>" in html


def test_headings_sit_under_the_page_title_which_is_not_repeated():
    html = render_markdown("# Welcome\n\nHello.\n\n## Next\n\n###### Six", title=" welcome ")
    assert "Welcome" not in html  # the page's <h1> already says it
    # The title's # was the page's <h1>: what was under it (##) sits right under the page's.
    assert "<h2>Next</h2>" in html and "<h6>Six</h6>" in html and "<h1>" not in html
    other = render_markdown("# Before you start\n\nHello.\n\n## Then", title="Welcome")
    assert "<h2>Before you start</h2>" in other  # a different first heading stays
    assert "<h3>Then</h3>" in other


def test_headings_never_skip_a_level_under_the_page_title():
    html = render_markdown("## What to check\n\nText.\n\n### Detail")
    assert "<h2>What to check</h2>" in html and "<h3>Detail</h3>" in html


def test_empty_is_empty():
    assert render_markdown("") == "" and render_markdown(None) == ""


def test_safe_links_get_rel():
    html = render_markdown("[site](https://example.com) [mail](mailto:a@example.com)")
    assert 'href="https://example.com"' in html
    assert 'href="mailto:a@example.com"' in html
    assert html.count('rel="noopener nofollow"') == 2


@pytest.mark.parametrize(
    "text",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox)",
        "[x](//evil.example/path)",
        "[x](/relative)",
        "<javascript:alert(1)>",
    ],
)
def test_unsafe_links_lose_their_href(text):
    html = render_markdown(text)
    assert "href" not in html
    assert "javascript" not in html.lower() or "href" not in html


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
        '<div hx-get="/teach" hx-trigger="load">x</div>',
        '<a href="https://ok.example" onclick="alert(1)">x</a>',
        "<iframe src='https://evil.example'></iframe>",
        "<style>body{display:none}</style>",
    ],
)
def test_raw_html_is_inert(text):
    for tag, attrs in elements(render_markdown(text)):
        assert tag in ALLOWED_TAGS
        assert not any(a.startswith(("on", "hx-", "data-")) for a in attrs), attrs


def test_attributes_are_stripped_even_after_markdown():
    html = str(render_markdown("| a | b |\n|:--|--:|\n| 1 | 2 |\n"))
    assert "<table>" in html and "style=" not in html  # alignment styles would break the CSP


def test_images_become_links():
    html = str(render_markdown("![a cat](https://example.com/cat.png)"))
    assert "<img" not in html
    assert '<a href="https://example.com/cat.png" rel="noopener nofollow">a cat</a>' in html


def test_image_with_bad_url_is_plain_text():
    html = str(render_markdown("![x](javascript:alert(1))"))
    assert "<img" not in html and "href" not in html
