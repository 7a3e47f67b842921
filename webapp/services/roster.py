"""The roster of a course: its enrolled students with their progress, enrolling and removing.

Every function takes a course the caller got from ``access.course_for_owner`` (only the owner
teaches a course). Progress figures come from ``progress``: the same rule as the student's page.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import NamedTuple

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
from . import Invalid, NotFound, accounts, audit, insert, unit_of_work
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


def parse_addresses(text: str) -> list[str]:
    """Addresses separated by commas, semicolons or whitespace; lower-cased, each once."""
    seen: dict[str, None] = {}
    for raw in re.split(r"[\s,;]+", text or ""):
        addr = raw.strip().strip("<>").lower()
        if addr:
            seen.setdefault(addr)
    return list(seen)


ENROLLED = "enrolled"
ALREADY = "already enrolled"
INVITED = "invited: no account yet, an email asks them to set a password (enrolled)"
NOT_ACTIVATED = "enrolled (their account is not activated yet)"
DEACTIVATED = "account deactivated: not enrolled"
NOT_AN_ADDRESS = "not an email address"
STAFF = {
    Role.TEACHER: "a teacher's account: only student accounts can be enrolled in a course",
    Role.ADMIN: "an admin's account: only student accounts can be enrolled in a course",
}


class EnrolResult(NamedTuple):
    """What enrolling one address did; ``ok``: the person is enrolled now."""

    address: str
    result: str
    ok: bool


def enrol_by_email(course: Course, text: str, teacher: User, ip: str = "") -> list[EnrolResult]:
    """Enrol students by address; one result per address, in the order pasted.

    Students (active, or not activated yet) are enrolled. An address without an account gets
    one: a pending student account without a password, enrolled at once, and an invitation
    (the same link as an admin's, ``accounts.send_invitation_email``) to set the password, in
    the same transaction; a second paste of it sends the invitation again. Teachers' and
    admins' addresses are refused with the reason; deactivated accounts are left alone.
    Safe against a concurrent enrolment or sign-up of the same address (ON CONFLICT DO NOTHING).
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
    valid = [a for a in addresses if _deliverable(a)]
    with unit_of_work(missing="No such course."):
        users = {u.email: u for u in db.session.scalars(select(User).where(User.email.in_(valid)))}
        for addr in valid:
            if addr not in users and (user := _invite(addr, teacher, course, ip)) is not None:
                users[addr] = user
        students = {
            a: u for a, u in users.items() if u.is_student and (u.is_active or not u.activated_at)
        }
        inserted = _enrol(course.id, [u.id for u in students.values()])
        invited = {a for a, u in students.items() if not u.activated_at and not u.password_hash}
        for addr in invited:
            accounts.send_invitation_email(
                students[addr], "course_invitation", course=course, teacher=teacher
            )
    return [_result(a, valid, users, students, inserted, invited) for a in addresses]


def _deliverable(address: str) -> bool:
    try:
        return accounts.check_email(address) == address
    except Invalid:
        return False


def _invite(address: str, teacher: User, course: Course, ip: str) -> User | None:
    """A pending student account for an address that has none (the caller commits)."""
    new_id = db.session.scalar(
        insert(User)
        .values(email=address, name=address.partition("@")[0][:120], role=str(Role.STUDENT))
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(User.id)
    )
    if new_id is None:  # signed up or invited by someone else meanwhile
        return db.session.scalar(select(User).where(User.email == address))
    user = db.session.get(User, new_id)
    audit.record("teacher.student_invited", actor=teacher, target=user, ip=ip, course_id=course.id)
    return user


def _result(addr, valid, users, students, inserted, invited) -> EnrolResult:
    if addr not in valid:
        return EnrolResult(addr, NOT_AN_ADDRESS, False)
    user = users.get(addr)
    if user is None:  # its account was created and deleted again meanwhile
        return EnrolResult(addr, "not enrolled: please try again", False)
    if addr not in students:
        if user.is_student:
            return EnrolResult(addr, DEACTIVATED, False)
        return EnrolResult(addr, STAFF[Role(user.role)], False)
    if addr in invited:
        return EnrolResult(addr, INVITED, True)
    if user.id not in inserted:
        return EnrolResult(addr, ALREADY, True)
    return EnrolResult(addr, ENROLLED if user.is_active else NOT_ACTIVATED, True)


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
