"""Learning over the API: enrolments (enrol, leave, my courses with progress), a block's page
for an enrolled student, and completions (mark, edit, undo, list mine). Students only; the
guards are ``access.course_for_student`` (in the services) and ``access.block_for_student``;
every figure comes from services/progress.py through the services."""

from __future__ import annotations

from flask import url_for
from marshmallow import Schema, fields

from ..markdown import render_markdown
from ..models import Role
from ..services import Conflict, NotFound, access
from ..services import learning as svc
from ..services import learning_outline as outline
from ..services.my_learning import my_learning, my_work
from . import bp, paging
from .courses import ProgressSchema, progress
from .schemas import text
from .security import authenticated, me

TAGS = ["learning"]
STUDENT = Role.STUDENT


class EnrolmentSchema(Schema):
    course_id = fields.Integer(required=True)
    title = fields.String(required=True)
    enrolled_at = fields.AwareDateTime(required=True)
    completed = fields.Boolean(required=True)
    progress = fields.Nested(ProgressSchema, required=True)


EnrolmentPageSchema = Schema.from_dict(paging.page_fields(EnrolmentSchema), name="EnrolmentPage")


class NewEnrolmentSchema(Schema):
    course_id = fields.Integer(required=True)


class WorkSchema(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True, allow_none=True)
    remarks = fields.String(required=True)
    grade = fields.Integer(required=True, allow_none=True)
    grader_comment = fields.String(required=True)
    graded_at = fields.AwareDateTime(required=True, allow_none=True)
    changed_since_graded = fields.Boolean(required=True)


class CompletionSchema(Schema):
    course_id = fields.Integer(required=True)
    block_id = fields.Integer(required=True)
    work = fields.Nested(WorkSchema, required=True, allow_none=True)
    course_completed = fields.Boolean(required=True)
    progress = fields.Nested(ProgressSchema, required=True, allow_none=True)


class WorkInputSchema(Schema):
    url = fields.String(
        load_default=None, allow_none=True,
        metadata={"description": "Your work's address (quizzes and assignments)"},
    )  # fmt: skip
    remarks = text(5000, load_default="")


class StudentBlockSchema(Schema):
    id = fields.Integer(required=True)
    course_id = fields.Integer(required=True)
    section_id = fields.Integer(required=True)
    title = fields.String(required=True)
    type = fields.String(required=True)
    url = fields.String(required=True, allow_none=True)
    description = fields.String(required=True)
    content = fields.String(required=True, metadata={"description": "Markdown"})
    content_html = fields.String(required=True, metadata={"description": "The content as HTML"})
    previous_id = fields.Integer(required=True, allow_none=True)
    next_id = fields.Integer(required=True, allow_none=True)
    work = fields.Nested(WorkSchema, required=True, allow_none=True)
    progress = fields.Nested(ProgressSchema, required=True)


class MyWorkSchema(WorkSchema):
    block_id = fields.Integer(required=True)
    block_title = fields.String(required=True)
    block_type = fields.String(required=True)
    course_id = fields.Integer(required=True)
    course_title = fields.String(required=True)
    completed_at = fields.AwareDateTime(required=True)


MyWorkPageSchema = Schema.from_dict(paging.page_fields(MyWorkSchema), name="MyWorkPage")


def _work(w) -> dict | None:
    if w is None:
        return None
    changed = getattr(w, "changed_since_graded", None)
    if changed is None:  # a CompletedContentBlock row
        changed = w.graded_at is not None and w.updated_at > w.graded_at
    return {
        "id": w.id, "url": w.url, "remarks": w.feedback, "grade": w.grade,
        "grader_comment": w.grader_comment, "graded_at": w.graded_at,
        "changed_since_graded": bool(changed),
    }  # fmt: skip


def _enrolments() -> list[dict]:
    return [
        {
            "course_id": c.course.id,
            "title": c.course.title,
            "enrolled_at": c.enrolment.enrolled_at,
            "completed": c.enrolment.completed,
            "progress": {"done": c.done, "total": c.total, "percent": c.percent},
        }  # fmt: skip
        for c in my_learning(me()).courses
    ]


@bp.route("/enrolments", methods=["GET"], tags=TAGS)
@authenticated(STUDENT)
@bp.arguments(paging.PageArgs, location="query")
@bp.response(200, EnrolmentPageSchema)
def list_enrolments(args):
    """My courses, newest enrolment first, with my progress in each."""
    page_no, limit = paging.decode(args["cursor"], args["limit"]), args["limit"]
    rows = _enrolments()
    start = (page_no - 1) * limit
    return paging.page(rows[start : start + limit], page_no, limit, len(rows) > start + limit)


@bp.route("/enrolments", methods=["POST"], tags=TAGS)
@authenticated(STUDENT)
@bp.arguments(NewEnrolmentSchema)
@bp.response(201, EnrolmentSchema)
def enrol(args):
    """Enrol in a published course (enrolling twice changes nothing)."""
    svc.enrol(args["course_id"], me())
    location = url_for("api.get_enrolment", course_id=args["course_id"])
    return _enrolment(args["course_id"]), 201, {"Location": location}


@bp.route("/enrolments/<int:course_id>", methods=["GET"], tags=TAGS)
@authenticated(STUDENT)
@bp.response(200, EnrolmentSchema)
def get_enrolment(course_id: int):
    """My enrolment in a course, with my progress."""
    return _enrolment(course_id)


def _enrolment(course_id: int) -> dict:
    found = next((e for e in _enrolments() if e["course_id"] == course_id), None)
    if found is None:
        raise NotFound("You are not enrolled in this course.")
    return found


@bp.route("/enrolments/<int:course_id>", methods=["DELETE"], tags=TAGS)
@authenticated(STUDENT)
@bp.response(204)
def unenrol(course_id: int):
    """Leave a course; my completions are kept and count again if I come back."""
    svc.unenrol(course_id, me())
    return "", 204


BLOCK = "/courses/<int:course_id>/blocks/<int:block_id>"


@bp.route(BLOCK, methods=["GET"], tags=TAGS)
@authenticated(STUDENT)
@bp.response(200, StudentBlockSchema)
def read_block(course_id: int, block_id: int):
    """A block of a course I am enrolled in, with my work; it becomes where I resume."""
    view = outline.block_page(course_id, block_id, me())
    b = view.block
    body = {
        "id": b.id, "course_id": view.course_id, "section_id": b.section_id, "title": b.title,
        "type": b.type, "url": b.url, "description": b.description, "content": b.content,
        "content_html": str(render_markdown(b.content)),
        "previous_id": view.prev.id if view.prev else None,
        "next_id": view.next.id if view.next else None,
        "work": _work(view.completion), "progress": progress(view.figures),
    }  # fmt: skip
    svc.record_visit(view)
    return body


def _change(change, status: int = 200):
    if change.refused:
        raise Conflict(change.refused)
    body = {
        "course_id": change.course_id,
        "block_id": change.block.id,
        "work": _work(change.completion),
        "course_completed": bool(change.completed),
        "progress": progress(change.figures) if change.figures else None,
    }
    return body, status


@bp.route(BLOCK + "/completion", methods=["GET"], tags=TAGS)
@authenticated(STUDENT)
@bp.response(200, CompletionSchema)
def get_completion(course_id: int, block_id: int):
    """My completion of a block (404 if it is not marked complete)."""
    change = svc.unchanged(access.block_for_student(course_id, block_id, me()))
    if change.completion is None:
        raise NotFound(svc.NOT_DONE)
    return _change(change)


@bp.route(BLOCK + "/completion", methods=["PUT"], tags=TAGS)
@authenticated(STUDENT)
@bp.arguments(WorkInputSchema)
@bp.response(200, CompletionSchema)
@bp.alt_response(201, schema=CompletionSchema, description="Marked complete now")
def complete(args, course_id: int, block_id: int):
    """Mark the block complete.

    Quizzes and assignments need the ``url`` of the work. 201 the first time, 200 after:
    marking it again changes nothing."""
    held = access.block_for_student(course_id, block_id, me(), hold=True)
    new = held.completion is None
    body, status = _change(svc.complete(held, args["url"], args["remarks"]), 201 if new else 200)
    headers = {"Location": url_for("api.get_completion", course_id=course_id, block_id=block_id)}
    return body, status, headers if new else {}


@bp.route(BLOCK + "/completion", methods=["PATCH"], tags=TAGS)
@authenticated(STUDENT)
@bp.arguments(WorkInputSchema)
@bp.response(200, CompletionSchema)
def edit_completion(args, course_id: int, block_id: int):
    """Change the url and remarks of my work (never its grade); 409 if it is not marked."""
    held = access.block_for_student(course_id, block_id, me())
    return _change(svc.edit(held, args["url"], args["remarks"]))


@bp.route(BLOCK + "/completion", methods=["DELETE"], tags=TAGS)
@authenticated(STUDENT)
@bp.response(204)
def undo_completion(course_id: int, block_id: int):
    """Take the completion back; 409 once a teacher has graded it."""
    _change(svc.undo(access.block_for_student(course_id, block_id, me(), hold=True)))
    return "", 204


@bp.route("/completions", methods=["GET"], tags=TAGS)
@authenticated(STUDENT)
@bp.arguments(paging.PageArgs, location="query")
@bp.response(200, MyWorkPageSchema)
def list_completions(args):
    """Everything I have marked complete, newest first, with grades."""
    page_no, limit = paging.decode(args["cursor"], args["limit"]), args["limit"]
    rows, more = my_work(me(), page_no, limit)
    items = [
        {
            **_work(r.completion),
            "block_id": r.completion.content_block_id,
            "block_title": r.block_title,
            "block_type": r.block_type,
            "course_id": r.course_id,
            "course_title": r.course_title,
            "completed_at": r.completion.completed_at,
        }  # fmt: skip
        for r in rows
    ]
    return paging.page(items, page_no, limit, more)
