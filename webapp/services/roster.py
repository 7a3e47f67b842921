"""The roster of a course: its enrolled students with their progress, enrolling and removing.

Every function takes a course the caller got from ``access.course_for_owner`` (only the owner
teaches a course). Progress figures come from ``progress``: the same rule as the student's page.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import and_, asc, delete, desc, func, or_, select
from sqlalchemy.orm import Bundle

from ..extensions import db
from ..models import (
    CompletedContentBlock,
    ContentBlock,
    Course,
    Role,
    Section,
    StudentCourse,
    User,
    utcnow,
)
from . import Invalid, NotFound, insert, unit_of_work
from .access import student_for_teacher
from .progress import block_total, done_per_student, percent, sync_course_completion

PER_PAGE = 50
MAX_ENROL_ADDRESSES = 200  # per paste; the hourly budget per teacher is in teaching.routes

CCB = CompletedContentBlock


def paginate(stmt, page: int, per_page: int = PER_PAGE) -> Pagination:
    """``db.paginate`` by ``per_page``; a page past the end shows the last one, as before."""
    result = db.paginate(stmt, page=page, per_page=per_page, error_out=False)
    if result.pages and result.page > result.pages:
        result = db.paginate(stmt, page=result.pages, per_page=per_page, error_out=False)
    return result


# --- the roster --------------------------------------------------------------------------------


ROSTER_SORTS = {
    "name": (User.name, User.id),
    "email": (User.email,),
    "enrolled": (StudentCourse.enrolled_at, StudentCourse.id),
    "progress": ("done", User.name),
    "activity": ("last_activity", User.name),
}


@dataclass
class RosterRow:
    student_id: int
    name: str
    email: str
    enrolled_at: dt.datetime
    completed_blocks: int
    last_activity: dt.datetime | None
    total_blocks: int

    @property
    def progress(self) -> int:
        return percent(self.completed_blocks, self.total_blocks)


@dataclass
class Roster:
    rows: list[RosterRow]
    total: int
    page: int
    pages: int
    total_blocks: int


def roster(
    course: Course,
    q: str = "",
    sort: str = "name",
    order: str = "asc",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Roster:
    """Enrolled students with their progress, searched, sorted and paginated by ``per_page``."""
    total_blocks = db.session.scalar(block_total(course.id))
    done = done_per_student(course.id)
    n_done, last = func.coalesce(done.c.done, 0), done.c.last_activity
    direction = desc if order == "desc" else asc
    keys = []
    for key in ROSTER_SORTS.get(sort, ROSTER_SORTS["name"]):
        col = {"done": n_done, "last_activity": last}.get(key, key)
        keys.append(direction(col).nulls_last() if key == "last_activity" else direction(col))
    row = Bundle("row", User.id, User.name, User.email, StudentCourse.enrolled_at, n_done, last)
    stmt = (
        select(row)
        .select_from(StudentCourse)
        .join(User, User.id == StudentCourse.student_id)
        .outerjoin(done, done.c.student_id == User.id)
        .where(StudentCourse.course_id == course.id)
        .order_by(*keys, asc(User.id))
    )
    q = (q or "").strip()[:200]
    if q:
        stmt = stmt.where(
            or_(User.name.icontains(q, autoescape=True), User.email.icontains(q, autoescape=True))
        )
    result = paginate(stmt, page, per_page)
    rows = [RosterRow(*r, total_blocks=total_blocks) for r in result.items]
    return Roster(rows, result.total, result.page, result.pages, total_blocks)


# --- enrolling and removing --------------------------------------------------------------------


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_addresses(text: str) -> list[str]:
    """Addresses separated by commas, semicolons or whitespace; lower-cased, each once."""
    seen: dict[str, None] = {}
    for raw in re.split(r"[\s,;]+", text or ""):
        addr = raw.strip().strip("<>").lower()
        if addr:
            seen.setdefault(addr)
    return list(seen)


def enrol_by_email(course: Course, text: str) -> list[tuple[str, str]]:
    """Enrol existing active students by address; one (address, result) per address.

    Results: ``enrolled``, ``already enrolled``, ``no such student``, ``not an email address``.
    Safe against a concurrent enrolment of the same student (ON CONFLICT DO NOTHING).
    """
    addresses = parse_addresses(text)
    if not addresses:
        raise Invalid("Paste at least one email address.", field="emails")
    if len(addresses) > MAX_ENROL_ADDRESSES:
        raise Invalid(
            f"At most {MAX_ENROL_ADDRESSES} addresses at a time (this paste has "
            f"{len(addresses)}). Nobody was enrolled; paste them in smaller batches.",
            field="emails",
        )
    valid = [a for a in addresses if _EMAIL.match(a) and len(a) <= 254]
    with unit_of_work(missing="No such course."):
        students = dict(
            db.session.execute(
                select(User.email, User.id).where(
                    User.email.in_(valid), User.role == Role.STUDENT, User.is_active.is_(True)
                )
            ).all()
        )
        inserted = _enrol(course.id, list(students.values()))
    results = []
    for addr in addresses:
        if addr not in valid:
            results.append((addr, "not an email address"))
        elif addr not in students:
            results.append((addr, "no such student"))
        elif students[addr] in inserted:
            results.append((addr, "enrolled"))
        else:
            results.append((addr, "already enrolled"))
    return results


def _enrol(course_id: int, student_ids: list[int]) -> set[int]:
    """Enrol these students (those not enrolled yet); the ids of the new enrolments."""
    if not student_ids:
        return set()
    when = utcnow()
    rows = [{"student_id": sid, "course_id": course_id, "enrolled_at": when} for sid in student_ids]
    inserted = set(
        db.session.scalars(
            insert(StudentCourse)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["student_id", "course_id"])
            .returning(StudentCourse.student_id)
        )
    )
    if inserted:
        # Their earlier completions (kept when they were removed) count again.
        sync_course_completion(course_id)
    return inserted


@unit_of_work()
def remove_student(course: Course, student_id: int) -> User:
    """Unenrol a student; their completions and grades are kept for a re-enrolment."""
    student = student_for_teacher(course, student_id)
    gone = db.session.execute(
        delete(StudentCourse)
        .where(StudentCourse.course_id == course.id, StudentCourse.student_id == student.id)
        .execution_options(synchronize_session=False)
    )
    if gone.rowcount != 1:  # removed by another request meanwhile
        raise NotFound("That student is not enrolled in this course.")
    return student


def student_record(course: Course, student_id: int) -> tuple[User, list[tuple]]:
    """A student's full record: every block of the course with its completion (or None)."""
    student = student_for_teacher(course, student_id)
    rows = db.session.execute(
        select(ContentBlock, CCB)
        .join(Section, ContentBlock.section_id == Section.id)
        .outerjoin(CCB, and_(CCB.content_block_id == ContentBlock.id, CCB.student_id == student.id))
        .where(Section.course_id == course.id)
        .order_by(Section.position, Section.id, ContentBlock.position, ContentBlock.id)
    ).all()
    return student, [tuple(r) for r in rows]
