"""htmx helpers: which kind of request this is, and answering it."""

from __future__ import annotations

from flask import Response, g, make_response, redirect, render_template, request


def _read(header: str) -> str | None:
    g.vary_htmx = True  # the response branches on an HX-* header
    return request.headers.get(header)


def is_htmx() -> bool:
    return _read("HX-Request") == "true" and _read("HX-Boosted") != "true"


def targets(*ids: str) -> bool:
    """True when this is an htmx request aimed at one of the given element ids."""
    return is_htmx() and (_read("HX-Target") in ids or _read("HX-Trigger") in ids)


def page_or_fragment(page: str, fragment: str, target_ids: tuple[str, ...], **ctx) -> str:
    """The fragment for an htmx request aimed at a known id, else the full page."""
    if targets(*target_ids):
        return render_template(fragment, **ctx)
    return render_template(page, **ctx)


def hx_redirect(url: str) -> Response:
    """A redirect that works for htmx (HX-Redirect) and plain requests (303)."""
    if is_htmx():
        resp = make_response("", 204)
        resp.headers["HX-Redirect"] = url
        return resp
    return redirect(url, code=303)


def done(url: str, fragment_html: str | None = None, status: int = 200) -> Response:
    """After a POST: the changed fragment for htmx, a 303 to the page otherwise."""
    if fragment_html is not None and is_htmx():
        return make_response(fragment_html, status)
    return redirect(url, code=303)


def add_vary(response: Response) -> Response:
    if getattr(g, "vary_htmx", False):
        response.vary.add("HX-Request")
        response.vary.add("HX-Target")
        response.vary.add("HX-Trigger")
        response.vary.add("HX-Boosted")
    return response
