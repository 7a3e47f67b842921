"""Administration of users: access, the users table, row and bulk actions, the last-admin rule,
new users, detail, deletion with course transfer, and the audit log."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, insert, select

from tests.conftest import login_as, make_course, make_user
from webapp import sessions
from webapp.extensions import db
from webapp.models import (
    AuditEvent,
    CompletedContentBlock,
    Course,
    Role,
    StudentCourse,
    User,
    utcnow,
)
from webapp.services import Conflict, access, accounts, audit, user_actions
from webapp.services import users as svc


def hx(target: str) -> dict:
    return {"HX-Request": "true", "HX-Target": target}


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def signed_in(client) -> bool:
    """Whether ``client``'s session still works: the home page sends signed-in users onwards."""
    return client.get("/").status_code == 303


needs_mail_helpers = pytest.mark.skipif(
    not all(
        hasattr(accounts, name)
        for name in ("send_activation_email", "send_password_reset_email", "send_invitation_email")
    ),
    reason="accounts.send_*_email helpers are not in webapp/services/accounts.py yet",
)


@pytest.fixture
def admin_client(app, admin):
    client = app.test_client()
    login_as(client, admin)
    return client


# --- access: only admins, every page, fragment and action ----------------------------------------


def _requests(victim: User, other: User) -> list[tuple[str, str, dict, dict]]:
    v = victim.id
    return [
        ("get", "/admin/users", {}, {}),
        ("get", "/admin/users?q=a", {}, hx("user-results")),
        ("get", f"/admin/users/{v}", {}, {}),
        ("get", f"/admin/users/{v}/delete", {}, {}),
        ("get", f"/admin/users/{v}/actions", {}, {"HX-Request": "true"}),
        ("get", f"/admin/users/{v}/actions", {}, {}),
        ("get", "/admin/users/new", {}, {}),
        ("get", "/admin/audit", {}, {}),
        ("get", "/admin/audit?q=a", {}, hx("audit-results")),
        ("post", f"/admin/users/{v}/role", {"role": "admin"}, hx(f"user-{v}")),
        ("post", f"/admin/users/{v}/role", {"role": "admin"}, {}),
        ("post", f"/admin/users/{v}/deactivate", {}, hx(f"user-{v}")),
        ("post", f"/admin/users/{v}/deactivate", {}, {}),
        ("post", f"/admin/users/{v}/end-sessions", {}, {}),
        ("post", f"/admin/users/{v}/send-reset", {}, {}),
        ("post", f"/admin/users/{v}/activate", {}, {}),
        ("post", f"/admin/users/{v}/reactivate", {}, {}),
        ("post", f"/admin/users/{v}/send-activation", {}, {}),
        ("post", f"/admin/users/{v}/sessions/end", {"sid": "x"}, {}),
        ("post", f"/admin/users/{v}/transfer", {"to_email": other.email}, {}),
        ("post", f"/admin/users/{v}/delete", {}, {}),
        (
            "post",
            "/admin/users/bulk",
            {"user_ids": [v], "action": "deactivate", "confirm": "yes"},
            {},
        ),
        ("post", "/admin/users/bulk", {"user_ids": [v], "action": "deactivate"}, hx("bulk-panel")),
        ("post", "/admin/users/new", {"email": "n@example.com", "name": "N", "role": "admin"}, {}),
    ]


def assert_refused(resp, role, url: str) -> None:
    """An admin page refused: anonymous, to the log-in (redirect, or HX-Redirect); any other
    role, 404 (admin pages do not say they exist)."""
    if role is None:
        assert resp.status_code in (204, 302, 303), (url, resp.status_code)
        location = resp.headers.get("HX-Redirect") or resp.headers["Location"]
        assert "/login" in location, url
    else:
        assert resp.status_code == 404, (url, resp.status_code)


@pytest.mark.parametrize("role", [None, Role.STUDENT, Role.TEACHER])
def test_only_admins_reach_admin_and_nothing_changes(app, client, admin, role):
    victim = make_user(Role.TEACHER)
    other = make_user(Role.TEACHER)
    make_course(victim)
    if role is not None:
        login_as(client, make_user(role))
    users_before = db.session.scalar(select(func.count()).select_from(User))
    for method, url, data, headers in _requests(victim, other):
        resp = getattr(client, method)(url, data=data, headers=headers)
        assert_refused(resp, role, url)
        assert "teacher" not in resp.text or resp.status_code == 404
    v = fresh(victim)
    assert (v.role, v.is_active, v.session_epoch) == ("teacher", True, 0)
    assert db.session.scalar(select(func.count()).select_from(User)) == users_before
    assert db.session.scalar(select(Course.user_id)) == victim.id
    assert actions() == []


# --- the users table -----------------------------------------------------------------------------


def test_users_page_lists_users_with_their_columns(admin_client, admin):
    make_user(Role.STUDENT, email="ada@school.org", name="Ada Lovelace")
    make_user(Role.TEACHER, email="pending@school.org", name="Pat Pending", active=False)
    resp = admin_client.get("/admin/users")
    assert resp.status_code == 200
    body = resp.text
    assert '<tbody id="user-results">' in body and '<thead id="user-head">' in body
    assert "ada@school.org" in body and "Ada Lovelace" in body
    assert "Pending activation" in body and "Active" in body
    assert 'hx-trigger="input changed delay:300ms, search, submit"' in body
    assert 'hx-push-url="true"' in body
    assert "Showing 1–3 of 3 users" in body
    assert resp.headers["Cache-Control"] == "no-store"


def test_search_fragment_is_the_tbody_with_head_and_pager_out_of_band(admin_client):
    make_user(email="zed@school.org", name="Zed")
    resp = admin_client.get("/admin/users?q=ZED", headers=hx("user-results"))
    assert resp.status_code == 200
    assert resp.text.lstrip().startswith('<tbody id="user-results">')
    assert "<html" not in resp.text and "zed@school.org" in resp.text
    assert '<thead id="user-head" hx-swap-oob="true">' in resp.text
    assert '<div id="user-pager" class="pagination" hx-swap-oob="true">' in resp.text
    assert "HX-Target" in resp.headers["Vary"]
    # the same URL without the htmx target is the whole page (Back and reload work)
    page = admin_client.get("/admin/users?q=ZED")
    assert "<html" in page.text and 'value="ZED"' in page.text


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("lovelace", {"ada@school.org"}),  # name, case-insensitive
        ("ADA@", {"ada@school.org"}),  # email, any case
        ("school.org", {"ada@school.org", "bob_x@school.org", "cy%@school.org"}),
        ("_", {"bob_x@school.org"}),  # LIKE wildcards are literal
        ("%", {"cy%@school.org"}),
        ("nobody", set()),
    ],
)
def test_search_by_email_or_name(admin_client, q, expected):
    make_user(email="ada@school.org", name="Ada Lovelace")
    make_user(email="bob_x@school.org", name="Bob")
    make_user(email="cy%@school.org", name="Cy")
    page = svc.search_users(svc.UserFilter(q=q))
    assert {u.email for u in page.users} == expected
    resp = admin_client.get("/admin/users", query_string={"q": q}, headers=hx("user-results"))
    for email in expected:
        assert email in resp.text
    if not expected:
        assert "No users match" in resp.text


def test_filters_by_role_and_status(admin_client, admin):
    make_user(Role.TEACHER, email="t@school.org")
    make_user(Role.STUDENT, email="p@school.org", active=False)
    gone = make_user(Role.STUDENT, email="d@school.org")
    gone.is_active = False
    db.session.commit()

    def emails(**args):
        resp = admin_client.get("/admin/users", query_string=args, headers=hx("user-results"))
        return {e for e in ("t@", "p@", "d@", admin.email) if e in resp.text}

    assert emails(role="teacher") == {"t@"}
    assert emails(status="pending") == {"p@"}
    assert emails(status="deactivated") == {"d@"}
    assert emails(status="active", role="admin") == {admin.email}
    assert emails(role="superuser") == {"t@", "p@", "d@", admin.email}  # unknown: no filter


@pytest.mark.parametrize("sort", ["email", "name", "role", "status", "created", "last_login"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sort_by_each_column(admin_client, admin, sort, direction):
    people = [
        make_user(Role.TEACHER, email="c@x.org", name="Bea"),
        make_user(Role.STUDENT, email="a@x.org", name="Cid", active=False),
        make_user(Role.STUDENT, email="b@x.org", name="Al"),
    ]
    people[2].last_login_at = utcnow()
    db.session.commit()
    resp = admin_client.get(
        "/admin/users", query_string={"sort": sort, "dir": direction, "q": "@x.org"}
    )
    assert resp.status_code == 200
    shown = sorted(people, key=lambda u: resp.text.index(f">{u.email}<"))
    key = {
        "email": lambda u: (u.email, u.id),
        "name": lambda u: (u.name, u.id),
        "role": lambda u: (u.role, u.id),
        "status": lambda u: ({"active": 0, "pending": 1}.get(u.status, 2), u.id),
        "created": lambda u: (u.created_at, u.id),
        "last_login": lambda u: (u.last_login_at is None, u.last_login_at or 0, u.id),
    }[sort]
    expected = sorted(people, key=key, reverse=direction == "desc")
    if sort == "last_login":  # never-logged-in users come last both ways
        logged = [u for u in expected if u.last_login_at]
        expected = logged + sorted(
            [u for u in people if not u.last_login_at],
            key=lambda u: u.id,
            reverse=direction == "desc",
        )
    assert [u.email for u in shown] == [u.email for u in expected]
    assert 'aria-sort="' + ("ascending" if direction == "asc" else "descending") + '"' in resp.text


def test_unknown_sort_and_page_are_bounded(admin_client):
    assert admin_client.get("/admin/users?sort=password_hash&dir=sideways").status_code == 200
    f = svc.UserFilter(sort="password_hash", direction="x", page=10**9)
    assert (f.sort, f.direction, f.page) == ("created", "desc", svc.MAX_PAGE)
    assert admin_client.get("/admin/users?page=100000000").status_code == 200


def _bulk_users(n: int, prefix: str = "bulk") -> None:
    now = utcnow()
    db.session.execute(
        insert(User),
        [
            {
                "email": f"{prefix}{i:05d}@example.com",
                "name": f"Person {i}",
                "role": "student",
                "is_active": True,
                "activated_at": now,
                "session_epoch": 0,
                "created_at": now,
            }
            for i in range(n)
        ],
    )
    db.session.commit()


def test_pagination(admin_client):
    _bulk_users(120)
    first = admin_client.get("/admin/users?sort=email&dir=asc")
    assert first.text.count('<tr id="user-') == svc.PAGE_SIZE
    assert "Showing 1–50 of 121 users" in first.text and 'rel="next"' in first.text
    third = admin_client.get("/admin/users?sort=email&dir=asc&page=3")
    assert third.text.count('<tr id="user-') == 21
    assert 'rel="prev"' in third.text and 'rel="next"' not in third.text
    assert "bulk00119@example.com" in third.text


def test_users_page_query_budget_does_not_grow(admin_client, count_queries):
    _bulk_users(10, prefix="few")
    with count_queries() as small:
        assert admin_client.get("/admin/users").status_code == 200
    _bulk_users(200, prefix="many")
    for url in ("/admin/users", "/admin/users?q=many&sort=name", "/admin/users?status=active"):
        with count_queries() as big:
            assert admin_client.get(url).status_code == 200
        assert big.count <= small.count <= 4, big.statements


PAGE_BYTES = 40_000


def test_a_full_page_of_users_is_light(admin_client, count_queries):
    """Fifty rows with long addresses stay under 40 kB: a row carries no forms, only a link to
    its actions (the issue measured 174 kB, half the time in rendering a menu of forms per row)."""
    now = utcnow()
    db.session.execute(
        insert(User),
        [
            {
                "email": f"firstname.lastname{i:05d}@students.school{i % 40}.example.org",
                "name": f"Firstname Lastname-Longname {i}",
                "role": "student",
                "is_active": i % 7 != 0,
                "activated_at": now,
                "session_epoch": 0,
                "created_at": now,
                "last_login_at": now,
            }
            for i in range(120)
        ],
    )
    db.session.commit()
    for url, headers in (("/admin/users", {}), ("/admin/users?q=lastname", hx("user-results"))):
        with count_queries() as q:
            resp = admin_client.get(url, headers=headers)
        assert resp.status_code == 200 and resp.text.count('<tr id="user-') == svc.PAGE_SIZE
        assert len(resp.data) < PAGE_BYTES, (url, len(resp.data))
        assert q.count <= 4, q.statements
        rows = resp.text[resp.text.index('<tbody id="user-results">') :]
        rows = rows[: rows.index("</tbody>")]
        assert "<form" not in rows and "csrf_token" not in rows
        assert rows.count('/actions" hx-target="closest td"') == svc.PAGE_SIZE


def test_a_rows_actions_load_on_demand_and_without_js_lead_to_the_users_page(
    admin_client, count_queries
):
    active = make_user(Role.STUDENT)
    pending = make_user(Role.STUDENT, active=False)
    row = admin_client.get(f"/admin/users?q={active.email}").text
    link = f'href="/admin/users/{active.id}#actions" hx-get="/admin/users/{active.id}/actions"'
    assert link in row
    assert f'aria-labelledby="select-word u{active.id}"' in row and 'id="select-word"' in row
    with count_queries() as q:
        menu = admin_client.get(f"/admin/users/{active.id}/actions", headers={"HX-Request": "true"})
    assert menu.status_code == 200 and q.count == 2, q.statements
    assert menu.text.lstrip().startswith('<details class="row-actions" open>')
    assert "data-autofocus" in menu.text and f'hx-target="#user-{active.id}"' in menu.text
    for label in ("Change role", "Deactivate", "End all sessions", "Send password reset link"):
        assert label in menu.text
    assert f'href="/admin/users/{active.id}/delete"' in menu.text
    other = admin_client.get(f"/admin/users/{pending.id}/actions", headers={"HX-Request": "true"})
    assert "Activate" in other.text and "Deactivate" not in other.text
    plain = admin_client.get(f"/admin/users/{active.id}/actions")
    assert plain.status_code == 303
    assert plain.headers["Location"] == f"/admin/users/{active.id}#actions"
    detail = admin_client.get(f"/admin/users/{active.id}").text
    assert 'id="actions"' in detail and "Deactivate" in detail and "Change role" in detail
    assert admin_client.get("/admin/users/999999/actions").status_code == 404


# --- row actions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "start", "action_name", "check"),
    [
        ("deactivate", "active", "admin.deactivated", lambda u: u.status == "deactivated"),
        ("reactivate", "deactivated", "admin.reactivated", lambda u: u.status == "active"),
        ("activate", "pending", "admin.activated", lambda u: u.status == "active"),
        ("end-sessions", "active", "admin.sessions_ended", lambda u: u.session_epoch == 1),
    ],
)
@pytest.mark.parametrize("via_htmx", [True, False])
def test_row_actions(app, admin_client, admin, action, start, action_name, check, via_htmx):
    target = make_user(Role.STUDENT, active=start != "pending")
    if start == "deactivated":
        target.is_active = False
        db.session.commit()
    headers = hx(f"user-{target.id}") if via_htmx else {}
    resp = admin_client.post(
        f"/admin/users/{target.id}/{action}", data={"back": "/admin/users?q=x"}, headers=headers
    )
    if via_htmx:
        assert resp.status_code == 200
        assert resp.text.lstrip().startswith(f'<tr id="user-{target.id}"')
        assert "announce" in resp.headers["HX-Trigger"] and 'class="row-note ok"' in resp.text
        assert "data-autofocus" in resp.text
    else:
        assert resp.status_code == 303 and resp.headers["Location"] == "/admin/users?q=x"
    assert check(fresh(target))
    [event] = events(action_name)
    assert (event.actor_id, event.target_user_id, event.ip) == (admin.id, target.id, "127.0.0.1")


def test_back_must_be_an_admin_path(admin_client):
    target = make_user()
    resp = admin_client.post(
        f"/admin/users/{target.id}/end-sessions", data={"back": "https://evil.example/admin/"}
    )
    assert resp.headers["Location"] == "/admin/users"


def test_action_in_the_wrong_state_is_refused_in_the_row(admin_client):
    target = make_user(Role.STUDENT)
    resp = admin_client.post(f"/admin/users/{target.id}/activate", headers=hx(f"user-{target.id}"))
    assert resp.status_code == 409 and 'role="alert"' in resp.text
    assert "Only a pending account" in resp.text
    plain = admin_client.post(f"/admin/users/{target.id}/reactivate")
    assert plain.status_code == 303
    assert actions() == []
    assert admin_client.post("/admin/users/999999/deactivate").status_code == 404


@pytest.mark.parametrize("via_htmx", [True, False])
def test_change_role(admin_client, admin, via_htmx):
    target = make_user(Role.STUDENT)
    headers = hx(f"user-{target.id}") if via_htmx else {}
    resp = admin_client.post(
        f"/admin/users/{target.id}/role", data={"role": "teacher"}, headers=headers
    )
    assert resp.status_code == (200 if via_htmx else 303)
    target = fresh(target)
    assert target.role == "teacher" and target.session_epoch == 1
    [event] = events("admin.role_changed")
    assert event.details == {"old": "student", "new": "teacher"}
    bad = admin_client.post(f"/admin/users/{target.id}/role", data={"role": "root"})
    assert bad.status_code == 303 and fresh(target).role == "teacher"
    row = admin_client.post(
        f"/admin/users/{target.id}/role", data={"role": "root"}, headers=hx(f"user-{target.id}")
    )
    assert row.status_code == 409 and row.text.lstrip().startswith(f'<tr id="user-{target.id}"')
    assert "Choose a role." in row.text and len(events("admin.role_changed")) == 1


@pytest.mark.parametrize("action", ["deactivate", "role"])
def test_role_change_and_deactivation_take_effect_on_the_next_request(app, admin_client, action):
    target = make_user(Role.ADMIN)
    theirs = app.test_client()
    login_as(theirs, target)
    login_as(app.test_client(), target)  # a second browser
    assert theirs.get("/admin/users").status_code == 200
    if action == "deactivate":
        admin_client.post(f"/admin/users/{target.id}/deactivate")
    else:
        admin_client.post(f"/admin/users/{target.id}/role", data={"role": "student"})
    assert sessions.store().list_for_user(target.id) == []
    resp = theirs.get("/admin/users")
    assert resp.status_code in (302, 303) and "/login" in resp.headers["Location"]
    assert not signed_in(theirs)


@pytest.mark.parametrize("action", ["deactivate", "role"])
def test_the_targets_next_htmx_write_is_refused(app, admin_client, action):
    """Their open page still has the buttons: the very next click (an htmx POST) is sent to the
    login page and changes nothing."""
    target = make_user(Role.ADMIN)
    victim = make_user(Role.STUDENT)
    theirs = app.test_client()
    login_as(theirs, target)
    if action == "deactivate":
        admin_client.post(f"/admin/users/{target.id}/deactivate")
    else:
        admin_client.post(f"/admin/users/{target.id}/role", data={"role": "teacher"})
    resp = theirs.post(f"/admin/users/{victim.id}/deactivate", headers=hx(f"user-{victim.id}"))
    assert resp.status_code == 204 and "/login" in resp.headers["HX-Redirect"]
    assert db.session.get(User, victim.id).is_active
    assert not signed_in(theirs)


@needs_mail_helpers
def test_send_reset_and_activation_emails(admin_client, admin, mailbox):
    active = make_user(Role.STUDENT, email="active@school.org")
    pending = make_user(Role.STUDENT, email="pending@school.org", active=False)
    invited = make_user(Role.STUDENT, email="invited@school.org", active=False)
    invited.password_hash = None
    db.session.commit()
    assert admin_client.post(f"/admin/users/{active.id}/send-reset").status_code == 303
    assert admin_client.post(f"/admin/users/{pending.id}/send-activation").status_code == 303
    assert admin_client.post(f"/admin/users/{invited.id}/send-activation").status_code == 303
    for email in ("active@school.org", "pending@school.org", "invited@school.org"):
        [msg] = mailbox.to(email)
        assert "http://lectern.test/" in mailbox.text(msg)
    assert actions() == ["admin.reset_sent", "admin.activation_sent", "admin.activation_sent"]
    refused = admin_client.post(
        f"/admin/users/{active.id}/send-activation", headers=hx(f"user-{active.id}")
    )
    assert refused.status_code == 409


# --- the last-admin rule -------------------------------------------------------------------------


def test_the_last_admin_cannot_demote_or_deactivate_themselves(admin_client, admin):
    for url, data in (
        (f"/admin/users/{admin.id}/role", {"role": "teacher"}),
        (f"/admin/users/{admin.id}/deactivate", {}),
    ):
        resp = admin_client.post(url, data=data, headers=hx(f"user-{admin.id}"))
        assert resp.status_code == 409
        assert "without an active admin" in resp.text and "announce" in resp.headers["HX-Trigger"]
        plain = admin_client.post(url, data=data)
        assert plain.status_code == 303
        assert "without an active admin" in admin_client.get("/admin/users").text
    a = fresh(admin)
    assert (a.role, a.is_active, a.session_epoch) == ("admin", True, 0)
    assert actions() == []


def test_last_active_admin_counts_only_active_admins(app, admin_client, admin):
    other = make_user(Role.ADMIN)
    # with two active admins, one may demote the other ...
    assert admin_client.post(f"/admin/users/{other.id}/deactivate").status_code == 303
    assert fresh(other).is_active is False
    # ... and then the remaining one is the last: a deactivated admin does not count
    resp = admin_client.post(f"/admin/users/{admin.id}/role", data={"role": "student"})
    assert resp.status_code == 303 and fresh(admin).role == "admin"
    with pytest.raises(Conflict):
        user_actions.deactivate(admin, admin.id, "")
    db.session.rollback()


def test_an_admin_may_step_down_while_another_remains(app, admin_client, admin):
    make_user(Role.ADMIN)
    resp = admin_client.post(f"/admin/users/{admin.id}/role", data={"role": "teacher"})
    assert resp.status_code == 303 and fresh(admin).role == "teacher"
    assert admin_client.get("/admin/users").status_code in (302, 303)  # signed out at once


def test_bulk_cannot_remove_every_admin_and_changes_nothing(admin_client, admin):
    other = make_user(Role.ADMIN)
    student = make_user(Role.STUDENT)
    for action in ("deactivate", "role:teacher"):
        resp = admin_client.post(
            "/admin/users/bulk",
            data={"user_ids": [admin.id, other.id, student.id], "action": action, "confirm": "yes"},
        )
        assert resp.status_code == 303
        assert "without an active admin" in admin_client.get("/admin/users").text
    for u in (admin, other, student):
        u = fresh(u)
        assert u.is_active and u.session_epoch == 0
    assert fresh(student).role == "student" and actions() == []


def test_the_last_admin_rule_locks_the_admins_on_postgresql(app, admin, count_queries):
    other = make_user(Role.ADMIN)
    with count_queries() as q:
        user_actions.change_role(admin, other.id, "teacher", "")
    locks = [s for s in q.statements if "FOR UPDATE" in s]
    if db.engine.dialect.name == "postgresql":
        assert locks, q.statements
    else:
        assert locks == []  # SQLite serialises writers itself


# --- bulk actions --------------------------------------------------------------------------------


def test_bulk_asks_for_confirmation_naming_the_count(admin_client):
    people = [make_user(Role.STUDENT) for _ in range(3)]
    data = {"user_ids": [u.id for u in people], "action": "deactivate", "back": "/admin/users"}
    frag = admin_client.post("/admin/users/bulk", data=data, headers=hx("bulk-panel"))
    assert frag.status_code == 200 and frag.text.lstrip().startswith('<div id="bulk-panel"')
    assert "Deactivate: 3 users?" in frag.text and 'name="confirm" value="yes"' in frag.text
    page = admin_client.post("/admin/users/bulk", data=data)
    assert "<html" in page.text and "Deactivate: 3 users?" in page.text
    assert all(fresh(u).is_active for u in people) and actions() == []


@pytest.mark.parametrize(
    "data",
    [{"action": "deactivate"}, {"user_ids": ["1"], "action": ""}, {"user_ids": ["x"]}],
)
def test_bulk_needs_a_selection_and_an_action(admin_client, data):
    resp = admin_client.post("/admin/users/bulk", data=data, headers=hx("bulk-panel"))
    assert resp.status_code == 422 and 'role="alert"' in resp.text


@pytest.mark.parametrize(
    ("action", "check", "per_user"),
    [
        ("deactivate", lambda u: not u.is_active and u.session_epoch == 1, "admin.deactivated"),
        ("role:teacher", lambda u: u.role == "teacher" and u.session_epoch == 1, None),
        ("activate", lambda u: u.is_active, None),
    ],
)
def test_bulk_applies_in_one_transaction(admin_client, admin, action, check, per_user):
    people = [make_user(Role.STUDENT, active=action != "activate") for _ in range(3)]
    resp = admin_client.post(
        "/admin/users/bulk",
        data={"user_ids": [u.id for u in people], "action": action, "confirm": "yes"},
    )
    assert resp.status_code == 303
    assert all(check(fresh(u)) for u in people)
    summary = events(f"admin.bulk_{action.replace(':', '_')}")
    assert summary[0].details == {"selected": 3, "changed": 3}
    if per_user:
        assert len(events(per_user)) == 3
    assert "3 of 3 selected users changed" in admin_client.get("/admin/users").text


# --- new users -----------------------------------------------------------------------------------


def test_new_user_form(admin_client):
    resp = admin_client.get("/admin/users/new")
    assert resp.status_code == 200
    assert 'name="email"' in resp.text and 'name="role"' in resp.text
    assert 'type="password"' not in resp.text  # admins never set passwords


def test_admins_never_see_or_set_a_password(admin_client, admin):
    """No admin page shows a hash or offers a password field; posted password fields are ignored."""
    target = make_user(Role.TEACHER, email="pat@example.com")
    hashed = target.password_hash
    assert hashed
    pages = [
        "/admin/users",
        "/admin/users?q=pat",
        f"/admin/users/{target.id}",
        f"/admin/users/{target.id}/delete",
        f"/admin/users/{target.id}/transfer",
        "/admin/users/new",
        "/admin/audit",
    ]
    for url in pages:
        html = admin_client.get(url).text
        assert hashed not in html and hashed.split("$")[-1] not in html, url
        assert 'type="password"' not in html, url
    sneaky = {"password": "chosen by admin", "password_hash": "scrypt:x$y$z"}
    admin_client.post(f"/admin/users/{target.id}/role", data={"role": "student", **sneaky})
    resp = admin_client.post(
        "/admin/users/new",
        data={"email": "new@example.com", "name": "New", "role": "student", **sneaky},
    )
    assert resp.status_code == 303
    assert db.session.get(User, target.id).password_hash == hashed
    new = db.session.scalar(select(User).where(User.email == "new@example.com"))
    assert new.password_hash is None


@needs_mail_helpers
def test_new_user_is_invited_by_email(app, admin_client, admin, mailbox):
    resp = admin_client.post(
        "/admin/users/new", data={"email": "New@School.org", "name": " Nia ", "role": "teacher"}
    )
    assert resp.status_code == 303
    user = accounts.find_by_email("new@school.org")
    assert resp.headers["Location"] == f"/admin/users/{user.id}"
    assert (user.name, user.role, user.status, user.password_hash) == (
        "Nia",
        "teacher",
        "pending",
        None,
    )
    [event] = events("admin.user_created")
    assert event.target_user_id == user.id and event.details == {"role": "teacher"}
    [msg] = mailbox.to("new@school.org")
    link = re.search(r"http://lectern\.test(/\S+)", mailbox.text(msg)).group(1)
    # the invitation leads to a set-password form (the accounts feature's page)
    invitee = app.test_client()
    landing = invitee.get(link, follow_redirects=True)
    assert landing.status_code == 200 and 'type="password"' in landing.text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "taken@school.org", "name": "X", "role": "student"}, "already exists"),
        ({"email": "not-an-email", "name": "X", "role": "student"}, "Invalid email"),
        ({"email": "a@b.org", "name": "", "role": "student"}, "This field is required"),
        ({"email": "a@b.org", "name": "X", "role": "root"}, "Not a valid choice"),
    ],
)
def test_new_user_validation(admin_client, data, message):
    make_user(email="taken@school.org")
    count = db.session.scalar(select(func.count()).select_from(User))
    resp = admin_client.post("/admin/users/new", data=data)
    assert resp.status_code == 422 and message in resp.text
    assert db.session.scalar(select(func.count()).select_from(User)) == count


# --- user detail ---------------------------------------------------------------------------------


def test_user_detail_shows_profile_sessions_courses_enrolments_and_events(
    app, admin_client, admin, teacher
):
    student = make_user(Role.STUDENT, email="kim@school.org", name="Kim")
    course = make_course(teacher, title="Algebra", sections=1, blocks=4)
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    block = course.sections[0].blocks[0]
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=block.id))
    db.session.commit()
    login_as(app.test_client(), student)
    admin_client.post(f"/admin/users/{student.id}/role", data={"role": "teacher"})
    login_as(app.test_client(), student)  # signed in again after the role change
    resp = admin_client.get(f"/admin/users/{student.id}")
    assert resp.status_code == 200
    body = resp.text
    assert "kim@school.org" in body and "Kim" in body
    assert body.count("End this session") == 1
    assert "Algebra" in body and "1 of 4 blocks" in body and '<progress max="4" value="1"' in body
    assert "admin.role_changed" in body
    owner = admin_client.get(f"/admin/users/{teacher.id}")
    assert "Algebra" in owner.text and "Not enrolled" in owner.text
    assert admin_client.get("/admin/users/999999").status_code == 404


def test_end_one_session(app, admin_client, admin):
    target = make_user(Role.STUDENT)
    one, two = app.test_client(), app.test_client()
    jti = login_as(one, target)
    login_as(two, target)
    page = admin_client.get(f"/admin/users/{target.id}")
    assert jti not in page.text and accounts.session_id(jti) in page.text
    sid = accounts.session_id(jti)
    resp = admin_client.post(f"/admin/users/{target.id}/sessions/end", data={"sid": sid})
    assert resp.status_code == 303
    assert not signed_in(one) and signed_in(two)
    [event] = events("admin.session_ended")
    assert jti not in str(event.details) and event.target_user_id == target.id
    again = admin_client.post(f"/admin/users/{target.id}/sessions/end", data={"sid": sid})
    assert again.status_code == 404
    # a session of someone else cannot be ended through this user
    other = make_user()
    theirs = accounts.session_id(login_as(app.test_client(), other))
    resp = admin_client.post(f"/admin/users/{target.id}/sessions/end", data={"sid": theirs})
    assert resp.status_code == 404 and len(sessions.store().list_for_user(other.id)) == 1


# --- deletion and course transfer ----------------------------------------------------------------


def test_delete_is_refused_while_the_user_owns_courses(admin_client, teacher, other_teacher):
    make_course(teacher, title="Biology")
    make_course(teacher, title="Chemistry")
    page = admin_client.get(f"/admin/users/{teacher.id}/delete")
    assert "owns 2 courses" in page.text and 'name="to_email"' in page.text
    assert "Biology" in page.text
    resp = admin_client.post(f"/admin/users/{teacher.id}/delete")
    assert resp.status_code == 409 and fresh(teacher) is not None
    assert actions() == []


@pytest.mark.parametrize("to", ["student", "self", "nobody", "inactive"])
def test_transfer_needs_another_active_teacher(admin_client, teacher, to):
    make_course(teacher)
    emails = {
        "student": make_user(Role.STUDENT).email,
        "self": teacher.email,
        "nobody": "nobody@school.org",
        "inactive": make_user(Role.TEACHER, active=False).email,
    }
    resp = admin_client.post(f"/admin/users/{teacher.id}/transfer", data={"to_email": emails[to]})
    assert resp.status_code == 422 and "another active teacher" in resp.text
    assert db.session.scalar(select(Course.user_id)) == teacher.id and actions() == []


def test_transfer_then_delete(admin_client, admin, teacher, other_teacher):
    for title in ("Biology", "Chemistry"):
        make_course(teacher, title=title)
    resp = admin_client.post(
        f"/admin/users/{teacher.id}/transfer", data={"to_email": other_teacher.email.upper()}
    )
    assert (
        resp.status_code == 303 and resp.headers["Location"] == f"/admin/users/{teacher.id}/delete"
    )
    owners = set(db.session.scalars(select(Course.user_id)))
    assert owners == {other_teacher.id}
    [event] = events("admin.courses_transferred")
    assert event.details["courses"] == 2 and event.details["to_user_id"] == other_teacher.id
    page = admin_client.get(f"/admin/users/{teacher.id}/delete")
    assert "This cannot be undone" in page.text
    tid = teacher.id
    assert admin_client.post(f"/admin/users/{tid}/delete").status_code == 303
    assert db.session.get(User, tid) is None


def test_delete_names_and_removes_enrolments_and_completions(app, admin_client, admin, teacher):
    student = make_user(Role.STUDENT, email="leaving@school.org")
    course = make_course(teacher, sections=1, blocks=3)
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    for block in course.sections[0].blocks[:2]:
        db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=block.id))
    db.session.commit()
    theirs = app.test_client()
    login_as(theirs, student)
    page = admin_client.get(f"/admin/users/{student.id}/delete")
    assert "1 enrolment<" in page.text and "2 completed content blocks" in page.text
    sid = student.id
    resp = admin_client.post(f"/admin/users/{sid}/delete")
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/users"
    assert db.session.get(User, sid) is None
    assert db.session.scalar(select(func.count()).select_from(StudentCourse)) == 0
    assert db.session.scalar(select(func.count()).select_from(CompletedContentBlock)) == 0
    [event] = events("admin.user_deleted")
    assert event.details["email"] == "leaving@school.org" and event.details["completions"] == 2
    assert event.actor_id == admin.id
    assert not signed_in(theirs) and sessions.store().list_for_user(sid) == []


def test_an_admin_cannot_delete_themselves(admin_client, admin):
    make_user(Role.ADMIN)
    resp = admin_client.post(f"/admin/users/{admin.id}/delete")
    assert resp.status_code == 403 and fresh(admin) is not None


def test_deleting_another_admin_keeps_the_rule(admin_client, admin):
    other_id = make_user(Role.ADMIN).id
    assert admin_client.post(f"/admin/users/{other_id}/delete").status_code == 303
    assert db.session.get(User, other_id) is None


# --- the audit log -------------------------------------------------------------------------------


def _audit_rows(n: int, actor: User, target: User) -> None:
    now = utcnow()
    db.session.execute(
        insert(AuditEvent),
        [
            {
                "created_at": now,
                "action": "login.failure" if i % 2 else "login.success",
                "actor_id": actor.id if i % 2 == 0 else None,
                "target_user_id": target.id,
                "ip": f"10.0.0.{i % 250}",
                "details": {"n": i},
            }
            for i in range(n)
        ],
    )
    db.session.commit()


def test_audit_log_lists_searches_filters_and_pages_by_id(admin_client, admin):
    student = make_user(Role.STUDENT, email="watched@school.org")
    _audit_rows(120, student, student)
    admin_client.post(f"/admin/users/{student.id}/end-sessions")
    page = admin_client.get("/admin/audit")
    assert page.status_code == 200 and '<tbody id="audit-results">' in page.text
    assert page.text.count("<tr>") == audit.PAGE_SIZE + 1  # + the head row
    assert "admin.sessions_ended" in page.text and admin.email in page.text
    assert '<option value="login.failure">' in page.text
    log = audit.audit_log()
    second = audit.audit_log(before=log.next_before)
    ids = [r.event.id for r in log.rows + second.rows]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 100
    assert f"before={log.next_before}" in page.text
    third = audit.audit_log(before=second.next_before)
    assert len(third.rows) == 21 and third.next_before is None

    frag = admin_client.get("/admin/audit?action=login.failure", headers=hx("audit-results"))
    assert frag.text.lstrip().startswith('<tbody id="audit-results">')
    assert "login.success" not in frag.text and 'hx-swap-oob="true"' in frag.text
    by_actor = admin_client.get(f"/admin/audit?q={admin.email}", headers=hx("audit-results"))
    assert by_actor.text.count("<tr>") == 1 and "admin.sessions_ended" in by_actor.text
    by_target = audit.audit_log(q="WATCHED@")
    assert len(by_target.rows) == audit.PAGE_SIZE
    assert "No events match" in admin_client.get("/admin/audit?q=zzz").text


def test_audit_pager_links_back_to_the_newest_events_from_older_pages(admin_client, admin):
    student = make_user(Role.STUDENT)
    _audit_rows(60, student, student)
    first = admin_client.get("/admin/audit?q=a", headers=hx("audit-results"))
    assert "Older events" in first.text and "Newest events" not in first.text
    older = audit.audit_log(q="a").next_before
    second = admin_client.get(f"/admin/audit?q=a&before={older}", headers=hx("audit-results"))
    assert "No older events." in second.text
    assert 'href="/admin/audit?q=a">Newest events</a>' in second.text


def test_audit_never_holds_passwords_or_tokens(app, admin_client, admin):
    target = make_user(Role.STUDENT)
    jti = login_as(app.test_client(), target)
    sid = accounts.session_id(jti)
    admin_client.post(f"/admin/users/{target.id}/sessions/end", data={"sid": sid})
    admin_client.post(f"/admin/users/{target.id}/role", data={"role": "teacher"})
    admin_client.post(f"/admin/users/{target.id}/deactivate")
    event = audit.record("x.test", password="hunter2", token="abc", note="kept")
    assert event.details == {"note": "kept"}
    db.session.rollback()
    events_seen = list(db.session.scalars(select(AuditEvent)))
    assert {e.action for e in events_seen} >= {"admin.session_ended", "admin.deactivated"}
    for e in events_seen:
        text = str(e.details)
        assert (
            jti not in text and sid not in text and "password" not in text and "scrypt" not in text
        )


def test_detail_and_audit_query_budgets_do_not_grow(app, admin_client, teacher, count_queries):
    student = make_user(Role.STUDENT)

    def enrol(n: int) -> None:
        for i in range(n):
            course = make_course(teacher, title=f"Course {i}", sections=1, blocks=2)
            db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
            block = course.sections[0].blocks[0]
            db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=block.id))
        db.session.commit()
        _audit_rows(30, student, student)

    def measure() -> tuple[int, int]:
        with count_queries() as detail:
            assert admin_client.get(f"/admin/users/{student.id}").status_code == 200
        with count_queries() as log:
            assert admin_client.get("/admin/audit?q=student").status_code == 200
        return detail.count, log.count

    enrol(1)
    small = measure()
    enrol(6)
    assert measure() == small and small[0] <= 6 and small[1] <= 4


# --- course owners stay teachers -----------------------------------------------------------------


@pytest.mark.parametrize("via_htmx", [True, False])
@pytest.mark.parametrize("owner_role", [Role.TEACHER, Role.ADMIN])
def test_a_course_owner_cannot_be_made_a_student(admin_client, admin, via_htmx, owner_role):
    owner = make_user(owner_role, email="owner@school.org")
    make_course(owner, title="Biology")
    make_course(owner, title="Chemistry")
    headers = hx(f"user-{owner.id}") if via_htmx else {}
    back = f"/admin/users/{owner.id}"
    resp = admin_client.post(
        f"/admin/users/{owner.id}/role", data={"role": "student", "back": back}, headers=headers
    )
    message = "owner@school.org owns 2 courses: transfer them to another teacher"
    if via_htmx:
        assert resp.status_code == 409 and message in resp.text
        assert f'href="/admin/users/{owner.id}/transfer"' in resp.text
    else:
        assert resp.status_code == 303 and resp.headers["Location"] == back
        page = admin_client.get(back)
        assert message in page.text and f'href="/admin/users/{owner.id}/transfer"' in page.text
    owner = fresh(owner)
    assert owner.role == owner_role and owner.session_epoch == 0 and actions() == []


def test_an_owner_may_become_admin_or_teacher_and_keeps_the_courses(admin_client, teacher):
    course = make_course(teacher)
    for role in ("admin", "teacher"):
        resp = admin_client.post(f"/admin/users/{teacher.id}/role", data={"role": role})
        assert resp.status_code == 303 and fresh(teacher).role == role
    assert db.session.get(Course, course.id).user_id == teacher.id


def test_transfer_page_then_the_demotion_goes_through(admin_client, teacher, other_teacher):
    make_course(teacher, title="Biology")
    page = admin_client.get(f"/admin/users/{teacher.id}/transfer")
    assert page.status_code == 200 and "Transfer the courses of" in page.text
    assert "Biology" in page.text and 'name="to_email"' in page.text
    assert f'name="back" value="/admin/users/{teacher.id}"' in page.text
    bad = admin_client.post(
        f"/admin/users/{teacher.id}/transfer",
        data={"to_email": "nobody@school.org", "back": f"/admin/users/{teacher.id}"},
    )
    assert bad.status_code == 422 and "another active teacher" in bad.text
    assert f'name="back" value="/admin/users/{teacher.id}"' in bad.text  # kept for the retry
    resp = admin_client.post(
        f"/admin/users/{teacher.id}/transfer",
        data={"to_email": other_teacher.email, "back": f"/admin/users/{teacher.id}"},
    )
    assert resp.status_code == 303 and resp.headers["Location"] == f"/admin/users/{teacher.id}"
    resp = admin_client.post(f"/admin/users/{teacher.id}/role", data={"role": "student"})
    assert resp.status_code == 303 and fresh(teacher).role == "student"
    assert "owns no courses" in admin_client.get(f"/admin/users/{teacher.id}/transfer").text


def test_the_delete_page_transfer_returns_to_the_delete_page(admin_client, teacher, other_teacher):
    make_course(teacher)
    page = admin_client.get(f"/admin/users/{teacher.id}/delete")
    assert f'name="back" value="/admin/users/{teacher.id}/delete"' in page.text


def test_bulk_make_student_with_course_owners_changes_nothing(admin_client, admin):
    owners = [make_user(Role.TEACHER, email=f"own{i}@school.org") for i in range(2)]
    make_course(owners[0])
    make_course(owners[1])
    make_course(owners[1])
    free = make_user(Role.TEACHER, email="free@school.org")
    resp = admin_client.post(
        "/admin/users/bulk",
        data={
            "user_ids": [u.id for u in [*owners, free]],
            "action": "role:student",
            "confirm": "yes",
        },
    )
    assert resp.status_code == 303
    page = admin_client.get("/admin/users").text
    assert "Nothing was changed: 2 selected users own courses:" in page
    assert "own0@school.org (1 course), own1@school.org (2 courses)" in page
    assert all(fresh(u).role == "teacher" for u in [*owners, free]) and actions() == []


# --- ids from the request ------------------------------------------------------------------------

BAD_IDS = ["abc", "²", "99999999999", "-1"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_user_ids_in_urls_answer_404(admin_client, bad):
    for method, path, data in [
        ("get", f"/admin/users/{bad}", {}),
        ("get", f"/admin/users/{bad}/delete", {}),
        ("get", f"/admin/users/{bad}/actions", {}),
        ("post", f"/admin/users/{bad}/delete", {}),
        ("get", f"/admin/users/{bad}/transfer", {}),
        ("post", f"/admin/users/{bad}/transfer", {"to_email": "x@school.org"}),
        ("post", f"/admin/users/{bad}/role", {"role": "teacher"}),
        ("post", f"/admin/users/{bad}/deactivate", {}),
        ("post", f"/admin/users/{bad}/sessions/end", {"sid": "x"}),
    ]:
        resp = getattr(admin_client, method)(path, data=data)
        assert resp.status_code == 404, (method, path, resp.status_code)


@pytest.mark.parametrize("bad", [*BAD_IDS, 2**31, 0])
def test_bad_user_ids_in_services_are_not_found(app, bad):
    from webapp.services import NotFound

    with pytest.raises(NotFound):
        access.user_for_admin(bad)
    assert svc.users_by_ids([bad]) == []


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_in_a_bulk_selection_are_dropped(admin_client, bad):
    alone = admin_client.post("/admin/users/bulk", data={"user_ids": [bad], "action": "deactivate"})
    assert alone.status_code == 422 and "Select at least one user." in alone.text
    done = admin_client.post(
        "/admin/users/bulk", data={"user_ids": [bad], "action": "deactivate", "confirm": "yes"}
    )
    assert done.status_code == 422 and actions() == []
    student = make_user(Role.STUDENT)
    mixed = admin_client.post(
        "/admin/users/bulk", data={"user_ids": [bad, str(student.id)], "action": "deactivate"}
    )
    assert mixed.status_code == 200 and "Deactivate: 1 user?" in mixed.text


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_audit_cursor_answers_404(admin_client, bad):
    assert admin_client.get(f"/admin/audit?before={bad}").status_code == 404
    frag = admin_client.get(f"/admin/audit?before={bad}", headers=hx("audit-results"))
    assert frag.status_code == 404
    assert admin_client.get("/admin/audit?before=").status_code == 200


# --- admin deleting someone else's course --------------------------------------------------------


def test_course_deleted_by_an_admin_is_audited(app, admin, teacher):
    course = make_course(teacher, title="Biology")
    assert audit.course_deleted(course, teacher, "10.0.0.9") is None  # the owner's own
    event = audit.course_deleted(course, admin, "10.0.0.9")
    db.session.commit()
    assert (event.action, event.actor_id, event.target_user_id, event.ip) == (
        "admin.course_deleted",
        admin.id,
        teacher.id,
        "10.0.0.9",
    )
    assert event.details == {"course_id": course.id, "title": "Biology"}
    assert actions() == ["admin.course_deleted"]
    assert "admin.course_deleted" in audit.audit_actions()
