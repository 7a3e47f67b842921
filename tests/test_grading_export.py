"""CSV exports: parsed back, quoting, formula neutralising, streaming in constant memory."""

from __future__ import annotations

import csv
import io
import tracemalloc

import pytest
from sqlalchemy import insert, select

from tests.conftest import login_as, make_course, make_user
from tests.test_teaching import analyze, complete, enrol, gradable_of
from webapp.extensions import db
from webapp.models import CompletedContentBlock, ContentBlock, Role, Section, StudentCourse, User
from webapp.models import utcnow as now
from webapp.services.exports import csv_safe

NASTY = [
    "Smith, Jane",
    'Bob "The Builder" Jones',
    "Line\nBreak",
    '=HYPERLINK("http://evil","x")',
    "+1 Plus",
    "-2 Minus",
    "@SUM(A1)",
    "Zoë Ünïcode 学生",
]


def parse(resp) -> list[list[str]]:
    raw = resp.get_data()
    assert raw.startswith("\ufeff".encode())  # so spreadsheets read it as UTF-8
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        (42, 42),
        ("", ""),
    ],
)
def test_csv_safe(value, expected):
    assert csv_safe(value) == expected


@pytest.fixture
def course(teacher):
    return make_course(teacher, title="History", sections=1, blocks=4)


def test_gradebook_csv_parses_back(client, course, teacher):
    quiz, assignment = gradable_of(course)[:2]
    quiz.title = '=Quiz, "one"'
    db.session.commit()
    students = []
    for i, name in enumerate(NASTY):
        s = make_user(Role.STUDENT, name=name, email=f"nasty{i}@example.com")
        enrol(s, course)
        students.append(s)
    complete(students[0], quiz, grade=80, grader=teacher)
    complete(students[0], assignment, grade=91, grader=teacher)
    complete(students[3], quiz)  # ungraded: an empty cell
    login_as(client, teacher)
    resp = client.get(f"/teach/courses/{course.id}/gradebook.csv")
    assert resp.status_code == 200
    assert resp.is_streamed
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="course-{course.id}-gradebook.csv"'
    )
    rows = parse(resp)
    assert rows[0] == [
        "Student",
        "Email",
        '\'=Quiz, "one"',
        assignment.title,
        "Average (average of graded work)",
    ]
    by_email = {r[1]: r for r in rows[1:]}
    assert len(rows) == 1 + len(NASTY)
    for i, name in enumerate(NASTY):
        row = by_email[f"nasty{i}@example.com"]
        expected = "'" + name if name[0] in "=+-@" else name
        assert row[0] == expected
    assert by_email["nasty0@example.com"][2:] == ["80", "91", "85.5"]
    assert by_email["nasty3@example.com"][2:] == ["", "", ""]


def test_progress_csv_parses_back(client, course, teacher):
    quiz = gradable_of(course)[0]
    s = make_user(Role.STUDENT, name="=cmd|' /C calc'!A0", email="p@example.com")
    enrol(s, course)
    done = complete(s, quiz, feedback="-dangerous", grade=77, grader=teacher)
    done.grader_comment = 'Nice, "really"\nnice'
    db.session.commit()
    login_as(client, teacher)
    resp = client.get(f"/teach/courses/{course.id}/progress.csv")
    assert resp.is_streamed
    rows = parse(resp)
    assert rows[0][:3] == ["Student", "Email", "Section"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["Student"] == "'=cmd|' /C calc'!A0"
    assert row["Block"] == quiz.title and row["Type"] == "quiz"
    assert row["Grade"] == "77"
    assert row["Comment"] == 'Nice, "really"\nnice'
    assert row["Completed at"].endswith("+00:00")


def test_exports_only_list_enrolled_students(client, course, teacher):
    gone = make_user(Role.STUDENT, name="Gone")
    complete(gone, gradable_of(course)[0], grade=10, grader=teacher)  # not enrolled
    login_as(client, teacher)
    for name in ("gradebook.csv", "progress.csv"):
        rows = parse(client.get(f"/teach/courses/{course.id}/{name}"))
        assert len(rows) == 1  # just the header


def _bulk(teacher, students: int, blocks: int, tag: str = "m"):
    course = make_course(teacher, title="Huge", sections=1, blocks=0)
    section = db.session.scalar(select(Section).where(Section.course_id == course.id))
    db.session.execute(
        insert(ContentBlock),
        [
            {"section_id": section.id, "title": f"Q{i}", "type": "quiz", "position": i}
            for i in range(blocks)
        ],
    )
    db.session.execute(
        insert(User),
        [
            {
                "email": f"{tag}{i}@example.com",
                "name": f'Member, "{i:06}"',
                "role": "student",
                "is_active": True,
                "session_epoch": 0,
            }
            for i in range(students)
        ],
    )
    sids = db.session.scalars(select(User.id).where(User.email.like(f"{tag}%@example.com"))).all()
    bids = db.session.scalars(select(ContentBlock.id).where(ContentBlock.section_id == section.id))
    bids = list(bids)
    db.session.execute(
        insert(StudentCourse), [{"student_id": s, "course_id": course.id} for s in sids]
    )
    t = now()
    batch = []
    for s in sids:
        for b in bids:
            batch.append(
                {
                    "student_id": s,
                    "content_block_id": b,
                    "completed_at": t,
                    "updated_at": t,
                    "grade": (s * 7 + b) % 101,
                    "graded_at": t,
                    "grader_comment": "=ok",
                }
            )
            if len(batch) == 20000:
                db.session.execute(insert(CompletedContentBlock), batch)
                batch = []
    if batch:
        db.session.execute(insert(CompletedContentBlock), batch)
    db.session.commit()
    analyze()
    return course


def _consume(client, url) -> tuple[int, int, int]:
    """Read a streamed response chunk by chunk: (lines, bytes, peak traced memory)."""
    resp = client.get(url, buffered=False)
    assert resp.is_streamed
    lines = size = 0
    tracemalloc.start()
    try:
        for chunk in resp.response:
            data = chunk if isinstance(chunk, bytes) else chunk.encode()
            size += len(data)
            lines += data.count(b"\r\n")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        resp.close()
    return lines, size, peak


def test_a_100000_row_export_streams_in_flat_memory(client, teacher):
    small = _bulk(teacher, students=50, blocks=20, tag="few")
    course = _bulk(teacher, students=1000, blocks=100)
    login_as(client, teacher)
    lines, _, peak_small = _consume(client, f"/teach/courses/{small.id}/progress.csv")
    assert lines == 1001
    lines, size, peak = _consume(client, f"/teach/courses/{course.id}/progress.csv")
    assert lines >= 100_001  # header + one line per completion (comments hold no newline)
    assert size > 8_000_000
    # the whole export is ~10 MB; what is held at any time is a few chunks of rows
    assert peak < 4_000_000, (peak, size)
    # flat: a hundred times the rows, about the same memory (not a hundred times more)
    assert peak < 2 * peak_small + 1_000_000, (peak_small, peak)
    lines, size, peak_book = _consume(client, f"/teach/courses/{course.id}/gradebook.csv")
    assert lines == 1001
    assert peak_book < 4_000_000, (peak_book, size)
