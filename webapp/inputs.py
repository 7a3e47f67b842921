"""Input no database can store: refused once, for every request, before any view runs.

PostgreSQL text cannot hold a NUL (0x00) character, so a NUL anywhere in a query string, a form
field or a JSON body answers 400 with a clear message, on every database alike, instead of a
``DataError`` deep inside a query. A JSON body nested deeper than ``MAX_JSON_DEPTH`` (no request
needs more than a few levels) is refused the same way, before anything walks it recursively:
nested deep enough, it would exhaust Python's recursion limit (a 500). Registered by
``create_app`` as a ``before_request`` hook.
"""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import BadRequest

NUL = "\x00"
MAX_JSON_DEPTH = 32


class NulCharacter(BadRequest):
    description = "Text cannot contain the NUL character (0x00). Remove it and try again."
    show_detail = True  # errors.py shows this description on the error page


class TooDeep(BadRequest):
    description = f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep."
    show_detail = True


def _has_nul(value) -> bool:
    """Whether a NUL is in ``value`` (text, or JSON of any depth: walked without recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _json_body():
    """The request's JSON (None if it is not JSON); TooDeep if nested past MAX_JSON_DEPTH."""
    try:
        value = request.get_json(silent=True)
    except RecursionError:  # deeper than the parser itself can go
        raise TooDeep() from None
    level = [value]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return value
    if any(isinstance(item, dict | list) for item in level):
        raise TooDeep()
    return value


def refuse_nul() -> None:
    """``before_request``: raise NulCharacter for a NUL in the path, query, form or JSON, and
    TooDeep for JSON nested too deeply."""
    if NUL in request.path or _has_nul(request.args.to_dict(flat=False)):
        raise NulCharacter()
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.is_json:
        if _has_nul(_json_body()):
            raise NulCharacter()
    elif _has_nul(request.form.to_dict(flat=False)):
        raise NulCharacter()
