"""The accounts journey in Chromium: sign up, activate from the email (a button on the page the
link opens), log in, dashboard, log out, reset the password from the email, log in with the new
one. A screenshot of each page."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

EMAIL = "journey@example.com"
FIRST = "maple lantern orbit"
SECOND = "quiet harbour sunrise"


def wait_for_mail(mailbox, address: str, subject: str, deadline: float = 10.0):
    end = time.monotonic() + deadline
    while True:
        found = [m for m in mailbox.to(address) if m["Subject"] == subject]
        if found:
            return found[-1]
        if time.monotonic() > end:
            raise AssertionError(f"no email {subject!r} to {address}")
        time.sleep(0.1)


def link_in(mailbox, msg, base: str) -> str:
    (url,) = re.findall(re.escape(base) + r"/\S+", mailbox.text(msg))
    return url


def checked(page, name: str) -> None:
    page.watch.shot(name)
    assert page.watch.axe() == [], name


def test_account_journey(mailbox, live_server, page):
    # Sign up, with inline validation as fields are left.
    page.goto(live_server + "/signup")
    page.wait_for_function("() => window.htmx !== undefined")
    page.get_by_label("Name").fill("Journey Person")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill("password123")
    page.get_by_label("Confirm password").focus()
    expect(page.locator("#password-feedback")).to_contain_text("most common")
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
    checked(page, "accounts-signup-inline-error")
    page.get_by_label("Password", exact=True).fill(FIRST)
    page.get_by_label("Confirm password").fill(FIRST)
    page.get_by_label("I am a student").check()
    page.get_by_label("Confirm password").press("Tab")
    expect(page.locator("#password-feedback")).to_be_empty()
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "false")
    checked(page, "accounts-signup")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/signup/sent")
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    checked(page, "accounts-signup-sent")

    # Activate from the email.
    msg = wait_for_mail(mailbox, EMAIL, "Activate your Lectern account")
    page.goto(link_in(mailbox, msg, live_server))
    # Opening the link only shows a button (mail scanners open links too); pressing it activates.
    expect(page.get_by_role("heading", name="Activate your account")).to_be_visible()
    checked(page, "accounts-activate")
    page.get_by_role("button", name="Activate my account").click()
    page.wait_for_url("**/login")
    expect(page.locator(".flash")).to_contain_text("Your account is active")
    checked(page, "accounts-activated-login")

    # Log in and see the dashboard.
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(FIRST)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/learn")
    expect(page.locator(".nav-user")).to_contain_text("Journey Person")
    checked(page, "accounts-dashboard")

    # The account and sessions pages.
    page.get_by_role("link", name=re.compile("Journey Person")).click()
    page.wait_for_url("**/account")
    checked(page, "accounts-account")
    page.get_by_role("link", name="Manage my sessions").click()
    page.wait_for_url("**/account/sessions")
    expect(page.locator(".badge-current")).to_have_text("This device")
    checked(page, "accounts-sessions")

    # Log out.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(live_server + "/")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.locator(".flash")).to_contain_text("You are signed out")
    checked(page, "accounts-logged-out")

    # Forgot password: the email, the token-less reset page, the new password.
    page.goto(live_server + "/password/forgot")
    checked(page, "accounts-forgot")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_role("button", name="Send a reset link").click()
    page.wait_for_url("**/password/forgot/sent")
    msg = wait_for_mail(mailbox, EMAIL, "Reset your Lectern password")
    page.goto(link_in(mailbox, msg, live_server))
    page.wait_for_url(live_server + "/password/reset")
    checked(page, "accounts-reset")
    page.get_by_label("New password", exact=True).fill(SECOND)
    page.get_by_label("Confirm new password").fill(SECOND)
    page.get_by_role("button", name="Change my password").click()
    page.wait_for_url("**/login")
    expect(page.locator(".flash")).to_contain_text("every session was signed out")
    checked(page, "accounts-reset-done")

    # The old password no longer works; the new one does.
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(FIRST)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#password-feedback")).to_contain_text("do not match")
    expect(page.get_by_label("Password")).to_be_focused()  # the field to fix, not Email
    checked(page, "accounts-login-error")
    # That refusal is answered 422 on purpose; Chromium logs any 4xx document as an error.
    page.watch.errors = [e for e in page.watch.errors if "status of 422" not in e]
    page.get_by_label("Password").fill(SECOND)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/learn")
    expect(page.locator(".nav-user")).to_contain_text("Journey Person")
    checked(page, "accounts-dashboard-new-password")
    page.watch.assert_clean()


def test_ending_a_session_by_keyboard_keeps_focus_on_the_page(live_server, page, browser):
    from tests.conftest import PASSWORD, make_user

    user = make_user("student", email="keys@example.com")
    for agent in ("Mozilla/5.0 (Windows NT 10.0) Firefox/140.0", None):
        ctx = browser.new_context(user_agent=agent) if agent else None
        p = ctx.new_page() if ctx else page
        p.goto(live_server + "/login")
        p.get_by_label("Email").fill(user.email)
        p.get_by_label("Password").fill(PASSWORD)
        p.get_by_role("button", name="Log in").click()
        p.wait_for_url("**/learn")
        if ctx:
            ctx.close()
    page.goto(live_server + "/account/sessions")
    page.wait_for_function("() => window.htmx !== undefined")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    end = page.get_by_role("button", name=re.compile("End the session on Firefox on Windows"))
    end.focus()
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(page.locator("#status")).to_contain_text("Session ended: Firefox on Windows from ")
    # The removed row took the focused button with it: focus lands on <main>, not <body>.
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'main'")
    checked(page, "accounts-session-ended")
    page.watch.assert_clean()
