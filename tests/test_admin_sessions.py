"""An admin's action ends the target's live sessions in the store exactly once, and only after
it has committed: a refused action or one whose commit fails leaves every session as it was.

The epoch bump (in the transaction) is what stops old tokens; removing the sessions from the
store is after-commit work. Before the unit of work, ``accounts.end_all_sessions`` emptied the
store in the middle of the transaction and the action emptied it again after the commit.
"""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from tests.conftest import login_as, make_course, make_user
from webapp import sessions
from webapp.extensions import db
from webapp.models import Role, User
from webapp.services import Conflict, accounts, user_actions


@pytest.fixture(params=["redis", "sql"])
def store(request, app):
    """Each test on the Redis store and on the SQL store (used without REDIS_URL)."""
    if request.param == "sql":
        app.extensions["lectern_session_store"] = sessions.SqlStore()
    return sessions.store()


@pytest.fixture
def target(app, store):
    """A student signed in on two devices."""
    user = make_user(Role.STUDENT)
    login_as(app.test_client(), user)
    login_as(app.test_client(), user)
    assert len(store.list_for_user(user.id)) == 2
    return user


@pytest.fixture
def failing_commit(monkeypatch):
    """The next commit fails as a lost database connection would."""

    def fail():
        raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))

    monkeypatch.setattr(db.session, "commit", fail)


def _state(user: User) -> tuple:
    db.session.expire_all()
    user = db.session.get(User, user.id)
    return user.is_active, user.role, user.session_epoch


def _first_sid(store, user: User) -> str:
    return accounts.session_id(store.list_for_user(user.id)[0].jti)


ACTIONS = {
    "deactivate": lambda admin, u, s: user_actions.deactivate(admin, u.id, ""),
    "role": lambda admin, u, s: user_actions.change_role(admin, u.id, "teacher", ""),
    "end sessions": lambda admin, u, s: user_actions.end_sessions(admin, u.id, ""),
    "end one session": lambda admin, u, s: user_actions.end_session(
        admin, u.id, _first_sid(s, u), ""
    ),
    "bulk deactivate": lambda admin, u, s: user_actions.bulk(admin, [u.id], "deactivate", ""),
    "bulk role": lambda admin, u, s: user_actions.bulk(admin, [u.id], "role:admin", ""),
    "delete": lambda admin, u, s: user_actions.delete_user(admin, u.id, ""),
}


@pytest.mark.parametrize("action", ACTIONS)
def test_an_action_whose_commit_fails_ends_no_session(admin, target, store, failing_commit, action):
    before = _state(target)
    with pytest.raises(OperationalError):
        ACTIONS[action](admin, target, store)
    assert len(store.list_for_user(target.id)) == 2
    assert _state(target) == before


def test_a_refused_bulk_action_ends_no_session(app, admin, store):
    """Deactivating every admin at once is refused: nobody's sessions end, not even those of the
    admins the loop would have reached before the refusal."""
    other = make_user(Role.ADMIN)
    for user in (admin, other):
        login_as(app.test_client(), user)
    with pytest.raises(Conflict):
        user_actions.bulk(admin, [admin.id, other.id], "deactivate", "")
    assert [len(store.list_for_user(u.id)) for u in (admin, other)] == [1, 1]


def test_a_refused_demotion_of_an_owner_ends_no_session(admin, target, store):
    target.role = Role.TEACHER
    make_course(target)
    with pytest.raises(Conflict):
        user_actions.bulk(admin, [target.id], "role:student", "")  # a student owns no course
    with pytest.raises(Conflict):
        user_actions.change_role(admin, target.id, "student", "")
    assert len(store.list_for_user(target.id)) == 2


@pytest.mark.parametrize("action", ACTIONS)
def test_a_successful_action_ends_the_sessions_once_after_the_commit(
    admin, target, store, monkeypatch, action
):
    calls = []
    committed = []
    original_commit = db.session.commit

    def commit():
        original_commit()
        committed.append(True)

    def spy(name):
        real = getattr(store, name)

        def run(*args, **kwargs):
            calls.append((name, bool(committed)))  # was the action committed by now?
            return real(*args, **kwargs)

        return run

    monkeypatch.setattr(db.session, "commit", commit)
    for name in ("delete", "delete_for_user"):
        monkeypatch.setattr(store, name, spy(name))
    ACTIONS[action](admin, target, store)
    remaining = 1 if action == "end one session" else 0
    expected = "delete" if action == "end one session" else "delete_for_user"
    assert calls == [(expected, True)]
    assert len(store.list_for_user(target.id)) == remaining
