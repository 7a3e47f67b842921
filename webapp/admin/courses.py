"""Administration of courses: every course (drafts too) with its owner and students, and a
course's admin page with its two actions, transfer to another teacher and delete (both audited).

Behind ``admin_required``; a course comes from ``access.course_for_manager`` (admins manage
every course).
"""

from __future__ import annotations

from flask import flash, request, url_for
from flask_login import current_user

from .. import htmx
from ..extensions import client_ip
from ..guards import admin_required
from ..services import Invalid, access
from ..services import course_admin as svc
from ..services.courses import delete_course
from . import bp
from .forms import ConfirmForm, CourseSearchForm, CourseTransferForm


@bp.get("/admin/courses")
@admin_required
def courses():
    args = request.args
    f = svc.CourseFilter(args.get("q", ""), args.get("status", ""), args.get("page", 1, type=int))
    return htmx.answer(
        "admin/partials/course_results.html",
        page="admin/courses.html",
        ids=("course-results",),
        listing=svc.search_courses(f),
        form=CourseSearchForm(args),
    )


def _course_page(course, status: int = 200, form=None):
    return htmx.answer(
        page="admin/course_detail.html", status=status, course=course,
        students=svc.student_count(course), transfer_form=form or CourseTransferForm(),
        confirm_form=ConfirmForm(),
    )  # fmt: skip


@bp.get("/admin/courses/<int:course_id>")
@admin_required
def course_detail(course_id: int):
    return _course_page(access.course_for_manager(course_id, current_user))


@bp.post("/admin/courses/<int:course_id>/transfer")
@admin_required
def transfer_course(course_id: int):
    course = access.course_for_manager(course_id, current_user)
    form = CourseTransferForm()
    if form.validate():
        title = course.title
        try:
            to = svc.transfer_course(current_user, course, form.to_email.data, client_ip())
        except Invalid as exc:
            form.to_email.errors.append(exc.message)
        else:
            flash(f"“{title}” now belongs to {to.name} ({to.email}).", "success")
            return htmx.hx_redirect(url_for("admin.course_detail", course_id=course_id))
    return _course_page(course, 422, form)


@bp.post("/admin/courses/<int:course_id>/delete", endpoint="delete_course")
@admin_required
def remove_course(course_id: int):
    course = access.course_for_manager(course_id, current_user)
    if not ConfirmForm().validate():
        return _course_page(course, 422)
    title = course.title
    delete_course(course, current_user, ip=client_ip())
    flash(f"Deleted the course “{title}”.", "success")
    return htmx.hx_redirect(url_for("admin.courses"))
