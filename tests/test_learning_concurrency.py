"""Concurrent enrolments, completions and deletions on PostgreSQL: one row, never a 500."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from sqlalchemy import event, func, insert, select, text

from tests.conftest import DATABASE_URL, at_once, login_as, make_course, make_user
from tests.test_learning import assert_progress_invariant
from webapp.extensions import db
from webapp.models import (
    CompletedContentBlock,
    ContentBlock,
    Course,
    Role,
    Section,
    StudentCourse,
)

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
    return at_once(
        app,
        clients,
        lambda c, _: c.open(url, method=method, data=data or {}, headers=headers or {}),
    )


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


def wait_for_waiters(threads: list[threading.Thread], n: int = 1) -> int:
    """Wait until ``n`` backends wait for a lock (the teacher's), or every thread has ended;
    returns how many waited. (In autocommit: PostgreSQL keeps one snapshot of
    pg_stat_activity per transaction, so a polling transaction would see the same count.)"""
    deadline = time.monotonic() + 20
    waiting = 0
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as probe:
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            waiting = probe.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar()
            if waiting >= n:
                break
            time.sleep(0.02)
    return waiting


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
    wait_for_waiters([worker])
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
            results.append(roster.enrol_by_email(again, student.email, again.owner))

    worker = threading.Thread(target=enrol_again)
    worker.start()
    wait_for_waiters([worker])
    teacher_tx.commit()
    teacher_conn.close()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert results == [[(student.email, roster.ENROLLED, True)]]
    db.session.expire_all()
    enrolment = db.session.scalar(select(StudentCourse))
    assert enrolment.completed is False and enrolment.completed_at is None


# --- a deletion racing the students (defect 5: look up, lock, then insert without looking again) --


@pytest.fixture
def config_overrides(request):
    return getattr(request, "param", {})


# A connection for each student, the teacher and the probe: all of them wait in PostgreSQL at once.
room_for_everyone = pytest.mark.parametrize(
    "config_overrides",
    [{"SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": N + 3}}],
    indirect=True,
)


@contextlib.contextmanager
def teacher_deleting(app, teacher, url: str):
    """The teacher's real POST ``url`` runs in a thread and stops just before its commit.

    Until the ``with`` block ends it holds what it holds at that moment: the course row (its
    ``FOR UPDATE`` or its DELETE) and the rows it deleted, not yet committed. Yields the list
    the teacher's status lands in.
    """
    client = app.test_client()
    login_as(client, teacher)
    holding, release = threading.Event(), threading.Event()
    statuses: list[int] = []

    def pause(session):
        if threading.current_thread() is worker:  # the client opens a session per request
            holding.set()
            release.wait(timeout=30)

    def run():
        with app.app_context():
            statuses.append(client.post(url).status_code)

    worker = threading.Thread(target=run)
    session_class = type(db.session())
    event.listen(session_class, "before_commit", pause)
    worker.start()
    try:
        assert holding.wait(timeout=30), "the teacher's request never reached its commit"
        yield statuses
    finally:
        release.set()
        worker.join(timeout=30)
        event.remove(session_class, "before_commit", pause)
    assert not worker.is_alive()


def posting_at_once(app, requests) -> tuple[list[threading.Thread], list[int]]:
    """Each ``(user, url, data)`` POSTed from its own client (its own session), all at once."""
    clients = []
    for user, _, _ in requests:
        c = app.test_client()
        login_as(c, user)
        clients.append(c)
    statuses: list[int] = []
    lock = threading.Lock()

    def run(c, url, data):
        with app.app_context():
            try:
                status = c.post(url, data=data).status_code
            except Exception:  # noqa: BLE001 - an exception that escaped is a 500 too
                status = 500
        with lock:
            statuses.append(status)

    threads = [
        threading.Thread(target=run, args=(c, url, data))
        for c, (_, url, data) in zip(clients, requests, strict=True)
    ]
    for t in threads:
        t.start()
    return threads, statuses


def race_with_deletion(app, teacher, delete_url: str, requests) -> list[int]:
    """The teacher's deletion held open while every ``(user, url, data)`` request reads its rows
    and waits for the teacher's lock; then the deletion commits. Returns their statuses."""
    with teacher_deleting(app, teacher, delete_url) as teacher_status:
        threads, statuses = posting_at_once(app, requests)
        waited = wait_for_waiters(threads, len(requests))
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert waited == len(requests)  # every request read its rows, then waited for the teacher
    assert teacher_status == [303]
    return statuses


@room_for_everyone
def test_mark_complete_racing_the_deletion_of_the_block_is_never_a_500(app, teacher):
    """N students mark a block complete while its teacher deletes it.

    Each student's request reads the block, then waits for the course row the teacher holds;
    when the teacher commits, the block is gone. Reading it again under the lock turns that
    into the 404 a later request would get, instead of a completion inserted for a block that
    no longer exists (a foreign-key violation: 500).
    """
    course = make_course(teacher, sections=1, blocks=2, types=("lesson",))
    block, other = db.session.scalars(
        select(ContentBlock).join(Section).where(Section.course_id == course.id)
    ).all()
    block_id = block.id
    students = [make_user(Role.STUDENT) for _ in range(N)]
    for s in students:
        db.session.add(StudentCourse(student_id=s.id, course_id=course.id, completed=False))
    db.session.commit()

    url = f"/courses/{course.id}/blocks/{block_id}/complete"
    statuses = race_with_deletion(
        app, teacher, f"/teach/blocks/{block_id}/delete", [(s, url, {}) for s in students]
    )
    assert len(statuses) == N and set(statuses) <= {200, 303, 404}, statuses
    db.session.expire_all()
    assert db.session.get(ContentBlock, block_id) is None
    assert db.session.scalar(select(func.count(CompletedContentBlock.id))) == 0
    assert_progress_invariant(course.id)
    # The course still works for them: the remaining block can be completed.
    client = app.test_client()
    login_as(client, students[0])
    assert client.post(f"/courses/{course.id}/blocks/{other.id}/complete").status_code == 303


@room_for_everyone
def test_enrolment_racing_the_deletion_of_the_course_is_never_a_500(app, teacher):
    """N students enrol while the teacher deletes the course: each answer is a redirect or a
    404, never a 500, and no enrolment is left for a course that is gone."""
    course = make_course(teacher, sections=1, blocks=1, types=("lesson",))
    course_id = course.id
    students = [make_user(Role.STUDENT) for _ in range(N)]

    url = f"/courses/{course_id}/enrol"
    statuses = race_with_deletion(
        app, teacher, f"/teach/courses/{course_id}/delete", [(s, url, {}) for s in students]
    )
    assert len(statuses) == N and set(statuses) <= {200, 303, 404}, statuses
    db.session.expire_all()
    assert db.session.get(Course, course_id) is None
    assert db.session.scalar(select(func.count(StudentCourse.id))) == 0


# --- students never wait for each other ------------------------------------------------------

STUDENTS = 16


@pytest.mark.parametrize(
    "config_overrides",
    [{"SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": STUDENTS + 3}}],
    indirect=True,
)
def test_students_completing_blocks_of_one_course_never_wait_for_each_other(app, teacher):
    """16 students mark blocks of one course complete at the same moment: no lock waits.

    Each request holds what it locked (the course row's FOR KEY SHARE, its own rows) until all
    16 hold theirs: a barrier in ``before_commit`` lets none commit before every one got there.
    With a lock that conflicts with itself (``FOR NO KEY UPDATE``, what
    ``with_for_update(key_share=True)`` emits) only one would get there and the others would
    wait for it; the barrier would give up and the probe would see them waiting.
    ``pg_stat_activity`` is polled (in autocommit) the whole time: no backend of this database
    ever waits for a lock, and all 16 completions land.
    """
    course = make_course(teacher, sections=2, blocks=STUDENTS // 2, types=("lesson",))
    blocks = list(
        db.session.scalars(
            select(ContentBlock.id)
            .join(Section)
            .where(Section.course_id == course.id)
            .order_by(Section.position, ContentBlock.position)
        )
    )
    students = [make_user(Role.STUDENT) for _ in range(STUDENTS)]
    for s in students:
        db.session.add(StudentCourse(student_id=s.id, course_id=course.id, completed=False))
    db.session.commit()
    clients = []
    for s in students:
        c = app.test_client()
        login_as(c, s)
        clients.append(c)

    holding = threading.Barrier(STUDENTS)
    statuses: list[int] = []
    lock = threading.Lock()

    def hold_until_all_hold(session):
        if threading.current_thread() in workers:
            holding.wait(timeout=10)

    def run(c, block_id):
        with app.app_context():
            try:
                resp = c.post(
                    f"/courses/{course.id}/blocks/{block_id}/complete",
                    headers={"HX-Request": "true", "HX-Target": "completion"},
                )
                status = resp.status_code
            except Exception:  # noqa: BLE001 - a broken barrier escaped: count it as a failure
                status = 500
        with lock:
            statuses.append(status)

    workers = [threading.Thread(target=run, args=(c, blocks[i])) for i, c in enumerate(clients)]
    session_class = type(db.session())
    event.listen(session_class, "before_commit", hold_until_all_hold)
    most_waiting = 0
    try:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as probe:
            for t in workers:
                t.start()
            while any(t.is_alive() for t in workers):
                waiting = probe.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                ).scalar()
                most_waiting = max(most_waiting, waiting)
                time.sleep(0.005)
    finally:
        for t in workers:
            t.join(timeout=30)
        event.remove(session_class, "before_commit", hold_until_all_hold)
    assert not any(t.is_alive() for t in workers)
    assert most_waiting == 0, f"{most_waiting} students waited for a lock"
    assert statuses == [200] * STUDENTS
    db.session.expire_all()
    done = db.session.scalars(select(CompletedContentBlock.student_id)).all()
    assert sorted(done) == sorted(s.id for s in students)
