"""The gradebook: a window of the course's students × blocks, with grades, progress, averages.

Every function takes a course the caller got from ``access.course_for_owner``. A page shows
STUDENTS students (by name) × BLOCKS blocks (in reading order): its cells are one lookup each,
so a page costs the same for 20 students as for 2,000. The averages are of the grades on the
page (a row: the student's grades in these blocks; a column: these students' grades in the
block); the gradebook CSV has every student's average over the whole course.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import Integer, Select, bindparam, case, func, select, true, tuple_

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
from . import Invalid, unit_of_work
from .access import completion_for_grader, enrolled, student_for_teacher
from .grading import Graded, grade, version_of
from .grading_queue import COURSE, Count, count_of
from .progress import AVERAGE_RULES, grade_average, percent

STUDENTS = 25  # rows a page
BLOCKS = 20  # columns a page
WINDOW_MAX = 100  # ids a cell save may name for its averages

CCB = CompletedContentBlock


def course_blocks(course_id: int, gradable_only: bool = False) -> list:
    """Rows (id, title, type) of the course's blocks in reading order (section, then block)."""
    stmt = (
        select(ContentBlock.id, ContentBlock.title, ContentBlock.type)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(Section.course_id == course_id)
        .order_by(Section.position, Section.id, ContentBlock.position, ContentBlock.id)
    )
    if gradable_only:
        stmt = stmt.where(ContentBlock.type.in_(GRADABLE))
    return db.session.execute(stmt).all()


@dataclass
class Cell:
    id: int
    grade: int | None
    stale: bool
    version: str


@dataclass
class Column:
    id: int
    title: str
    type: str
    section: str

    @property
    def is_gradable(self) -> bool:
        return self.type in GRADABLE


@dataclass
class Window:
    """One page in one direction: its number, how many there are, how many items in all."""

    page: int
    pages: int
    total: int
    size: int

    @property
    def first(self) -> int:  # the position of the page's first item, from 1
        return (self.page - 1) * self.size + 1


@dataclass
class Gradebook:
    blocks: list[Column]
    students: list[tuple[int, str, str]]
    cells: dict[tuple[int, int], Cell]
    progress: dict[int, int]
    row_avg: dict[int, float]
    col_avg: dict[int, float]
    rows: Window
    cols: Window
    queue_count: Count | None

    @property
    def sections(self) -> list[tuple[str, int]]:
        """(title, how many of the page's columns) of each section the page's blocks are in."""
        runs: list[list] = []
        for column in self.blocks:
            if runs and runs[-1][0] == column.section:
                runs[-1][1] += 1
            else:
                runs.append([column.section, 1])
        return [(title, n) for title, n in runs]


def _page(page: int, total: int, size: int) -> Window:
    pages = max(1, -(-total // size))
    return Window(min(max(page, 1), pages), pages, total, size)


@cache
def _students_stmt() -> Select:
    """A page of the enrolled students by name, and how many there are."""
    count = select(func.count(StudentCourse.id)).where(StudentCourse.course_id == COURSE)
    return (
        select(User.id, User.name, User.email, count.scalar_subquery().label("total"))
        .join(StudentCourse, StudentCourse.student_id == User.id)
        .where(StudentCourse.course_id == COURSE)
        .order_by(User.name, User.id)
        .limit(STUDENTS)
        .offset(bindparam("skip", type_=Integer))
    )


@cache
def _blocks_stmt() -> Select:
    """A page of the course's blocks in reading order, and how many there are."""
    count = select(func.count(ContentBlock.id)).join(Section).where(Section.course_id == COURSE)
    return (
        select(
            ContentBlock.id,
            ContentBlock.title,
            ContentBlock.type,
            Section.title,
            count.scalar_subquery().label("total"),
        )
        .join(Section, ContentBlock.section_id == Section.id)
        .where(Section.course_id == COURSE)
        .order_by(Section.position, Section.id, ContentBlock.position, ContentBlock.id)
        .limit(BLOCKS)
        .offset(bindparam("skip", type_=Integer))
    )


def _rows(stmt, course_id: int, page: int, size: int) -> list:
    return db.session.execute(stmt, {"course_id": course_id, "skip": (page - 1) * size}).all()


def _window(stmt, course_id: int, page: int, size: int) -> tuple[list, Window]:
    """A page of ``stmt`` (each row ends with the total); a page past the end is the last."""
    page = max(page, 1)
    rows = _rows(stmt, course_id, page, size)
    if not rows and page > 1:  # past the end (two more statements, for this case only)
        first = _rows(stmt, course_id, 1, size)
        page = _page(page, first[0].total if first else 0, size).page
        rows = first if page == 1 else _rows(stmt, course_id, page, size)
    return rows, _page(page, rows[0].total if rows else 0, size)


@cache
def _work_stmt() -> Select:
    """The page's students' work in the course, read once along their own index: one row per
    (student, page block) with the cell, and one per student with the count of their other
    completions (for their progress).

    The students' completions are a MATERIALIZED CTE, read first (about 6,000 rows for 25
    students with 250 completions each), then kept to the course's blocks by a hash join.
    Left to itself PostgreSQL probes the completions' index once per block of the course for
    all 25 students (25,000 probes, ~50 ms on the school-sized bench; the CTE: ~7 ms)."""
    mine = (
        select(
            CCB.id,
            CCB.student_id,
            CCB.content_block_id,
            CCB.grade,
            CCB.version,
            CCB.changed_since_graded.label("changed"),
        )
        .where(CCB.student_id.in_(bindparam("students", expanding=True)))
        .cte("mine")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    on_page = mine.c.content_block_id.in_(bindparam("blocks", expanding=True))
    block = case((on_page, mine.c.content_block_id)).label("block_id")
    return (
        select(
            mine.c.student_id,
            block,
            func.count(),
            func.max(mine.c.id),
            func.max(mine.c.grade),
            func.max(mine.c.version),
            func.max(case((mine.c.changed, 1), else_=0)),
        )
        .join(ContentBlock, ContentBlock.id == mine.c.content_block_id)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(Section.course_id == COURSE)
        .group_by(mine.c.student_id, block)
    )


def gradebook(course: Course, page: int = 1, block_page: int = 1, count=True) -> Gradebook:
    """One page: STUDENTS students × BLOCKS blocks, in four statements whatever the size
    (and the queue's count for the course tabs if ``count``)."""
    students, rows = _window(_students_stmt(), course.id, page, STUDENTS)
    blocks, cols = _window(_blocks_stmt(), course.id, block_page, BLOCKS)
    sids = [s[0] for s in students]
    columns = [Column(b[0], b[1], b[2], b[3]) for b in blocks]
    cells: dict[tuple[int, int], Cell] = {}
    progress: dict[int, int] = {}
    if sids:
        done: dict[int, int] = dict.fromkeys(sids, 0)
        for sid, bid, n, cid, g, version, stale in db.session.execute(
            _work_stmt(),
            {"course_id": course.id, "students": sids, "blocks": [c.id for c in columns]},
        ):
            done[sid] += n
            if bid is not None:
                cells[(sid, bid)] = Cell(cid, g, bool(stale), str(version))
        progress = {sid: percent(n, cols.total) for sid, n in done.items()}
    gradable = {c.id for c in columns if c.is_gradable}
    row_avg, col_avg = _averages(cells, sids, gradable, course.average_rule)
    queue = None
    if count:
        queue = Count(db.session.scalar(select(count_of()), {"course_id": course.id}))
    return Gradebook(columns, [tuple(s[:3]) for s in students], cells, progress, row_avg,
                     col_avg, rows, cols, queue)  # fmt: skip


def _averages(cells, sids, gradable, rule) -> tuple[dict[int, float], dict[int, float]]:
    """Row and column averages of the page's grades (gradable blocks only), by ``rule``: a
    row's missing work is the page's gradable blocks it has no cell in; a column's, the page's
    students without a cell."""
    rows = {sid: [0, 0, 0] for sid in sids}  # sum of grades, graded, handed in
    cols = {bid: [0, 0, 0] for bid in gradable}
    for (sid, bid), cell in cells.items():
        if bid in gradable:
            for acc in (rows[sid], cols[bid]):
                acc[2] += 1
                if cell.grade is not None:
                    acc[0] += cell.grade
                    acc[1] += 1
    row_avg = {k: grade_average(t, g, len(gradable) - n, rule) for k, (t, g, n) in rows.items()}
    col_avg = {k: grade_average(t, g, len(sids) - n, rule) for k, (t, g, n) in cols.items()}
    return (
        {k: v for k, v in row_avg.items() if v is not None},
        {k: v for k, v in col_avg.items() if v is not None},
    )


@unit_of_work()
def set_average_rule(course: Course, rule: str) -> str:
    """The course's rule for its gradebook averages (``progress.AVERAGE_RULES``); returns how
    the pages say it."""
    if rule not in AVERAGE_RULES:
        raise Invalid("Choose how averages count missing work.", field="rule")
    course.average_rule = rule
    return AVERAGE_RULES[rule]


def window_of(course: Course, student_id: int, block_id: int) -> tuple[int, int]:
    """The (student page, block page) that shows this student's cell of this block."""
    student = student_for_teacher(course, student_id)
    before = db.session.scalar(
        select(func.count(StudentCourse.id))
        .join(User, User.id == StudentCourse.student_id)
        .where(
            StudentCourse.course_id == course.id,
            tuple_(User.name, User.id) < tuple_(student.name, student.id),
        )
    )
    ids = [b.id for b in course_blocks(course.id)]
    position = ids.index(block_id) if block_id in ids else 0
    return before // STUDENTS + 1, position // BLOCKS + 1


def gradebook_cell(course: Course, completion_id: int) -> tuple[CompletedContentBlock, Cell]:
    completion = completion_for_grader(course, completion_id)
    cell = Cell(
        completion.id, completion.grade, completion.changed_since_graded, version_of(completion)
    )
    return completion, cell


@dataclass
class SavedCell:
    graded: Graded
    cell: Cell
    row_avg: float | None
    col_avg: float | None
    queue_count: Count


def parse_ids(text: str | None) -> list[int]:
    """Ids from a comma-separated list (the page's window a cell save names), at most
    WINDOW_MAX; anything else is ignored."""
    ids = []
    for part in (text or "").split(",")[:WINDOW_MAX]:
        if part.strip().isdigit() and 0 < int(part) < 2**31:
            ids.append(int(part))
    return ids


@cache
def _averages_stmt() -> Select:
    """After a cell save: for the student's row over the page's blocks and the block's column
    over the page's students (only the course's gradable blocks and enrolled students), the sum
    of the grades, how many are graded, how many handed in and how many could be; the queue."""
    c = CCB
    gradable = (
        select(ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(
            ContentBlock.id.in_(bindparam("blocks", expanding=True)),
            Section.course_id == COURSE,
            ContentBlock.type.in_(GRADABLE),
        )
    )
    row = select(func.coalesce(func.sum(c.grade), 0), func.count(c.grade), func.count()).where(
        c.student_id == bindparam("student_id", type_=Integer),
        c.content_block_id.in_(gradable),
    )
    row_slots = select(func.count()).select_from(gradable.subquery())
    col = select(func.coalesce(func.sum(c.grade), 0), func.count(c.grade), func.count()).where(
        c.content_block_id == bindparam("block_id", type_=Integer),
        c.student_id.in_(bindparam("students", expanding=True)),
        enrolled(COURSE, c.student_id),
    )
    col_slots = select(func.count(StudentCourse.id)).where(
        StudentCourse.course_id == COURSE,
        StudentCourse.student_id.in_(bindparam("students", expanding=True)),
    )
    rs, cs = row.subquery("r"), col.subquery("c")  # one row each
    return select(
        *rs.c, row_slots.scalar_subquery(), *cs.c, col_slots.scalar_subquery(),
        count_of().label("waiting"),
    ).select_from(rs.join(cs, true()))  # fmt: skip


def save_cell(
    course: Course,
    completion_id: int,
    grader: User,
    grade_value: int,
    version: str,
    students: list[int] = (),
    blocks: list[int] = (),
) -> SavedCell:
    """A gradebook cell's grade (the comment is kept), with the averages of its row and column
    over the page's ``students`` and ``blocks``, and the queue's count: four statements with
    the session's user and the course (PostgreSQL)."""

    def then(done: Graded):
        params = {
            "course_id": course.id,
            "student_id": done.student_id,
            "block_id": done.block_id,
            "blocks": list(blocks) or [done.block_id],
            "students": list(students) or [done.student_id],
        }
        return _averages_stmt(), params

    rule = course.average_rule  # read before the commit expires the row
    done, rows = grade(course, completion_id, grader, grade_value, None, version, then)
    (r_sum, r_graded, r_in, r_slots, c_sum, c_graded, c_in, c_slots, waiting), *_ = rows
    row_avg = grade_average(int(r_sum), r_graded, r_slots - r_in, rule)
    col_avg = grade_average(int(c_sum), c_graded, c_slots - c_in, rule)
    stale = done.updated_at > done.graded_at
    cell = Cell(done.id, done.grade, stale, str(done.version))
    return SavedCell(done, cell, row_avg, col_avg, Count(waiting))
