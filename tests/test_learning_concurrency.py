"""Concurrent enrolments and completions on PostgreSQL: exactly one row, never a 500."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, insert, select, text

from tests.conftest import DATABASE_URL, login_as, make_course
from webapp.extensions import db
from webapp.models import CompletedContentBlock, ContentBlock, Course, Section, StudentCourse

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


def _wait_for_lock_or_end(worker: threading.Thread) -> None:
    """Wait until ``worker`` either finished or is waiting for a lock (the teacher's)."""
    deadline = time.monotonic() + 10
    with db.engine.connect() as probe:
        while worker.is_alive() and time.monotonic() < deadline:
            waiting = probe.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar()
            if waiting:
                return
            time.sleep(0.02)


def _teacher_adds_a_block_holding_the_course(course, block):
    """An open transaction that locks the course row (as courses.add_block does) and has
    inserted a block not yet committed; commit it to let waiters on."""
    conn = db.engine.connect()
    tx = conn.begin()
    conn.execute(select(Course.id).where(Course.id == course.id).with_for_update())
    conn.execute(
        insert(ContentBlock).values(
            section_id=block.section_id, title="Added", description="", type="lesson",
            content="", position=1,
        )
    )  # fmt: skip
    return conn, tx


def test_completion_racing_a_new_block_keeps_progress_true(app, student, teacher):
    """A teacher adds a block while a student completes the last one: not "completed".

    The teacher's transaction holds the course row (as ``courses.add_block`` does) with the
    new block not yet committed; the student's mark-complete waits for it and then counts the
    new block. Without the wait, the student's recount misses the block and the course stays
    "completed" with a block not done.
    """
    course = make_course(teacher, sections=1, blocks=1, types=("lesson",))
    block = db.session.scalar(
        select(ContentBlock).join(Section).where(Section.course_id == course.id)
    )
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id, completed=False))
    db.session.commit()
    client = app.test_client()
    login_as(client, student)

    teacher_conn, teacher_tx = _teacher_adds_a_block_holding_the_course(course, block)
    statuses: list[int] = []

    def student_completes():
        with app.app_context():
            resp = client.post(f"/courses/{course.id}/blocks/{block.id}/complete")
            statuses.append(resp.status_code)

    worker = threading.Thread(target=student_completes)
    worker.start()
    _wait_for_lock_or_end(worker)
    teacher_tx.commit()
    teacher_conn.close()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert statuses == [303]
    db.session.expire_all()
    enrolment = db.session.scalar(select(StudentCourse))
    assert enrolment.completed is False and enrolment.completed_at is None


def test_reenrolment_by_email_racing_a_new_block_keeps_progress_true(app, student, teacher):
    """A student who completed every block was removed; the teacher adds a block while
    enrolling them again by email. The re-enrolment waits for the new block and counts it, so
    the course is not "completed" with a block not done. (Inserting the enrolment row checks
    its foreign key to the course with a KEY SHARE lock, which waits for the teacher's
    FOR UPDATE: no explicit lock is needed here, unlike completing a block.)"""
    from webapp.services import roster

    course = make_course(teacher, sections=1, blocks=1, types=("lesson",))
    block = db.session.scalar(
        select(ContentBlock).join(Section).where(Section.course_id == course.id)
    )
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=block.id))
    db.session.commit()  # completed earlier, enrolment since removed (completions are kept)

    teacher_conn, teacher_tx = _teacher_adds_a_block_holding_the_course(course, block)
    results: list = []

    def enrol_again():
        with app.app_context():
            again = db.session.get(Course, course.id)
            results.append(roster.enrol_by_email(again, student.email))

    worker = threading.Thread(target=enrol_again)
    worker.start()
    _wait_for_lock_or_end(worker)
    teacher_tx.commit()
    teacher_conn.close()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert results == [[(student.email, "enrolled")]]
    db.session.expire_all()
    enrolment = db.session.scalar(select(StudentCourse))
    assert enrolment.completed is False and enrolment.completed_at is None
