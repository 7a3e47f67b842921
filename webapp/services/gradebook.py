"""The gradebook: enrolled students × the course's blocks, with grades, progress and averages.

Every function takes a course the caller got from ``access.course_for_owner``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Bundle

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
from ..models import CompletedContentBlock as CCB
from .access import completion_for_grader, enrolled_work
from .grading import grade, version_of
from .progress import block_ids, percent
from .roster import paginate


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
    progress: dict[int, int]
    row_avg: dict[int, float]
    col_avg: dict[int, float]
    course_avg: float | None
    total: int
    page: int
    pages: int


def averages(course_id: int, student_ids: list[int] | None = None, block_ids=None):
    """(row averages, column averages, course average) of grades, computed in SQL."""
    grades = (
        enrolled_work(CCB.student_id, CCB.content_block_id, CCB.grade)
        .where(
            Section.course_id == course_id,
            ContentBlock.type.in_(GRADABLE),
            CCB.grade.is_not(None),
        )
        .subquery()
    )
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
    result = paginate(
        select(Bundle("student", User.id, User.name, User.email))
        .join(StudentCourse, StudentCourse.student_id == User.id)
        .where(StudentCourse.course_id == course.id)
        .order_by(User.name, User.id),
        page,
    )
    students = [tuple(s) for s in result.items]
    ids = [s[0] for s in students]
    cells: dict[tuple[int, int], Cell] = {}
    if ids and blocks:
        stmt = (
            select(CCB.id, CCB.student_id, CCB.content_block_id, CCB.grade, CCB.version)
            .add_columns(CCB.changed_since_graded)
            .where(CCB.student_id.in_(ids), CCB.content_block_id.in_(block_ids(course.id)))
            .execution_options(yield_per=2000)
        )
        for cid, sid, bid, g, version, stale in db.session.execute(stmt):
            cells[(sid, bid)] = Cell(cid, g, bool(stale), str(version))
    done = dict.fromkeys(ids, 0)
    for sid, _ in cells:
        done[sid] += 1
    progress = {sid: percent(n, len(blocks)) for sid, n in done.items()}
    row_avg, col_avg, course_avg = averages(course.id, student_ids=ids)
    return Gradebook(
        blocks,
        students,
        cells,
        progress,
        row_avg,
        col_avg,
        course_avg,
        total=result.total,
        page=result.page,
        pages=result.pages,
    )


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
