"""Administration of users: the users table, row and bulk actions, detail, deletion, audit log.

Every view is behind ``admin_required`` (others: 404). The table's rows are light: a row's
actions load on demand (``user_actions``), and row actions answer an htmx request aimed at the
row (``HX-Target: user-<id>``) with the row partial, and anything else with a redirect.
"""

from __future__ import annotations

from flask import flash, request, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from .. import htmx
from ..extensions import client_ip
from ..guards import admin_required
from ..services import Conflict, Invalid, NotAllowed, access
from ..services import user_actions as act
from ..services import users as svc
from ..services.audit import audit_actions, audit_log
from . import bp
from .forms import AuditSearchForm, BulkForm, NewUserForm, RoleForm, TransferForm, UserSearchForm

ROW_ACTIONS = {
    "deactivate": (act.deactivate, "Deactivated; their sessions have ended."),
    "reactivate": (act.reactivate, "Reactivated."),
    "activate": (act.activate, "Activated."),
    "end-sessions": (act.end_sessions, "All their sessions have ended."),
    "send-reset": (act.send_reset, "Password reset link sent."),
    "send-activation": (act.send_activation, "Activation link sent."),
    "approve-teacher": (act.approve_teacher, "Now a teacher; told by email."),
    "refuse-teacher": (
        act.refuse_teacher,
        "Teacher request refused; still a student, told by email.",
    ),
}


def _back(default: str) -> str:
    """Where a plain form returns to: a local /admin/ path from the form, else ``default``."""
    target = request.form.get("back", "")
    if target.startswith("/admin/") and "\\" not in target and "//" not in target:
        return target
    return default


def _filter_from_args() -> svc.UserFilter:
    args = request.args
    return svc.UserFilter(
        q=args.get("q", ""),
        role=args.get("role", ""),
        status=args.get("status", ""),
        sort=args.get("sort", ""),
        direction=args.get("dir", ""),
        page=args.get("page", 1, type=int) or 1,
    )


@bp.get("/admin/users")
@admin_required
def users():
    return htmx.answer(
        "admin/partials/user_search_response.html",
        page="admin/users.html",
        ids=("user-results",),
        listing=svc.search_users(_filter_from_args()),
        form=UserSearchForm(request.args),
        bulk_form=BulkForm(),
        back=request.full_path.rstrip("?"),
    )


@bp.get("/admin/users/<int:user_id>/actions")
@admin_required
def user_actions(user_id: int):
    """A row's actions, loaded when its Actions disclosure first opens (htmx); a plain request
    (the disclosure's link without JavaScript) goes to the same actions on the user's page."""
    return htmx.answer(
        "admin/partials/row_menu.html",
        redirect_to=url_for("admin.user_detail", user_id=user_id, _anchor="actions"),
        user=access.user_for_admin(user_id),
        back=url_for("admin.users"),
    )


def _row_answer(user_id: int, run, message: str):
    """The row with the outcome written in it (htmx aimed at the row), else a flash and back."""
    back = _back(url_for("admin.users"))
    row_id = f"user-{user_id}"
    try:
        user = run()
    except (Conflict, Invalid, NotAllowed) as exc:
        user, status, announced, category = None, 409, exc.message, "error"
        ctx = {"error": exc.message, "owns_courses": isinstance(exc, act.OwnsCourses)}
    else:
        status, announced, category = 200, f"{user.email}: {message}", "success"
        ctx = {"note": message}
    # refused: the row as it stands now
    return answer_row("admin/partials/user_row.html", row_id, back, status, announced, category,
                      user=user or access.user_for_admin(user_id), **ctx)  # fmt: skip


def answer_row(template: str, row_id: str, back: str, status: int, announced: str,
               category: str, **ctx):  # fmt: skip
    """A row action's answer: the row's partial (``template`` with ``ctx``), the outcome
    written in it and announced, to htmx aimed at the row; else a flash and 303 to ``back``."""
    if not htmx.targets(row_id):
        flash(announced, category)
        return htmx.hx_redirect(back)
    return htmx.answer(
        template, ids=(row_id,), status=status, message=announced, back=back, focus=True, **ctx
    )


_ACTION_RULE = "<any(" + ", ".join(f"'{a}'" for a in ROW_ACTIONS) + "):action>"


@bp.post(f"/admin/users/<int:user_id>/{_ACTION_RULE}")
@admin_required
def user_action(user_id: int, action: str):
    run, message = ROW_ACTIONS[action]
    return _row_answer(user_id, lambda: run(current_user, user_id, client_ip()), message)


@bp.post("/admin/users/<int:user_id>/role")
@admin_required
def change_role(user_id: int):
    form = RoleForm()
    role = form.role.data if form.validate() else ""  # the service refuses an unknown role
    return _row_answer(
        user_id,
        lambda: act.change_role(current_user, user_id, role, client_ip()),
        f"Role is now {role}.",
    )


@bp.route("/admin/users/new", methods=["GET", "POST"])
@admin_required
def new_user():
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = act.create_user(
                current_user, form.email.data, form.name.data, form.role.data, client_ip()
            )
        except Invalid as exc:
            getattr(form, exc.field or "email").errors.append(exc.message)
        else:
            flash(f"{user.email} was invited by email to set a password.", "success")
            return htmx.hx_redirect(url_for("admin.user_detail", user_id=user.id))
    return htmx.answer(page="admin/new_user.html", status=422 if form.errors else 200, form=form)


def _apply_bulk(action: str, selected: list) -> None:
    """Apply a confirmed bulk action and flash what came of it."""
    try:
        count = act.bulk(current_user, [u.id for u in selected], action, client_ip())
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        label = act.BULK_ACTIONS[action]
        flash(f"{label}: {count} of {len(selected)} selected users changed.", "success")


@bp.post("/admin/users/bulk")
@admin_required
def bulk():
    form = BulkForm()
    selected = svc.users_by_ids(request.form.getlist("user_ids"))
    back = _back(url_for("admin.users"))
    if form.validate() and selected and form.confirm.data == "yes":
        _apply_bulk(form.action.data, selected)
        return htmx.hx_redirect(back)
    error = None
    if not selected:
        error = "Select at least one user."
    elif not form.action.data:
        error = "Choose an action."
    return htmx.answer(
        "admin/partials/bulk_confirm.html",
        page="admin/bulk_confirm.html",
        ids=("bulk-panel",),
        status=422 if error else 200,
        form=form,
        selected=selected,
        error=error,
        back=back,
        bulk_label=act.BULK_ACTIONS.get(form.action.data or "", ""),
    )


@bp.get("/admin/users/<int:user_id>")
@admin_required
def user_detail(user_id: int):
    overview = svc.user_overview(user_id)
    return htmx.answer(
        page="admin/user_detail.html",
        o=overview,
        user=overview.user,
        back=url_for("admin.user_detail", user_id=user_id),
    )


@bp.post("/admin/users/<int:user_id>/sessions/end")
@admin_required
def end_session(user_id: int):
    act.end_session(current_user, user_id, request.form.get("sid", ""), client_ip())
    flash("That session has ended.", "success")
    return htmx.hx_redirect(url_for("admin.user_detail", user_id=user_id))


@bp.route("/admin/users/<int:user_id>/delete", methods=["GET", "POST"])
@admin_required
def delete_user(user_id: int):
    user = access.user_for_admin(user_id)
    if request.method == "POST":
        email = act.delete_user(current_user, user_id, client_ip())
        flash(f"{email} was deleted.", "success")
        return htmx.hx_redirect(url_for("admin.users"))
    return htmx.answer(
        page="admin/delete_user.html",
        user=user,
        impact=svc.deletion_impact(user),
        transfer_form=TransferForm(),
    )


@bp.route("/admin/users/<int:user_id>/transfer", methods=["GET", "POST"])
@admin_required
def transfer_courses(user_id: int):
    """The transfer form on its own page (before a demotion); the delete page embeds it too.
    After a transfer: back to ``back`` (the page the form was on), else the delete page."""
    user = access.user_for_admin(user_id)
    form = TransferForm()
    if request.method == "POST" and form.validate():
        try:
            count = act.transfer_courses(current_user, user_id, form.to_email.data, client_ip())
        except Invalid as exc:
            form.to_email.errors.append(exc.message)
        else:
            to = form.to_email.data.strip().lower()
            flash(f"Transferred {count} course{'' if count == 1 else 's'} to {to}.", "success")
            return htmx.hx_redirect(_back(url_for("admin.delete_user", user_id=user_id)))
    return htmx.answer(
        page="admin/transfer_courses.html",
        status=422 if form.errors else 200,
        user=user,
        impact=svc.deletion_impact(user),
        transfer_form=form,
        back=_back(url_for("admin.user_detail", user_id=user_id)),
    )


@bp.get("/admin/audit")
@admin_required
def audit():
    form = AuditSearchForm(request.args)
    form.action.choices = [SelectChoice("", "Any action")] + [
        SelectChoice(a) for a in audit_actions()
    ]
    log = audit_log(
        request.args.get("q", ""), request.args.get("action", ""), request.args.get("before")
    )
    return htmx.answer(
        "admin/partials/audit_search_response.html",
        page="admin/audit.html",
        ids=("audit-results",),
        log=log,
        form=form,
    )
