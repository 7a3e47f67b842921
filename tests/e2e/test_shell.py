"""The first journey: the home page loads cleanly in Chromium."""

from tests.conftest import PASSWORD, make_user


def test_home_page_has_no_console_errors_or_csp_violations(live_server, page):
    page.goto(live_server + "/")
    assert page.locator("h1").inner_text().startswith("Learn and teach")
    page.wait_for_function("() => window.htmx !== undefined")
    page.watch.shot("home-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    page.watch.shot("home-phone")
    assert page.watch.axe() == []
    page.watch.assert_clean()


def test_login_and_logout_in_the_browser(live_server, page, app):
    user = make_user("student", email="browser@example.com")
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/learn")
    assert user.name in page.locator(".nav-user").inner_text()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(live_server + "/")
    assert page.get_by_role("link", name="Log in").is_visible()
    page.watch.assert_clean()
