"""A course's students over the API, for its owner: the roster with progress, enrolling
students by email (the roster page's hourly budget, shared), a student's record, removing a
student. Guards: ``access.course_for_owner``, ``access.student_for_teacher`` (in the service)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .. import limits
from ..extensions import client_ip
from ..services import access, roster
from . import bp, paging
from .schemas import text
from .security import authenticated, me

TAGS = ["students"]
BASE = "/courses/<int:course_id>/students"


class RosterRowSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    enrolled_at = fields.AwareDateTime(required=True)
    completed_blocks = fields.Integer(required=True)
    total_blocks = fields.Integer(required=True)
    percent = fields.Integer(required=True)
    last_activity = fields.AwareDateTime(required=True, allow_none=True)


RosterPageSchema = Schema.from_dict(paging.page_fields(RosterRowSchema), name="RosterPage")


class RosterArgs(paging.PageArgs):
    q = fields.String(load_default="", validate=validate.Length(max=200))
    sort = fields.String(load_default="name", validate=validate.OneOf(list(roster.ROSTER_SORTS)))
    order = fields.String(load_default="asc", validate=validate.OneOf(["asc", "desc"]))


class EnrolSchema(Schema):
    emails = text(
        30000, required=True, min_len=1,
        metadata={"description": "Addresses separated by commas, semicolons or spaces"},
    )  # fmt: skip


class EnrolResultSchema(Schema):
    email = fields.String(required=True)
    result = fields.String(
        required=True,
        validate=validate.OneOf(
            ["enrolled", "already enrolled", "no such student", "not an email address"]
        ),
    )


class RecordRowSchema(Schema):
    block_id = fields.Integer(required=True)
    block_title = fields.String(required=True)
    block_type = fields.String(required=True)
    completed_at = fields.AwareDateTime(required=True, allow_none=True)
    url = fields.String(required=True, allow_none=True)
    grade = fields.Integer(required=True, allow_none=True)


class RecordSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    blocks = fields.List(fields.Nested(RecordRowSchema), required=True)


@bp.route(BASE, methods=["GET"], tags=TAGS)
@authenticated()
@bp.arguments(RosterArgs, location="query")
@bp.response(200, RosterPageSchema)
def list_students(args, course_id: int):
    """The course's students with their progress, searched (``q``) and sorted."""
    course = access.course_for_owner(course_id, me())
    page_no, limit = paging.decode(args["cursor"], args["limit"]), args["limit"]
    found = roster.roster(course, args["q"], args["sort"], args["order"], page_no, limit)
    rows = found.rows if found.page == page_no else []
    items = [
        {
            "id": r.student_id,
            "name": r.name,
            "email": r.email,
            "enrolled_at": r.enrolled_at,
            "completed_blocks": r.completed_blocks,
            "total_blocks": r.total_blocks,
            "percent": r.progress,
            "last_activity": r.last_activity,
        }  # fmt: skip
        for r in rows
    ]
    return paging.page(items, page_no, limit, bool(rows) and found.page < found.pages)


@bp.route(BASE, methods=["POST"], tags=TAGS)
@limits.enrol
@authenticated()
@bp.arguments(EnrolSchema)
@bp.response(200, EnrolResultSchema(many=True))
def enrol_students(args, course_id: int):
    """Enrol students by email, as the roster page does: one result per address (an address
    without an account is invited and enrolled; teachers' and admins' are refused)."""
    course = access.course_for_owner(course_id, me())
    results = roster.enrol_by_email(course, args["emails"], me(), client_ip())
    return [{"email": r.address, "result": r.result} for r in results]


@bp.route(BASE + "/<int:student_id>", methods=["GET"], tags=TAGS)
@authenticated()
@bp.response(200, RecordSchema)
def student_record(course_id: int, student_id: int):
    """A student's record: every block of the course with their work on it."""
    course = access.course_for_owner(course_id, me())
    student, rows = roster.student_record(course, student_id)
    blocks = [
        {
            "block_id": b.id,
            "block_title": b.title,
            "block_type": b.type,
            "completed_at": w.completed_at if w else None,
            "url": w.url if w else None,
            "grade": w.grade if w else None,
        }  # fmt: skip
        for b, w in rows
    ]
    return {"id": student.id, "name": student.name, "blocks": blocks}


@bp.route(BASE + "/<int:student_id>", methods=["DELETE"], tags=TAGS)
@authenticated()
@bp.response(204)
def remove_student(course_id: int, student_id: int):
    """Remove a student from the course; their work is kept for a re-enrolment."""
    roster.remove_student(access.course_for_owner(course_id, me()), student_id)
    return "", 204
