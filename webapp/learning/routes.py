"""Learning for students: catalogue, course page, block page, completions, my learning."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .. import htmx
from ..guards import student_required
from ..markdown import render_markdown
from ..services import Invalid, access
from ..services import learning as service
from ..services import learning_outline as outline
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
        request.args.get("q", ""),
        request.args.get("page", 1, type=int),
        current_user,
        show=request.args.get("show", "all"),
    )
    return htmx.answer(
        "learning/partials/catalogue_results.html",
        page="learning/catalogue.html",
        ids=(RESULTS_ID,),
        message=_found(result.total, request.args.get("q", "").strip()),
        result=result,
        focus_results=htmx.targets("page-prev", "page-next"),
    )


def _section_arg() -> int | None:
    """``?section=<id>``: a folded section opened without JavaScript."""
    return request.args.get("section", type=int)


@bp.get("/courses/<int:course_id>")
def course(course_id: int):
    view = outline.course_page(course_id, current_user, _section_arg())
    return render_template("learning/course.html", view=view)


@bp.get("/courses/<int:course_id>/sections/<int:section_id>")
def section(course_id: int, section_id: int):
    """A folded section's blocks (htmx); without htmx, the course page with it open."""
    view = outline.section_blocks(course_id, section_id, current_user)
    return htmx.answer(
        "learning/partials/section_blocks.html",
        redirect_to=url_for(
            "learning.course", course_id=course_id, section=section_id,
            _anchor=f"section-{section_id}",
        ),
        view=view,
    )  # fmt: skip


@bp.post("/courses/<int:course_id>/enrol")
@student_required
def enrol(course_id: int):
    service.enrol(course_id, current_user)
    flash("You are enrolled. Your progress is kept as you go.", "success")
    return redirect(url_for("learning.course", course_id=course_id), code=303)


@bp.post("/courses/<int:course_id>/unenrol")
@student_required
def unenrol(course_id: int):
    if not service.unenrol(course_id, current_user):  # unpublished: gone from view with it
        flash("You left the course. It is no longer in the catalogue.", "info")
        return redirect(url_for("learning.my_learning"), code=303)
    flash("You left the course. If you enrol again, your completed blocks count again.", "info")
    return redirect(url_for("learning.course", course_id=course_id), code=303)


@bp.get("/courses/<int:course_id>/resume")
@student_required
def resume(course_id: int):
    block = outline.resume_target(course_id, current_user)
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
@login_required
def block(course_id: int, block_id: int):
    """The block page: for an enrolled student, or a read-only preview for the course's owner
    and admins (``access.block_for_reader``)."""
    try:
        if htmx.targets(COMPLETION_ID):  # the completion alone (edit, cancel)
            view = service.unchanged(access.block_for_student(course_id, block_id, current_user))
        else:
            view = outline.block_page(course_id, block_id, current_user, _section_arg())
    except access.NotEnrolled as exc:
        flash(exc.message, "info")
        return redirect(url_for("learning.course", course_id=course_id), code=303)
    editing = request.args.get("edit") == "1" and view.completion is not None
    resp = htmx.answer(
        "learning/partials/completion.html", page="learning/block.html", ids=(COMPLETION_ID,),
        view=view, form=_work_form(view, formdata=None), editing=editing,
    )  # fmt: skip
    if isinstance(view, outline.BlockView) and not view.preview:
        service.record_visit(view)  # after rendering: its commit expires what the page shows
    return resp


def _after_change(change, message, form=None, status=200):
    """The changed fragments for htmx (completion + out-of-band outline, progress, next).

    Without htmx: the page again with the form's messages (422), else back to the block (a
    refused change with its reason as a flash message).
    """
    here = url_for("learning.block", course_id=change.course_id, block_id=change.block.id)
    if status == 422 and not htmx.targets(COMPLETION_ID):
        page = outline.block_page(change.course_id, change.block.id, current_user)
        editing = form is not None and page.completion is not None
        return htmx.answer(
            page="learning/block.html", status=422, view=page,
            form=form or _work_form(page), editing=editing,
        )  # fmt: skip
    if change.refused and not htmx.targets(COMPLETION_ID):
        flash(change.refused, "error")
    return htmx.answer(
        "learning/partials/completion_update.html", ids=(COMPLETION_ID,), redirect_to=here,
        status=status, message=message, view=change, form=form or _work_form(change),
        editing=form is not None and change.completion is not None and status == 422,
        notice=change.refused, changed=status < 400,
    )  # fmt: skip


def _form_for(held):
    return WorkForm() if held.block.is_gradable else CompleteForm()


@bp.post("/courses/<int:course_id>/blocks/<int:block_id>/complete")
@student_required
def complete(course_id: int, block_id: int):
    held = access.block_for_student(course_id, block_id, current_user, hold=True)
    form = _form_for(held)
    if not form.validate_on_submit():
        return _invalid(held, form)
    try:
        change = service.complete(held, *_work(form))
    except Invalid as exc:
        return _invalid(held, form, exc)
    return _after_change(change, _progress_message("marked complete", change))


@bp.post("/courses/<int:course_id>/blocks/<int:block_id>/completion")
@student_required
def edit_completion(course_id: int, block_id: int):
    held = access.block_for_student(course_id, block_id, current_user)
    form = _form_for(held)
    if held.block.is_gradable and not form.validate_on_submit():
        return _invalid(held, form)
    try:
        change = service.edit(held, *_work(form))
    except Invalid as exc:
        return _invalid(held, form, exc)
    if change.refused:
        return _after_change(change, change.refused, status=409)
    return _after_change(change, f"Your work for {change.block.title} is updated.")


@bp.post("/courses/<int:course_id>/blocks/<int:block_id>/undo")
@student_required
def undo(course_id: int, block_id: int):
    change = service.undo(access.block_for_student(course_id, block_id, current_user, hold=True))
    if change.refused:
        return _after_change(change, change.refused, status=409)
    return _after_change(change, _progress_message("marked not done", change))


def _work(form) -> tuple[str | None, str]:
    if not isinstance(form, WorkForm):
        return None, ""
    return form.url.data, form.remarks.data or ""


def _invalid(held, form, exc: Invalid | None = None):
    """The form again with its messages (422)."""
    if exc is not None:
        getattr(form, exc.field or "url").errors = [exc.message]
    if not isinstance(form, WorkForm):
        form = None
    return _after_change(service.unchanged(held), "Please correct the form.", form, status=422)


def _found(total: int, query: str) -> str:
    found = f"{total} course{'' if total == 1 else 's'}"
    return f"{found} found for “{query}”" if query else f"{found} in the catalogue"


def _progress_message(what: str, change) -> str:
    f = change.figures
    text = (
        f"{change.block.title} {what}. Course progress {f.percent}% ({f.done} of {f.total} blocks)."
    )
    if change.completed:
        text += " You have completed the course!"
    return text


@bp.get("/learn")
@student_required
def my_learning():
    return render_template("learning/my_learning.html", data=my_courses(current_user))
