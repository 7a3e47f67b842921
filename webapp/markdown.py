"""Markdown to safe HTML: markdown-it-py with raw HTML off, then an nh3 allow-list.

Use it for every piece of teacher- or student-written Markdown, and put the result inside an
element with ``hx-disable`` so that even an attribute that slipped through could not drive htmx.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code",
    "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
ALLOWED_SCHEMES = ("http://", "https://", "mailto:")


def _image_as_link(self, tokens, idx, options, env) -> str:
    # Images from anywhere would break the CSP (img-src 'self') and track readers: show a link.
    token = tokens[idx]
    alt = self.renderInline(token.children or [], options, env) or "image"
    src = token.attrGet("src") or ""
    return f'<a href="{escape(src)}">{escape(alt)}</a>'


_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_md.enable(["table", "strikethrough"])
_md.add_render_rule("image", _image_as_link)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href":
        # Absolute http(s) and mailto only: no javascript:, data:, relative or protocol-relative.
        return value if value.strip().lower().startswith(ALLOWED_SCHEMES) else None
    return value


def _clean(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener nofollow",
        attribute_filter=_attribute_filter,
        strip_comments=True,
    )


def _plain(text: str) -> str:
    return " ".join(text.split()).casefold()


def _fit_under_page_title(tokens: list, title: str | None) -> list:
    """Markdown always sits under the page's own <h1> (a course's, a block's): its headings
    move so that the highest of them is an <h2> (# or ## alike: heading levels never skip one
    under the page's title), and a first heading that only repeats ``title`` is dropped, so
    the page shows its title once."""
    if (
        title
        and len(tokens) >= 3
        and tokens[0].type == "heading_open"
        and _plain(tokens[1].content) == _plain(title)
    ):
        tokens = tokens[3:]
    heads = [t for t in tokens if t.type in ("heading_open", "heading_close")]
    if heads:
        shift = 2 - min(int(t.tag[1]) for t in heads)
        for token in heads:
            token.tag = f"h{min(int(token.tag[1]) + shift, 6)}"
    return tokens


def render_markdown(text: str | None, title: str | None = None) -> Markup:
    """Render Markdown to sanitised HTML (safe to output unescaped), its headings under the
    page's title (see ``_fit_under_page_title``)."""
    if not text:
        return Markup("")
    env: dict = {}
    tokens = _fit_under_page_title(_md.parse(text, env), title)
    html = _md.renderer.render(tokens, _md.options, env)
    return Markup(_clean(html))  # noqa: S704 - sanitised by nh3 just above
