"""The access policy: every resource guard, and nothing else decides who may see or change what.

Each guard takes an id from the request and the acting user and returns the row, or raises
``NotFound`` (private objects that are not yours look missing: 404). Deny by default: a guard
that cannot prove the right answers NotFound. Roles are read from the user row of this request,
never from a token, so a teacher demoted to student loses every owner right at once.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, bindparam, literal, or_, select
from sqlalchemy.orm import contains_eager, joinedload, load_only, raiseload

from ..extensions import db
from ..models import (
    GRADABLE,
    CompletedContentBlock,
    ContentBlock,
    Course,
    Section,
    StudentCourse,
    User,
)
from . import NotFound, id_or_404


class NotEnrolled(NotFound):
    """A published course's block asked for by a student who is not enrolled in it."""


# --- who the user is ---------------------------------------------------------------------------


def is_student(user: User | None) -> bool:
    return user is not None and getattr(user, "is_authenticated", False) and user.is_student


def teacher_id(user: User | None) -> int | None:
    """The id of ``user`` if they are a teacher now, else None."""
    if user is None or not getattr(user, "is_teacher", False):
        return None
    return user.id


def owns(course: Course, user: User | None) -> bool:
    """``user`` is the course's owner and still a teacher."""
    tid = teacher_id(user)
    return tid is not None and course.user_id == tid


def manages(course: Course, user: User | None) -> bool:
    """``user`` owns the course as a teacher, or is an admin."""
    return owns(course, user) or bool(getattr(user, "is_admin", False))


# --- authoring ---------------------------------------------------------------------------------


def course_for_owner(course_id, user: User) -> Course:
    """The course if ``user`` is a teacher who owns it (edit, teach)."""
    course_id = id_or_404(course_id, "course")
    if teacher_id(user) is None:
        raise NotFound("No such course.")
    course = db.session.get(Course, course_id)
    if course is None or not owns(course, user):
        raise NotFound("No such course.")
    return course


def course_for_manager(course_id, user: User) -> Course:
    """The course if ``user`` is a teacher who owns it, or an admin (view and delete)."""
    course_id = id_or_404(course_id, "course")
    course = db.session.get(Course, course_id)
    if course is None or not manages(course, user):
        raise NotFound("No such course.")
    return course


def course_for_viewer(course_id, user: User | None) -> Course:
    """A published course for anyone; an unpublished one for its owner and admins (a draft,
    or a preview) and for the students enrolled in it: unpublishing takes a course out of the
    catalogue, never away from its students."""
    course_id = id_or_404(course_id, "course")
    course = db.session.get(Course, course_id)
    if course is None:
        raise NotFound("No such course.")
    if course.is_published:
        return course
    signed_in = user is not None and getattr(user, "is_authenticated", False)
    if signed_in and (manages(course, user) or enrolment(course.id, user) is not None):
        return course
    raise NotFound("No such course.")


def previews(course: Course, user: User | None) -> bool:
    """``user`` sees the course as a student would without being one: its owner or an admin
    (read-only: no enrolment, no completions)."""
    signed_in = user is not None and getattr(user, "is_authenticated", False)
    return signed_in and not is_student(user) and manages(course, user)


def section_for_owner(section_id, user: User) -> Section:
    """The section if ``user`` owns its course."""
    section_id = id_or_404(section_id, "section")
    tid = teacher_id(user)
    section = None
    if tid is not None:
        section = db.session.scalar(
            select(Section)
            .join(Course, Section.course_id == Course.id)
            .where(Section.id == section_id, Course.user_id == tid)
        )
    if section is None:
        raise NotFound("No such section.")
    return section


def block_for_owner(block_id, user: User) -> ContentBlock:
    """The content block if ``user`` owns its course."""
    block_id = id_or_404(block_id, "block")
    tid = teacher_id(user)
    block = None
    if tid is not None:
        block = db.session.scalar(
            select(ContentBlock)
            .join(Section, ContentBlock.section_id == Section.id)
            .join(Course, Section.course_id == Course.id)
            .where(ContentBlock.id == block_id, Course.user_id == tid)
        )
    if block is None:
        raise NotFound("No such block.")
    return block


# --- learning ----------------------------------------------------------------------------------


def enrolment(course_id: int, student: User | None) -> StudentCourse | None:
    """The student's enrolment in the course, or None (and None for anyone not a student)."""
    if not is_student(student):
        return None
    return db.session.scalar(
        select(StudentCourse).where(
            StudentCourse.course_id == course_id, StudentCourse.student_id == student.id
        )
    )


def course_for_student(course_id, student: User) -> Course:
    """A published course, for a student to enrol in (the catalogue's courses only)."""
    course = course_for_viewer(course_id, student)
    if not course.is_published or not is_student(student):
        raise NotFound("No such course.")
    return course


class StudentBlock(NamedTuple):
    """What ``block_for_student`` found: the course, the block, the enrolment, the work.

    From ``block_for_reader`` for an owner or admin: a preview, without enrolment and work."""

    course: Course
    block: ContentBlock
    enrolment: StudentCourse | None
    completion: CompletedContentBlock | None
    preview: bool = False


@cache
def _student_block(hold: bool):
    """``block_for_student``'s SELECT, built once (bound parameters ``p_*``)."""
    student_id = bindparam("p_student")
    stmt = (
        select(Course, ContentBlock, StudentCourse, CompletedContentBlock)
        .select_from(ContentBlock)
        .join(Section, ContentBlock.section_id == Section.id)
        .join(Course, Section.course_id == Course.id)
        .outerjoin(
            StudentCourse,
            and_(StudentCourse.course_id == Course.id, StudentCourse.student_id == student_id),
        )
        .outerjoin(
            CompletedContentBlock,
            and_(
                CompletedContentBlock.content_block_id == ContentBlock.id,
                CompletedContentBlock.student_id == student_id,
            ),
        )
        .where(
            ContentBlock.id == bindparam("p_block"),
            Course.id == bindparam("p_course"),
            or_(Course.is_published, StudentCourse.id.is_not(None)),  # enrolled: kept
        )
        .options(raiseload(Course.owner))
    )
    if hold:
        stmt = stmt.options(
            load_only(ContentBlock.id, ContentBlock.section_id, ContentBlock.title,
                      ContentBlock.type, ContentBlock.position),
        ).with_for_update(read=True, key_share=True, of=Course)  # fmt: skip
    return stmt


def block_for_student(course_id, block_id, student: User, *, hold: bool = False) -> StudentBlock:
    """The block if ``student`` is enrolled in its course, in one statement.

    The course is published, or was and the student is enrolled (unpublishing keeps it for
    them). A block of a published course asked for by a student who is not enrolled:
    ``NotEnrolled``.
    ``hold`` (a change that depends on the course's blocks: a completion, an undo) also takes
    ``FOR KEY SHARE`` on the course row, which conflicts only with the teacher's ``FOR UPDATE``
    (students never wait for each other) and keeps the course's blocks still until the commit;
    the row is read under it, so a course deleted meanwhile is a 404. The block
    is then loaded without its content (a change never shows it).
    """
    course_id = id_or_404(course_id, "course")
    block_id = id_or_404(block_id, "block")
    if not is_student(student):
        raise NotFound("No such course.")
    params = {"p_block": block_id, "p_course": course_id, "p_student": student.id}
    found = db.session.execute(_student_block(hold), params).one_or_none()
    if found is None:
        raise NotFound("No such block.")
    course, block, enrolled, completion = found
    if enrolled is None:
        raise NotEnrolled("Enrol in this course to open its blocks.")
    return StudentBlock(course, block, enrolled, completion)


def block_for_reader(course_id, block_id, user: User) -> StudentBlock:
    """A block page's reader: an enrolled student (``block_for_student``), or the course's
    owner or an admin previewing it as a student would (``preview``: read-only)."""
    if is_student(user):
        return block_for_student(course_id, block_id, user)
    course = course_for_manager(course_id, user)
    block = db.session.scalar(
        select(ContentBlock)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(ContentBlock.id == id_or_404(block_id, "block"), Section.course_id == course.id)
    )
    if block is None:
        raise NotFound("No such block.")
    return StudentBlock(course, block, None, None, preview=True)


# --- teaching ----------------------------------------------------------------------------------


def student_for_teacher(course: Course, student_id) -> User:
    """A student enrolled in ``course`` (a course the caller got from ``course_for_owner``)."""
    student_id = id_or_404(student_id, "student")
    student = db.session.scalar(
        select(User)
        .join(StudentCourse, StudentCourse.student_id == User.id)
        .where(StudentCourse.course_id == course.id, User.id == student_id)
    )
    if student is None:
        raise NotFound("That student is not enrolled in this course.")
    return student


def enrolled_work(*cols):
    """SELECT ``cols`` over the completions of enrolled students, with their block and section.

    Work of a student removed from a course is kept but counts nowhere until they come back.
    """
    return (
        select(*cols)
        .select_from(CompletedContentBlock)
        .join(ContentBlock, CompletedContentBlock.content_block_id == ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .join(
            StudentCourse,
            and_(
                StudentCourse.student_id == CompletedContentBlock.student_id,
                StudentCourse.course_id == Section.course_id,
            ),
        )
    )


def enrolled(course_id, student_id) -> ColumnElement[bool]:
    """SQL: the student (a column: checked row by row) is enrolled in the course.

    ``enrolled_work`` as a condition instead of a join: a scalar subquery, so PostgreSQL probes
    the enrolment index for each row it keeps instead of reading the course's enrolments.
    """
    return (
        select(literal(1))
        .where(StudentCourse.student_id == student_id, StudentCourse.course_id == course_id)
        .correlate_except(StudentCourse)
        .scalar_subquery()
        .is_not(None)  # (not "= 1": PostgreSQL would guess that few rows pass)
    )


def gradable_work(course_id) -> list[ColumnElement[bool]]:
    """``grader_work`` as conditions on a completion row (a gradable block of the course, an
    enrolled student), for statements that cannot join, such as the grade's conditional
    UPDATE. Each is an index probe per row."""
    course_of_block = (
        select(Section.course_id)
        .join(ContentBlock, ContentBlock.section_id == Section.id)
        .where(
            ContentBlock.id == CompletedContentBlock.content_block_id,
            ContentBlock.type.in_(GRADABLE),
        )
        .correlate_except(Section, ContentBlock)
        .scalar_subquery()
    )
    return [course_of_block == course_id, enrolled(course_id, CompletedContentBlock.student_id)]


def grader_work(course_id, *cols):
    """SELECT ``cols`` over what the course's teacher grades: work on the course's gradable
    blocks by students enrolled in it (``completion_for_grader`` finds one of them)."""
    return enrolled_work(*cols).where(
        Section.course_id == course_id, ContentBlock.type.in_(GRADABLE)
    )


def completion_for_grader(course: Course, completion_id) -> CompletedContentBlock:
    """Submitted work on a gradable block of ``course`` by a student enrolled in it."""
    completion_id = id_or_404(completion_id, "submission")
    completion = db.session.scalar(
        grader_work(course.id, CompletedContentBlock)
        .where(CompletedContentBlock.id == completion_id)
        .options(  # the grading pages show the block and the student
            contains_eager(CompletedContentBlock.block),
            joinedload(CompletedContentBlock.student),
        )
    )
    if completion is None:
        raise NotFound("No such submission.")
    return completion


# --- administration ----------------------------------------------------------------------------


def user_for_admin(user_id) -> User:
    """Any user, for an admin's pages and actions (the blueprint checks the admin role)."""
    user = db.session.get(User, id_or_404(user_id, "user"))
    if user is None:
        raise NotFound("No such user.")
    return user
