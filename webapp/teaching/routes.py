"""Teaching: roster, grading queue, gradebook and CSV exports. Only a course's owner."""

from __future__ import annotations

import posixpath
from functools import partial
from types import SimpleNamespace

from flask import (
    current_app,
    flash,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from .. import htmx, limits
from ..extensions import client_ip
from ..services import Invalid, NotFound, access, exports, gradebook, grading, grading_queue, roster
from ..services.progress import AVERAGE_RULES
from . import bp
from .forms import AverageRuleForm, CellForm, EnrolForm, GradeForm

BASE = "/teach/courses/<int:course_id>"
PANEL = "grading-panel"


@bp.app_context_processor
def _course_tabs_helpers():
    """For teaching/partials/course_tabs.html, which other blueprints' pages may include too."""
    return {"has_endpoint": lambda name: name in current_app.view_functions}


def _me():
    return current_user._get_current_object()


def _course(course_id: int):
    """The one guard of every teaching URL: the course's owner, or 404."""
    return access.course_for_owner(course_id, _me())


def _shown(course) -> SimpleNamespace:
    """What the templates show of a course, read before a save's commit expires the row (so
    rendering the answer does not load it again)."""
    return SimpleNamespace(id=course.id, title=course.title)


def _page_arg() -> int:
    return request.args.get("page", 1, type=int)


# --- roster ------------------------------------------------------------------------------------


def _roster_ctx(course, **extra) -> dict:
    q = request.args.get("q", "")
    sort = request.args.get("sort", "name")
    sort = sort if sort in roster.ROSTER_SORTS else "name"
    order = "desc" if request.args.get("order") == "desc" else "asc"
    return {
        "course": course,
        "roster": roster.roster(course, q=q, sort=sort, order=order, page=_page_arg()),
        "q": q,
        "sort": sort,
        "order": order,
        "queue_count": grading.queue_count(course.id),
        "tab": "students",
        **extra,
    }


@bp.get(BASE + "/students", endpoint="roster")
@login_required
def roster_page(course_id: int):
    ctx = _roster_ctx(_course(course_id), form=EnrolForm(formdata=None))
    table = "teaching/partials/roster_table.html"
    return htmx.answer(table, page="teaching/roster.html", ids=("roster-table",), **ctx)


@bp.post(BASE + "/students")
@limits.enrol
@login_required
def enrol(course_id: int):
    course = _course(course_id)
    form, results = EnrolForm(), None
    if form.validate():
        try:
            results = roster.enrol_by_email(course, form.emails.data, _me(), client_ip())
        except Invalid as exc:
            form.emails.errors = [exc.message]
    if results and not htmx.targets("enrol"):
        for r in results:
            flash(f"{r.address}: {r.result}", "success" if r.ok else "warning")
        return htmx.hx_redirect(url_for("teaching.roster", course_id=course.id))
    enrolled = sum(1 for r in results or () if r.ok and r.result != roster.ALREADY)
    others = len(results or ()) - enrolled
    message = f"{enrolled} student{'s' * (enrolled != 1)} enrolled in {course.title}" + (
        f"; {others} address{'es' * (others != 1)} not enrolled: see the list" if others else ""
    )
    return htmx.answer(
        "teaching/partials/enrol_update.html",
        page="teaching/roster.html",
        ids=("enrol",),
        status=200 if results else 422,
        message=message if results else None,
        **_roster_ctx(course, form=EnrolForm(formdata=None) if results else form, results=results),
    )


@bp.post(BASE + "/students/<int:student_id>/remove")
@login_required
def remove(course_id: int, student_id: int):
    course = _course(course_id)
    row = f"student-{student_id}"
    if not htmx.targets(row) and request.form.get("confirm") != "yes":
        # Without JavaScript nothing asked "are you sure?" (htmx's hx-confirm did for the row):
        # this page asks, naming the student, and its button posts confirm=yes.
        who = access.student_for_teacher(course, student_id)
        return _teaching_page("teaching/remove_confirm.html", course, "students", student=who)
    student = roster.remove_student(course, student_id)
    message = f"{student.name} was removed from the course. Their work is kept."
    if not htmx.targets(row):
        flash(message, "success")
        return htmx.hx_redirect(url_for("teaching.roster", course_id=course.id))
    ctx = _roster_ctx(course)
    return htmx.answer("teaching/partials/removed.html", ids=(row,), message=message, **ctx)


@bp.get(BASE + "/students/<int:student_id>")
@login_required
def student(course_id: int, student_id: int):
    course = _course(course_id)
    who, rows = roster.student_record(course, student_id)
    return _teaching_page("teaching/student.html", course, "students", student=who, rows=rows)


def _teaching_page(template: str, course, tab: str, **ctx) -> str:
    """A page under the course tabs (which show the number of submissions to grade)."""
    queue_count = grading.queue_count(course.id)
    return render_template(template, course=course, tab=tab, queue_count=queue_count, **ctx)


# --- grading queue -----------------------------------------------------------------------------

NONE_LEFT = {
    grading_queue.NEXT: "Nothing else is waiting.",
    grading_queue.PREVIOUS: "This is the oldest submission waiting.",
}


def _panel(course, completion, form=None, status: int = 200, message=None, headers=None, **ctx):
    """One submission (a ``grading.Submission``) in the grading panel: the fragment for htmx;
    else the grading page, with the queue's oldest submissions beside it."""
    if completion is not None and form is None:
        form = GradeForm(
            formdata=None,
            grade=completion.grade,
            comment=completion.grader_comment,
            version=grading.version_of(completion),
        )
    ctx = {"course": course, "completion": completion, "form": form, "tab": "grading", **ctx}
    answer = {"status": status, "message": message, "headers": headers}
    if htmx.targets(PANEL):
        return htmx.answer("teaching/partials/grading_panel.html", ids=(PANEL,), **answer, **ctx)
    if "queue" not in ctx:
        ctx["queue"], ctx["queue_count"] = grading_queue.queue_list(course.id)
    return htmx.answer(page="teaching/grading.html", **answer, **ctx)


@bp.get(BASE + "/grading")
@login_required
def grading_page(course_id: int):
    course = _course(course_id)
    queue, count = grading_queue.queue_list(course.id)
    try:
        first = grading.submission(course, queue[0].id) if queue else None
    except NotFound:  # graded or taken back since the list was read
        first = None
    return _panel(course, first, queue=queue, queue_count=count)


@bp.get(BASE + "/grading/<int:completion_id>")
@login_required
def submission(course_id: int, completion_id: int):
    course = _course(course_id)
    return _panel(course, grading.submission(course, completion_id), focus="heading")


@bp.get(BASE + "/grading/<int:completion_id>/<any(next, previous):which>")
@login_required
def neighbour(course_id: int, completion_id: int, which: str):
    """The Previous and Next links: the neighbour is looked up when the link is followed."""
    course = _course(course_id)
    found = grading.neighbour(course, completion_id, which)
    message = None if found is not None else NONE_LEFT[which]
    found = found or grading.submission(course, completion_id)
    url = url_for("teaching.submission", course_id=course.id, completion_id=found.id)
    if not htmx.targets(PANEL):
        if message:
            flash(message, "warning")
        return htmx.hx_redirect(url)
    push = {"HX-Push-Url": url}  # the submission's own address, not the link's
    return _panel(course, found, message=message, headers=push, focus="heading")


def _save_grade(form, save):
    """Run ``save()`` if ``form`` is valid: (its result, 200, None), else (None, the status to
    answer, the conflict message when someone changed the submission first)."""
    if not form.validate():
        return None, 422, None
    try:
        return save(), 200, None
    except grading.StaleGrade as exc:
        return None, 409, exc.message
    except Invalid as exc:
        form.grade.errors = [exc.message]
        return None, 422, None


@bp.post(BASE + "/grading/<int:completion_id>")
@login_required
def grade(course_id: int, completion_id: int):
    course, form = _course(course_id), GradeForm()
    shown = _shown(course)
    save = partial(
        grading.grade_and_advance, course, completion_id, _me(), form.grade.data,
        form.comment.data or "", form.version.data, advance=request.form.get("action") == "next",
    )  # fmt: skip
    saved, status, conflict = _save_grade(form, save)
    if saved is None:
        current = grading.submission(course, completion_id)
        if conflict:  # the grader's input stays; the version becomes the one now shown
            form.version.data = grading.version_of(current)
        return _panel(course, current, form, status, focus="grade", conflict=conflict)
    done, target, count = saved
    course = shown
    message = f"Saved: {done.grade} for {done.student_name}"
    if not htmx.targets(PANEL):
        flash(message, "success")
        if target is None:
            return htmx.hx_redirect(url_for("teaching.grading_page", course_id=course.id))
        to = url_for("teaching.submission", course_id=course.id, completion_id=target.id)
        return htmx.hx_redirect(to)
    # The queue beside the panel is not read again: its count changes out of band, teaching.js
    # marks the graded one, and an empty queue is swapped in when nothing is left.
    return _panel(
        course, target, focus="grade", saved=message, message=message,
        oob=True, graded=done.id, queue=[], queue_count=count,
    )  # fmt: skip


# --- gradebook ---------------------------------------------------------------------------------

VIEW = "gradebook-view"  # the part of the gradebook page that moves page by page


@bp.get(BASE + "/gradebook", endpoint="gradebook")
@login_required
def gradebook_page(course_id: int):
    course = _course(course_id)
    fragment = htmx.targets(VIEW)  # moving through the pages: the tabs are not sent again
    pages = {"page": _page_arg(), "block_page": request.args.get("blocks", 1, type=int)}
    book = gradebook.gradebook(course, **pages, count=not fragment)
    # Cell links relative to the page (they are most of its bytes): "gradebook/cells/<id>".
    here = posixpath.dirname(url_for("teaching.gradebook", course_id=course.id))
    cell = url_for("teaching.cell_edit", course_id=course.id, completion_id=0)
    ctx = {"course": course, "book": book, "cell_base": posixpath.relpath(cell, here)[:-1],
           "rules": AVERAGE_RULES}  # fmt: skip
    return htmx.answer(
        "teaching/partials/gradebook_view.html", page="teaching/gradebook.html", ids=(VIEW,),
        tab="gradebook", queue_count=book.queue_count, rule_form=_rule_form(course), **ctx,
    )  # fmt: skip


def _rule_form(course, formdata=None) -> AverageRuleForm:
    return AverageRuleForm(formdata=formdata, rule=course.average_rule)


@bp.post(BASE + "/gradebook/average")
@login_required
def average_rule(course_id: int):
    """The course's choice: missing work counts as 0, or the average of graded work."""
    course = _course(course_id)
    form = AverageRuleForm()
    if form.validate():
        said = gradebook.set_average_rule(course, form.rule.data)
        flash(f"Averages now: {said}.", "success")
    else:
        flash(form.rule.errors[0], "error")
    return htmx.hx_redirect(url_for("teaching.gradebook", course_id=course_id))


def _cell_form(course, completion, cell, form=None, status: int = 200, **extra):
    """A gradebook cell's form: in place for htmx, else on a page of its own."""
    if form is None:
        form = CellForm(
            formdata=None, prefix=f"c{completion.id}", grade=cell.grade, version=cell.version
        )
    ctx = {"course": course, "c": completion, "cell": cell, "form": form, **extra}
    if htmx.targets(f"cell-{completion.id}"):
        return htmx.answer("teaching/partials/cell_form.html", status=status, **ctx)
    page, blocks = gradebook.window_of(course, completion.student_id, completion.content_block_id)
    back = url_for("teaching.gradebook", course_id=course.id, page=page, blocks=blocks)
    return htmx.answer(
        page="teaching/cell.html", status=status, tab="gradebook", back=back,
        queue_count=grading.queue_count(course.id), **ctx,
    )  # fmt: skip


@bp.get(BASE + "/gradebook/cells/<int:completion_id>")
@login_required
def cell_edit(course_id: int, completion_id: int):
    course = _course(course_id)
    return _cell_form(course, *gradebook.gradebook_cell(course, completion_id))


@bp.get(BASE + "/gradebook/cells/<int:completion_id>/view")
@login_required
def cell_view(course_id: int, completion_id: int):
    course = _course(course_id)
    completion, cell = gradebook.gradebook_cell(course, completion_id)
    return render_template("teaching/partials/cell.html", course=course, c=completion, cell=cell)


@bp.post(BASE + "/gradebook/cells/<int:completion_id>")
@login_required
def cell_save(course_id: int, completion_id: int):
    course = _course(course_id)
    shown = _shown(course)
    form = CellForm(prefix=f"c{completion_id}")
    window = {  # the page's students and blocks (hx-include), for the averages
        "students": gradebook.parse_ids(request.form.get("ws")),
        "blocks": gradebook.parse_ids(request.form.get("wb")),
    }
    save = partial(
        gradebook.save_cell, course, completion_id, _me(), form.grade.data, form.version.data,
        **window,
    )  # fmt: skip
    saved, status, conflict = _save_grade(form, save)
    if saved is None:
        completion, cell = gradebook.gradebook_cell(course, completion_id)
        if conflict:
            form.version.data = cell.version
        return _cell_form(course, completion, cell, form, status, conflict=conflict)
    done, course = saved.graded, shown
    message = f"Saved: {done.grade} for {done.student_name}"
    if not htmx.targets(f"cell-{completion_id}"):
        flash(message, "success")
        page, blocks = gradebook.window_of(course, done.student_id, done.block_id)
        to = url_for("teaching.gradebook", course_id=course.id, page=page, blocks=blocks)
        return htmx.hx_redirect(to)
    return htmx.answer(
        "teaching/partials/cell.html", message=message, course=course, cell=saved.cell,
        graded=done, row_avg=saved.row_avg, col_avg=saved.col_avg,
        queue_count=saved.queue_count,
    )  # fmt: skip


# --- exports -----------------------------------------------------------------------------------


@bp.get(BASE + "/gradebook.csv")
@login_required
def export_gradebook(course_id: int):
    course = _course(course_id)
    return htmx.download(exports.gradebook_csv(course), f"course-{course.id}-gradebook.csv")


@bp.get(BASE + "/progress.csv")
@login_required
def export_progress(course_id: int):
    course = _course(course_id)
    return htmx.download(exports.progress_csv(course), f"course-{course.id}-progress.csv")
