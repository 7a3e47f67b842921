"""The last-admin rule under real concurrency on PostgreSQL: two admins demote each other at the
same moment. The first locks the active admins (SELECT … FOR UPDATE); the second must wait for
it, then see that it would remove the last one and refuse."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, text

from tests.conftest import DATABASE_URL, make_user
from webapp.extensions import db
from webapp.models import Role, User
from webapp.services import Conflict
from webapp.services import user_actions as svc

pytestmark = pytest.mark.skipif(
    not DATABASE_URL.startswith("postgresql"),
    reason="real concurrency needs PostgreSQL (SQLite serialises writers itself)",
)


def test_two_admins_demoting_each_other_leave_one_admin(app, monkeypatch):
    a = make_user(Role.ADMIN)
    b = make_user(Role.ADMIN)
    locked, proceed = threading.Event(), threading.Event()
    original = svc._ensure_admins_remain

    def hold_the_lock(removed_ids):
        original(removed_ids)
        if threading.current_thread().name == "first":
            locked.set()  # the first transaction now holds the admin rows ...
            assert proceed.wait(10)  # ... until the second is seen waiting for them

    monkeypatch.setattr(svc, "_ensure_admins_remain", hold_the_lock)
    outcomes: dict[str, str] = {}

    def demote(actor_id: int, target_id: int):
        with app.app_context():
            actor = db.session.get(User, actor_id)
            try:
                svc.change_role(actor, target_id, "teacher", "10.0.0.1")
                outcomes[threading.current_thread().name] = "done"
            except Conflict:
                db.session.rollback()
                outcomes[threading.current_thread().name] = "refused"
            finally:
                db.session.remove()

    first = threading.Thread(target=demote, args=(a.id, b.id), name="first")
    second = threading.Thread(target=demote, args=(b.id, a.id), name="second")
    first.start()
    assert locked.wait(10)
    second.start()
    deadline = time.monotonic() + 10
    waiting = 0
    while time.monotonic() < deadline and not waiting:
        with db.engine.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
        time.sleep(0.02)
    proceed.set()
    first.join(15)
    second.join(15)
    assert waiting, "the second transaction never waited for the first's lock"
    assert outcomes == {"first": "done", "second": "refused"}
    db.session.expire_all()
    admins = db.session.scalars(select(User.id).where(User.role == "admin")).all()
    assert admins == [a.id]


def test_two_admins_creating_the_same_email_at_once(app, monkeypatch):
    """Both pass the "already registered" check, then both insert: the unique index stops the
    second, which answers the form's usual error instead of a 500."""
    from webapp.services import Invalid, accounts

    actors = [make_user(Role.ADMIN).id, make_user(Role.ADMIN).id]
    both_checked = threading.Barrier(2, timeout=10)
    original = accounts.find_by_email

    def find_then_wait(email):
        found = original(email)
        both_checked.wait()
        return found

    monkeypatch.setattr(accounts, "find_by_email", find_then_wait)
    outcomes: dict[str, str] = {}

    def create(actor_id: int):
        name = threading.current_thread().name
        with app.app_context():
            try:
                actor = db.session.get(User, actor_id)
                svc.create_user(actor, "same@school.org", "Same", "student", "10.0.0.1")
                outcomes[name] = "created"
            except Invalid as exc:
                outcomes[name] = f"{exc.field}: {exc.message}"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=create, args=(a,), name=f"t{a}") for a in actors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes.values()) == [
        "created",
        "email: An account with this email already exists.",
    ]
    db.session.expire_all()
    assert db.session.scalars(select(User.email).where(User.email == "same@school.org")).all() == [
        "same@school.org"
    ]
