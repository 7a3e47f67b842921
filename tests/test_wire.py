"""What goes over the wire: compressed responses, fingerprinted static files cached for a year."""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser
from urllib.parse import urljoin

import brotli
import pytest

from .conftest import login_as, make_course, make_user


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img") and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("rel") in ("stylesheet", "icon", "preload", "modulepreload"):
            self.urls.append(a["href"])


def _assets(html: str) -> list[str]:
    """What a browser fetches for the page: scripts, style sheets, icons, preloads, images
    (``data:`` URLs are part of the page)."""
    parser = _Assets()
    parser.feed(html)
    return [u for u in parser.urls if not u.startswith("data:")]


_CSS_URL = re.compile(r"""url\((['"]?)([^)'"]+)\1\)""")


def _fetch(client, url: str):
    return client.get(url, headers={"Accept-Encoding": "br, gzip"})


def _visit(client, path: str, cached: set[str]) -> tuple[int, int, set[str]]:
    """A browser's visit of ``path`` with ``cached`` (immutable files) in its cache: requests
    made, compressed bytes received, what it caches. Style sheets' url()s (fonts) count too."""
    page = _fetch(client, path)
    assert page.status_code == 200, path
    requests, size, todo = 1, len(page.get_data()), _assets(_decoded(page))
    fetched: set[str] = set()
    while todo:
        url = urljoin(path, todo.pop())
        if url in cached or url in fetched:
            continue
        response = _fetch(client, url)
        assert response.status_code == 200, url
        assert response.cache_control.immutable, url  # a later visit asks for it no more
        requests, size = requests + 1, size + len(response.get_data())
        fetched.add(url)
        if url.endswith(".css"):
            todo += _css_urls(_decoded(response), url)
    return requests, size, fetched


def _decoded(response) -> str:
    body = response.get_data()
    encoding = response.headers.get("Content-Encoding")
    if encoding == "br":
        body = brotli.decompress(body)
    elif encoding == "gzip":
        body = gzip.decompress(body)
    return body.decode()


@pytest.mark.parametrize("first", ["/", "/login", "/courses"])
def test_a_first_visit_is_at_most_5_requests_and_60_kb_then_a_page_is_1_request(
    app, client, student, first
):
    teacher = make_user("teacher")
    course = make_course(teacher, title="Wire", sections=2, blocks=3)
    requests, size, cached = _visit(client, first, set())
    assert any(url.endswith(".woff2") for url in cached)  # the font is part of the visit
    assert requests <= 5, (first, requests)
    assert size <= 60_000, (first, size)
    login_as(client, student)
    block = course.sections[0].blocks[0].id
    assert client.post(f"/courses/{course.id}/enrol").status_code == 303
    for path in ("/learn", "/courses", f"/courses/{course.id}",
                 f"/courses/{course.id}/blocks/{block}", "/account"):  # fmt: skip
        requests, _, fetched = _visit(client, path, cached)
        assert (requests, fetched) == (1, set()), path


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


def _css_urls(css: str, base: str) -> list[str]:
    """What a style sheet loads (its url()s), resolved against the sheet's own address."""
    return [urljoin(base, m[2]) for m in _CSS_URL.finditer(css) if not m[2].startswith("data:")]


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
