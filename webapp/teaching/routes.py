"""Teaching: roster, grading queue, gradebook and CSV exports. Only a course's owner."""

from __future__ import annotations

import json

from flask import (
    Response,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_required

from .. import htmx
from ..extensions import limiter
from ..services import Invalid, access, grading
from . import bp
from .forms import CellForm, EnrolForm, GradeForm

BASE = "/teach/courses/<int:course_id>"


@bp.app_context_processor
def _course_tabs_helpers():
    """For teaching/partials/course_tabs.html, which other blueprints' pages may include too."""
    return {
        "has_endpoint": lambda name: name in current_app.view_functions,
        "teaching_queue_count": grading.queue_count,
    }


def _enrol_cost() -> int:
    """Every address of a paste counts against the hourly budget (a refused paste costs nothing)."""
    n = len(grading.parse_addresses(request.form.get("emails", "")))
    return max(1, min(n, grading.MAX_ENROL_ADDRESSES))


# "No such student" tells the teacher who was not enrolled, so enrolling by email is also a way
# to ask whether an address is a student's account. A per-teacher budget of addresses keeps that
# from becoming an enumeration oracle (docs/teaching.md).
enrol_limit = limiter.limit(
    lambda: current_app.config.get("ENROL_LIMIT", "500 per hour"),
    key_func=lambda: f"enrol-teacher:{current_user.get_id()}",
    methods=["POST"],
    exempt_when=lambda: not current_user.is_authenticated,
    deduct_when=lambda response: response.status_code < 400,
    cost=_enrol_cost,
)


def _course(course_id: int):
    """The one guard of every teaching URL: the course's owner, or 404."""
    return access.course_for_owner(course_id, current_user._get_current_object())


def _int_arg(name: str, default: int = 1) -> int:
    try:
        return int(request.args.get(name, default))
    except (TypeError, ValueError):
        return default


def _announce(resp, text: str):
    resp.headers["HX-Trigger"] = json.dumps({"announce": text})
    return resp


# --- roster ------------------------------------------------------------------------------------


def _roster_ctx(course, **extra):
    q = request.args.get("q", "")
    sort = request.args.get("sort", "name")
    order = "desc" if request.args.get("order") == "desc" else "asc"
    result = grading.roster(course, q=q, sort=sort, order=order, page=_int_arg("page"))
    return {
        "course": course,
        "roster": result,
        "q": q,
        "sort": sort if sort in grading.ROSTER_SORTS else "name",
        "order": order,
        "queue_count": grading.queue_count(course.id),
        "tab": "students",
        **extra,
    }


@bp.get(BASE + "/students")
@login_required
def roster(course_id: int):
    course = _course(course_id)
    ctx = _roster_ctx(course, form=EnrolForm(formdata=None))
    return htmx.answer(
        "teaching/partials/roster_table.html",
        page="teaching/roster.html",
        ids=("roster-table",),
        **ctx,
    )


@bp.post(BASE + "/students")
@enrol_limit
@login_required
def enrol(course_id: int):
    course = _course(course_id)
    form = EnrolForm()
    results, status = None, 200
    if form.validate():
        try:
            results = grading.enrol_by_email(course, form.emails.data)
        except Invalid as exc:
            form.emails.errors = [exc.message]
    if form.errors:
        status = 422
    elif not htmx.targets("enrol"):
        for address, result in results:
            flash(f"{address}: {result}", "success" if result == "enrolled" else "warning")
        return redirect(url_for("teaching.roster", course_id=course.id), code=303)
    else:
        form = EnrolForm(formdata=None)
    ctx = _roster_ctx(course, form=form, results=results)
    template = "teaching/partials/enrol.html" if htmx.targets("enrol") else "teaching/roster.html"
    resp = make_response(render_template(template, oob=htmx.targets("enrol"), **ctx), status)
    if results:
        enrolled = sum(1 for _, r in results if r == "enrolled")
        _announce(resp, f"{enrolled} enrolled")
    return resp


@bp.post(BASE + "/students/<int:student_id>/remove")
@login_required
def remove(course_id: int, student_id: int):
    course = _course(course_id)
    row = f"student-{student_id}"
    if not htmx.targets(row) and request.form.get("confirm") != "yes":
        # Without JavaScript nothing asked "are you sure?" (htmx's hx-confirm did for the row):
        # this page asks, naming the student, and its button posts confirm=yes.
        return render_template(
            "teaching/remove_confirm.html",
            course=course,
            student=access.student_for_teacher(course, student_id),
            tab="students",
        )
    student = grading.remove_student(course, student_id)
    message = f"{student.name} was removed from the course. Their work is kept."
    if htmx.targets(row):
        ctx = _roster_ctx(course)
        resp = make_response(render_template("teaching/partials/removed.html", **ctx))
        return _announce(resp, message)
    flash(message, "success")
    return redirect(url_for("teaching.roster", course_id=course.id), code=303)


@bp.get(BASE + "/students/<int:student_id>")
@login_required
def student(course_id: int, student_id: int):
    course = _course(course_id)
    who, rows = grading.student_record(course, student_id)
    return render_template(
        "teaching/student.html",
        course=course,
        student=who,
        rows=rows,
        queue_count=grading.queue_count(course.id),
        tab="students",
    )


# --- grading queue -----------------------------------------------------------------------------


def _grade_form(completion) -> GradeForm:
    return GradeForm(
        formdata=None,
        grade=completion.grade,
        comment=completion.grader_comment,
        version=grading.version_of(completion),
    )


def _panel_ctx(course, completion, form=None, **extra):
    prev_id, next_id = grading.neighbours(course.id, completion)
    if completion is not None and form is None:
        form = _grade_form(completion)
    return {
        "course": course,
        "completion": completion,
        "grader": grading.grader_of(completion) if completion is not None else None,
        "form": form,
        "prev_id": prev_id,
        "next_id": next_id,
        "queue": grading.queue_list(course.id),
        "queue_count": grading.queue_count(course.id),
        "tab": "grading",
        **extra,
    }


@bp.get(BASE + "/grading")
@login_required
def grading_page(course_id: int):
    course = _course(course_id)
    first = grading.neighbours(course.id, None)[1]
    completion = access.completion_for_grader(course, first) if first else None
    return render_template("teaching/grading.html", **_panel_ctx(course, completion))


@bp.get(BASE + "/grading/<int:completion_id>")
@login_required
def submission(course_id: int, completion_id: int):
    course = _course(course_id)
    completion = access.completion_for_grader(course, completion_id)
    fragment = htmx.targets("grading-panel")
    ctx = _panel_ctx(course, completion, focus="heading", oob=fragment)
    return htmx.answer(
        "teaching/partials/grading_panel.html",
        page="teaching/grading.html",
        ids=("grading-panel",),
        **ctx,
    )


@bp.post(BASE + "/grading/<int:completion_id>")
@login_required
def grade(course_id: int, completion_id: int):
    course = _course(course_id)
    form = GradeForm()
    fragment = htmx.targets("grading-panel")
    template = "teaching/partials/grading_panel.html" if fragment else "teaching/grading.html"

    def again(completion, status, **extra):
        ctx = _panel_ctx(course, completion, form, focus="grade", oob=fragment, **extra)
        return make_response(render_template(template, **ctx), status)

    if not form.validate():
        return again(access.completion_for_grader(course, completion_id), 422)
    try:
        done, target = grading.grade_and_advance(
            course,
            completion_id,
            current_user._get_current_object(),
            form.grade.data,
            form.comment.data or "",
            form.version.data,
            advance=request.form.get("action") == "next",
        )
    except grading.StaleGrade as exc:
        form.version.data = grading.version_of(exc.completion)
        return again(exc.completion, 409, conflict=exc.message)
    except Invalid as exc:
        form.grade.errors = [exc.message]
        return again(access.completion_for_grader(course, completion_id), 422)
    message = f"Saved: {done.grade} for {done.student.name}"
    if not fragment:
        flash(message, "success")
        if target is None:
            return redirect(url_for("teaching.grading_page", course_id=course.id), code=303)
        return redirect(
            url_for("teaching.submission", course_id=course.id, completion_id=target.id), code=303
        )
    ctx = _panel_ctx(course, target, focus="grade", oob=True, saved=message)
    return _announce(make_response(render_template(template, **ctx)), message)


# --- gradebook ---------------------------------------------------------------------------------


@bp.get(BASE + "/gradebook")
@login_required
def gradebook(course_id: int):
    course = _course(course_id)
    book = grading.gradebook(course, page=_int_arg("page"))
    return render_template(
        "teaching/gradebook.html",
        course=course,
        book=book,
        queue_count=grading.queue_count(course.id),
        tab="gradebook",
    )


def _cell_form(completion, cell, formdata=None) -> CellForm:
    if formdata is not None:
        return CellForm(prefix=f"c{completion.id}")
    return CellForm(
        formdata=None, prefix=f"c{completion.id}", grade=cell.grade, version=cell.version
    )


def _cell_response(course, completion, cell, template, status=200, **extra):
    fragment = htmx.targets(f"cell-{completion.id}")
    ctx = {"course": course, "c": completion, "cell": cell, "tab": "gradebook", **extra}
    if not fragment:
        ctx["queue_count"] = grading.queue_count(course.id)
        template = "teaching/cell.html"
    return make_response(render_template(template, **ctx), status)


@bp.get(BASE + "/gradebook/cells/<int:completion_id>")
@login_required
def cell_edit(course_id: int, completion_id: int):
    course = _course(course_id)
    completion, cell = grading.gradebook_cell(course, completion_id)
    form = _cell_form(completion, cell)
    return _cell_response(course, completion, cell, "teaching/partials/cell_form.html", form=form)


@bp.get(BASE + "/gradebook/cells/<int:completion_id>/view")
@login_required
def cell_view(course_id: int, completion_id: int):
    course = _course(course_id)
    completion, cell = grading.gradebook_cell(course, completion_id)
    ctx = {"course": course, "c": completion, "cell": cell}
    return render_template("teaching/partials/cell.html", **ctx)


@bp.post(BASE + "/gradebook/cells/<int:completion_id>")
@login_required
def cell_save(course_id: int, completion_id: int):
    course = _course(course_id)
    completion, cell = grading.gradebook_cell(course, completion_id)
    form = _cell_form(completion, cell, formdata=True)
    form_tpl = "teaching/partials/cell_form.html"
    if not form.validate():
        return _cell_response(course, completion, cell, form_tpl, 422, form=form)
    try:
        saved = grading.save_cell(
            course,
            completion_id,
            current_user._get_current_object(),
            form.grade.data,
            form.version.data,
        )
    except grading.StaleGrade as exc:
        completion, cell = grading.gradebook_cell(course, completion_id)
        form.version.data = cell.version
        return _cell_response(
            course, completion, cell, form_tpl, 409, form=form, conflict=exc.message
        )
    except Invalid as exc:
        form.grade.errors = [exc.message]
        return _cell_response(course, completion, cell, form_tpl, 422, form=form)
    message = f"Saved: {saved.completion.grade} for {saved.completion.student.name}"
    if not htmx.targets(f"cell-{completion_id}"):
        flash(message, "success")
        return redirect(url_for("teaching.gradebook", course_id=course.id), code=303)
    ctx = {
        "course": course,
        "c": saved.completion,
        "cell": saved.cell,
        "oob": True,
        "row_avg": saved.row_avg,
        "col_avg": saved.col_avg,
        "queue_count": grading.queue_count(course.id),
    }
    resp = make_response(render_template("teaching/partials/cell.html", **ctx))
    return _announce(resp, message)


# --- exports -----------------------------------------------------------------------------------


def _csv(rows, filename: str) -> Response:
    resp = Response(stream_with_context(rows), mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


@bp.get(BASE + "/gradebook.csv")
@login_required
def export_gradebook(course_id: int):
    course = _course(course_id)
    return _csv(grading.gradebook_csv(course), f"course-{course.id}-gradebook.csv")


@bp.get(BASE + "/progress.csv")
@login_required
def export_progress(course_id: int):
    course = _course(course_id)
    return _csv(grading.progress_csv(course), f"course-{course.id}-progress.csv")
