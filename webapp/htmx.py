"""The one way a route answers: fragment, page or redirect; Vary; announcements.

A route decides what changed and calls ``answer()``; this module decides, from the request,
whether that becomes the fragment (an htmx request aimed at a known element id), the full page,
or a redirect after a plain form POST. Every response that branched on an ``HX-*`` header gets
``Vary`` (``add_vary`` runs after every request). Templates never read request headers: the
route passes what they need (``hx_target``).
"""

from __future__ import annotations

import json

from flask import (
    Response,
    g,
    make_response,
    redirect,
    render_template,
    request,
    stream_with_context,
)


def _read(header: str) -> str | None:
    g.vary_htmx = True  # the response branches on an HX-* header
    return request.headers.get(header)


def is_htmx() -> bool:
    """An htmx request that is not a boosted page load."""
    return _read("HX-Request") == "true" and _read("HX-Boosted") != "true"


def targets(*ids: str) -> bool:
    """True when this is an htmx request aimed at one of the given element ids."""
    return is_htmx() and (_read("HX-Target") in ids or _read("HX-Trigger") in ids)


def target() -> str | None:
    """The id of the element an htmx request will swap, or None."""
    return _read("HX-Target") if is_htmx() else None


def announce(response: Response, message: str | None) -> Response:
    """Put ``message`` in the page's shared status region (``static/js/app.js``)."""
    if message:
        response.headers["HX-Trigger"] = json.dumps({"announce": message})
    return response


def hx_redirect(url: str) -> Response:
    """A redirect that works for htmx (HX-Redirect) and plain requests (303)."""
    if is_htmx():
        resp = make_response("", 204)
        resp.headers["HX-Redirect"] = url
        return resp
    return redirect(url, code=303)


def answer(
    fragment: str | None = None,
    *,
    page: str | None = None,
    redirect_to: str | None = None,
    ids: tuple[str, ...] = (),
    status: int = 200,
    message: str | None = None,
    headers: dict[str, str] | None = None,
    **ctx,
) -> Response:
    """Answer this request with the fragment, the page or a redirect.

    - An htmx request aimed at one of ``ids`` (any htmx request when none are named)
      gets ``fragment`` rendered with ``ctx`` and ``status``, and ``message`` announced.
    - Otherwise ``page`` is rendered with the same context and status (a GET, or a form that
      comes back with its errors), or, without a page, a 303 to ``redirect_to`` (a plain POST
      that worked).
    """
    if fragment is not None and (targets(*ids) if ids else is_htmx()):
        resp = announce(make_response(render_template(fragment, **ctx), status), message)
    elif page is not None:
        resp = make_response(render_template(page, **ctx), status)
    elif redirect_to is not None:
        resp = hx_redirect(redirect_to)
    else:
        raise ValueError("answer() needs a page or a redirect for requests without htmx")
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def add_vary(response: Response) -> Response:
    if getattr(g, "vary_htmx", False):
        response.vary.add("HX-Request")
        response.vary.add("HX-Target")
        response.vary.add("HX-Trigger")
        response.vary.add("HX-Boosted")
    return response


def download(rows, filename: str, mimetype: str = "text/csv") -> Response:
    """A streamed file download (the CSV exports of the pages and of the API)."""
    resp = Response(stream_with_context(rows), mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp
