"""Course authoring for teachers: the dashboard, and the one-page course editor.

Every interaction is a plain form (POST, then a 303 back to the editor at the changed place);
htmx adds hx-* on top and gets back the fragment that changed, chosen by the HX-Target id.
"""

from __future__ import annotations

from flask import (
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from .. import htmx
from ..extensions import client_ip
from ..guards import teacher_required
from ..markdown import render_markdown
from ..services import Conflict, Invalid, access, grading
from ..services import blocks as block_svc
from ..services import courses as svc
from ..services.dashboard import teacher_dashboard
from . import bp
from . import messages as say
from .forms import (
    BlockForm,
    CourseDescriptionForm,
    CourseForm,
    CourseTitleForm,
    NewBlockForm,
    SectionDescriptionForm,
    SectionForm,
    SectionTitleForm,
)

FIELD = "authoring/partials/field.html"
FIELD_FORMS = {
    ("course", "title"): CourseTitleForm,
    ("course", "description"): CourseDescriptionForm,
    ("section", "title"): SectionTitleForm,
    ("section", "description"): SectionDescriptionForm,
}


@bp.context_processor
def _template_helpers():
    return {"render_markdown": render_markdown}


def _me():
    return current_user._get_current_object()


def _editor_url(course_id: int, anchor: str | None = None, **args) -> str:
    return url_for("authoring.editor", course_id=course_id, _anchor=anchor, **args)


def _edit_arg(key: str) -> str | None:
    """A plain GET of an in-place URL lands on the editor, in edit mode if it asked for it."""
    return key if "edit" in request.args else None


def _form_errors(form, exc: Invalid) -> None:
    """Put a service's Invalid next to the field it names (or the first field)."""
    name = exc.field if exc.field and exc.field in form._fields else next(iter(form._fields))
    form._fields[name].errors = [*form._fields[name].errors, exc.message]


def _first_error(form) -> str:
    return next((e for errors in form.errors.values() for e in errors), "check the form")


def _field_form(kind: str, name: str, row, **kwargs):
    """The in-place form of a course's or section's title or description."""
    # Field ids must differ from the in-place container ids (course-title, section-5-title, …).
    prefix = "course-edit" if kind == "course" else f"section-{row.id}-edit"
    return FIELD_FORMS[kind, name](prefix=prefix, **kwargs)


def _forms_ctx() -> dict:
    """Factories for the forms the editor shows (unbound: filled from the objects)."""
    return {
        "new_block_form": lambda s: NewBlockForm(formdata=None, prefix=f"new-block-{s.id}"),
        "new_section_form": SectionForm(formdata=None, prefix="new-section"),
        "field_form": lambda kind, name, row: _field_form(kind, name, row, formdata=None, obj=row),
    }


def _editor_page(course, status: int = 200, **ctx):
    me = _me()
    o = svc.outline(course, me)
    edit = ctx.setdefault("edit", request.args.get("edit", ""))
    can_edit = access.owns(course, me)
    block_id = edit.removeprefix("block-") if edit.startswith("block-") else ""
    if can_edit and not ctx.get("edit_form") and block_id.isdecimal() and o.has_block(block_id):
        # ?edit=block-5 (no JavaScript): the rows hold no content; the form needs the block.
        block = access.block_for_owner(block_id, me)
        ctx["edit_form"] = BlockForm(formdata=None, obj=block, prefix=edit)
    ctx.setdefault("edit_form", None)
    queue_count = grading.queue_count(course.id) if can_edit else None
    html = render_template(
        "authoring/editor.html", o=o, course=course, can_edit=can_edit,
        queue_count=queue_count, **{**_forms_ctx(), **ctx},
    )  # fmt: skip
    return make_response(html, status)


def _outline_done(course, message, focus: str | None = None, status: int = 200):
    """After a change of the structure: the outline for htmx, back to the editor otherwise.
    ``message`` is the text, or a function of the new outline that writes it (``messages``)."""
    o = svc.outline(course, _me()) if callable(message) or htmx.targets("outline") else None
    message = message(o) if callable(message) else message
    if not htmx.targets("outline"):
        flash(message, "error" if status >= 400 else "success")
        return htmx.hx_redirect(_editor_url(course.id, _anchor(focus)))
    return htmx.answer(
        "authoring/partials/outline.html", status=status, message=message,
        o=o, course=course, can_edit=True, edit="", edit_form=None,
        focus=focus, **_forms_ctx(),
    )  # fmt: skip


def _add_failed(course, key: str, fragment: str, form, page_ctx: dict, /, **ctx):
    """An "Add section/block" form with errors: retargeted to itself for htmx, else the page."""
    if not htmx.targets("outline"):
        return _editor_page(course, 422, **page_ctx)
    return htmx.answer(
        fragment, status=422, message="Not saved: " + _first_error(form),
        headers={"HX-Retarget": f"#{key}", "HX-Reswap": "outerHTML"}, **ctx,
    )  # fmt: skip


def _anchor(focus: str | None) -> str | None:
    """The element id to scroll to for a focus key ("block-5-up" -> "block-5")."""
    if not focus:
        return None
    if focus.startswith("collapse-"):
        return "section-" + focus.removeprefix("collapse-")
    head, _, tail = focus.rpartition("-")
    return head if tail in ("up", "down", "edit") else focus


# --- dashboard and new course ----------------------------------------------------------------


@bp.get("/teach")
@teacher_required
def dashboard():
    # The grading queue belongs to the teaching blueprint; link to it where it is installed.
    grading = (
        "teaching.grading_page" if "teaching.grading_page" in current_app.view_functions else None
    )
    return render_template(
        "authoring/dashboard.html", rows=teacher_dashboard(_me()), grading=grading
    )


@bp.route("/teach/courses/new", methods=["GET", "POST"])
@teacher_required
def new_course():
    form = CourseForm(prefix="course")
    if form.validate_on_submit():
        try:
            course = svc.create_course(_me(), form.title.data, form.description.data)
        except Invalid as exc:
            _form_errors(form, exc)
        else:
            flash("Course created as a draft. Add a section to begin.", "success")
            return htmx.hx_redirect(url_for("authoring.editor", course_id=course.id))
    status = 422 if form.errors else 200
    return render_template("authoring/new_course.html", form=form), status


# --- the editor and the course ---------------------------------------------------------------


@bp.get("/teach/courses/<int:course_id>")
@login_required
def editor(course_id: int):
    return _editor_page(access.course_for_manager(course_id, _me()))


_FIELD_URL = "/teach/{}/<int:row_id>/<any(title, description):name>"


@bp.route(_FIELD_URL.format("courses"), methods=["GET", "POST"], defaults={"kind": "course"})
@bp.route(_FIELD_URL.format("sections"), methods=["GET", "POST"], defaults={"kind": "section"})
@login_required
def field(kind: str, row_id: int, name: str):
    """A course's or section's title or description in place: GET ?edit=1 the form, GET the
    text, POST saves; the fragment is #course-title, #section-5-description, … (FIELD)."""
    if kind == "course":
        row = access.course_for_owner(row_id, _me())
        course_id, key, save = row.id, f"course-{name}", svc.update_course_field
    else:
        row = access.section_for_owner(row_id, _me())
        course_id, key, save = row.course_id, f"section-{row_id}-{name}", svc.update_section_field
    form = _field_form(kind, name, row)
    ctx = {"kind": kind, "row": row, "name": name, "can_edit": True}
    if request.method == "GET":
        if not htmx.targets(key):
            return redirect(_editor_url(course_id, key, edit=_edit_arg(key)))
        editing = "edit" in request.args
        if editing:
            form.process(obj=row)
        return htmx.answer(FIELD, form=form if editing else None, hx_target=htmx.target(), **ctx)
    if form.validate_on_submit():
        try:
            # The row as saved, read back by the UPDATE: the fragment needs no other query.
            ctx["row"] = save(row, name, getattr(form, name).data)
        except Invalid as exc:
            _form_errors(form, exc)
    if form.errors and not htmx.targets(key):
        course = row if kind == "course" else access.course_for_owner(course_id, _me())
        return _editor_page(course, 422, edit=key, edit_form=form)
    return htmx.answer(
        FIELD, redirect_to=_editor_url(course_id, key), ids=(key,),
        status=422 if form.errors else 200,
        message=f"{kind.capitalize()} {name} not saved: " + " ".join(getattr(form, name).errors)
        if form.errors
        else say.field_saved(kind, name, ctx["row"]),
        form=form if form.errors else None, hx_target=htmx.target(), **ctx,
    )  # fmt: skip


@bp.post("/teach/courses/<int:course_id>/publish")
@login_required
def publish(course_id: int):
    course = access.course_for_owner(course_id, _me())
    try:
        message, error = svc.set_published(course, request.form.get("published") == "1"), None
    except Invalid as exc:
        error = message = exc.message
    if not htmx.targets("publish"):
        flash(message, "error" if error else "success")
    return htmx.answer(
        "authoring/partials/publish.html", redirect_to=_editor_url(course_id), ids=("publish",),
        status=422 if error else 200, message=message, course=course, can_edit=True, error=error,
    )  # fmt: skip


@bp.post("/teach/courses/<int:course_id>/delete")
@login_required
def delete_course(course_id: int):
    me = _me()
    course = access.course_for_manager(course_id, me)
    title = course.title
    svc.delete_course(course, me, ip=client_ip())
    flash(f"Deleted the course “{title}”.", "success")
    target = "authoring.dashboard" if me.is_teacher else "learning.catalogue"
    return htmx.hx_redirect(url_for(target))


@bp.post("/teach/courses/<int:course_id>/duplicate")
@teacher_required
def duplicate_course(course_id: int):
    course = access.course_for_owner(course_id, _me())
    copy = svc.duplicate_course(course, _me())
    flash("This is your copy, as a draft. The original is unchanged.", "success")
    return htmx.hx_redirect(url_for("authoring.editor", course_id=copy.id))


@bp.post("/teach/courses/<int:course_id>/order")
@login_required
def reorder(course_id: int):
    """The whole order at once (drag and drop): JSON [[section id, [block ids…]], …]."""
    course = access.course_for_owner(course_id, _me())
    # The app accepts 1 MiB bodies; an order is far smaller (CSRF checking has read the form
    # by now, so the cap is checked on the declared length and on the field itself).
    if (request.content_length or 0) > block_svc.ORDER_MAX_BYTES + 4096:
        abort(413)
    try:
        order = block_svc.parse_order(request.form.get("order"))
        before = say.order_of(svc.outline(course, _me()))  # to say what was dragged where
        block_svc.reorder(course, order)
    except Invalid as exc:
        return _outline_done(course, exc.message, status=422)
    except Conflict as exc:
        return _outline_done(course, exc.message, status=409)
    return _outline_done(course, say.reordered(before, order))


# --- sections --------------------------------------------------------------------------------


@bp.post("/teach/courses/<int:course_id>/sections")
@login_required
def add_section(course_id: int):
    course = access.course_for_owner(course_id, _me())
    form = SectionForm(prefix="new-section")
    if form.validate_on_submit():
        try:
            section = svc.add_section(course, form.title.data)
        except Invalid as exc:
            _form_errors(form, exc)
        else:
            added = say.section_placed(section.id, "added at")
            return _outline_done(course, added, focus=f"section-{section.id}-title")
    return _add_failed(
        course, "add-section", "authoring/partials/add_section.html", form,
        {"new_section_form": form}, course=course, new_section_form=form,
    )  # fmt: skip


@bp.post("/teach/sections/<int:section_id>/collapse")
@login_required
def collapse_section(section_id: int):
    section = access.section_for_owner(section_id, _me())
    course_id = section.course_id  # read before the commit expires the section
    svc.set_collapsed(section, _me(), request.form.get("collapsed") == "1")
    key = f"section-{section_id}"
    if not htmx.targets(key):
        return htmx.hx_redirect(_editor_url(course_id, key))
    o = svc.section_outline(section_id, _me())  # that section only
    if not o.sections:  # deleted in another tab meanwhile
        abort(404)
    return htmx.answer(
        "authoring/partials/section.html", o=o, section=o.sections[0], can_edit=True, edit="",
        edit_form=None, focus=f"collapse-{section_id}", **_forms_ctx(),
    )  # fmt: skip


@bp.post("/teach/sections/<int:section_id>/move")
@login_required
def move_section(section_id: int):
    section = access.section_for_owner(section_id, _me())
    direction = request.form.get("direction", "")
    try:
        svc.move_section(section, direction)
    except Invalid:
        abort(400)
    return _outline_done(
        section.course, say.section_placed(section_id), focus=f"section-{section_id}-{direction}"
    )


@bp.post("/teach/sections/<int:section_id>/delete")
@login_required
def delete_section(section_id: int):
    section = access.section_for_owner(section_id, _me())
    course, title = section.course, section.title
    svc.delete_section(section)
    return _outline_done(course, f"Deleted the section “{title}”.", focus="add-section")
