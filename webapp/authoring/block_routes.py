"""The editor's content blocks: add, the inline editor, move, duplicate, delete, the preview.

Plain forms first (POST, then a 303 back to the editor at the changed place); htmx gets the
fragment that changed, chosen by the HX-Target id (see ``routes``).
"""

from __future__ import annotations

from flask import abort, redirect, request
from flask_login import current_user, login_required

from .. import htmx
from ..guards import teacher_required
from ..markdown import render_markdown
from ..services import Invalid, access
from ..services import blocks as block_svc
from ..services import courses as svc
from . import bp
from . import messages as say
from .forms import BlockForm, NewBlockForm
from .routes import (
    _add_failed,
    _edit_arg,
    _editor_page,
    _editor_url,
    _first_error,
    _form_errors,
    _outline_done,
)


def _me():
    return current_user._get_current_object()


@bp.post("/teach/sections/<int:section_id>/blocks")
@login_required
def add_block(section_id: int):
    section = access.section_for_owner(section_id, _me())
    course = section.course
    form = NewBlockForm(prefix=f"new-block-{section_id}")
    if form.validate_on_submit():
        try:
            block = block_svc.add_block(section, form.title.data, form.type.data, url=form.url.data)
        except Invalid as exc:
            _form_errors(form, exc)
        else:
            # A video or link needs its URL: open the new block's editor straight away.
            added = say.block_placed(block.id, "added at", kind=True)
            return _outline_done(course, added, focus=f"block-{block.id}-edit")
    key = f"add-block-{section_id}"
    return _add_failed(
        course, key, "authoring/partials/add_block.html", form,
        {"edit": key, "edit_form": form}, section=section, form=form,
    )  # fmt: skip


def _block_partial(block, course_id: int, status=200, message=None, form=None):
    """One block alone: its row (``block``: a row from ``courses.block_row`` or
    ``blocks.update_block``, with its completions) or its form (``block``: the guarded block)."""
    return htmx.answer(
        "authoring/partials/block.html", status=status, message=message, course_id=course_id,
        block=block, can_edit=True, form=form, hx_target=htmx.target(),
    )  # fmt: skip


@bp.route("/teach/blocks/<int:block_id>", methods=["GET", "POST"])
@login_required
def block(block_id: int):
    """A block's inline editor: GET ?edit=1 the form, GET the summary, POST saves."""
    block = access.block_for_owner(block_id, _me())
    key = f"block-{block_id}"
    form = BlockForm(prefix=key)
    if request.method == "GET":
        if not htmx.targets(key):
            return redirect(_editor_url(block.section.course_id, key, edit=_edit_arg(key)))
        if "edit" in request.args:
            form.process(obj=block)
            return _block_partial(block, block.section.course_id, form=form)
        row = svc.block_row(block)
        return _block_partial(row, row.course_id)
    row = None
    if form.validate_on_submit():
        try:
            row = block_svc.update_block(
                block, form.title.data, form.type.data, form.url.data, form.content.data,
                form.description.data,
            )  # fmt: skip
        except Invalid as exc:
            _form_errors(form, exc)
    if row is None and htmx.targets(key):
        message = "Block not saved: " + _first_error(form)
        return _block_partial(block, block.section.course_id, 422, message, form=form)
    if row is None:
        return _editor_page(block.section.course, 422, edit=key, edit_form=form)
    if htmx.targets(key):
        return _block_partial(row, row.course_id, message=f"Block saved: {row.title}")
    return htmx.hx_redirect(_editor_url(row.course_id, key))


@bp.route("/teach/blocks/<int:block_id>/move", methods=["GET", "POST"])
@login_required
def move_block(block_id: int):
    """Up/Down (``direction``) or to the end of another section (``section_id``)."""
    block = access.block_for_owner(block_id, _me())
    course = block.section.course
    key = f"block-{block_id}"
    if request.method == "GET":  # the "Move to section" chooser
        return htmx.answer(
            "authoring/partials/move_block.html", page="authoring/move_block.html", ids=(key,),
            sections=svc.sections_of(course.id), course=course, block=block,
        )  # fmt: skip
    if "section_id" in request.form:
        # The guard parses the id: anything but one of your sections is a 404.
        target = access.section_for_owner(request.form["section_id"], _me())
        block_svc.move_block_to_section(block, target)
        focus = f"{key}-edit"
    else:
        direction = request.form.get("direction", "")
        try:
            block_svc.move_block(block, direction)
        except Invalid:
            abort(400)
        focus = f"{key}-{direction}"
    return _outline_done(course, say.block_placed(block_id), focus=focus)


@bp.post("/teach/blocks/<int:block_id>/duplicate")
@login_required
def duplicate_block(block_id: int):
    """A copy right after the block; focus goes to the copy's Edit."""
    block = access.block_for_owner(block_id, _me())
    course = block.section.course
    copy = block_svc.duplicate_block(block)
    added = say.block_placed(copy.id, "added at")
    return _outline_done(course, added, focus=f"block-{copy.id}-edit")


@bp.post("/teach/blocks/<int:block_id>/delete")
@login_required
def delete_block(block_id: int):
    block = access.block_for_owner(block_id, _me())
    course, title, section = block.section.course, block.title, block.section
    message = f"Deleted the block {title} from {section.title}"
    block_svc.delete_block(block)
    return _outline_done(course, message, focus=f"collapse-{section.id}")


@bp.post("/teach/preview")
@teacher_required
def preview():
    """Markdown rendered by the server, for the live preview next to a block's content."""
    name = next((k for k in request.form if k.endswith("content")), "")
    html = render_markdown(request.form.get(name, "")[: svc.CONTENT_MAX])
    return htmx.answer("authoring/partials/preview.html", page="authoring/preview.html", html=html)
