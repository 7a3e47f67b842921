"""Budgets of the course editor at the size of a school (issue 12).

A title edit (a block's, in the block's in-place editor; a section's or the course's, in the
in-place field) touches the row it changes: at most 4 SQL statements, the session's user lookup
included, whatever the size of the course and the number of completions. The editor page keeps
a fixed number of statements.

Each test seeds a small course, measures, then seeds a large one (40 sections x 25 blocks, 2,000
enrolled students, 80,000 completions) and measures again: the statement counts must be equal.
The block being edited has the same 3 completions in both courses, because its row shows that
count.

On PostgreSQL the tests also compare the rows each statement reads. Every statement the request
ran is captured with its parameters and, right after the request (before the next seeding), run
again under ``EXPLAIN (ANALYZE, FORMAT JSON)`` on a separate connection, in a transaction that
is rolled back (so an UPDATE changes nothing); the rows read are the rows each scan node
returned or filtered away, times its loops. This is deterministic, unlike
``pg_stat_user_tables`` (whose counters reach the shared statistics only when a backend flushes
them, and include every other statement of the connection), and it names the statement that
grew. The transaction sets ``enable_seqscan = off``: on tables of a few dozen rows the planner
rightly prefers reading the whole table, which would look like growth here although it takes
the index on a school's tables; with sequential scans off, a statement still reads a whole
table only when no index can serve it, which is the growth this test is after. A query whose
cost grows with the course or the completions reads more rows for the large course; a request
that touches one row reads the same handful whichever course it edits.
"""

from __future__ import annotations

import contextlib
import json
import re

from sqlalchemy import event, insert, literal, select

from tests.conftest import DATABASE_URL, login_as
from webapp.extensions import db
from webapp.models import (
    CompletedContentBlock,
    ContentBlock,
    Course,
    Section,
    StudentCourse,
    User,
    utcnow,
)

ON_POSTGRES = DATABASE_URL.startswith("postgresql")
FRAGMENT_STATEMENTS = 4  # the limit for a fragment, the user lookup included
PAGE_STATEMENTS = 8  # the limit for a page
TARGET_DONE = 3  # completions of the block being edited, in both courses
ROWS_SLACK = 10  # rows read: the large course's edit may read this many more than the small's


def hx(target: str) -> dict:
    return {"HX-Request": "true", "HX-Target": target}


# --- seeding -------------------------------------------------------------------------------------


def seed_course(teacher: User, sections: int, blocks: int, students: int, tag: str) -> dict:
    """A course of ``sections`` x ``blocks``, ``students`` enrolled; each student completed the
    first block of every section, and the first 3 students the last block of the course too.
    Bulk inserts (one statement per table but the users' and blocks' executemany)."""
    now = utcnow()
    course = Course(title=f"Course {tag}", description="", user_id=teacher.id, is_published=True)
    db.session.add(course)
    db.session.flush()
    db.session.execute(
        insert(Section),
        [
            {"course_id": course.id, "title": f"S{i}", "description": "", "position": i}
            for i in range(sections)
        ],
    )
    section_ids = db.session.scalars(
        select(Section.id).where(Section.course_id == course.id).order_by(Section.position)
    ).all()
    db.session.execute(
        insert(ContentBlock),
        [
            {"section_id": sid, "title": f"B{j}", "description": "", "type": "lesson",
             "url": None, "content": "Some *text* " * 50, "position": j}
            for sid in section_ids for j in range(blocks)
        ],
    )  # fmt: skip
    db.session.execute(
        insert(User),
        [
            {"email": f"{tag}-s{i}@example.com", "name": f"Student {i}", "role": "student",
             "is_active": True, "activated_at": now, "session_epoch": 0}
            for i in range(students)
        ],
    )  # fmt: skip
    pattern = f"{tag}-s%@example.com"
    db.session.execute(
        insert(StudentCourse).from_select(
            ["student_id", "course_id", "completed", "enrolled_at"],
            select(User.id, literal(course.id), literal(False), literal(now)).where(
                User.email.like(pattern)
            ),
        )
    )
    in_course = ContentBlock.section_id.in_(section_ids)
    db.session.execute(
        insert(CompletedContentBlock).from_select(
            ["student_id", "content_block_id", "completed_at", "updated_at"],
            select(User.id, ContentBlock.id, literal(now), literal(now))
            .join(ContentBlock, in_course & (ContentBlock.position == 0))
            .where(User.email.like(pattern)),
        )
    )
    target = db.session.scalar(
        select(ContentBlock.id).where(
            ContentBlock.section_id == section_ids[-1], ContentBlock.position == blocks - 1
        )
    )
    first = db.session.scalars(
        select(User.id).where(User.email.like(pattern)).order_by(User.id).limit(TARGET_DONE)
    ).all()
    db.session.execute(
        insert(CompletedContentBlock),
        [{"student_id": s, "content_block_id": target, "completed_at": now, "updated_at": now}
         for s in first],
    )  # fmt: skip
    db.session.commit()
    if ON_POSTGRES:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    return {"course": course.id, "section": section_ids[-1], "block": target}


SMALL = {"sections": 2, "blocks": 2, "students": 3}
LARGE = {"sections": 40, "blocks": 25, "students": 2000}


# --- measuring -----------------------------------------------------------------------------------


class Capture:
    def __init__(self):
        self.calls: list[tuple[str, object]] = []

    @property
    def count(self) -> int:
        return len(self.calls)

    @property
    def statements(self) -> list[str]:
        return [s for s, _ in self.calls]


@contextlib.contextmanager
def capture():
    found = Capture()

    def before(conn, cursor, statement, parameters, context, executemany):
        found.calls.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield found
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Tid Scan"}


def _scanned(node: dict) -> int:
    own = 0
    if node["Node Type"] in SCANS:
        kept = node.get("Actual Rows", 0)
        dropped = sum(
            node.get(k, 0) for k in ("Rows Removed by Filter", "Rows Removed by Index Recheck")
        )
        own = (kept + dropped) * node.get("Actual Loops", 1)
    return own + sum(_scanned(child) for child in node.get("Plans", ()))


def rows_read(found: Capture) -> list[int]:
    """Rows each captured statement reads, by EXPLAIN ANALYZE in a rolled-back transaction."""
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET LOCAL enable_seqscan = off")
        out = []
        for statement, parameters in found.calls:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            out.append(_scanned(plan[0]["Plan"]))
        return out
    finally:
        raw.rollback()
        raw.close()


def block_form(block_id: int, title: str) -> dict:
    p = f"block-{block_id}-"
    return {p + "title": title, p + "type": "lesson", p + "description": "", p + "url": "",
            p + "content": "Some *text*"}  # fmt: skip


def _requests(ids: dict, n: int) -> dict:
    """The title edits, as the editor sends them: name -> (method, url, data, headers)."""
    b, s, c = ids["block"], ids["section"], ids["course"]
    return {
        "block: edit form": ("get", f"/teach/blocks/{b}?edit=1", None, hx(f"block-{b}")),
        "block: save title": (
            "post", f"/teach/blocks/{b}", block_form(b, f"Renamed {n}"), hx(f"block-{b}"),
        ),
        "block: cancel": ("get", f"/teach/blocks/{b}", None, hx(f"block-{b}")),
        "section: edit form": (
            "get", f"/teach/sections/{s}/title?edit=1", None, hx(f"section-{s}-title"),
        ),
        "section: save title": (
            "post", f"/teach/sections/{s}/title", {f"section-{s}-edit-title": f"Part {n}"},
            hx(f"section-{s}-title"),
        ),
        "course: edit form": ("get", f"/teach/courses/{c}/title?edit=1", None, hx("course-title")),
        "course: save title": (
            "post", f"/teach/courses/{c}/title", {"course-edit-title": f"Course {n}"},
            hx("course-title"),
        ),
    }  # fmt: skip


def measure(client, ids: dict, n: int) -> dict:
    """Each request: (its statements, the rows each read on PostgreSQL, the response)."""
    out = {}
    for name, (method, url, data, headers) in _requests(ids, n).items():
        with capture() as found:
            resp = getattr(client, method)(url, data=data, headers=headers)
        assert resp.status_code == 200, (name, resp.status_code, resp.text[:300])
        out[name] = (found, rows_read(found) if ON_POSTGRES else [], resp)
    return out


# --- the tests -----------------------------------------------------------------------------------


def test_title_edits_touch_only_their_row(client, teacher):
    """Block, section and course title edits: at most 4 statements, the same for a small and a
    large course; on PostgreSQL, the same rows read."""
    login_as(client, teacher)
    small_ids = seed_course(teacher, tag="small", **SMALL)
    small = measure(client, small_ids, 1)
    large_ids = seed_course(teacher, tag="large", **LARGE)
    large = measure(client, large_ids, 2)
    for name, (found, read, resp) in large.items():
        few, read_few, _ = small[name]
        assert found.count <= FRAGMENT_STATEMENTS, (name, found.statements)
        assert found.count == few.count, (name, few.statements, found.statements)
        assert "<html" not in resp.text
        # The same rows within a few (the planner may join tables of other sizes in another
        # order); the old title edit read 84,000 rows of the large course. [] on SQLite.
        assert sum(read) <= sum(read_few) + ROWS_SLACK, (name, read_few, read, found.statements)
    saved = large["block: save title"][2].text
    assert saved.lstrip().startswith(f'<li id="block-{large_ids["block"]}"')
    assert "Renamed 2" in saved and f"{TARGET_DONE} student completions" in saved
    assert "Part 2" in large["section: save title"][2].text
    assert "Course 2" in large["course: save title"][2].text
    db.session.expire_all()
    assert db.session.get(ContentBlock, large_ids["block"]).title == "Renamed 2"
    assert db.session.get(Section, large_ids["section"]).title == "Part 2"
    assert db.session.get(Course, large_ids["course"]).title == "Course 2"


def test_the_editor_page_keeps_its_statements_at_any_size(client, teacher):
    """The editor page: the same number of statements (at most 8) for 2 x 2 and 40 x 25 blocks;
    every block row and the counts it shows."""
    login_as(client, teacher)
    small_ids = seed_course(teacher, tag="small", **SMALL)
    with capture() as few:
        assert client.get(f"/teach/courses/{small_ids['course']}").status_code == 200
    large_ids = seed_course(teacher, tag="large", **LARGE)
    with capture() as many:
        resp = client.get(f"/teach/courses/{large_ids['course']}")
    assert resp.status_code == 200 and resp.text.count('class="block"') == 1000
    assert many.count == few.count <= PAGE_STATEMENTS, many.statements
    assert "2000 students" in resp.text
    # 2,000 completions of each section's first block, 3 of the last block: 80,003 in all.
    assert resp.text.count("2000 student completions") == 40 + 39  # the blocks, the sections
    assert "2003 student completions" in resp.text  # the last section
    assert f"{TARGET_DONE} student completions" in resp.text
    assert "80003 student completions" in resp.text  # the course
    # The editor shows titles: no statement loads the blocks' content.
    loads_content = re.compile(r"(?<!completed_)content_blocks\.content\b")
    assert not any(loads_content.search(s) for s in many.statements), many.statements


def test_without_javascript_the_editor_opens_a_block_filled_from_the_whole_block(
    client, teacher, other_teacher, count_queries
):
    """The outline's rows hold no content: ``?edit=block-5`` loads that one block (through its
    guard) to fill its form; anything that is not a block of this course opens nothing."""
    from tests.conftest import make_course

    course = make_course(teacher, sections=1, blocks=2)
    theirs = make_course(other_teacher, sections=1, blocks=1)
    block = course.sections[0].blocks[1]
    block.content, block.description = "Read *this* first", "Before you start"
    db.session.commit()
    bid, other = block.id, theirs.sections[0].blocks[0].id
    login_as(client, teacher)
    page = client.get(f"/teach/courses/{course.id}?edit=block-{bid}").text
    assert f'name="block-{bid}-content"' in page and "Read *this* first" in page
    assert "Before you start" in page and page.count('class="block-form ') == 1
    for edit in (f"block-{other}", "block-x", "block-", f"block-{bid}0", "block-²"):
        resp = client.get(f"/teach/courses/{course.id}", query_string={"edit": edit})
        assert resp.status_code == 200 and 'class="block-form ' not in resp.text, edit
    with count_queries() as plain:
        client.get(f"/teach/courses/{course.id}")
    with count_queries() as editing:
        client.get(f"/teach/courses/{course.id}?edit=block-{bid}")
    assert editing.count == plain.count + 1  # the block being edited, and nothing else


def test_a_blocks_row_shows_its_own_completions(client, teacher, student):
    """The block's row after a save or a cancel names that block's completions only."""
    from tests.conftest import make_course

    course = make_course(teacher, sections=1, blocks=2)
    first, second = course.sections[0].blocks
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=first.id))
    db.session.commit()
    login_as(client, teacher)
    for bid, done in ((first.id, "1 student completion."), (second.id, "0 student completions")):
        key = f"block-{bid}"
        saved = client.post(f"/teach/blocks/{bid}", data=block_form(bid, "New"), headers=hx(key))
        cancel = client.get(f"/teach/blocks/{bid}", headers=hx(key))
        for resp in (saved, cancel):
            assert resp.status_code == 200 and done in resp.text, resp.text
            assert f'href="/teach/courses/{course.id}?edit={key}#{key}"' in resp.text
