"""The outbox for admins: pending and given-up messages, their last error, and retrying them.

Behind ``admin_required``. The page never shows a message's body (``services/outbox.py`` does
not even load it). A row's Retry (or "Try now") from htmx carries ``HX-Target: message-<id>``
and is answered with that row's partial, the outcome written in it and announced in #status;
without htmx it answers 303 to ``back`` with a flash, as does "Retry all given up".
"""

from __future__ import annotations

from flask import flash, request, url_for
from flask_login import current_user

from .. import htmx
from ..extensions import client_ip
from ..guards import admin_required
from ..services import Conflict
from ..services import outbox as svc
from . import bp
from .routes import _back, answer_row


@bp.get("/admin/outbox")
@admin_required
def outbox():
    return htmx.answer(
        page="admin/outbox.html",
        listing=svc.outbox_page(request.args.get("show", ""), request.args.get("after")),
        back=request.full_path.rstrip("?"),
    )


@bp.post("/admin/outbox/<int:message_id>/retry")
@admin_required
def retry_message(message_id: int):
    back = _back(url_for("admin.outbox"))
    row_id = f"message-{message_id}"
    try:
        row = svc.retry_message(current_user, message_id, client_ip())
    except Conflict as exc:
        row, status, announced, category = None, 409, exc.message, "error"
        ctx = {"error": exc.message}
    else:
        note = "Queued again: it goes out at the worker's next poll."
        status, announced, category = 200, f"{row.recipient}: {note}", "success"
        ctx = {"note": note}
    # refused: the row as it stands now
    return answer_row("admin/partials/outbox_row.html", row_id, back, status, announced, category,
                      row=row or svc.message_row(message_id), **ctx)  # fmt: skip


@bp.post("/admin/outbox/retry-given-up")
@admin_required
def retry_given_up():
    count = svc.retry_given_up(current_user, client_ip())
    if count:
        flash(f"{count:,} given-up message{'s' if count != 1 else ''} queued again.", "success")
    else:
        flash("No message was given up: nothing to retry.", "info")
    return htmx.hx_redirect(_back(url_for("admin.outbox", show="given-up")))
