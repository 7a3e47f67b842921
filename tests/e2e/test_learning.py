"""A student takes a course in Chromium: search, enrol, start, complete, submit, leave, resume."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, make_user
from webapp.extensions import db
from webapp.models import ContentBlock, Course, Role, Section


@pytest.fixture
def journey_data(app):
    teacher = make_user(Role.TEACHER, name="Grace Hopper")
    student = make_user(Role.STUDENT, email="learner@example.com", name="Lena Learner")
    course = Course(
        title="Accessible web pages",
        description="Build pages that **everyone** can use.",
        user_id=teacher.id,
        is_published=True,
    )
    db.session.add(course)
    for title in ("Cooking for coders", "Gardening basics", "Astronomy at night"):
        db.session.add(Course(title=title, description="", user_id=teacher.id, is_published=True))
    s1 = Section(course=course, title="Foundations", description="", position=0)
    s2 = Section(course=course, title="Practice", description="", position=1)
    db.session.add_all([s1, s2])
    blocks = [
        (s1, "Welcome", "lesson", None, "Read this *first*.\n\n- semantics\n- labels"),
        (s1, "Label every input", "assignment", None, "Fix the form and share a link to it."),
        (s2, "Screen readers in practice", "video", "https://example.com/video", ""),
        (s2, "Wrap up", "lesson", None, "You made it."),
    ]
    for i, (section, title, kind, url, content) in enumerate(blocks):
        db.session.add(
            ContentBlock(
                section=section,
                title=title,
                description="",
                type=kind,
                url=url,
                content=content,
                position=i,
            )
        )
    db.session.commit()
    return student, course


def login(page, base, email):
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/learn")


def expected_422(page):
    """Chromium logs the deliberate 422 (a form with errors) as a failed load: that one only."""
    assert page.watch.errors == [
        "error: Failed to load resource: the server responded with a status of 422 "
        "(UNPROCESSABLE ENTITY)"
    ]
    page.watch.errors.clear()


def no_violations(page):
    violations = page.watch.axe()
    assert violations == [], violations


def test_student_takes_a_course(live_server, page, journey_data):
    student, course = journey_data
    login(page, live_server, student.email)
    page.wait_for_function("() => window.htmx !== undefined")
    no_violations(page)

    # Find the course by searching as one types; the URL follows the search.
    page.get_by_role("link", name="Courses", exact=True).click()
    page.wait_for_url("**/courses")
    expect(page.locator("#catalogue-results .course-card")).to_have_count(4)
    page.get_by_label("Search by course title or teacher").press_sequentially("access")
    expect(page.locator("#catalogue-results .course-card")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/courses\?q=access(&show=all)?$"))
    expect(page.locator("#status")).to_contain_text("1 course found for “access”")
    page.watch.shot("learning-catalogue-search")
    no_violations(page)
    # Back returns to the unfiltered list; Forward to the search.
    page.go_back()
    expect(page.locator("#catalogue-results .course-card")).to_have_count(4)
    page.go_forward()
    expect(page.locator("#catalogue-results .course-card")).to_have_count(1)
    expect(page.get_by_label("Search by course title or teacher")).to_have_value("access")

    # Enrol, then Start.
    page.get_by_role("link", name="Accessible web pages").click()
    page.get_by_role("button", name="Enrol").click()
    expect(page.get_by_text("You are enrolled.")).to_be_visible()
    expect(page.get_by_label("Course progress")).to_have_attribute("value", "0")
    page.watch.shot("learning-course-enrolled")
    no_violations(page)
    page.get_by_role("link", name="Start").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome")
    no_violations(page)

    # Complete the lesson: the form, the tick, the bar and Next change without a reload.
    page.evaluate("() => { window.__sameDocument = true; }")
    page.get_by_role("button", name="Mark complete").click()
    expect(page.locator("#completion")).to_contain_text("Completed")
    expect(page.get_by_label("Course progress")).to_have_attribute("value", "1")
    expect(page.locator("#course-progress")).to_contain_text("25%")
    expect(page.locator(".outline-block.current .tick")).to_have_text("✓")
    expect(page.locator("#status")).to_contain_text("Welcome marked complete. Course progress 25%")
    expect(page.locator("#block-nav a[rel=next]")).not_to_have_class(re.compile("secondary"))
    assert page.evaluate("() => window.__sameDocument === true")
    page.watch.shot("learning-lesson-completed")
    no_violations(page)
    # Undo by keyboard: focus goes to the new "Mark complete" (it fell to <body> before, issue
    # 16 item 4), so Enter marks it complete again.
    page.get_by_role("button", name="Undo completion").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Mark complete")).to_be_focused()
    expect(page.locator("#status")).to_contain_text("Welcome marked not done. Course progress 0%")
    page.keyboard.press("Enter")
    expect(page.locator("#completion")).to_contain_text("Completed")
    expect(page.locator("#course-progress")).to_contain_text("25%")

    # Submit the assignment's url; a bad one first.
    page.locator("#block-nav a[rel=next]").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Label every input")
    page.evaluate("() => { window.__sameDocument = true; }")
    page.get_by_label("Address of your work").fill("javascript:alert(1)")
    page.get_by_role("button", name="Submit and mark complete").click()
    expect(page.locator("#url-error")).to_contain_text("http:// or https://")
    expect(page.get_by_label("Address of your work")).to_be_focused()
    page.watch.shot("learning-assignment-error")
    no_violations(page)
    expected_422(page)
    page.get_by_label("Address of your work").fill("https://github.com/lena/forms")
    page.get_by_label("Remarks (optional)").fill("All inputs have labels now.")
    page.get_by_role("button", name="Submit and mark complete").click()
    expect(page.locator("#completion")).to_contain_text("https://github.com/lena/forms")
    expect(page.locator("#course-progress")).to_contain_text("50%")
    expect(page.locator("#section-progress-" + str(_section_id(page)))).to_have_text("2 of 2 done")
    assert page.evaluate("() => window.__sameDocument === true")
    page.watch.shot("learning-assignment-submitted")
    no_violations(page)

    # Leave, come back, resume at the block after the last activity.
    page.get_by_role("link", name="My learning").click()
    expect(page.locator(".my-course")).to_contain_text("50%")
    page.watch.shot("learning-my-learning")
    no_violations(page)
    page.get_by_role("link", name="Resume Accessible web pages").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Screen readers in practice")
    expect(page.get_by_role("link", name=re.compile("Watch the video"))).to_have_attribute(
        "rel", "noopener noreferrer"
    )
    page.goto(live_server + f"/courses/{course.id}")
    expect(page.get_by_role("link", name="Resume: Screen readers in practice")).to_be_visible()

    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Resume: Screen readers in practice").click()
    page.watch.shot("learning-block-phone")
    no_violations(page)
    page.watch.assert_clean()


def _section_id(page) -> int:
    ident = page.locator(".outline-block.current").evaluate(
        "el => el.closest('.outline-section').querySelector('.section-progress').id"
    )
    return int(ident.rsplit("-", 1)[1])


# --- keyboard only -------------------------------------------------------------------------------


def tab_to(page, selector: str, max_tabs: int = 60) -> None:
    """Press Tab until the focused element matches ``selector``."""
    for _ in range(max_tabs):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => !!document.activeElement?.matches(s)", selector):
            return
    raise AssertionError(f"could not reach {selector!r} with the Tab key")


def test_the_journey_works_with_the_keyboard_only(live_server, page, journey_data):
    student, course = journey_data
    page.goto(live_server + "/login")
    tab_to(page, "input[type=email]")
    page.keyboard.type(student.email)
    tab_to(page, "input[type=password]")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/learn")

    tab_to(page, "nav a[href='/courses']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/courses")
    tab_to(page, "#q")
    page.keyboard.type("accessible")
    expect(page.locator("#catalogue-results .course-card")).to_have_count(1)
    tab_to(page, "#catalogue-results a")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/courses/{course.id}")

    tab_to(page, "form[action$='/enrol'] button")
    page.keyboard.press("Enter")
    expect(page.get_by_text("You are enrolled.")).to_be_visible()
    tab_to(page, ".course-panel a.button")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome")

    tab_to(page, "#completion button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator("#course-progress")).to_contain_text("25%")
    # focus was moved on purpose to the new state, so Tab continues from there
    expect(page.locator(".completed-line")).to_be_focused()
    tab_to(page, "#block-nav a[rel=next]")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Label every input")

    tab_to(page, "#url")
    page.keyboard.type("https://example.org/my-form")
    page.keyboard.press("Enter")  # submits the form
    expect(page.locator("#course-progress")).to_contain_text("50%")

    # Edit and save with the keyboard too.
    tab_to(page, "#completion a.button")
    page.keyboard.press("Enter")
    expect(page.locator("#url")).to_be_focused()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("https://example.org/my-form-v2")
    page.keyboard.press("Enter")
    expect(page.locator("#completion")).to_contain_text("https://example.org/my-form-v2")
    page.watch.shot("learning-keyboard-edited")

    tab_to(page, "nav a[href='/learn']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/learn")
    tab_to(page, ".my-course a.button")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Screen readers in practice")
    page.watch.assert_clean()


# --- without JavaScript, phones, requests in flight -----------------------------------------------


def test_the_journey_works_without_javascript(live_server, browser, journey_data):
    """JavaScript off: search, enrol, complete, submit, edit, undo, resume and unenrol by forms."""
    student, course = journey_data
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        login(page, live_server, student.email)
        page.goto(live_server + "/courses")
        page.get_by_label("Search by course title or teacher").fill("access")
        page.get_by_role("button", name="Search").click()
        expect(page).to_have_url(re.compile(r"/courses\?q=access(&show=all)?$"))
        expect(page.locator("#catalogue-results .course-card")).to_have_count(1)
        page.get_by_role("link", name="Accessible web pages").click()
        page.get_by_role("button", name="Enrol").click()
        expect(page.get_by_text("You are enrolled.")).to_be_visible()
        page.get_by_role("link", name="Start").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Welcome")

        page.get_by_role("button", name="Mark complete").click()
        expect(page.locator("#completion")).to_contain_text("Completed")
        expect(page.locator("#course-progress")).to_contain_text("25%")
        expect(page.locator(".outline-block.current .tick")).to_have_text("✓")
        page.locator("#block-nav a[rel=next]").click()

        # A bad url re-renders the page with the message by the field; then a good one.
        page.get_by_label("Address of your work").fill("ftp://nope")
        page.get_by_role("button", name="Submit and mark complete").click()
        expect(page.locator("#url-error")).to_contain_text("http:// or https://")
        page.get_by_label("Address of your work").fill("https://example.org/v1")
        page.get_by_role("button", name="Submit and mark complete").click()
        expect(page.locator("#course-progress")).to_contain_text("50%")
        page.get_by_role("link", name="Edit your work").click()
        page.get_by_label("Address of your work").fill("https://example.org/v2")
        page.get_by_role("button", name="Save changes").click()
        expect(page.locator("#completion")).to_contain_text("https://example.org/v2")
        page.get_by_role("button", name="Undo completion").click()
        expect(page.locator("#course-progress")).to_contain_text("25%")
        expect(page.get_by_role("button", name="Submit and mark complete")).to_be_visible()

        page.goto(f"{live_server}/courses/{course.id}")
        expect(page.get_by_role("link", name="Resume: Label every input")).to_be_visible()
        page.locator("summary", has_text="Unenrol").click()
        page.locator(".unenrol button[type=submit]").click()
        expect(page.get_by_role("button", name="Enrol")).to_be_visible()
        # Enrolling again brings the progress back.
        page.get_by_role("button", name="Enrol").click()
        expect(page.locator("#course-progress")).to_contain_text("25%")
    finally:
        context.close()


def test_block_outline_folds_on_phones_and_mark_complete_disables_in_flight(
    live_server, page, journey_data
):
    student, course = journey_data
    login(page, live_server, student.email)
    page.goto(f"{live_server}/courses/{course.id}")
    page.get_by_role("button", name="Enrol").click()
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Start").click()
    page.wait_for_function("() => window.htmx !== undefined")

    # On a phone the outline comes after the content and folds away under its summary.
    outline = page.locator(".block-outline")
    main_box = page.locator(".block-main").bounding_box()
    assert outline.bounding_box()["y"] > main_box["y"] + main_box["height"] - 1
    expect(outline.get_by_role("link", name="Label every input")).to_be_visible()
    outline.get_by_text("Course outline").click()
    expect(outline.get_by_role("link", name="Label every input")).to_be_hidden()
    outline.get_by_text("Course outline").press("Enter")
    expect(outline.get_by_role("link", name="Label every input")).to_be_visible()

    # Only this block's section lists its blocks; another one opens on demand (htmx), by
    # keyboard, keeping focus on its disclosure link, and then folds without a request.
    practice = outline.get_by_role("link", name="Practice", exact=True)
    expect(practice).to_have_attribute("aria-expanded", "false")
    expect(outline.get_by_role("link", name="Wrap up")).to_have_count(0)
    practice.focus()
    page.keyboard.press("Enter")
    expect(outline.get_by_role("link", name="Wrap up")).to_be_visible()
    expect(practice).to_have_attribute("aria-expanded", "true")
    expect(practice).to_be_focused()
    assert page.evaluate("() => location.search") == ""  # no page load
    sent = []

    def note(request):
        sent.append(request.url)

    page.on("request", note)
    page.keyboard.press("Enter")
    expect(outline.get_by_role("link", name="Wrap up")).to_be_hidden()
    expect(practice).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(outline.get_by_role("link", name="Wrap up")).to_be_visible()
    page.remove_listener("request", note)
    assert sent == []  # folding and unfolding again sent no request
    no_violations(page)

    # Mark complete: the button is disabled until the answer is in.
    held = []
    page.route("**/complete", lambda route: held.append(route))
    button = page.get_by_role("button", name="Mark complete")
    button.click()
    expect(button).to_be_disabled()
    button.click(force=True)
    assert len(held) == 1
    held.pop().continue_()
    expect(page.locator("#completion")).to_contain_text("Completed")
    expect(page.locator("#course-progress")).to_contain_text("25%")
    page.watch.shot("learning-block-phone-completed")
    page.watch.assert_clean()


# --- a large course -------------------------------------------------------------------------------


def test_a_large_course_stays_small_on_every_screen(live_server, page, app):
    """40 sections of 25 blocks: the course and block pages list one section's blocks, fit a
    320 px screen without sideways scrolling, and pass axe."""
    from tests.test_learning_budget import enrol_with_progress, seed_course

    teacher = make_user(Role.TEACHER, name="Grace Hopper")
    student = make_user(Role.STUDENT, email="big@example.com", name="Bea Big")
    course = seed_course(teacher, "A very large course on accessible web pages", 40, 25)
    blocks = enrol_with_progress(student, course, 510)
    login(page, live_server, student.email)
    for width in (1280, 390, 320):
        page.set_viewport_size({"width": width, "height": 900})
        for name, url in (
            ("course", f"/courses/{course.id}"),
            ("block", f"/courses/{course.id}/blocks/{blocks[510].id}"),
        ):
            page.goto(live_server + url)
            expect(page.locator(".outline-block")).to_have_count(25)
            expect(page.locator("a.section-toggle")).to_have_count(40)
            assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
            page.watch.shot(f"learning-large-{name}-{width}", full_page=False)
            page.locator("a.section-toggle[aria-expanded=true]").scroll_into_view_if_needed()
            page.watch.shot(f"learning-large-{name}-{width}-open", full_page=False)
            if width == 390:
                no_violations(page)
    page.watch.assert_clean()
