"""The users table's light rows in Chromium: a row's actions load when its Actions link is
followed (by keyboard too), and without JavaScript the same link leads to the actions on the
user's page. Screenshots at 1280, 390 and 320 px: tests/e2e/screenshots/admin-rows-*.png."""

from __future__ import annotations

import pytest

from tests.conftest import make_user
from tests.e2e.test_admin import log_in, shot
from webapp.extensions import db
from webapp.models import Role, User


@pytest.fixture
def school(app):
    boss = make_user(Role.ADMIN, email="boss@school.org", name="Bea Boss")
    for i in range(55):
        make_user(
            Role.STUDENT if i % 9 else Role.TEACHER,
            email=f"firstname.lastname{i:02d}@students.school.example.org",
            name=f"Firstname Lastname {i}",
            active=i % 13 != 0,
        )
    return boss


def test_row_actions_load_on_demand_by_keyboard(live_server, page, school):
    kim = make_user(Role.STUDENT, email="kim.lee@school.org", name="Kim Lee")
    log_in(page, live_server, school.email)
    page.goto(live_server + "/admin/users")
    page.wait_for_function("() => window.htmx !== undefined")
    assert page.locator("#user-results tr").count() == 50
    assert page.locator("#user-results form").count() == 0  # rows carry no forms
    for width in (1280, 390, 320):
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"admin-rows-{width}")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, (width, overflow)  # the table scrolls in its own wrapper
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.watch.axe() == []

    # By keyboard: focus Kim's Actions link, Enter loads her actions into the row.
    page.get_by_label("Search by email or name").fill("kim.lee")
    page.wait_for_function("() => document.querySelectorAll('#user-results tr').length === 1")
    row = page.locator(f"#user-{kim.id}")
    row.get_by_role("link", name="Actions kim.lee@school.org").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#user-{kim.id} details.row-actions[open] select")
    focused = page.evaluate("() => document.activeElement.tagName")
    assert focused == "SUMMARY"  # the disclosure that replaced the link has the focus
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == f"role-{kim.id}"
    for width in (1280, 390, 320):
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"admin-rows-menu-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.watch.axe() == []
    page.keyboard.press("ArrowDown")  # student -> teacher
    page.keyboard.press("Tab")  # to "Change role"
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#user-{kim.id} .row-note.ok")
    page.wait_for_function(  # focus stays with the row, on its Actions link
        f"() => document.activeElement.closest('tr')?.id === 'user-{kim.id}'"
    )
    db.session.expire_all()
    assert db.session.get(User, kim.id).role == "teacher"
    page.watch.assert_clean()


def test_without_javascript_actions_lead_to_the_users_page(live_server, browser, school):
    ctx = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    kim = make_user(Role.STUDENT, email="kim.lee@school.org", name="Kim Lee")
    log_in(page, live_server, school.email)
    page.goto(live_server + "/admin/users?q=kim.lee")
    page.get_by_role("link", name="Actions kim.lee@school.org").click()
    page.wait_for_url(f"**/admin/users/{kim.id}#actions")
    page.get_by_role("button", name="Deactivate").click()
    page.wait_for_selector(".flash.success")
    shot(page, "admin-rows-nojs-after")
    db.session.expire_all()
    assert db.session.get(User, kim.id).is_active is False
    ctx.close()
