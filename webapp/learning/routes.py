"""Learning for students: catalogue, course page, block page, completions, my learning."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import htmx
from ..guards import student_required
from ..markdown import render_markdown
from ..services import Conflict, Invalid, access
from ..services import learning as service
from ..services.catalogue import catalogue as find_courses
from ..services.my_learning import my_learning as my_courses
from . import bp
from .forms import CompleteForm, WorkForm

RESULTS_ID = "catalogue-results"
COMPLETION_ID = "completion"


@bp.context_processor
def _template_helpers():
    return {"render_markdown": render_markdown}


@bp.get("/courses")
def catalogue():
    result = find_courses(
        request.args.get("q", ""), request.args.get("page", 1, type=int), current_user
    )
    return htmx.answer(
        "learning/partials/catalogue_results.html",
        page="learning/catalogue.html",
        ids=(RESULTS_ID,),
        message=f"{result.total} course{'' if result.total == 1 else 's'} found",
        result=result,
        focus_results=htmx.targets("page-prev", "page-next"),
    )


@bp.get("/courses/<int:course_id>")
def course(course_id: int):
    view = service.course_page(course_id, current_user)
    return render_template("learning/course.html", view=view)


@bp.post("/courses/<int:course_id>/enrol")
@student_required
def enrol(course_id: int):
    service.enrol(course_id, current_user)
    flash("You are enrolled. Your progress is kept as you go.", "success")
    return redirect(url_for("learning.course", course_id=course_id), code=303)


@bp.post("/courses/<int:course_id>/unenrol")
@student_required
def unenrol(course_id: int):
    service.unenrol(course_id, current_user)
    flash("You left the course. If you enrol again, your completed blocks count again.", "info")
    return redirect(url_for("learning.course", course_id=course_id), code=303)


@bp.get("/courses/<int:course_id>/resume")
@student_required
def resume(course_id: int):
    block = service.resume_target(course_id, current_user)
    if block is None:
        return redirect(url_for("learning.course", course_id=course_id), code=303)
    return redirect(url_for("learning.block", course_id=course_id, block_id=block.id), code=303)


def _work_form(view, formdata=None):
    if not view.block.is_gradable:
        return CompleteForm()
    done = view.completion
    return WorkForm(
        formdata=formdata,
        url=done.url if done else None,
        remarks=done.feedback if done else "",
    )


@bp.get("/courses/<int:course_id>/blocks/<int:block_id>")
@student_required
def block(course_id: int, block_id: int):
    try:
        view = service.visit_block(course_id, block_id, current_user)
    except access.NotEnrolled as exc:
        flash(exc.message, "info")
        return redirect(url_for("learning.course", course_id=course_id), code=303)
    editing = request.args.get("edit") == "1" and view.completion is not None
    return htmx.answer(
        "learning/partials/completion.html", page="learning/block.html", ids=(COMPLETION_ID,),
        view=view, form=_work_form(view, formdata=None), editing=editing,
    )  # fmt: skip


def _after_change(course_id, block_id, view, message, form=None, status=200, notice=None):
    """The changed fragments for htmx (completion + out-of-band outline, progress, next).

    Without htmx: the page again with the form's messages (422), else back to the block.
    """
    if notice and status != 422 and not htmx.targets(COMPLETION_ID):
        flash(notice, "error")
    return htmx.answer(
        "learning/partials/completion_update.html", ids=(COMPLETION_ID,),
        page="learning/block.html" if status == 422 else None,
        redirect_to=url_for("learning.block", course_id=course_id, block_id=block_id),
        status=status, message=message, view=view, form=form or _work_form(view),
        editing=form is not None and view.completion is not None and status == 422,
        notice=notice, changed=status < 400,
    )  # fmt: skip


@bp.post("/courses/<int:course_id>/blocks/<int:block_id>/complete")
@student_required
def complete(course_id: int, block_id: int):
    _, block, _ = access.block_for_student(course_id, block_id, current_user)
    form = WorkForm() if block.is_gradable else CompleteForm()
    if not form.validate_on_submit():
        return _invalid(course_id, block_id, form)
    try:
        view = service.complete_block(course_id, block_id, current_user, *_work(form))
    except Invalid as exc:
        return _invalid(course_id, block_id, form, exc)
    return _after_change(course_id, block_id, view, _progress_message("Marked complete", view))


@bp.post("/courses/<int:course_id>/blocks/<int:block_id>/completion")
@student_required
def edit_completion(course_id: int, block_id: int):
    _, block, _ = access.block_for_student(course_id, block_id, current_user)
    form = WorkForm() if block.is_gradable else CompleteForm()
    if block.is_gradable and not form.validate_on_submit():
        return _invalid(course_id, block_id, form)
    try:
        view = service.edit_completion(course_id, block_id, current_user, *_work(form))
    except Invalid as exc:
        return _invalid(course_id, block_id, form, exc)
    except Conflict as exc:
        return _conflict(course_id, block_id, exc)
    return _after_change(course_id, block_id, view, "Your work is updated.")


@bp.post("/courses/<int:course_id>/blocks/<int:block_id>/undo")
@student_required
def undo(course_id: int, block_id: int):
    try:
        view = service.undo_completion(course_id, block_id, current_user)
    except Conflict as exc:
        return _conflict(course_id, block_id, exc)
    return _after_change(course_id, block_id, view, _progress_message("Marked not done", view))


def _work(form) -> tuple[str | None, str]:
    if not isinstance(form, WorkForm):
        return None, ""
    return form.url.data, form.remarks.data or ""


def _invalid(course_id, block_id, form, exc: Invalid | None = None):
    """The form again with its messages (422)."""
    if exc is not None:
        getattr(form, exc.field or "url").errors = [exc.message]
    view = service.block_view(course_id, block_id, current_user)
    if not isinstance(form, WorkForm):
        form = None
    return _after_change(
        course_id, block_id, view, "Please correct the form.", form=form, status=422
    )


def _conflict(course_id, block_id, exc: Conflict):
    """The completion as it stands, with the reason the change was refused (409)."""
    view = service.block_view(course_id, block_id, current_user)
    return _after_change(course_id, block_id, view, exc.message, status=409, notice=exc.message)


def _progress_message(what: str, view) -> str:
    o = view.outline
    text = f"{what}. Course progress {o.percent}% ({o.done} of {o.total} blocks)."
    if view.enrolment.completed:
        text += " You have completed the course!"
    return text


@bp.get("/learn")
@student_required
def my_learning():
    return render_template("learning/my_learning.html", data=my_courses(current_user))
