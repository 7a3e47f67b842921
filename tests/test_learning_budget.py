"""Budgets of the student's hot paths (issue 12): statements per request, HTML bytes, rows read.

A small course (2 sections x 2 blocks) and a large one (40 x 25 = 1,000 blocks, with many other
students and their completions) are seeded with bulk ``INSERT ... SELECT`` over a recursive
counter (the same SQL on PostgreSQL and SQLite). For mark complete, undo, the course page, the
block page and a folded section's blocks the tests assert the same number of statements for
both courses, at most 4 for the fragments and 8 for the pages, and less than 40,000 bytes of
HTML for the large course's pages.

On PostgreSQL they also measure the rows each statement reads (``rows_read``): every statement
the request sends is first run as ``EXPLAIN (ANALYZE, FORMAT JSON)`` on the same connection,
inside a savepoint rolled back at once, so it sees exactly the data and locks the real one
sees and leaves nothing behind; the rows of each scan node (returned, plus removed by a filter
or an index recheck, times its loops) are added up. Unlike ``pg_stat_user_tables`` this does not
depend on when the server flushes its counters, and it names the statement that grew. The
school then grows (as many students again, with their completions, and another large course)
and every request must read exactly what it read before: nothing a request reads depends on
other students, other courses or their completions. What grows with the course itself is the
counts (blocks done of blocks in the course and in each section: one index entry a block),
bounded here too.
"""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import event, select, text

from tests.conftest import DATABASE_URL, login_as, make_user
from webapp.extensions import db
from webapp.models import ContentBlock, Course, Role, Section, StudentCourse

ON_POSTGRES = DATABASE_URL.startswith("postgresql")
HX = {"HX-Request": "true"}
HX_COMPLETION = {"HX-Request": "true", "HX-Target": "completion"}
PAGE_BYTES = 40_000
FRAGMENT_STATEMENTS = 4
PAGE_STATEMENTS = 8
SLACK = 10  # rows: rounding in EXPLAIN's figures (see test_rows_read_do_not_grow_with_the_school)


# --- seeding with bulk SQL -----------------------------------------------------------------------

COUNTER = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :count) "


def _run(sql: str, **params) -> None:
    db.session.execute(text(sql), params)


def seed_course(teacher, title: str, sections: int, blocks: int) -> Course:
    """A published course of ``sections`` x ``blocks`` blocks, types cycling."""
    course = Course(title=title, description="About it", user_id=teacher.id, is_published=True)
    db.session.add(course)
    db.session.flush()
    _run(
        COUNTER + "INSERT INTO sections (course_id, title, description, position) "
        "SELECT :course, 'Section ' || (i + 1), '', i FROM n",
        count=sections, course=course.id,
    )  # fmt: skip
    _run(
        COUNTER + "INSERT INTO content_blocks "
        "(section_id, title, description, type, url, content, position) "
        "SELECT s.id, 'Block ' || (s.position + 1) || '.' || (i + 1) || ' on a subject', '', "
        "CASE i % 3 WHEN 0 THEN 'lesson' WHEN 1 THEN 'video' ELSE 'assignment' END, "
        "CASE i % 3 WHEN 1 THEN 'https://example.com/v' END, 'Some *text*', i "
        "FROM sections s, n WHERE s.course_id = :course",
        count=blocks, course=course.id,
    )  # fmt: skip
    db.session.commit()
    return course


def seed_students(course: Course, count: int, tag: str) -> None:
    """``count`` more students enrolled in ``course``, each with about a third of it done."""
    _run(
        COUNTER + "INSERT INTO users (email, name, password_hash, role, is_active, session_epoch,"
        " created_at) SELECT :tag || i || '@example.com', 'Bulk ' || i, NULL, 'student', "
        + ("true" if ON_POSTGRES else "1")
        + ", 0, CURRENT_TIMESTAMP FROM n",
        count=count, tag=tag,
    )  # fmt: skip
    _run(
        "INSERT INTO student_courses (student_id, course_id, completed, enrolled_at) "
        "SELECT u.id, :course, " + ("false" if ON_POSTGRES else "0") + ", CURRENT_TIMESTAMP "
        "FROM users u WHERE u.email LIKE :pattern",
        course=course.id, pattern=f"{tag}%",
    )  # fmt: skip
    _run(
        "INSERT INTO completed_content_blocks (student_id, content_block_id, url, feedback, "
        "grader_comment, completed_at, updated_at, version) "
        "SELECT u.id, b.id, 'https://example.com/w', '', '', CURRENT_TIMESTAMP, "
        "CURRENT_TIMESTAMP, 1 FROM users u, content_blocks b JOIN sections s "
        "ON s.id = b.section_id WHERE s.course_id = :course AND u.email LIKE :pattern "
        "AND (u.id * 7 + b.id) % 3 = 0",
        course=course.id, pattern=f"{tag}%",
    )  # fmt: skip
    db.session.commit()


def blocks_in_order(course: Course) -> list[ContentBlock]:
    return list(
        db.session.scalars(
            select(ContentBlock)
            .join(Section)
            .where(Section.course_id == course.id)
            .order_by(Section.position, Section.id, ContentBlock.position, ContentBlock.id)
        )
    )


def enrol_with_progress(student, course: Course, done: int) -> list[ContentBlock]:
    """Enrol ``student`` with the first ``done`` blocks completed, the next one visited last."""
    blocks = blocks_in_order(course)
    ids = ",".join(str(b.id) for b in blocks[:done]) or "0"
    _run(
        "INSERT INTO completed_content_blocks (student_id, content_block_id, url, feedback, "
        "grader_comment, completed_at, updated_at, version) SELECT :student, b.id, "
        f"'https://example.com/w', '', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1 "
        f"FROM content_blocks b WHERE b.id IN ({ids})",
        student=student.id,
    )  # fmt: skip
    db.session.add(
        StudentCourse(
            student_id=student.id, course_id=course.id, completed=False,
            last_block_id=blocks[done].id,
        )
    )  # fmt: skip
    db.session.commit()
    return blocks


def analyze() -> None:
    if ON_POSTGRES:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))


# --- measuring -----------------------------------------------------------------------------------


# The test's tables are small, where PostgreSQL rightly prefers to read a table or a whole index
# (a sequential scan, a hash join) to probing it; a school's tables make it take the index paths.
# So the EXPLAIN plans without them: what it measures is whether the statement can be answered
# from the indexes reading only what belongs to this student and this course.
INDEXED_PLANS = (
    "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; "
    "SET LOCAL enable_mergejoin = off"
)


def rows_read(plan: list) -> int:
    """Rows the scans of an ``EXPLAIN (ANALYZE, FORMAT JSON)`` plan read."""
    total = 0

    def walk(node: dict) -> None:
        nonlocal total
        if "Relation Name" in node and node["Node Type"] != "ModifyTable":
            seen = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
            seen += node.get("Rows Removed by Index Recheck", 0)
            total += seen * node.get("Actual Loops", 1)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return total


class Measure:
    def __init__(self):
        self.statements: list[str] = []
        self.rows: list[int] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def report(self) -> str:
        return "\n".join(
            f"  {rows:>6} rows  {' '.join(sql.split())[:150]}"
            for sql, rows in zip(self.statements, self.rows or [0] * self.count, strict=True)
        )


@contextlib.contextmanager
def measuring():
    """Count the statements sent while the block runs; on PostgreSQL also the rows each reads."""
    found = Measure()

    def before(conn, cursor, statement, parameters, context, executemany):
        found.statements.append(statement)
        if not ON_POSTGRES:
            return
        cursor.execute("SAVEPOINT budget_explain")
        cursor.execute(INDEXED_PLANS)
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
        plan = cursor.fetchone()[0]
        cursor.execute("ROLLBACK TO SAVEPOINT budget_explain")
        found.rows.append(rows_read(plan))

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield found
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


@pytest.fixture
def school(app, teacher):
    """A student enrolled in a small course and a large one, among many other students."""
    student = make_user(Role.STUDENT)
    small = seed_course(teacher, "Small course", 2, 2)
    large = seed_course(teacher, "Large course", 40, 25)
    seed_students(large, 200 if ON_POSTGRES else 20, "bulk")
    seed_students(small, 5, "few")
    courses = {
        "small": (small, enrol_with_progress(student, small, 1), 1),
        "large": (large, enrol_with_progress(student, large, 500), 500),
    }
    analyze()
    return student, courses


def requests_of(course: Course, blocks: list[ContentBlock], done: int) -> dict:
    """The five hot requests of one course: (method, url, headers, expected status)."""
    here = blocks[done]  # the block to resume: not completed yet
    folded = blocks[-1].section_id  # the last section is folded on both pages
    base = f"/courses/{course.id}"
    return {
        "course page": ("GET", base, {}, 200),
        "block page": ("GET", f"{base}/blocks/{here.id}", {}, 200),
        "section": ("GET", f"{base}/sections/{folded}", HX, 200),
        "mark complete": ("POST", f"{base}/blocks/{here.id}/complete", HX_COMPLETION, 200),
        "undo": ("POST", f"{base}/blocks/{here.id}/undo", HX_COMPLETION, 200),
    }


def run_all(client, course, blocks, done) -> dict[str, tuple[Measure, int]]:
    found = {}
    for name, (method, url, headers, status) in requests_of(course, blocks, done).items():
        data = {"url": "https://example.com/mine"} if method == "POST" else None
        with measuring() as m:
            resp = client.open(url, method=method, headers=headers, data=data)
        assert resp.status_code == status, (name, resp.status_code)
        found[name] = (m, len(resp.data))
    return found


# --- the budgets ---------------------------------------------------------------------------------


def test_statements_and_bytes_do_not_grow_with_the_course(client, school):
    student, courses = school
    login_as(client, student)
    measured = {}
    for size, (course, blocks, done) in courses.items():
        client.get(f"/courses/{course.id}/blocks/{blocks[done].id}")  # the visit is recorded
        measured[size] = run_all(client, course, blocks, done)
    for name in measured["small"]:
        small, (large, large_bytes) = measured["small"][name][0], measured["large"][name]
        limit = PAGE_STATEMENTS if name.endswith("page") else FRAGMENT_STATEMENTS
        assert large.count <= limit, f"{name}: {large.count} statements\n{large.report()}"
        assert small.count == large.count, (name, small.count, large.count)
        if name.endswith("page"):
            assert large_bytes < PAGE_BYTES, (name, large_bytes)
    print({name: (m.count, size) for name, (m, size) in measured["large"].items()})


def test_the_first_visit_of_a_block_stays_within_the_page_budget(client, school):
    student, courses = school
    course, blocks, done = courses["large"]
    login_as(client, student)
    with measuring() as m:
        assert client.get(f"/courses/{course.id}/blocks/{blocks[done + 1].id}").status_code == 200
    assert m.count <= PAGE_STATEMENTS, m.report()
    assert db.session.get(StudentCourse, _enrolment_id(student, course)).last_block_id == (
        blocks[done + 1].id
    )


def _enrolment_id(student, course) -> int:
    return db.session.scalar(
        select(StudentCourse.id).where(
            StudentCourse.student_id == student.id, StudentCourse.course_id == course.id
        )
    )


@pytest.mark.skipif(not ON_POSTGRES, reason="rows read are measured with EXPLAIN on PostgreSQL")
def test_rows_read_do_not_grow_with_the_school(client, school, teacher):
    student, courses = school
    course, blocks, done = courses["large"]
    login_as(client, student)
    client.get(f"/courses/{course.id}/blocks/{blocks[done].id}")
    before = run_all(client, course, blocks, done)

    # As many students again with their completions, and another large course with its own.
    seed_students(course, 200, "more")
    other = seed_course(teacher, "Another large course", 40, 25)
    seed_students(other, 100, "elsewhere")
    analyze()
    after = run_all(client, course, blocks, done)

    total = len(blocks)
    for name, (m, _) in before.items():
        grown = after[name][0]
        # PostgreSQL reports a node's rows as a per-loop average rounded to a whole row, and the
        # plan may change its memoizing: a few rows either way are that, not growth.
        more = [now - then for now, then in zip(grown.rows, m.rows, strict=True)]
        assert max(more) <= SLACK, f"{name} read more:\n{m.report()}\n--- now\n{grown.report()}"
        # What is left grows with this course only: its blocks counted, each at most 3 times
        # (the course's total and done, the section's, the outline's counts) plus a few rows.
        assert sum(m.rows) <= 3 * total + 200, f"{name}\n{m.report()}"
    print({name: sum(m.rows) for name, (m, _) in before.items()})


def test_edit_and_a_refused_undo_stay_within_the_fragment_budget(client, school, teacher):
    student, courses = school
    course, blocks, done = courses["large"]
    assignment = next(b for b in blocks[:done] if b.type == "assignment")
    login_as(client, student)
    url = f"/courses/{course.id}/blocks/{assignment.id}"
    with measuring() as edit:
        resp = client.post(
            url + "/completion", data={"url": "https://example.com/v2"}, headers=HX_COMPLETION
        )
    assert resp.status_code == 200 and "https://example.com/v2" in resp.text
    assert edit.count <= FRAGMENT_STATEMENTS, edit.report()
    _run(
        "UPDATE completed_content_blocks SET grade = 80, graded_at = CURRENT_TIMESTAMP "
        "WHERE student_id = :student AND content_block_id = :block",
        student=student.id, block=assignment.id,
    )  # fmt: skip
    db.session.commit()
    with measuring() as refused:
        resp = client.post(url + "/undo", headers=HX_COMPLETION)
    assert resp.status_code == 409 and "cannot be undone" in resp.text
    assert refused.count <= FRAGMENT_STATEMENTS, refused.report()
