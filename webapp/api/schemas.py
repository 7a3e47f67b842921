"""Schemas shared by several resources of the API (the others live beside their views)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..models import Role

ROLES = [str(r) for r in Role]


class StrictSchema(Schema):
    """A request body: only the declared fields (anything else is a 422)."""


class MessageSchema(Schema):
    detail = fields.String(required=True)


class UserSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    status = fields.String(
        required=True, validate=validate.OneOf(["active", "pending", "deactivated"])
    )
    created_at = fields.AwareDateTime(required=True)
    last_login_at = fields.AwareDateTime(required=True, allow_none=True)


def text(max_len: int, *, required: bool = False, min_len: int = 0, **kw):
    """A string field with a length range (the service checks the rest: blank, trimmed…)."""
    return fields.String(required=required, validate=validate.Length(min_len, max_len), **kw)
