"""Static files under fingerprinted names, cached by browsers for a year.

``url_for('static', filename='css/app.css')`` gives ``/static/css/app.1a2b3c4d5e.css``: the
name carries the first ten hex digits of the file's SHA-256, so a changed file gets a new name
and any name can be cached forever (``Cache-Control: public, max-age=31536000, immutable``). A
request for a name whose fingerprint is not the file's current one (a page from before a
deploy), or for the plain name, is still served, with ``no-cache``. Templates keep using
``url_for('static', ...)``; nothing else changes.

Every page's CSS is one file, ``css/lectern.css``: a *bundle*, the area style sheets (``BUNDLES``)
joined in order when first asked for (each area's rules are scoped by its own classes). A first
visit then costs the page, this sheet, htmx and app.js, and any later page one request: the
page itself (docs/performance.md, "The wire"). ``url(../…)`` references in a bundled sheet are
rewritten to their fingerprinted names, so what they load (fonts) is cached for a year too.

A file stored under a name that already carries its own digest (the web font,
``figtree-latin-wght-normal.4ba7d3d096.woff2``, which a ``<link rel="preload">`` names too) is
served immutable as it is, and ``url_for`` and the bundles keep its name unchanged, so the
style sheet and the preload name the same URL.
"""

from __future__ import annotations

import hashlib
import os
import re

from flask import Flask, Response, current_app, request, send_from_directory

YEAR = 31_536_000
_FINGERPRINTED = re.compile(r"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{10})(?P<ext>\.[A-Za-z0-9]+)$")
_URL = re.compile(r"""url\((['"]?)(\.\./[^)'"]+)\1\)""")

BUNDLES = {
    "css/lectern.css": (
        "css/app.css",
        "css/auth.css",
        "css/learning.css",
        "css/authoring.css",
        "css/teaching.css",
        "css/admin.css",
    ),
}


def _bundle(app: Flask, name: str) -> bytes:
    """The bundle's sheets joined, their ``url(../x)`` pointing at fingerprinted names."""
    cache: dict[str, bytes] = app.extensions.setdefault("lectern_bundles", {})
    if name in cache and not app.debug:
        return cache[name]
    here = os.path.dirname(name)

    def fingerprint(match: re.Match) -> str:
        target = os.path.normpath(os.path.join(here, match[2])).replace(os.sep, "/")
        return f"url({match[1]}../{fingerprinted(app, target)}{match[1]})"

    parts = []
    for part in BUNDLES[name]:
        with open(os.path.join(app.static_folder, part), encoding="utf-8") as fh:
            parts.append(f"/* {part} */\n" + _URL.sub(fingerprint, fh.read()))
    cache[name] = "\n".join(parts).encode()
    return cache[name]


def _digest(app: Flask, filename: str) -> str | None:
    cache: dict[str, str | None] = app.extensions.setdefault("lectern_assets", {})
    if filename in cache and not app.debug:
        return cache[filename]
    if filename in BUNDLES:
        digest = hashlib.sha256(_bundle(app, filename)).hexdigest()[:10]
    else:
        path = os.path.join(app.static_folder, filename)
        try:
            with open(path, "rb") as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()[:10]
        except OSError:
            digest = None  # a missing file keeps its plain name and answers 404 as usual
    cache[filename] = digest
    return digest


def _send(app: Flask, filename: str, max_age: int) -> Response:
    if filename not in BUNDLES:
        return send_from_directory(app.static_folder, filename, max_age=max_age)
    response = Response(_bundle(app, filename), mimetype="text/css")
    response.cache_control.max_age = max_age
    response.set_etag(_digest(app, filename))
    return response.make_conditional(request)


def _self_fingerprinted(app: Flask, filename: str) -> bool:
    """The file is stored under a name that carries its own digest."""
    match = _FINGERPRINTED.match(filename)
    return bool(match) and _digest(app, filename) == match["digest"]


def fingerprinted(app: Flask, filename: str) -> str:
    digest = _digest(app, filename)
    if digest is None or _self_fingerprinted(app, filename):
        return filename
    stem, dot, ext = filename.rpartition(".")
    if not dot or "/" in ext:
        return filename  # no extension: nothing to put the fingerprint before
    return f"{stem}.{digest}.{ext}"


def _serve(filename: str):
    app = current_app._get_current_object()
    match = _FINGERPRINTED.match(filename)
    real = f"{match['stem']}{match['ext']}" if match else filename
    if _self_fingerprinted(app, filename):
        real = filename
    if match and _digest(app, real) == match["digest"]:
        response = _send(app, real, YEAR)
        response.cache_control.public = True
        response.cache_control.immutable = True
        return response
    response = _send(app, real, 0)
    response.cache_control.no_cache = True
    return response


def init_app(app: Flask) -> None:
    @app.url_defaults
    def _fingerprint(endpoint: str, values: dict) -> None:
        if endpoint == "static" and "filename" in values:
            values["filename"] = fingerprinted(app, values["filename"])

    app.view_functions["static"] = _serve
