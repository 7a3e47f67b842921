"""Teaching: the roster, the grading queue, the gradebook and its CSV exports.

Every function takes a course the caller already authorised with
``courses.course_for_owner`` (only the owner teaches a course) and plain values.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby

from sqlalchemy import and_, asc, desc, func, or_, select, update

from ..extensions import db
from ..mail import queue_email
from ..models import (
    GRADABLE_TYPES,
    CompletedContentBlock,
    ContentBlock,
    Course,
    Role,
    Section,
    StudentCourse,
    User,
    utcnow,
)
from . import Conflict, Invalid, NotFound, id_or_404, insert
from .access import completion_for_grader, student_for_teacher
from .progress import percent, sync_course_completion

PER_PAGE = 50
QUEUE_LIST = 50
MAX_ENROL_ADDRESSES = 200  # per paste; the hourly budget per teacher is in teaching.routes
GRADABLE = tuple(str(t) for t in GRADABLE_TYPES)

CCB = CompletedContentBlock


def _pages(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


def _clamp_page(page: int, pages: int) -> int:
    return min(max(1, page), pages)


def course_blocks(course_id: int, gradable_only: bool = False) -> list[ContentBlock]:
    """The course's blocks in reading order (section position, block position)."""
    stmt = (
        select(ContentBlock)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(Section.course_id == course_id)
        .order_by(Section.position, Section.id, ContentBlock.position, ContentBlock.id)
    )
    if gradable_only:
        stmt = stmt.where(ContentBlock.type.in_(GRADABLE))
    return list(db.session.scalars(stmt))


def _course_block_ids(course_id: int):
    return (
        select(ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(Section.course_id == course_id)
    )


# --- roster ------------------------------------------------------------------------------------


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
    total_blocks: int
    last_activity: dt.datetime | None

    @property
    def progress(self) -> int:
        if not self.total_blocks:
            return 0
        return percent(self.completed_blocks, self.total_blocks)


@dataclass
class Page:
    rows: list
    total: int
    page: int
    pages: int
    extra: dict = field(default_factory=dict)


def roster(
    course: Course, q: str = "", sort: str = "name", order: str = "asc", page: int = 1
) -> Page:
    """Enrolled students with their progress, searched, sorted and paginated by PER_PAGE."""
    total_blocks = db.session.scalar(
        select(func.count()).select_from(_course_block_ids(course.id).subquery())
    )
    done = (
        select(
            CCB.student_id.label("student_id"),
            func.count(CCB.id).label("done"),
            func.max(CCB.updated_at).label("last_activity"),
        )
        .where(CCB.content_block_id.in_(_course_block_ids(course.id)))
        .group_by(CCB.student_id)
        .subquery()
    )
    where = [StudentCourse.course_id == course.id]
    q = (q or "").strip()[:200]
    if q:
        like = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            or_(func.lower(User.name).like(like, escape="\\"), User.email.like(like, escape="\\"))
        )
    total = db.session.scalar(
        select(func.count())
        .select_from(StudentCourse)
        .join(User, User.id == StudentCourse.student_id)
        .where(*where)
    )
    pages = _pages(total, PER_PAGE)
    page = _clamp_page(page, pages)
    if sort not in ROSTER_SORTS:
        sort = "name"
    direction = desc if order == "desc" else asc
    keys = []
    for key in ROSTER_SORTS[sort]:
        col = {"done": func.coalesce(done.c.done, 0), "last_activity": done.c.last_activity}.get(
            key, key
        )
        keys.append(direction(col).nulls_last() if key == "last_activity" else direction(col))
    keys.append(asc(User.id))
    stmt = (
        select(
            User.id,
            User.name,
            User.email,
            StudentCourse.enrolled_at,
            func.coalesce(done.c.done, 0),
            done.c.last_activity,
        )
        .select_from(StudentCourse)
        .join(User, User.id == StudentCourse.student_id)
        .outerjoin(done, done.c.student_id == User.id)
        .where(*where)
        .order_by(*keys)
        .limit(PER_PAGE)
        .offset((page - 1) * PER_PAGE)
    )
    rows = [
        RosterRow(sid, name, email, enrolled, n, total_blocks, last)
        for sid, name, email, enrolled, n, last in db.session.execute(stmt)
    ]
    return Page(rows, total, page, pages, {"total_blocks": total_blocks})


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
    students = dict(
        db.session.execute(
            select(User.email, User.id).where(
                User.email.in_(valid), User.role == Role.STUDENT, User.is_active.is_(True)
            )
        ).all()
    )
    inserted: set[int] = set()
    if students:
        now = utcnow()
        stmt = (
            insert(StudentCourse)
            .values(
                [
                    {"student_id": sid, "course_id": course.id, "enrolled_at": now}
                    for sid in students.values()
                ]
            )
            .on_conflict_do_nothing(index_elements=["student_id", "course_id"])
            .returning(StudentCourse.student_id)
        )
        inserted = set(db.session.scalars(stmt))
        if inserted:
            # Their earlier completions (kept when they were removed) count again.
            sync_course_completion(course.id)
    db.session.commit()
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


def remove_student(course: Course, student_id: int) -> User:
    """Unenrol a student; their completions and grades are kept for a re-enrolment."""
    student_id = id_or_404(student_id, "student")
    enrolment = db.session.scalar(
        select(StudentCourse).where(
            StudentCourse.course_id == course.id, StudentCourse.student_id == student_id
        )
    )
    if enrolment is None:
        raise NotFound("That student is not enrolled in this course.")
    student = enrolment.student
    db.session.delete(enrolment)
    db.session.commit()
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


# --- the grading queue -------------------------------------------------------------------------


def _needs_grading():
    return or_(CCB.grade.is_(None), CCB.graded_at.is_(None), CCB.updated_at > CCB.graded_at)


def _queue_where(course_id: int) -> list:
    return [
        Section.course_id == course_id,
        ContentBlock.type.in_(GRADABLE),
        _needs_grading(),
    ]


def _queue_select(*cols):
    """Submissions of enrolled students to gradable blocks that need a (new) grade."""
    return (
        select(*cols)
        .select_from(CCB)
        .join(ContentBlock, CCB.content_block_id == ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .join(
            StudentCourse,
            and_(
                StudentCourse.student_id == CCB.student_id,
                StudentCourse.course_id == Section.course_id,
            ),
        )
    )


def queue_count(course_id: int) -> int:
    return db.session.scalar(_queue_select(func.count(CCB.id)).where(*_queue_where(course_id)))


def queue_counts(owner: User) -> dict[int, int]:
    """Submissions waiting for a grade, per course of ``owner`` (for a dashboard)."""
    rows = db.session.execute(
        _queue_select(Section.course_id, func.count(CCB.id))
        .join(Course, Course.id == Section.course_id)
        .where(Course.user_id == owner.id, ContentBlock.type.in_(GRADABLE), _needs_grading())
        .group_by(Section.course_id)
    )
    return dict(rows.all())


@dataclass
class QueueItem:
    id: int
    student_name: str
    block_title: str
    updated_at: dt.datetime
    regrade: bool


def queue_list(course_id: int, limit: int = QUEUE_LIST) -> list[QueueItem]:
    """The oldest submissions first (by the time the student last touched them)."""
    stmt = (
        _queue_select(CCB.id, User.name, ContentBlock.title, CCB.updated_at, CCB.graded_at)
        .join(User, User.id == CCB.student_id)
        .where(*_queue_where(course_id))
        .order_by(CCB.updated_at, CCB.id)
        .limit(limit)
    )
    return [
        QueueItem(cid, name, title, updated, graded is not None)
        for cid, name, title, updated, graded in db.session.execute(stmt)
    ]


def neighbours(course_id: int, current: CompletedContentBlock | None) -> tuple[int | None, ...]:
    """(previous, next) submission ids in the queue around ``current`` (which may be graded).

    Next wraps to the oldest submission, so "Save & next" always finds what is left.
    """
    where = _queue_where(course_id)
    if current is None:
        first = db.session.scalar(
            _queue_select(CCB.id).where(*where).order_by(CCB.updated_at, CCB.id).limit(1)
        )
        return None, first
    u, cid = current.updated_at, current.id
    before = or_(CCB.updated_at < u, and_(CCB.updated_at == u, CCB.id < cid))
    after = or_(CCB.updated_at > u, and_(CCB.updated_at == u, CCB.id > cid))
    prev_id = db.session.scalar(
        _queue_select(CCB.id)
        .where(*where, before)
        .order_by(CCB.updated_at.desc(), CCB.id.desc())
        .limit(1)
    )
    # The next one after this, else the oldest one left (the queue wraps around).
    next_id = db.session.scalar(
        _queue_select(CCB.id).where(*where, after).order_by(CCB.updated_at, CCB.id).limit(1)
    ) or db.session.scalar(
        _queue_select(CCB.id).where(*where, CCB.id != cid).order_by(CCB.updated_at, CCB.id).limit(1)
    )
    return prev_id, next_id


def grader_of(completion: CompletedContentBlock) -> User | None:
    if completion.graded_by_id is None:
        return None
    return db.session.get(User, completion.graded_by_id)


# --- grading -----------------------------------------------------------------------------------


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _micros(value: dt.datetime | None) -> int:
    if value is None:
        return 0
    return (value - _EPOCH) // dt.timedelta(microseconds=1)


def _from_micros(value: int) -> dt.datetime | None:
    if value == 0:
        return None
    return _EPOCH + dt.timedelta(microseconds=value)


def version_of(completion: CompletedContentBlock) -> str:
    """The version a grader loaded: when the student last changed it and when it was graded."""
    return f"{_micros(completion.updated_at)}.{_micros(completion.graded_at)}"


def _parse_version(token: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    try:
        updated, graded = (int(p) for p in (token or "").split("."))
        if updated <= 0 or graded < 0:
            raise ValueError
        return _from_micros(updated), _from_micros(graded)
    except (ValueError, OverflowError, OSError):
        raise Invalid("The form is out of date: reload the page.", field="version") from None


class StaleGrade(Conflict):
    """The completion changed since the grader loaded it; carries its current state."""

    def __init__(self, completion: CompletedContentBlock):
        super().__init__(
            "This submission changed since you opened it, so your grade was not saved. "
            "Its current state is shown below; save again to replace it."
        )
        self.completion = completion


def grade(
    course: Course,
    completion_id: int,
    grader: User,
    grade_value: int,
    comment: str | None,
    version: str,
) -> CompletedContentBlock:
    """Grade a submission if it is still the version the grader loaded; emails the student.

    ``comment=None`` keeps the current comment (the gradebook edits grades only). One
    conditional UPDATE decides: if it touches no row, someone else changed the submission
    first and StaleGrade is raised with its current state; nothing is overwritten.
    """
    if not isinstance(grade_value, int) or not 0 <= grade_value <= 100:
        raise Invalid("A grade is a whole number from 0 to 100.", field="grade")
    if comment is not None and len(comment) > 5000:
        raise Invalid("At most 5000 characters.", field="comment")
    completion = completion_for_grader(course, completion_id)
    updated_at, graded_at = _parse_version(version)
    values = {"grade": grade_value, "graded_at": utcnow(), "graded_by_id": grader.id}
    if comment is not None:
        values["grader_comment"] = comment
    same_graded = CCB.graded_at.is_(None) if graded_at is None else CCB.graded_at == graded_at
    result = db.session.execute(
        update(CCB)
        .where(CCB.id == completion.id, CCB.updated_at == updated_at, same_graded)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        raise StaleGrade(completion_for_grader(course, completion_id))
    db.session.refresh(completion)
    block = completion.block
    student = completion.student
    queue_email(
        student.email,
        "graded",
        student=student,
        course=course,
        block=block,
        grade=completion.grade,
        comment=completion.grader_comment,
        path=f"/courses/{course.id}/blocks/{block.id}",
    )
    db.session.commit()
    return completion


def grade_and_advance(
    course: Course,
    completion_id: int,
    grader: User,
    grade_value: int,
    comment: str | None,
    version: str,
    advance: bool,
) -> tuple[CompletedContentBlock, CompletedContentBlock | None]:
    """Grade (see ``grade``), then the submission to show: the next in the queue if
    ``advance`` (None when nothing is left), else the graded one."""
    done = grade(course, completion_id, grader, grade_value, comment, version)
    if not advance:
        return done, done
    next_id = neighbours(course.id, done)[1]
    return done, completion_for_grader(course, next_id) if next_id else None


# --- the gradebook -----------------------------------------------------------------------------


@dataclass
class Cell:
    id: int
    grade: int | None
    stale: bool
    version: str


@dataclass
class Gradebook:
    blocks: list[ContentBlock]
    students: list[tuple[int, str, str]]
    cells: dict[tuple[int, int], Cell]
    row_avg: dict[int, float]
    col_avg: dict[int, float]
    course_avg: float | None
    total: int
    page: int
    pages: int


def _enrolled_grades(course_id: int):
    return (
        select(CCB.student_id, CCB.content_block_id, CCB.grade)
        .join(ContentBlock, CCB.content_block_id == ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .join(
            StudentCourse,
            and_(
                StudentCourse.student_id == CCB.student_id,
                StudentCourse.course_id == Section.course_id,
            ),
        )
        .where(
            Section.course_id == course_id,
            ContentBlock.type.in_(GRADABLE),
            CCB.grade.is_not(None),
        )
    )


def averages(course_id: int, student_ids: list[int] | None = None, block_ids=None):
    """(row averages, column averages, course average) of grades, computed in SQL."""
    grades = _enrolled_grades(course_id).subquery()
    rows_stmt = select(grades.c.student_id, func.avg(grades.c.grade)).group_by(grades.c.student_id)
    if student_ids is not None:
        rows_stmt = rows_stmt.where(grades.c.student_id.in_(student_ids))
    cols_stmt = select(grades.c.content_block_id, func.avg(grades.c.grade)).group_by(
        grades.c.content_block_id
    )
    if block_ids is not None:
        cols_stmt = cols_stmt.where(grades.c.content_block_id.in_(block_ids))
    row_avg = {sid: float(a) for sid, a in db.session.execute(rows_stmt)}
    col_avg = {bid: float(a) for bid, a in db.session.execute(cols_stmt)}
    course_avg = None
    if student_ids is None or block_ids is None:
        course_avg = db.session.scalar(select(func.avg(grades.c.grade)))
        course_avg = float(course_avg) if course_avg is not None else None
    return row_avg, col_avg, course_avg


def gradebook(course: Course, page: int = 1) -> Gradebook:
    """Students (PER_PAGE a page, by name) × every block of the course, with averages."""
    blocks = course_blocks(course.id)
    total = db.session.scalar(
        select(func.count()).select_from(StudentCourse).where(StudentCourse.course_id == course.id)
    )
    pages = _pages(total, PER_PAGE)
    page = _clamp_page(page, pages)
    students = [
        tuple(r)
        for r in db.session.execute(
            select(User.id, User.name, User.email)
            .join(StudentCourse, StudentCourse.student_id == User.id)
            .where(StudentCourse.course_id == course.id)
            .order_by(User.name, User.id)
            .limit(PER_PAGE)
            .offset((page - 1) * PER_PAGE)
        )
    ]
    ids = [s[0] for s in students]
    cells: dict[tuple[int, int], Cell] = {}
    if ids and blocks:
        stmt = (
            select(
                CCB.id,
                CCB.student_id,
                CCB.content_block_id,
                CCB.grade,
                CCB.updated_at,
                CCB.graded_at,
            )
            .where(CCB.student_id.in_(ids), CCB.content_block_id.in_(_course_block_ids(course.id)))
            .execution_options(yield_per=2000)
        )
        for cid, sid, bid, g, updated, graded in db.session.execute(stmt):
            stale = graded is not None and updated > graded
            version = f"{_micros(updated)}.{_micros(graded)}"
            cells[(sid, bid)] = Cell(cid, g, stale, version)
    row_avg, col_avg, course_avg = averages(course.id, student_ids=ids)
    return Gradebook(blocks, students, cells, row_avg, col_avg, course_avg, total, page, pages)


def gradebook_cell(course: Course, completion_id: int) -> tuple[CompletedContentBlock, Cell]:
    completion = completion_for_grader(course, completion_id)
    cell = Cell(
        completion.id, completion.grade, completion.changed_since_graded, version_of(completion)
    )
    return completion, cell


@dataclass
class SavedCell:
    completion: CompletedContentBlock
    cell: Cell
    row_avg: float | None
    col_avg: float | None


def save_cell(
    course: Course, completion_id: int, grader: User, grade_value: int, version: str
) -> SavedCell:
    """A gradebook cell's grade (the comment is kept), with the new row and column averages."""
    grade(course, completion_id, grader, grade_value, None, version)
    completion, cell = gradebook_cell(course, completion_id)
    row_avg, col_avg, _ = averages(
        course.id, student_ids=[completion.student_id], block_ids=[completion.content_block_id]
    )
    return SavedCell(
        completion,
        cell,
        row_avg.get(completion.student_id),
        col_avg.get(completion.content_block_id),
    )


# --- CSV exports -------------------------------------------------------------------------------


_FORMULA = frozenset("=+-@\t\r")


def csv_safe(value) -> object:
    """Neutralise spreadsheet formulas: text starting with = + - @ (or tab/CR) gets a quote."""
    if isinstance(value, str) and value[:1] in _FORMULA:
        return "'" + value
    return value


class _Rows:
    """csv.writer into a small buffer, handed out every ``flush_every`` rows."""

    def __init__(self, flush_every: int = 200):
        self.buf = io.StringIO()
        self.writer = csv.writer(self.buf, lineterminator="\r\n")
        self.flush_every = flush_every
        self.pending = 0

    def add(self, row) -> str | None:
        self.writer.writerow([csv_safe(v) for v in row])
        self.pending += 1
        return self.take() if self.pending >= self.flush_every else None

    def take(self) -> str:
        text = self.buf.getvalue()
        self.buf.seek(0)
        self.buf.truncate()
        self.pending = 0
        return text


def _iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat(sep=" ", timespec="seconds") if value else ""


def _fmt_avg(value) -> str:
    return "" if value is None else f"{float(value):.1f}"


def gradebook_csv(course: Course, chunk: int = 1000) -> Iterator[str]:
    """The gradebook, one line per enrolled student, streamed (a server-side cursor).

    Columns: student, email, one per gradable block (the grade, empty if none), average.
    """
    blocks = course_blocks(course.id, gradable_only=True)
    index = {b.id: i for i, b in enumerate(blocks)}
    out = _Rows()
    out.add(["Student", "Email", *[b.title for b in blocks], "Average"])
    yield "\ufeff" + out.take()
    gradable = (
        select(ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(Section.course_id == course.id, ContentBlock.type.in_(GRADABLE))
    )
    stmt = (
        select(User.id, User.name, User.email, CCB.content_block_id, CCB.grade)
        .select_from(StudentCourse)
        .join(User, User.id == StudentCourse.student_id)
        .outerjoin(
            CCB,
            and_(
                CCB.student_id == User.id,
                CCB.content_block_id.in_(gradable),
                CCB.grade.is_not(None),
            ),
        )
        .where(StudentCourse.course_id == course.id)
        .order_by(User.name, User.id)
        .execution_options(yield_per=chunk)
    )
    result = db.session.execute(stmt)
    try:
        for (_sid, name, email), rows in groupby(result, key=lambda r: (r[0], r[1], r[2])):
            grades: list = [""] * len(blocks)
            total = count = 0
            for *_, bid, g in rows:
                if bid is not None and g is not None and bid in index:
                    grades[index[bid]] = g
                    total += g
                    count += 1
            chunk = out.add([name, email, *grades, _fmt_avg(total / count if count else None)])
            if chunk:
                yield chunk
        yield out.take()
    finally:
        result.close()


def progress_csv(course: Course, chunk: int = 1000) -> Iterator[str]:
    """Every completion of every enrolled student, one line each, streamed."""
    out = _Rows()
    out.add(
        [
            "Student",
            "Email",
            "Section",
            "Block",
            "Type",
            "Completed at",
            "Updated at",
            "Grade",
            "Graded at",
            "Comment",
        ]
    )
    yield "\ufeff" + out.take()
    stmt = (
        select(
            User.name,
            User.email,
            Section.title,
            ContentBlock.title,
            ContentBlock.type,
            CCB.completed_at,
            CCB.updated_at,
            CCB.grade,
            CCB.graded_at,
            CCB.grader_comment,
        )
        .select_from(CCB)
        .join(ContentBlock, CCB.content_block_id == ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .join(
            StudentCourse,
            and_(
                StudentCourse.student_id == CCB.student_id,
                StudentCourse.course_id == Section.course_id,
            ),
        )
        .join(User, User.id == CCB.student_id)
        .where(Section.course_id == course.id)
        .order_by(User.name, User.id, Section.position, ContentBlock.position, CCB.id)
        .execution_options(yield_per=chunk)
    )
    result = db.session.execute(stmt)
    try:
        for name, email, section, block, kind, done, updated, g, graded, comment in result:
            chunk = out.add(
                [
                    name,
                    email,
                    section,
                    block,
                    kind,
                    _iso(done),
                    _iso(updated),
                    "" if g is None else g,
                    _iso(graded),
                    comment or "",
                ]
            )
            if chunk:
                yield chunk
        yield out.take()
    finally:
        result.close()
