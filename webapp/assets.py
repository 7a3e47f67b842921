"""Static files under fingerprinted names, cached by browsers for a year.

``url_for('static', filename='css/app.css')`` gives ``/static/css/app.1a2b3c4d5e.css``: the
name carries the first ten hex digits of the file's SHA-256, so a changed file gets a new name
and any name can be cached forever (``Cache-Control: public, max-age=31536000, immutable``). A
request for a name whose fingerprint is not the file's current one (a page from before a
deploy), or for the plain name, is still served, with ``no-cache``. Templates keep using
``url_for('static', ...)``; nothing else changes.

A file referenced from a stylesheet (a web font: ``url()`` in CSS cannot call ``url_for``) is
stored under its fingerprinted name already (``figtree-latin-wght-normal.4ba7d3d096.woff2``):
such a name, whose digest is the file's own, is served immutable as it is and ``url_for`` keeps
it unchanged, so the stylesheet and a ``<link rel="preload">`` name the same URL.
"""

from __future__ import annotations

import hashlib
import os
import re

from flask import Flask, current_app, send_from_directory

YEAR = 31_536_000
_FINGERPRINTED = re.compile(r"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{10})(?P<ext>\.[A-Za-z0-9]+)$")


def _digest(app: Flask, filename: str) -> str | None:
    cache: dict[str, str | None] = app.extensions.setdefault("lectern_assets", {})
    if filename in cache and not app.debug:
        return cache[filename]
    path = os.path.join(app.static_folder, filename)
    try:
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()[:10]
    except OSError:
        digest = None  # a missing file keeps its plain name and answers 404 as usual
    cache[filename] = digest
    return digest


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
        response = send_from_directory(app.static_folder, real, max_age=YEAR)
        response.cache_control.public = True
        response.cache_control.immutable = True
        return response
    response = send_from_directory(app.static_folder, real, max_age=0)
    response.cache_control.no_cache = True
    return response


def init_app(app: Flask) -> None:
    @app.url_defaults
    def _fingerprint(endpoint: str, values: dict) -> None:
        if endpoint == "static" and "filename" in values:
            values["filename"] = fingerprinted(app, values["filename"])

    app.view_functions["static"] = _serve
