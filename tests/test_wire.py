"""What goes over the wire: compressed responses, fingerprinted static files cached for a year."""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser

import brotli

from .conftest import make_course, make_user


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.urls.append(a["src"])
        # An inline icon (a data: URL) costs no request.
        if tag == "link" and a.get("rel") in ("stylesheet", "icon", "preload"):
            self.urls += [] if a["href"].startswith("data:") else [a["href"]]


def _assets(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


def _catalogue(client):
    teacher = make_user("teacher")
    for n in range(8):
        make_course(teacher, title=f"Course number {n}")
    return client.get("/courses", headers={"Accept-Encoding": "br, gzip"})


def _untimed(html: str) -> str:
    """The page without its CSRF tokens, which carry the second they were signed in."""
    return re.sub(r'(X-CSRFToken": "|name="csrf_token" value=")[^"]*', r"\1", html)


def test_pages_are_compressed_with_brotli_or_gzip(app, client):
    response = _catalogue(client)
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "br"
    assert "Accept-Encoding" in response.headers["Vary"]
    html = brotli.decompress(response.get_data()).decode()
    assert "Course number 7" in html
    plain = client.get("/courses", headers={"Accept-Encoding": "gzip"})
    assert plain.headers["Content-Encoding"] == "gzip"
    assert _untimed(gzip.decompress(plain.get_data()).decode()) == _untimed(html)
    identity = client.get("/courses")
    assert "Content-Encoding" not in identity.headers
    assert _untimed(identity.get_data(as_text=True)) == _untimed(html)


def test_static_files_have_fingerprinted_names_and_are_immutable(app, client):
    html = brotli.decompress(_catalogue(client).get_data()).decode()
    urls = _assets(html)
    assert any(u.endswith(".js") for u in urls) and any(u.endswith(".css") for u in urls)
    for url in urls:
        assert re.search(r"\.[0-9a-f]{10}\.(css|js|svg|woff2)$", url), url
        response = client.get(url, headers={"Accept-Encoding": "br"})
        assert response.status_code == 200, url
        cache = response.cache_control
        assert cache.public and cache.immutable and cache.max_age == 31_536_000, url


def test_a_stale_or_plain_static_name_is_served_but_not_cached(app, client):
    for url in ("/static/css/app.0123456789.css", "/static/css/app.css"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.cache_control.no_cache
        assert not response.cache_control.immutable
    assert client.get("/static/css/nothing.0123456789.css").status_code == 404
    assert client.get("/static/../webapp/config.py").status_code == 404


def test_a_changed_file_gets_a_new_name(app, tmp_path, monkeypatch):
    from flask import url_for

    from webapp import assets

    (tmp_path / "x.css").write_text("a{}")
    monkeypatch.setattr(app, "static_folder", str(tmp_path))
    app.extensions["lectern_assets"] = {}
    with app.test_request_context():
        first = url_for("static", filename="x.css")
    (tmp_path / "x.css").write_text("b{}")
    app.extensions["lectern_assets"] = {}  # a new deploy starts a new process
    with app.test_request_context():
        second = url_for("static", filename="x.css")
    assert first != second
    assert assets.fingerprinted(app, "LICENSE") == "LICENSE"


# --- a first visit: at most 60 kB compressed in at most 5 requests (issue 12) -----------------

FIRST_VISIT_BYTES = 60_000
FIRST_VISIT_REQUESTS = 5


def _css_urls(css: str, base: str) -> list[str]:
    """What a stylesheet loads (url(...)), as paths resolved against the stylesheet's own."""
    folder = base.rsplit("/", 1)[0]
    found = []
    for ref in re.findall(r"url\(\s*[\"']?([^\"')]+)", css):
        if ref.startswith("data:"):
            continue
        parts = folder.split("/")
        for piece in ref.split("/"):
            if piece == "..":
                parts.pop()
            elif piece != ".":
                parts.append(piece)
        found.append("/".join(parts))
    return found


def test_a_first_visit_stays_within_sixty_kilobytes_in_five_requests(app, client):
    """The home page as a new visitor's browser loads it: the page, what it links (styles,
    scripts, the preloaded font) and what its stylesheets load, each compressed as served.
    The favicon is inline (a data: URL), so it costs no request."""
    page = client.get("/", headers={"Accept-Encoding": "br, gzip"})
    assert page.status_code == 200 and page.headers["Content-Encoding"] == "br"
    html = brotli.decompress(page.get_data()).decode()
    sizes = {"/": len(page.get_data())}
    queue = _assets(html)
    while queue:
        url = queue.pop(0)
        if url in sizes:
            continue
        response = client.get(url, headers={"Accept-Encoding": "br, gzip"})
        assert response.status_code == 200, url
        sizes[url] = len(response.get_data())
        if url.endswith(".css"):
            body = response.get_data()
            if response.headers.get("Content-Encoding") == "br":
                body = brotli.decompress(body)
            queue += _css_urls(body.decode(), url)
    assert any(u.endswith(".woff2") for u in sizes), sizes  # the font is part of the visit
    assert len(sizes) <= FIRST_VISIT_REQUESTS, sizes
    assert sum(sizes.values()) <= FIRST_VISIT_BYTES, sizes
    print("first visit", sum(sizes.values()), sizes)


def test_the_font_is_self_hosted_once_with_its_licence(app, client):
    """The stylesheet and the preload name the same fingerprinted file, served immutable as a
    font; nothing is loaded from another host."""
    from pathlib import Path

    html = client.get("/").get_data(as_text=True)
    [preload] = [u for u in _assets(html) if u.endswith(".woff2")]
    css_url = next(u for u in _assets(html) if u.endswith(".css"))
    css = client.get(css_url).get_data(as_text=True)
    assert _css_urls(css, css_url) == [preload]
    assert "font-display: swap" in css
    response = client.get(preload)
    assert response.status_code == 200
    assert response.mimetype == "font/woff2"
    assert response.cache_control.immutable and response.cache_control.max_age == 31_536_000
    folder = Path(app.static_folder) / "vendor" / "figtree"
    assert "SIL Open Font License" in (folder / "LICENSE").read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
