"""Course authoring for teachers: the dashboard, and the one-page course editor.

Every interaction is a plain form (POST, then a 303 back to the editor at the changed place);
htmx adds hx-* on top and gets back the fragment that changed, chosen by the HX-Target id.
"""

from __future__ import annotations

import json

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
from ..services import Conflict, Invalid, access
from ..services import courses as svc
from ..services.dashboard import teacher_dashboard
from . import bp
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

FIELD_FORMS = {"title": CourseTitleForm, "description": CourseDescriptionForm}
SECTION_FIELD_FORMS = {"title": SectionTitleForm, "description": SectionDescriptionForm}


@bp.context_processor
def _template_helpers():
    return {"render_markdown": render_markdown}


def _me():
    return current_user._get_current_object()


def _announce(resp, message: str):
    resp.headers["HX-Trigger"] = json.dumps({"announce": message})
    return resp


def _fragment(template: str, status: int = 200, message: str | None = None, **ctx):
    resp = make_response(render_template(template, **ctx), status)
    return _announce(resp, message) if message else resp


def _editor_url(course_id: int, anchor: str | None = None, **args) -> str:
    return url_for("authoring.editor", course_id=course_id, _anchor=anchor, **args)


def _edit_arg(key: str) -> str | None:
    """A plain GET of an in-place URL lands on the editor, in edit mode if it asked for it."""
    return key if "edit" in request.args else None


def _form_errors(form, exc: Invalid) -> None:
    """Put a service's Invalid next to the field it names (or the first field)."""
    name = exc.field if exc.field and exc.field in form._fields else next(iter(form._fields))
    form._fields[name].errors = [*form._fields[name].errors, exc.message]


def _forms_ctx() -> dict:
    """Factories for the forms the editor shows (unbound: filled from the objects)."""
    return {
        "new_block_form": lambda s: NewBlockForm(formdata=None, prefix=f"new-block-{s.id}"),
        "new_section_form": SectionForm(formdata=None, prefix="new-section"),
        "block_form": lambda b: BlockForm(formdata=None, obj=b, prefix=f"block-{b.id}"),
        "course_field_form": lambda name, c: FIELD_FORMS[name](
            formdata=None, obj=c, prefix="course-edit"
        ),
        "section_field_form": lambda name, s: SECTION_FIELD_FORMS[name](
            formdata=None, obj=s, prefix=f"section-{s.id}-edit"
        ),
    }


def _editor_page(course, status: int = 200, **ctx):
    me = _me()
    o = svc.outline(course, me)
    ctx.setdefault("edit", request.args.get("edit", ""))
    ctx.setdefault("edit_form", None)
    html = render_template(
        "authoring/editor.html", o=o, course=course, can_edit=access.owns(course, me),
        **{**_forms_ctx(), **ctx},
    )  # fmt: skip
    return make_response(html, status)


def _outline_done(course, message: str, focus: str | None = None, status: int = 200):
    """After a change of the structure: the outline for htmx, back to the editor otherwise."""
    if htmx.targets("outline"):
        o = svc.outline(course, _me())
        return _fragment(
            "authoring/partials/outline.html", status, message,
            o=o, course=course, can_edit=True, edit="", edit_form=None, focus=focus,
            **_forms_ctx(),
        )  # fmt: skip
    flash(message, "error" if status >= 400 else "success")
    return redirect(_editor_url(course.id, _anchor(focus)), code=303)


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


@bp.route("/teach/courses/<int:course_id>/<any(title, description):name>", methods=["GET", "POST"])
@login_required
def course_field(course_id: int, name: str):
    """Title or description in place: GET ?edit=1 the form, GET the text, POST saves."""
    course = access.course_for_owner(course_id, _me())
    key = f"course-{name}"
    # Field ids must differ from the in-place container ids (course-title, …).
    form = FIELD_FORMS[name](prefix="course-edit")
    if request.method == "GET":
        if not htmx.targets(key):
            return redirect(_editor_url(course_id, key, edit=_edit_arg(key)))
        editing = "edit" in request.args
        if editing:
            form.process(obj=course)
        return _fragment(
            "authoring/partials/course_field.html", course=course, name=name, can_edit=True,
            form=form if editing else None,
        )  # fmt: skip
    status, message = 200, "Saved"
    if form.validate_on_submit():
        try:
            svc.update_course_field(course, _me(), name, getattr(form, name).data)
        except Invalid as exc:
            _form_errors(form, exc)
    if form.errors:
        status, message = 422, "Not saved: " + " ".join(getattr(form, name).errors)
    if htmx.targets(key):
        return _fragment(
            "authoring/partials/course_field.html", status, message, course=course, name=name,
            can_edit=True, form=form if status == 422 else None,
        )  # fmt: skip
    if status == 422:
        return _editor_page(course, 422, edit=key, edit_form=form)
    return redirect(_editor_url(course_id, key), code=303)


@bp.post("/teach/courses/<int:course_id>/publish")
@login_required
def publish(course_id: int):
    course = access.course_for_owner(course_id, _me())
    published = request.form.get("published") == "1"
    svc.set_published(course, _me(), published)
    message = "Published: the course is in the catalogue." if published else "Back to draft."
    if htmx.targets("publish"):
        return _fragment(
            "authoring/partials/publish.html", message=message, course=course, can_edit=True
        )
    flash(message, "success")
    return redirect(_editor_url(course_id), code=303)


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
    if (request.content_length or 0) > svc.ORDER_MAX_BYTES + 4096:
        abort(413)
    try:
        svc.reorder(course, _me(), svc.parse_order(request.form.get("order")))
    except Invalid as exc:
        return _outline_done(course, exc.message, status=422)
    except Conflict as exc:
        return _outline_done(course, exc.message, status=409)
    return _outline_done(course, "Order saved")


# --- sections --------------------------------------------------------------------------------


@bp.post("/teach/courses/<int:course_id>/sections")
@login_required
def add_section(course_id: int):
    course = access.course_for_owner(course_id, _me())
    form = SectionForm(prefix="new-section")
    if form.validate_on_submit():
        try:
            section = svc.add_section(course, _me(), form.title.data)
        except Invalid as exc:
            _form_errors(form, exc)
        else:
            return _outline_done(course, "Section added", focus=f"section-{section.id}-title")
    if htmx.targets("outline"):
        resp = _fragment(
            "authoring/partials/add_section.html", 422, "Not saved: " + _first_error(form),
            course=course, new_section_form=form,
        )  # fmt: skip
        resp.headers["HX-Retarget"] = "#add-section"
        resp.headers["HX-Reswap"] = "outerHTML"
        return resp
    return _editor_page(course, 422, new_section_form=form)


def _first_error(form) -> str:
    return next((e for errors in form.errors.values() for e in errors), "check the form")


@bp.route(
    "/teach/sections/<int:section_id>/<any(title, description):name>", methods=["GET", "POST"]
)
@login_required
def section_field(section_id: int, name: str):
    section = access.section_for_owner(section_id, _me())
    key = f"section-{section_id}-{name}"
    form = SECTION_FIELD_FORMS[name](prefix=f"section-{section_id}-edit")
    if request.method == "GET":
        if not htmx.targets(key):
            return redirect(_editor_url(section.course_id, key, edit=_edit_arg(key)))
        editing = "edit" in request.args
        if editing:
            form.process(obj=section)
        return _fragment(
            "authoring/partials/section_field.html", section=section, name=name, can_edit=True,
            form=form if editing else None,
        )  # fmt: skip
    status, message = 200, "Saved"
    if form.validate_on_submit():
        try:
            svc.update_section_field(section, _me(), name, getattr(form, name).data)
        except Invalid as exc:
            _form_errors(form, exc)
    if form.errors:
        status, message = 422, "Not saved: " + " ".join(getattr(form, name).errors)
    if htmx.targets(key):
        return _fragment(
            "authoring/partials/section_field.html", status, message, section=section, name=name,
            can_edit=True, form=form if status == 422 else None,
        )  # fmt: skip
    if status == 422:
        return _editor_page(section.course, 422, edit=key, edit_form=form)
    return redirect(_editor_url(section.course_id, key), code=303)


@bp.post("/teach/sections/<int:section_id>/collapse")
@login_required
def collapse_section(section_id: int):
    section = access.section_for_owner(section_id, _me())
    collapsed = request.form.get("collapsed") == "1"
    svc.set_collapsed(section, _me(), collapsed)
    key = f"section-{section_id}"
    if htmx.targets(key):
        course = section.course
        o = svc.outline(course, _me())
        current = next(s for s in o.sections if s.id == section_id)
        return _fragment(
            "authoring/partials/section.html", o=o, course=course, section=current,
            can_edit=True, edit="", edit_form=None, focus=f"collapse-{section_id}",
            **_forms_ctx(),
        )  # fmt: skip
    return redirect(_editor_url(section.course_id, key), code=303)


@bp.post("/teach/sections/<int:section_id>/move")
@login_required
def move_section(section_id: int):
    section = access.section_for_owner(section_id, _me())
    direction = request.form.get("direction", "")
    try:
        svc.move_section(section, _me(), direction)
    except Invalid:
        abort(400)
    return _outline_done(section.course, "Section moved", focus=f"section-{section_id}-{direction}")


@bp.post("/teach/sections/<int:section_id>/delete")
@login_required
def delete_section(section_id: int):
    section = access.section_for_owner(section_id, _me())
    course, title = section.course, section.title
    svc.delete_section(section, _me())
    return _outline_done(course, f"Deleted the section “{title}”.", focus="add-section")


# --- blocks ----------------------------------------------------------------------------------


@bp.post("/teach/sections/<int:section_id>/blocks")
@login_required
def add_block(section_id: int):
    section = access.section_for_owner(section_id, _me())
    course = section.course
    form = NewBlockForm(prefix=f"new-block-{section_id}")
    if form.validate_on_submit():
        try:
            block = svc.add_block(
                section, _me(), form.title.data, form.type.data, url=form.url.data
            )
        except Invalid as exc:
            _form_errors(form, exc)
        else:
            # A video or link needs its URL: open the new block's editor straight away.
            return _outline_done(course, "Block added", focus=f"block-{block.id}-edit")
    key = f"add-block-{section_id}"
    if htmx.targets("outline"):
        resp = _fragment(
            "authoring/partials/add_block.html", 422, "Not saved: " + _first_error(form),
            section=section, form=form,
        )  # fmt: skip
        resp.headers["HX-Retarget"] = f"#{key}"
        resp.headers["HX-Reswap"] = "outerHTML"
        return resp
    return _editor_page(course, 422, edit=key, edit_form=form)


def _block_fragment(block, status=200, message=None, form=None):
    course = block.section.course
    o = svc.outline(course, _me())
    return _fragment(
        "authoring/partials/block.html", status, message, o=o, course=course,
        block=block, section=block.section, can_edit=True, form=form,
    )  # fmt: skip


@bp.route("/teach/blocks/<int:block_id>", methods=["GET", "POST"])
@login_required
def block(block_id: int):
    """A block's inline editor: GET ?edit=1 the form, GET the summary, POST saves."""
    block = access.block_for_owner(block_id, _me())
    key = f"block-{block_id}"
    form = BlockForm(prefix=key)
    course_id = block.section.course_id
    if request.method == "GET":
        if not htmx.targets(key):
            return redirect(_editor_url(course_id, key, edit=_edit_arg(key)))
        if "edit" in request.args:
            form.process(obj=block)
            return _block_fragment(block, form=form)
        return _block_fragment(block)
    if form.validate_on_submit():
        try:
            svc.update_block(
                block, _me(), form.title.data, form.type.data, form.url.data,
                form.content.data, form.description.data,
            )  # fmt: skip
        except Invalid as exc:
            _form_errors(form, exc)
    if form.errors:
        if htmx.targets(key):
            return _block_fragment(block, 422, "Not saved: " + _first_error(form), form=form)
        return _editor_page(block.section.course, 422, edit=key, edit_form=form)
    if htmx.targets(key):
        return _block_fragment(block, message="Saved")
    return redirect(_editor_url(course_id, key), code=303)


@bp.route("/teach/blocks/<int:block_id>/move", methods=["GET", "POST"])
@login_required
def move_block(block_id: int):
    """Up/Down (``direction``) or to the end of another section (``section_id``)."""
    block = access.block_for_owner(block_id, _me())
    course = block.section.course
    key = f"block-{block_id}"
    if request.method == "GET":  # the "Move to section" chooser
        o = svc.outline(course, _me())
        ctx = {"o": o, "course": course, "block": block, "section": block.section}
        if htmx.targets(key):
            return _fragment("authoring/partials/move_block.html", **ctx)
        return render_template("authoring/move_block.html", **ctx)
    if "section_id" in request.form:
        # The service's guard parses the id: anything but one of your sections is a 404.
        svc.move_block_to_section(block, _me(), request.form["section_id"])
        focus = f"{key}-edit"
    else:
        direction = request.form.get("direction", "")
        try:
            svc.move_block(block, _me(), direction)
        except Invalid:
            abort(400)
        focus = f"{key}-{direction}"
    return _outline_done(course, "Block moved", focus=focus)


@bp.post("/teach/blocks/<int:block_id>/delete")
@login_required
def delete_block(block_id: int):
    block = access.block_for_owner(block_id, _me())
    course, title, section_id = block.section.course, block.title, block.section_id
    svc.delete_block(block, _me())
    return _outline_done(course, f"Deleted the block “{title}”.", focus=f"collapse-{section_id}")


@bp.post("/teach/preview")
@teacher_required
def preview():
    """Markdown rendered by the server, for the live preview next to a block's content."""
    name = next((k for k in request.form if k.endswith("content")), "")
    html = render_markdown(request.form.get(name, "")[: svc.CONTENT_MAX])
    if htmx.is_htmx():
        return render_template("authoring/partials/preview.html", html=html)
    return render_template("authoring/preview.html", html=html)
