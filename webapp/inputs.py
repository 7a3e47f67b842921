"""Input no database can store: refused once, for every request, before any view runs.

PostgreSQL text cannot hold a NUL (0x00) character, so a NUL anywhere in a query string, a form
field or a JSON body answers 400 with a clear message, on every database alike, instead of a
``DataError`` deep inside a query. Registered by ``create_app`` as a ``before_request`` hook.
"""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import BadRequest

NUL = "\x00"


class NulCharacter(BadRequest):
    description = "Text cannot contain the NUL character (0x00). Remove it and try again."
    show_detail = True  # errors.py shows this description on the error page


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def refuse_nul() -> None:
    """``before_request``: raise NulCharacter for a NUL in the path, query, form or JSON."""
    if NUL in request.path or _has_nul(request.args.to_dict(flat=False)):
        raise NulCharacter()
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.is_json:
        if _has_nul(request.get_json(silent=True)):
            raise NulCharacter()
    elif _has_nul(request.form.to_dict(flat=False)):
        raise NulCharacter()
