"""The admin's outbox in Chromium: Retry by keyboard swaps the row, keeps the focus in it and is
announced in #status; without JavaScript the same button posts and comes back with a flash.
Screenshots at 1280, 390 and 320 px, light and dark: tests/e2e/screenshots/admin-outbox-*.png."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import PASSWORD, make_user
from tests.e2e.conftest import PageWatch
from tests.e2e.test_admin import log_in, shot
from tests.e2e.test_layout import LONG_EMAIL as LONG_ADDRESS
from webapp import mail
from webapp.extensions import db
from webapp.models import OutboxMessage, Role, utcnow

SECRET = "E2E-BODY-TOKEN-51d0"


@pytest.fixture
def outbox(app):
    admin = make_user(Role.ADMIN, email="boss@school.org", name="Bea Boss")
    now = utcnow()
    rows = []
    for i, (recipient, state) in enumerate(
        [
            (LONG_ADDRESS, "given-up"),
            ("kim.lee@school.org", "given-up"),
            ("ada@school.org", "pending"),
            (LONG_ADDRESS, "pending"),
            ("new.student@school.org", "fresh"),
        ]
    ):
        row = OutboxMessage(
            recipient=recipient,
            subject=f"Activate your Lectern account ({i})",
            text_body=f"http://lectern.test/activate/{SECRET}",
            html_body=f"<a href='http://lectern.test/activate/{SECRET}'>x</a>",
            created_at=now - dt.timedelta(hours=5 - i),
        )
        if state == "given-up":
            row.attempts, row.next_attempt_at = 30, mail.GAVE_UP
            row.last_error = (
                "gave up after 30 attempts: SMTPRecipientsRefused: {'" + recipient + "': (550, "
                "b'5.1.1 The email account that you tried to reach does not exist.')}"
            )
        elif state == "pending":
            row.attempts, row.next_attempt_at = 3, now + dt.timedelta(minutes=4)
            row.last_error = "ConnectionRefusedError: [Errno 111] Connection refused"
        db.session.add(row)
        rows.append(row)
    db.session.commit()
    return admin, rows


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_outbox_fits_every_width_and_is_clean(live_server, browser, outbox, scheme):
    admin, _ = outbox
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    try:
        log_in(page, live_server, admin.email)
        for path, name in (("/admin/outbox", "pending"), ("/admin/outbox?show=given-up", "gave")):
            page.goto(live_server + path)
            assert SECRET not in page.content()
            for width in (1280, 390, 320):
                page.set_viewport_size({"width": width, "height": 900})
                shot(page, f"admin-outbox-{name}-{width}-{scheme}")
                overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
                assert overflow <= 0, (path, width, overflow)
            page.set_viewport_size({"width": 390, "height": 900})
            assert PageWatch(page).axe() == [], path
    finally:
        context.close()


def test_retry_by_keyboard_swaps_the_row_and_announces_it(live_server, page, outbox):
    admin, rows = outbox
    target = rows[1]  # kim.lee, given up
    log_in(page, live_server, admin.email)
    page.goto(live_server + "/admin/outbox?show=given-up")
    page.wait_for_function("() => window.htmx !== undefined")
    button = page.get_by_role("button", name="Retry kim.lee@school.org")
    button.focus()
    page.keyboard.press("Enter")
    row = page.locator(f"#message-{target.id}")
    row.get_by_text("Queued again").wait_for()
    # The focus stays in the row: on its new button ("Try now"), once htmx has settled.
    page.wait_for_function(f"() => document.activeElement.id === 'retry-{target.id}'")
    assert row.get_by_role("button").inner_text() == "Try now"
    page.wait_for_function(
        "() => document.getElementById('status').textContent.includes('Queued again')"
    )
    assert page.locator("#status").inner_text().startswith("kim.lee@school.org: Queued again")
    db.session.expire_all()
    assert db.session.get(OutboxMessage, target.id).attempts == 0
    page.watch.assert_clean()


def test_retry_without_javascript_posts_and_flashes(live_server, browser, outbox):
    admin, rows = outbox
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        log_in_plain(page, live_server, admin.email)
        page.goto(live_server + "/admin/outbox?show=given-up")
        page.get_by_role("button", name=f"Retry {LONG_ADDRESS}").click()
        page.wait_for_load_state()
        assert page.url.endswith("/admin/outbox?show=given-up")
        assert "Queued again" in page.locator(".flash.success").inner_text()
        page.get_by_role("button", name="Retry all given up (1)").click()
        page.wait_for_load_state()
        assert page.locator(".flash.success").inner_text() == "1 given-up message queued again."
        assert page.locator("#outbox-rows tr").count() == 0
    finally:
        context.close()
    db.session.expire_all()
    assert {db.session.get(OutboxMessage, r.id).attempts for r in rows[:2]} == {0}


def log_in_plain(page, base: str, email: str) -> None:
    """log_in() without JavaScript (its wait is a script)."""
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
