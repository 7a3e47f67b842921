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
        if tag == "link" and a.get("rel") in ("stylesheet", "icon"):
            self.urls.append(a["href"])


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
        assert re.search(r"\.[0-9a-f]{10}\.(css|js|svg)$", url), url
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
