"""Users over the API, for admins: search with cursor pages, read, change the role, activate,
deactivate or reactivate. The same service functions (and audit records) as the admin pages;
everyone else gets 404, as on the web."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..extensions import client_ip
from ..models import Role
from ..services import Invalid, access, unit_of_work
from ..services import user_actions as act
from ..services.users import MAX_PAGE, ROLES, STATUSES, UserFilter, search_users
from . import bp, paging
from .schemas import UserSchema
from .security import authenticated, me

TAGS = ["users"]
ADMIN = Role.ADMIN

UserPageSchema = Schema.from_dict(paging.page_fields(UserSchema), name="UserPage")


class UserSearchArgs(paging.PageArgs):
    q = fields.String(load_default="", validate=validate.Length(max=100))
    role = fields.String(load_default="", validate=validate.OneOf(["", *ROLES]))
    status = fields.String(load_default="", validate=validate.OneOf(["", *STATUSES]))


class UserChangeSchema(Schema):
    role = fields.String(validate=validate.OneOf(ROLES))
    status = fields.String(
        validate=validate.OneOf(["active", "deactivated"]),
        metadata={"description": "active: activate a pending or reactivate a deactivated user"},
    )


@bp.route("/users", methods=["GET"], tags=TAGS)
@authenticated(ADMIN)
@bp.arguments(UserSearchArgs, location="query")
@bp.response(200, UserPageSchema)
def list_users(args):
    """Users matching ``q`` (email or name), ``role`` and ``status``, newest first."""
    page_no, limit = paging.decode(args["cursor"], args["limit"]), args["limit"]
    f = UserFilter(q=args["q"], role=args["role"], status=args["status"], page=page_no)
    if f.page != page_no or page_no > MAX_PAGE:
        return paging.page([], page_no, limit, False)
    found = search_users(f, per_page=limit)
    return paging.page(found.users, page_no, limit, found.has_next)


@bp.route("/users/<int:user_id>", methods=["GET"], tags=TAGS)
@authenticated(ADMIN)
@bp.response(200, UserSchema)
def get_user(user_id: int):
    """One user."""
    return access.user_for_admin(user_id)


@bp.route("/users/<int:user_id>", methods=["PATCH"], tags=TAGS)
@authenticated(ADMIN)
@bp.arguments(UserChangeSchema)
@bp.response(200, UserSchema)
def update_user(args, user_id: int):
    """Change a user's role or status.

    ``deactivated`` ends every session and token of the user; ``active`` activates a pending
    account or reactivates a deactivated one. Both changes are made, or neither."""
    if not args:
        raise Invalid("Send role or status.", "role")
    user, ip, status = access.user_for_admin(user_id), client_ip(), args.get("status")
    with unit_of_work():  # both changes made, or neither
        if "role" in args:
            act.change_role(me(), user.id, args["role"], ip)
        if status == "deactivated" and user.status != "deactivated":
            act.deactivate(me(), user.id, ip)
        elif status == "active" and user.status == "pending":
            act.activate(me(), user.id, ip)
        elif status == "active" and user.status == "deactivated":
            act.reactivate(me(), user.id, ip)
    return access.user_for_admin(user_id)
