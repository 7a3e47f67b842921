"""Budgets of the teacher's hot paths (issue 12): statements per request, bytes per page, and on
PostgreSQL the rows each request reads, for a small and a large course.

The large course has ten times the students (and completions) of the medium one with the same
300-block outline, and a small one has a handful of each. What must hold:

- the same number of SQL statements whatever the size (the session's user counts as one);
- pages under their byte limits;
- on PostgreSQL, rows read that do not grow with the students or their completions: the queue
  probes each gradable block once, the gradebook reads a page of cells. What may grow is said
  where it is asserted (the gradebook sorts the enrolled students by name).

How rows are counted: every statement a request ran is replayed afterwards under
``EXPLAIN (ANALYZE, FORMAT JSON)`` inside a transaction that is rolled back, and the rows each
table or index scan returned or filtered out are summed per table, loops included. That is
exact and repeatable (the statistics views are flushed asynchronously and count other
sessions). A replayed UPDATE finds its version gone and changes nothing, but it reads the same
rows to find that out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections import Counter

import pytest
from sqlalchemy import event, func, insert, select, text

from tests.conftest import login_as, make_course, make_user
from tests.test_teaching import HX, analyze
from webapp.extensions import db
from webapp.models import (
    CompletedContentBlock,
    ContentBlock,
    Role,
    Section,
    StudentCourse,
    User,
    utcnow,
)
from webapp.services import grading_queue
from webapp.services.grading_queue import COUNT_CAP, QUEUE_LIST

PANEL = {**HX, "HX-Target": "grading-panel"}
VIEW = {**HX, "HX-Target": "gradebook-view"}
TYPES = ("quiz", "lesson", "assignment", "video", "lesson", "link")  # 2 of 6 gradable
RECENT = 12  # a student's last RECENT blocks: gradable work there waits for a grade


BIG = {"small": (6, 12), "medium": (30, 300), "large": (300, 300)}  # students, blocks
LITE = {"small": (6, 12), "medium": (30, 60), "large": (100, 60)}  # SQLite: counts and bytes


def seed(teacher, students: int, blocks: int, tag: str):
    """A course of ``blocks`` blocks (sections of 25) with ``students`` students, each of whom
    completed the first 50–90 % of the blocks; their gradable work is graded but for the last
    RECENT blocks, which wait. Progress repeats every 10 students, so a course with more
    students has more of the same work, in the same blocks."""
    course = make_course(teacher, title=f"Course {tag}", sections=0, blocks=0)
    params = {"course": course.id, "blocks": blocks, "students": students, "tag": tag}
    params |= {"teacher": teacher.id, "recent": RECENT}
    if db.engine.dialect.name == "postgresql":
        for statement in SEED_SQL:
            db.session.execute(text(statement), params)
        db.session.commit()
        return course
    sections = [
        {"course_id": course.id, "title": f"Week {s + 1}", "description": "", "position": s}
        for s in range(-(-blocks // 25))
    ]
    section_ids = db.session.scalars(
        insert(Section).returning(Section.id, sort_by_parameter_order=True), sections
    ).all()
    rows = [
        {
            "section_id": section_ids[b // 25],
            "title": f"{TYPES[b % len(TYPES)].title()} {b + 1}",
            "type": TYPES[b % len(TYPES)],
            "url": "https://example.com/v" if TYPES[b % len(TYPES)] in ("video", "link") else None,
            "position": b % 25,
            "description": "",
            "content": "",
        }
        for b in range(blocks)
    ]
    block_ids = db.session.scalars(
        insert(ContentBlock).returning(ContentBlock.id, sort_by_parameter_order=True), rows
    ).all()
    people = [
        {
            "email": f"{tag}-{i}@example.com",
            "name": f"Student {i:04} {tag}",
            "role": "student",
            "is_active": True,
            "session_epoch": 0,
        }
        for i in range(students)
    ]
    student_ids = db.session.scalars(
        insert(User).returning(User.id, sort_by_parameter_order=True), people
    ).all()
    db.session.execute(
        insert(StudentCourse), [{"student_id": s, "course_id": course.id} for s in student_ids]
    )
    now = utcnow() - dt.timedelta(days=30)
    work = []
    for i, sid in enumerate(student_ids):
        done = blocks * (5 + i % 5) // 10
        for b in range(done):
            at = now - dt.timedelta(hours=done - b, minutes=i % 10)
            gradable = TYPES[b % len(TYPES)] in ("quiz", "assignment")
            graded = gradable and b < done - RECENT
            work.append(
                {
                    "student_id": sid,
                    "content_block_id": block_ids[b],
                    "url": f"https://example.com/work/{sid}/{b}" if gradable else None,
                    "feedback": "My answer." if gradable else "",
                    "grade": (sid + b) % 101 if graded else None,
                    "graded_at": at + dt.timedelta(hours=1) if graded else None,
                    "graded_by_id": teacher.id if graded else None,
                    "grader_comment": "",
                    "completed_at": at,
                    "updated_at": at,
                }
            )
    db.session.execute(insert(CompletedContentBlock), work)
    db.session.commit()
    return course


# The same course, seeded by PostgreSQL itself (INSERT … SELECT generate_series): a second.
_KINDS = "(ARRAY['quiz', 'lesson', 'assignment', 'video', 'lesson', 'link'])[1 + b % 6]"
_DONE = ":blocks * (5 + st.i % 5) / 10"  # how many blocks student i completed
SEED_SQL = [
    """INSERT INTO sections (course_id, title, description, position)
       SELECT :course, 'Week ' || (s + 1), '', s FROM generate_series(0, (:blocks - 1) / 25) s""",
    f"""INSERT INTO content_blocks (section_id, title, description, type, url, content, position)
       SELECT sec.id, initcap({_KINDS}) || ' ' || (b + 1), '', {_KINDS},
              CASE WHEN {_KINDS} IN ('video', 'link') THEN 'https://example.com/v' END, '', b % 25
       FROM generate_series(0, :blocks - 1) b
       JOIN sections sec ON sec.course_id = :course AND sec.position = b / 25""",
    """INSERT INTO users (email, name, role, is_active, session_epoch, created_at)
       SELECT :tag || '-' || i || '@example.com',
              'Student ' || lpad(i::text, 4, '0') || ' ' || :tag, 'student', true, 0, now()
       FROM generate_series(0, :students - 1) i""",
    """INSERT INTO student_courses (student_id, course_id, completed, enrolled_at)
       SELECT id, :course, false, now() FROM users WHERE email LIKE :tag || '-%'""",
    f"""WITH st AS (SELECT id AS sid, row_number() OVER (ORDER BY id) - 1 AS i FROM users
                   WHERE email LIKE :tag || '-%'),
            bl AS (SELECT b.id AS bid, b.type,
                          row_number() OVER (ORDER BY s.position, b.position) - 1 AS p
                   FROM content_blocks b JOIN sections s ON s.id = b.section_id
                   WHERE s.course_id = :course)
       INSERT INTO completed_content_blocks (student_id, content_block_id, url, feedback, grade,
           graded_at, graded_by_id, grader_comment, completed_at, updated_at, version)
       SELECT st.sid, bl.bid,
              CASE WHEN g.gradable THEN 'https://example.com/work/' || st.sid || '/' || bl.p END,
              CASE WHEN g.gradable THEN 'My answer.' ELSE '' END,
              CASE WHEN g.graded THEN (st.sid + bl.p) % 101 END,
              CASE WHEN g.graded THEN g.at + interval '1 hour' END,
              CASE WHEN g.graded THEN :teacher END, '', g.at, g.at, 1
       FROM st JOIN bl ON bl.p < {_DONE}
       CROSS JOIN LATERAL (
           SELECT bl.type IN ('quiz', 'assignment') AS gradable,
                  bl.type IN ('quiz', 'assignment') AND bl.p < {_DONE} - :recent AS graded,
                  now() - interval '30 days' - ({_DONE} - bl.p) * interval '1 hour'
                      - (st.i % 10) * interval '1 minute' AS at) g""",
]


def school() -> None:
    """On PostgreSQL, the rest of a school around the courses (5,000 students enrolled in
    another course, with their work), so that the planner chooses the plans it would at scale:
    on a table of a few hundred rows it reads it whole rather than use its index."""
    if db.engine.dialect.name != "postgresql":
        return
    other = make_course(make_user(Role.TEACHER), title="Elsewhere", sections=2, blocks=5)
    seed(other.owner, 5000, 10, "x")


@pytest.fixture
def courses(teacher):
    """Small, medium and large courses of one teacher (the large is the medium ×10 students)."""
    school()
    sizes = BIG if db.engine.dialect.name == "postgresql" else LITE
    made = {size: seed(teacher, *sizes[size], size[0]) for size in sizes}
    analyze()
    return made


# --- measuring -------------------------------------------------------------------------------


@contextlib.contextmanager
def captured():
    """The statements (with their parameters) run inside the block."""
    found: list[tuple[str, object]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        found.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield found
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Tid Scan"}


def _walk(node: dict, counts: Counter, table: str | None = None) -> None:
    """Add the rows each scan of ``node``'s tree read (returned or filtered out, every loop);
    a bitmap index scan's entries count for the table its heap scan reads."""
    kind = node["Node Type"]
    if kind in SCANS:
        table = node["Relation Name"]
        rows = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        if kind == "Bitmap Heap Scan":
            rows = 0  # its bitmap index scans below count what was read
        counts[table] += round(rows * node["Actual Loops"])
    elif kind == "Bitmap Index Scan" and table is not None:
        counts[table] += round(node["Actual Rows"] * node["Actual Loops"])
    for child in node.get("Plans", ()):
        _walk(
            child, counts, table if kind in ("Bitmap Heap Scan", "BitmapAnd", "BitmapOr") else None
        )


def rows_read(statements) -> Counter:
    """Rows read per table by ``statements``, replayed under EXPLAIN ANALYZE and rolled back."""
    counts: Counter = Counter()
    with db.engine.connect() as conn, conn.begin() as trans:
        for statement, parameters in statements:
            plan = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters
            ).scalar()
            _walk(plan[0]["Plan"], counts)
        trans.rollback()
    return counts


def on_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


class Measured:
    def __init__(self, response, statements):
        self.response = response
        self.statements = statements
        self.count = len(statements)
        self.bytes = len(response.get_data())
        self._rows = None

    @property
    def rows(self) -> Counter:
        if self._rows is None:
            self._rows = rows_read(self.statements)
        return self._rows


def measure(client, method: str, url: str, **kw) -> Measured:
    with captured() as statements:
        response = client.open(url, method=method, **kw)
    assert response.status_code < 400, (url, response.status_code)
    return Measured(response, list(statements))


def gradable(course) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(ContentBlock)
        .join(Section)
        .where(Section.course_id == course.id, ContentBlock.type.in_(("quiz", "assignment")))
    )


def completions(course) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(CompletedContentBlock)
        .join(ContentBlock)
        .join(Section)
        .where(Section.course_id == course.id)
    )


def queue_of(course):
    items, _ = grading_queue.queue_list(course.id)
    return items


def version_of(completion_id: int) -> str:
    return str(
        db.session.scalar(
            select(CompletedContentBlock.version).where(CompletedContentBlock.id == completion_id)
        )
    )


# --- the grading queue -------------------------------------------------------------------------


def test_grading_queue_page_budget(client, teacher, courses):
    login_as(client, teacher)
    seen = {
        size: measure(client, "GET", f"/teach/courses/{course.id}/grading")
        for size, course in courses.items()
    }
    counts = {size: m.count for size, m in seen.items()}
    # the session's user, the course, the queue (its oldest 50 and its count), the submission
    assert counts == dict.fromkeys(seen, 4), counts
    for m in seen.values():
        assert m.bytes < 30_000, m.bytes
    assert "100+" in seen["large"].response.text
    if on_postgresql():
        # Whatever the students and completions: a probe per gradable block (its head and the
        # head's key), at most QUEUE_LIST rows from each of the QUEUE_LIST oldest heads' blocks,
        # the count up to its cap; an enrolment probe for each of those rows.
        course = courses["large"]
        bound = QUEUE_LIST**2 + 3 * gradable(course) + 2 * (COUNT_CAP + 1) + 10
        large = seen["large"].rows
        assert large["completed_content_blocks"] <= bound, large
        assert large["student_courses"] <= bound, large
        assert large["users"] <= QUEUE_LIST + 5, large  # the names of the fifty, by key
        assert bound < completions(course) / 20


def test_grading_panel_and_neighbour_budget(client, teacher, courses):
    """Moving through the queue (htmx): a submission's panel, and its Next link."""
    login_as(client, teacher)
    counts = {}
    for size, course in courses.items():
        sub = queue_of(course)[2]
        base = f"/teach/courses/{course.id}/grading/{sub.id}"
        panel = measure(client, "GET", base, headers=PANEL)
        step = measure(client, "GET", f"{base}/next", headers=PANEL)
        back = measure(client, "GET", f"{base}/previous", headers=PANEL)
        counts[size] = (panel.count, step.count, back.count)
        assert max(panel.bytes, step.bytes, back.bytes) < 8_000
        if on_postgresql() and size != "small":
            counts[size] += (step.rows["completed_content_blocks"],)
    assert {c[:3] for c in counts.values()} == {(3, 4, 4)}, counts
    if on_postgresql():
        # the Next link probes each gradable block once: the same for ten times the students
        assert counts["large"][3] <= 1.5 * counts["medium"][3] + 50, counts


def test_save_and_next_budget(client, teacher, courses):
    """Grade, Save & next (htmx): four statements on PostgreSQL, with the session's user.

    The course guard, the conditional UPDATE … RETURNING, and one SELECT of the next
    submission and the count that carries the email's INSERT as a CTE. SQLite has no
    INSERT inside a SELECT, so there the INSERT is a statement of its own (five).
    """
    login_as(client, teacher)
    budget = 4 if on_postgresql() else 5
    seen = {}
    for size, course in courses.items():
        sub = queue_of(course)[0]
        data = {"grade": "77", "comment": "Good", "action": "next", "version": version_of(sub.id)}
        url = f"/teach/courses/{course.id}/grading/{sub.id}"
        seen[size] = m = measure(client, "POST", url, data=data, headers=PANEL)
        assert m.count == budget, "\n".join(" ".join(s.split())[:150] for s, _ in m.statements)
        assert m.bytes < 8_000
        assert "Saved: 77" in m.response.headers["HX-Trigger"]
        assert db.session.get(CompletedContentBlock, sub.id).grade == 77
    if on_postgresql():
        medium, large = seen["medium"].rows, seen["large"].rows
        work = "completed_content_blocks"
        assert large[work] <= 1.5 * medium[work] + 100, (medium, large)
        assert sum(large.values()) <= 1.5 * sum(medium.values()) + 300, (medium, large)


# --- the gradebook -------------------------------------------------------------------------------


def test_gradebook_page_budget(client, teacher, courses):
    login_as(client, teacher)
    seen = {}
    for size, course in courses.items():
        pages = "page=1&blocks=1" if size == "small" else "page=1&blocks=2"  # 25 students
        url = f"/teach/courses/{course.id}/gradebook?{pages}"
        seen[size] = m = measure(client, "GET", url)
        assert m.bytes < 60_000, (size, m.bytes)
    counts = {size: m.count for size, m in seen.items()}
    # the user, the course, the students' page, the blocks' page, the page's students' work
    # (cells and progress), the queue's count for the tabs
    assert counts == dict.fromkeys(seen, 6), counts
    large = seen["large"].response.text
    assert "Students 1–25 of " in large and "Blocks 21–40 of " in large
    assert large.count('<td id="cell-') > 100
    if on_postgresql():
        medium, large = seen["medium"].rows, seen["large"].rows
        work = "completed_content_blocks"
        # a page of cells, and each of the page's students' own completions (progress): the
        # same for ten times the students
        assert large[work] <= 1.2 * medium[work] + 100, (medium, large)
        # what grows: the enrolled students, sorted by name for the page (an index each)
        for table in ("student_courses", "users"):
            assert large[table] <= medium[table] + 2 * (300 - 30) + 50, (table, medium, large)


def test_gradebook_moving_and_cell_save_budget(client, teacher, courses):
    """A page turn (htmx), a cell's editor, and a cell saved in place."""
    login_as(client, teacher)
    counts = {}
    for size, course in courses.items():
        base = f"/teach/courses/{course.id}/gradebook"
        pages = "page=1&blocks=1" if size == "small" else "page=2&blocks=2"
        turn = measure(client, "GET", f"{base}?{pages}", headers=VIEW)
        assert turn.bytes < 55_000
        window = re.search(
            r'name="ws" value="([^"]*)".*name="wb" value="([^"]*)"', turn.response.text, re.S
        )
        cell_id = int(re.search(r'<td id="cell-(\d+)">', turn.response.text).group(1))
        cell = {**HX, "HX-Target": f"cell-{cell_id}"}
        edit = measure(client, "GET", f"{base}/cells/{cell_id}", headers=cell)
        data = {
            f"c{cell_id}-grade": "42",
            f"c{cell_id}-version": version_of(cell_id),
            "ws": window.group(1),
            "wb": window.group(2),
        }
        save = measure(client, "POST", f"{base}/cells/{cell_id}", data=data, headers=cell)
        assert ">42</a>" in save.response.text and "avg-s" in save.response.text
        counts[size] = (turn.count, edit.count, save.count)
        if on_postgresql() and size != "small":
            counts[size] += (save.rows["completed_content_blocks"],)
    saved = 4 if on_postgresql() else 5
    assert {c[:3] for c in counts.values()} == {(5, 3, saved)}, counts
    if on_postgresql():
        assert counts["large"][3] <= 1.5 * counts["medium"][3] + 50, counts
