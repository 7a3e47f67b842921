"""Grading over the API: the queue, a submission (with its version as the ETag), a grade
saved only if the submission is still the version the grader read (If-Match, or ``version``
in the body; 409 otherwise), and the gradebook and progress exports (CSV). The course's
owner only (``access.course_for_owner``; submissions by ``access.grader_work``, in the
grading service)."""

from __future__ import annotations

from flask import request
from marshmallow import Schema, fields, validate

from ..htmx import download
from ..services import access, exports, grading
from ..services.grading_queue import queue_list
from . import bp
from .problems import answer
from .schemas import text
from .security import authenticated, me

TAGS = ["grading"]
BASE = "/courses/<int:course_id>"


class QueueItemSchema(Schema):
    id = fields.Integer(required=True, metadata={"description": "The submission's id"})
    student_name = fields.String(required=True)
    block_title = fields.String(required=True)
    updated_at = fields.AwareDateTime(required=True)
    regrade = fields.Boolean(required=True, metadata={"description": "Changed since graded"})


class QueueSchema(Schema):
    items = fields.List(fields.Nested(QueueItemSchema), required=True)
    next_cursor = fields.String(
        required=True, allow_none=True, metadata={"description": "Always null: the 50 oldest"}
    )
    waiting = fields.Integer(required=True, metadata={"description": "Counted up to 100"})


class SubmissionSchema(Schema):
    id = fields.Integer(required=True)
    student_id = fields.Integer(required=True)
    student_name = fields.String(required=True)
    block_id = fields.Integer(required=True)
    block_title = fields.String(required=True)
    url = fields.String(required=True, allow_none=True)
    remarks = fields.String(required=True)
    grade = fields.Integer(required=True, allow_none=True)
    grader_comment = fields.String(required=True)
    graded_at = fields.AwareDateTime(required=True, allow_none=True)
    updated_at = fields.AwareDateTime(required=True)
    version = fields.Integer(required=True)


class GradeSchema(Schema):
    grade = fields.Integer(required=True, validate=validate.Range(0, 100))
    comment = text(5000, load_default=None, allow_none=True)
    version = fields.Integer(
        validate=validate.Range(1, 2**31 - 1),
        metadata={"description": "The version read (or send it as If-Match)"},
    )


CSV = {"200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}}


def _body(s: grading.Submission) -> dict:
    return {
        "id": s.id, "student_id": s.student.id, "student_name": s.student.name,
        "block_id": s.block.id, "block_title": s.block.title, "url": s.url,
        "remarks": s.feedback, "grade": s.grade, "grader_comment": s.grader_comment,
        "graded_at": s.graded_at, "updated_at": s.updated_at, "version": s.version,
    }  # fmt: skip


def _etag(version: int) -> dict:
    return {"ETag": f'"{version}"'}


def _if_match() -> str | None:
    value = request.headers.get("If-Match", "").strip()
    if not value:
        return None
    return value.removeprefix("W/").strip('"')


@bp.route(BASE + "/grading", methods=["GET"], tags=TAGS)
@authenticated()
@bp.response(200, QueueSchema)
def queue(course_id: int):
    """The oldest submissions waiting for a grade (at most 50), and how many wait."""
    course = access.course_for_owner(course_id, me())
    items, waiting = queue_list(course.id)
    return {"items": [vars(i) for i in items], "next_cursor": None, "waiting": int(waiting)}


@bp.route(BASE + "/submissions/<int:submission_id>", methods=["GET"], tags=TAGS)
@authenticated()
@bp.response(200, SubmissionSchema, headers={"ETag": {"schema": {"type": "string"}}})
def get_submission(course_id: int, submission_id: int):
    """A student's work on a quiz or assignment; its ETag is the version to grade."""
    course = access.course_for_owner(course_id, me())
    s = grading.submission(course, submission_id)
    return _body(s), 200, _etag(s.version)


@bp.route(BASE + "/submissions/<int:submission_id>/grade", methods=["PUT"], tags=TAGS)
@authenticated()
@bp.arguments(GradeSchema)
@bp.response(200, SubmissionSchema)
def grade(args, course_id: int, submission_id: int):
    """Grade a submission (0 to 100) with an optional comment; the student is emailed.

    Only if the work is still the version you read: send it as ``If-Match`` (the ETag) or
    ``version``. A change made meanwhile (the student edited it, another grade) is a 409 and
    nothing is saved."""
    course = access.course_for_owner(course_id, me())
    version = _if_match() or (str(args["version"]) if "version" in args else None)
    if version is None:
        return answer(428, "Send the version you read: If-Match, or version in the body.")
    grading.grade(course, submission_id, me(), args["grade"], args["comment"], version)
    s = grading.submission(course, submission_id)
    return _body(s), 200, _etag(s.version)


@bp.route(BASE + "/gradebook.csv", methods=["GET"], tags=TAGS)
@authenticated()
@bp.doc(responses=CSV)
def gradebook_csv(course_id: int):
    """The gradebook as CSV: a row per student, a column per gradable block."""
    course = access.course_for_owner(course_id, me())
    return download(exports.gradebook_csv(course), f"course-{course.id}-gradebook.csv")


@bp.route(BASE + "/progress.csv", methods=["GET"], tags=TAGS)
@authenticated()
@bp.doc(responses=CSV)
def progress_csv(course_id: int):
    """Every student's progress as CSV."""
    course = access.course_for_owner(course_id, me())
    return download(exports.progress_csv(course), f"course-{course.id}-progress.csv")
