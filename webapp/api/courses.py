"""Courses over the API: the published catalogue (search, cursor pages), a teacher's own
courses, create, read with sections and blocks, update (title, description, published),
delete. Guards: ``access.course_for_viewer`` (read), ``course_for_owner`` (change),
``course_for_manager`` (delete: the owner or an admin)."""

from __future__ import annotations

from flask import url_for
from marshmallow import Schema, fields

from ..extensions import client_ip
from ..models import Role
from ..services import access, learning_outline, unit_of_work
from ..services import courses as svc
from ..services.catalogue import catalogue
from ..services.dashboard import teacher_dashboard
from . import bp, paging
from .schemas import text
from .security import authenticated, me

TAGS = ["courses"]


class ProgressSchema(Schema):
    done = fields.Integer(required=True)
    total = fields.Integer(required=True)
    percent = fields.Integer(required=True)


class CourseSummarySchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    teacher = fields.String(required=True)
    sections = fields.Integer(required=True)
    blocks = fields.Integer(required=True)
    enrolled = fields.Boolean(required=True)


CataloguePageSchema = Schema.from_dict(
    paging.page_fields(CourseSummarySchema), name="CataloguePage"
)


class CatalogueArgs(paging.PageArgs):
    q = fields.String(load_default="", validate=lambda v: len(v) <= 200)


class OutlineBlockSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    type = fields.String(required=True)
    done = fields.Boolean(required=True, metadata={"description": "Completed by you"})


class OutlineSectionSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    position = fields.Integer(required=True)
    progress = fields.Nested(ProgressSchema, required=True)
    blocks = fields.List(fields.Nested(OutlineBlockSchema), required=True)


class CourseSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    published = fields.Boolean(required=True)
    teacher_id = fields.Integer(required=True)
    enrolled = fields.Boolean(required=True)
    completed = fields.Boolean(required=True)
    progress = fields.Nested(ProgressSchema, required=True, allow_none=True)
    resume_block_id = fields.Integer(required=True, allow_none=True)
    sections = fields.List(fields.Nested(OutlineSectionSchema), required=True)


class MyCourseSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    published = fields.Boolean(required=True)
    sections = fields.Integer(required=True)
    blocks = fields.Integer(required=True)
    students = fields.Integer(required=True)
    to_grade = fields.Integer(required=True)


class NewCourseSchema(Schema):
    title = text(200, required=True)
    description = text(5000, load_default="")


class CourseChangeSchema(Schema):
    title = text(200)
    description = text(5000)
    published = fields.Boolean()


def progress(figures) -> dict:
    return {"done": figures.done, "total": figures.total, "percent": figures.percent}


def course_body(course_id: int) -> dict:
    """The course as the caller may read it: sections, blocks, their own progress."""
    view = learning_outline.course_outline(course_id, me())
    course = view.course
    return {
        "id": course.id,
        "title": course.title,
        "description": course.description,
        "published": course.is_published,
        "teacher_id": course.user_id,
        "enrolled": view.enrolment is not None,
        "completed": bool(view.enrolment and view.enrolment.completed),
        "progress": progress(view.figures) if view.enrolment is not None else None,
        "resume_block_id": view.resume.id if view.resume else None,
        "sections": [
            {
                "id": s.id,
                "title": s.title,
                "position": s.position,
                "progress": progress(s.figures),
                "blocks": [vars(b) for b in s.blocks or []],
            }
            for s in view.outline.sections
        ],
    }


@bp.route("/courses", methods=["GET"], tags=TAGS)
@authenticated()
@bp.arguments(CatalogueArgs, location="query")
@bp.response(200, CataloguePageSchema)
def list_courses(args):
    """The published courses, searched by title or teacher (``q``), in title order."""
    page_no = paging.decode(args["cursor"], args["limit"])
    found = catalogue(args["q"], page_no, me(), per_page=args["limit"])
    rows = found.rows if found.page == page_no else []
    items = [
        {
            "id": r.course.id,
            "title": r.course.title,
            "description": r.course.description,
            "teacher": r.teacher,
            "sections": r.sections,
            "blocks": r.blocks,
            "enrolled": r.enrolled,
        }
        for r in rows
    ]
    return paging.page(items, page_no, args["limit"], bool(rows) and found.page < found.pages)


@bp.route("/teaching/courses", methods=["GET"], tags=TAGS)
@authenticated(Role.TEACHER)
@bp.response(200, MyCourseSchema(many=True))
def my_courses():
    """The teacher's own courses (drafts too), with their counts: the dashboard."""
    return [
        {
            "id": r.course.id,
            "title": r.course.title,
            "published": r.course.is_published,
            "sections": r.sections,
            "blocks": r.blocks,
            "students": r.students,
            "to_grade": int(r.to_grade),
        }
        for r in teacher_dashboard(me())
    ]


@bp.route("/courses", methods=["POST"], tags=TAGS)
@authenticated(Role.TEACHER)
@bp.arguments(NewCourseSchema)
@bp.response(201, CourseSchema)
def create_course(args):
    """Create a draft course (teachers)."""
    course = svc.create_course(me(), args["title"], args["description"])
    location = url_for("api.get_course", course_id=course.id)
    return course_body(course.id), 201, {"Location": location}


@bp.route("/courses/<int:course_id>", methods=["GET"], tags=TAGS)
@authenticated()
@bp.response(200, CourseSchema)
def get_course(course_id: int):
    """A published course, or a draft of yours, with its sections and blocks."""
    return course_body(course_id)


@bp.route("/courses/<int:course_id>", methods=["PATCH"], tags=TAGS)
@authenticated()
@bp.arguments(CourseChangeSchema)
@bp.response(200, CourseSchema)
def update_course(args, course_id: int):
    """Change the title, the description, or publish (``published``): the owner only."""
    course = access.course_for_owner(course_id, me())
    with unit_of_work():  # every field saved, or none
        for name in ("title", "description"):
            if name in args:
                svc.update_course_field(course, name, args[name])
        if "published" in args:
            svc.set_published(course, args["published"])
    return course_body(course_id)


@bp.route("/courses/<int:course_id>", methods=["DELETE"], tags=TAGS)
@authenticated()
@bp.response(204)
def delete_course(course_id: int):
    """Delete the course with everything in it: the owner, or an admin."""
    course = access.course_for_manager(course_id, me())
    svc.delete_course(course, me(), ip=client_ip())
    return "", 204


@bp.route("/courses/<int:course_id>/duplicate", methods=["POST"], tags=TAGS)
@authenticated(Role.TEACHER)
@bp.response(201, CourseSchema)
def duplicate_course(course_id: int):
    """Copy your course, as a draft, with its sections and blocks (not its students)."""
    copy = svc.duplicate_course(access.course_for_owner(course_id, me()), me())
    location = url_for("api.get_course", course_id=copy.id)
    return course_body(copy.id), 201, {"Location": location}
