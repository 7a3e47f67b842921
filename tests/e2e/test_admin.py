"""The admin's journey in Chromium: find a user by typing part of their email, change their role,
deactivate them (their open session in another browser is logged out on its next click), read
the audit log. Screenshots in tests/e2e/screenshots/admin-*.png; axe-core finds nothing."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD, make_user
from tests.e2e.conftest import SHOTS
from webapp.extensions import db
from webapp.models import AuditEvent, Role, User


def log_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_function("() => !location.pathname.startsWith('/login')")


def shot(page, name: str) -> None:
    """A screenshot that leaves the page alone: Playwright's default caret hiding leaves
    style="" on inputs, which htmx then settles onto swapped-in elements (a CSP violation)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, caret="initial")


@pytest.fixture
def kim_page(browser):
    """A second, separate browser (its own cookies) for the user the admin manages."""
    ctx = browser.new_context(viewport={"width": 1024, "height": 800})
    p = ctx.new_page()
    p.set_default_timeout(10_000)
    yield p
    ctx.close()


def test_admin_finds_changes_deactivates_and_audits(live_server, page, kim_page, app):
    boss = make_user(Role.ADMIN, email="boss@school.org", name="Bea Boss")
    kim = make_user(Role.STUDENT, email="kim.lee@school.org", name="Kim Lee")
    for i in range(12):
        make_user(Role.STUDENT, email=f"pupil{i}@school.org", name=f"Pupil {i}")
    make_user(Role.TEACHER, email="kimberly@other.org", name="Kimberly Teach")

    # Kim is signed in, in her own browser.
    log_in(kim_page, live_server, kim.email)
    assert "Kim Lee" in kim_page.locator(".nav-user").inner_text()

    # The admin finds her by typing part of her email.
    log_in(page, live_server, boss.email)
    page.goto(live_server + "/admin/users")
    page.wait_for_function("() => window.htmx !== undefined")
    assert page.locator("#user-results tr").count() == 15
    shot(page, "admin-users")
    search = page.get_by_label("Search by email or name")
    search.press_sequentially("kim.l", delay=40)
    page.wait_for_function(
        "() => document.querySelectorAll('#user-results tr').length === 1", timeout=5000
    )
    assert re.search(r"[?&]q=kim\.l", page.url)
    assert "Showing 1–1 of 1 users" in page.locator("#user-pager").inner_text()
    row = page.locator(f"#user-{kim.id}")
    assert "kim.lee@school.org" in row.inner_text()
    shot(page, "admin-search")

    # Change her role to teacher, in place.
    row.get_by_text("Actions").click()
    shot(page, "admin-row-actions")
    row.get_by_label("Role").select_option("teacher")
    row.get_by_role("button", name="Change role").click()
    page.wait_for_selector(f"#user-{kim.id} .row-note.ok")
    row = page.locator(f"#user-{kim.id}")
    assert "Role is now teacher" in row.inner_text()
    assert row.locator(".role-tag").inner_text().lower() == "teacher"
    page.wait_for_selector("#status p", state="attached")
    assert "Role is now teacher" in page.locator("#status").text_content()
    focused = page.evaluate("() => document.activeElement.closest('tr')?.id")
    assert focused == f"user-{kim.id}"  # focus stays with the row that changed
    shot(page, "admin-role-changed")

    # Kim's next click: the role change ended her session; signed in again she is a teacher.
    kim_page.get_by_role("link", name="Courses").first.click()
    kim_page.wait_for_load_state()
    assert kim_page.get_by_role("link", name="Log in").is_visible()
    log_in(kim_page, live_server, kim.email)
    assert kim_page.get_by_role("link", name="Teach", exact=True).is_visible()

    # Deactivate her (confirming the dialog); her open session ends on her next click.
    page.once("dialog", lambda d: d.accept())
    row.get_by_text("Actions").click()
    row.get_by_role("button", name="Deactivate").click()
    page.wait_for_selector(f"#user-{kim.id} .badge.off")
    assert "Deactivated" in page.locator(f"#user-{kim.id}").inner_text()
    shot(page, "admin-deactivated")
    # axe last on this page: it leaves style="" behind, which htmx would settle onto new rows
    page.locator(f"#user-{kim.id}").get_by_text("Actions").click()
    assert page.watch.axe() == []
    kim_page.get_by_role("link", name="Courses").first.click()
    kim_page.wait_for_load_state()
    assert kim_page.get_by_role("link", name="Log in").is_visible()
    assert "Kim Lee" not in kim_page.locator("header").inner_text()
    shot(kim_page, "admin-kim-logged-out")

    # Back restores the unfiltered list (hx-push-url + full page on history miss).
    page.go_back()
    page.wait_for_function("() => !location.search.includes('q=kim')")
    page.wait_for_selector("#user-results")

    # The audit log tells what happened, newest first, and is searchable.
    page.goto(live_server + "/admin/users?q=kim.l")
    page.get_by_role("link", name="Audit log").click()
    page.wait_for_url("**/admin/audit")
    text = page.locator("#audit-results").inner_text()
    for action in ("admin.deactivated", "admin.role_changed", "login.success"):
        assert action in text
    shot(page, "admin-audit")
    page.get_by_label("Search by action, email or IP").press_sequentially("kim.lee", delay=30)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#audit-results tr')]"
        ".every(r => r.textContent.includes('kim.lee@school.org'))",
        timeout=5000,
    )
    page.get_by_label("Action", exact=True).select_option("admin.deactivated")
    page.wait_for_function(
        "() => document.querySelectorAll('#audit-results tr').length === 1", timeout=5000
    )
    assert "admin.deactivated" in page.locator("#audit-results").inner_text()
    shot(page, "admin-audit-search")
    assert page.watch.axe() == []

    db.session.expire_all()
    kim_now = db.session.get(User, kim.id)
    assert (kim_now.role, kim_now.is_active) == ("teacher", False)
    assert db.session.query(AuditEvent).filter_by(action="admin.deactivated").count() == 1
    page.watch.assert_clean()


def test_bulk_selection_is_keyboard_accessible_and_confirms_the_count(live_server, page, app):
    boss = make_user(Role.ADMIN, email="boss@school.org")
    for i in range(3):
        make_user(Role.STUDENT, email=f"bulk{i}@school.org")
    log_in(page, live_server, boss.email)
    page.goto(live_server + "/admin/users?q=bulk")
    page.wait_for_function("() => window.htmx !== undefined")
    # the select-all box appears with JS and is reachable by keyboard
    page.locator("#select-all").focus()
    page.keyboard.press("Space")
    assert "3 selected" in page.locator("#bulk-count").inner_text()
    page.get_by_label("With the selected users").select_option("deactivate")
    page.get_by_role("button", name="Apply to selected").click()
    page.wait_for_selector("#bulk-panel h2")
    assert "Deactivate: 3 users?" in page.locator("#bulk-panel h2").inner_text()
    shot(page, "admin-bulk-confirm")
    assert page.watch.axe() == []
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "admin-bulk-confirm-phone")
    assert page.watch.axe() == []
    page.get_by_role("button", name="Deactivate: 3 users").click()
    page.wait_for_selector(".flash.success")
    assert "3 of 3 selected users changed" in page.locator(".flash").inner_text()
    db.session.expire_all()
    assert db.session.query(User).filter_by(is_active=False).count() == 3
    page.watch.assert_clean()


def test_detail_delete_and_new_user_pages_are_accessible(live_server, page, app):
    from tests.conftest import make_course

    boss = make_user(Role.ADMIN, email="boss@school.org")
    teacher = make_user(Role.TEACHER, email="tess@school.org", name="Tess Teacher")
    make_course(teacher, title="Physics")
    log_in(page, live_server, boss.email)
    page.goto(f"{live_server}/admin/users/{teacher.id}")
    assert "Physics" in page.locator("main").inner_text()
    shot(page, "admin-detail")
    assert page.watch.axe() == []
    page.get_by_role("link", name="Delete user…").click()
    page.wait_for_url("**/delete")
    assert "owns 1 course" in page.locator("main").inner_text()
    shot(page, "admin-delete-transfer")
    assert page.watch.axe() == []
    page.goto(live_server + "/admin/users/new")
    page.get_by_role("button", name="Create and invite").click()
    page.wait_for_selector(".error")
    shot(page, "admin-new-user-errors")
    assert page.watch.axe() == []
    # The form with errors is answered 422 on purpose; Chromium logs any 4xx document as an error.
    page.watch.errors = [e for e in page.watch.errors if "status of 422" not in e]
    page.watch.assert_clean()


def test_demoting_a_course_owner_leads_to_the_transfer_first(live_server, page, app):
    from tests.conftest import make_course

    boss = make_user(Role.ADMIN, email="boss@school.org")
    tess = make_user(Role.TEACHER, email="tess@school.org", name="Tess Teacher")
    make_user(Role.TEACHER, email="theo@school.org", name="Theo Teacher")
    make_course(tess, title="Physics")
    log_in(page, live_server, boss.email)
    page.goto(live_server + "/admin/users?q=tess")
    page.wait_for_function("() => window.htmx !== undefined")
    row = page.locator(f"#user-{tess.id}")
    row.get_by_text("Actions").click()
    row.get_by_label("Role").select_option("student")
    row.get_by_role("button", name="Change role").click()
    page.wait_for_selector(f"#user-{tess.id} .row-note.error")
    row = page.locator(f"#user-{tess.id}")
    assert "tess@school.org owns 1 course" in row.inner_text()
    assert row.locator(".role-tag").inner_text().lower() == "teacher"
    shot(page, "admin-demote-owner-refused")
    assert page.watch.axe() == []
    row.get_by_role("link", name="Transfer their courses…").click()
    page.wait_for_url(f"**/admin/users/{tess.id}/transfer")
    assert "Physics" in page.locator("main").inner_text()
    shot(page, "admin-transfer")
    assert page.watch.axe() == []
    page.get_by_label("Email of the teacher who takes the courses").fill("theo@school.org")
    page.get_by_role("button", name="Transfer 1 course").click()
    page.wait_for_url(f"**/admin/users/{tess.id}")
    assert "Transferred 1 course to theo@school.org." in page.locator(".flash").inner_text()
    page.locator(f"#role-{tess.id}-d").select_option("student")
    page.get_by_role("button", name="Change role").click()
    page.wait_for_selector(".flash.success")
    db.session.expire_all()
    assert db.session.get(User, tess.id).role == "student"
    # The refusal is answered 409 on purpose; Chromium logs any 4xx response as an error.
    page.watch.errors = [e for e in page.watch.errors if "status of 409" not in e]
    page.watch.assert_clean()
