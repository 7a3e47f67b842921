"""Concurrent enrolments and completions on PostgreSQL: exactly one row, never a 500."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from tests.conftest import DATABASE_URL, login_as, make_course
from webapp.extensions import db
from webapp.models import CompletedContentBlock, ContentBlock, Section, StudentCourse

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not DATABASE_URL.startswith("postgresql"), reason="real concurrency needs PostgreSQL"
    ),
]

N = 20


def _at_once(app, student, method: str, url: str, data=None, headers=None) -> list[int]:
    """N separate clients (their own sessions) send the same request at the same moment."""
    clients = []
    for _ in range(N):
        c = app.test_client()
        login_as(c, student)
        clients.append(c)
    barrier = threading.Barrier(N)
    statuses: list[int] = []
    lock = threading.Lock()

    def run(c):
        with app.app_context():  # the client expires this thread's session after the request
            barrier.wait(timeout=30)
            resp = c.open(url, method=method, data=data or {}, headers=headers or {})
        with lock:
            statuses.append(resp.status_code)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return statuses


def test_concurrent_enrolments_make_one_row(app, student, teacher):
    course = make_course(teacher)
    statuses = _at_once(app, student, "POST", f"/courses/{course.id}/enrol")
    assert statuses == [303] * N
    db.session.expire_all()
    count = db.session.scalar(
        select(func.count(StudentCourse.id)).where(StudentCourse.student_id == student.id)
    )
    assert count == 1


def test_concurrent_mark_complete_makes_one_row(app, student, teacher):
    course = make_course(teacher, sections=1, blocks=1, types=("assignment",))
    block = db.session.scalar(
        select(ContentBlock).join(Section).where(Section.course_id == course.id)
    )
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id, completed=False))
    db.session.commit()
    statuses = _at_once(
        app,
        student,
        "POST",
        f"/courses/{course.id}/blocks/{block.id}/complete",
        data={"url": "https://example.com/work"},
        headers={"HX-Request": "true", "HX-Target": "completion"},
    )
    assert statuses == [200] * N
    db.session.expire_all()
    rows = list(db.session.scalars(select(CompletedContentBlock)))
    assert len(rows) == 1 and rows[0].url == "https://example.com/work"
    enrolment = db.session.scalar(select(StudentCourse))
    assert enrolment.completed and enrolment.completed_at is not None
