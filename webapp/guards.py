"""Authorisation guards: one per resource, deny by default."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required


def role_required(*roles: str):
    """The view needs a signed-in user with one of these roles; others get 404."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(404)
            return view(*args, **kwargs)

        return wrapped

    return decorator


admin_required = role_required("admin")
teacher_required = role_required("teacher")
student_required = role_required("student")
