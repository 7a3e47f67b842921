"""Cursor pagination, the same for every list of the API: ``limit`` (1 to 100, default 20) and
an opaque ``cursor`` taken from the previous page's ``next_cursor`` (null on the last page)."""

from __future__ import annotations

import base64
import binascii
import json

from marshmallow import Schema, fields, validate

from ..services import Invalid

LIMIT_MAX = 100
OFFSET_MAX = 10_000


class PageArgs(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(1, LIMIT_MAX))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))


def page_fields(item_schema) -> dict:
    """The fields of a page of ``item_schema``s."""
    return {
        "items": fields.List(fields.Nested(item_schema), required=True),
        "next_cursor": fields.String(required=True, allow_none=True),
    }


def encode(offset: int) -> str:
    raw = json.dumps({"o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None, limit: int) -> int:
    """The page number (from 1) a cursor points at; Invalid (422) for anything else."""
    if not cursor:
        return 1
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        offset = json.loads(raw)["o"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise Invalid("Not a cursor of this list.", "cursor") from None
    if not isinstance(offset, int) or not 0 <= offset <= OFFSET_MAX or offset % limit:
        raise Invalid("Not a cursor of this list (keep the same limit).", "cursor")
    return offset // limit + 1


def page(items: list, page_no: int, limit: int, has_next: bool) -> dict:
    next_cursor = encode(page_no * limit) if has_next and page_no * limit <= OFFSET_MAX else None
    return {"items": items, "next_cursor": next_cursor}
