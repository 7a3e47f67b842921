"""The look (docs/design.md) in Chromium: every main page axe-clean in the light and the dark
theme, the theme toggle by keyboard without a flash, the course cards, and the screenshots the
README shows (1280, 390 and 320 px, light and dark)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, make_user
from webapp.extensions import db
from webapp.models import CompletedContentBlock, ContentBlock, Course, Role, Section, StudentCourse

MINE = ("home", "catalogue", "my-learning", "course", "block")
TOPICS = ("Labels", "Contrast", "Keyboard", "Headings", "Forms", "Links")
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844), "small": (320, 720)}

LESSON = """Good forms start with **labels**. A label names the field for everyone: it is read
out by screen readers, it is a bigger target to click, and it stays visible while you type.

## What to check

- Every input has a `<label for>` that names it.
- Errors say what went wrong *and* how to fix it.
- The order of the fields follows the order of the questions.

> Placeholder text is not a label: it disappears as soon as someone types.
"""

COURSES = [
    (
        "Accessible web pages",
        "Build pages that everyone can use: structure, labels, contrast, "
        "keyboard access and testing with a screen reader.",
    ),
    (
        "Python for data work",
        "Read, clean and chart real data sets with Python and pandas, "
        "one small notebook at a time.",
    ),
    (
        "Writing clearly",
        "Short sentences, plain words, one idea per paragraph: write documents "
        "people finish reading.",
    ),
    (
        "Astronomy at night",
        "Find the planets, the bright stars and the Moon's phases with your "
        "own eyes and a pair of binoculars.",
    ),
    (
        "Gardening basics",
        "Soil, seeds, water and light: grow vegetables on a balcony or in a small garden.",
    ),
    (
        "Statistics without tears",
        "Means, spreads, samples and the questions to ask of a chart before you believe it.",
    ),
]


@pytest.fixture
def school(app):
    teacher = make_user(Role.TEACHER, email="grace@example.com", name="Grace Hopper")
    other = make_user(Role.TEACHER, email="alan@example.com", name="Alan Turing")
    student = make_user(Role.STUDENT, email="lena@example.com", name="Lena Learner")
    admin = make_user(Role.ADMIN, email="ada@example.com", name="Ada Admin")
    for n in range(8):
        make_user(Role.STUDENT, email=f"student{n}@example.com", name=f"Student {n + 1}")
    courses = []
    for i, (title, summary) in enumerate(COURSES):
        course = Course(
            title=title,
            description=summary,
            user_id=(teacher if i % 2 == 0 else other).id,
            is_published=True,
        )
        db.session.add(course)
        kinds = ["lesson", "video", "quiz", "lesson", "assignment", "link"][: 3 + i % 4]
        for s in range(2):
            section = Section(
                course=course, title=("Foundations", "Practice")[s], description="", position=s
            )
            db.session.add(section)
            for b, kind in enumerate(kinds):
                db.session.add(
                    ContentBlock(
                        section=section,
                        title=f"{TOPICS[b]} {s + 1}",
                        description="",
                        type=kind,
                        position=b,
                        url={
                            "video": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
                            "link": "https://example.com/reading",
                        }.get(kind),
                        content=LESSON * (1 + b) if kind == "lesson" else "",
                    )
                )
        courses.append(course)
    db.session.commit()
    for course, done in ((courses[0], 3), (courses[1], 1), (courses[3], 0)):
        db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
        blocks = db.session.scalars(
            db.select(ContentBlock)
            .join(Section)
            .where(Section.course_id == course.id)
            .order_by(Section.position, ContentBlock.position)
        ).all()
        for block in blocks[:done]:
            db.session.add(
                CompletedContentBlock(
                    student_id=student.id, content_block_id=block.id, feedback="", grader_comment=""
                )
            )
    db.session.commit()
    first_lesson = db.session.scalars(
        db.select(ContentBlock.id)
        .join(Section)
        .where(Section.course_id == courses[0].id)
        .order_by(Section.position, ContentBlock.position)
    ).first()
    return {
        "teacher": teacher,
        "student": student,
        "admin": admin,
        "courses": courses,
        "lesson": first_lesson,
    }


def _login(page, base, email):
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def _pages(school):
    c = school["courses"][0]
    return {
        "home": (None, "/"),
        "catalogue": ("lena@example.com", "/courses"),
        "my-learning": ("lena@example.com", "/learn"),
        "course": ("lena@example.com", f"/courses/{c.id}"),
        "block": ("lena@example.com", f"/courses/{c.id}/blocks/{school['lesson']}"),
        "editor": ("grace@example.com", f"/teach/courses/{c.id}"),
        "admin": ("ada@example.com", "/admin/users"),
    }


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_is_axe_clean_in_both_themes_and_screenshots(
    live_server, browser, school, scheme
):
    """Each main page, as its user sees it, at three widths in the system's light or dark
    scheme: no axe violation (contrast included), no console error or CSP report."""
    found = {}
    for name, (email, path) in _pages(school).items():
        context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
        page = context.new_page()
        from tests.e2e.conftest import PageWatch

        watch = PageWatch(page)
        requested: list[str] = []
        page.on("request", lambda r, seen=requested: seen.append(r.url))
        if email:
            _login(page, live_server, email)
        page.goto(live_server + path)
        page.wait_for_load_state("networkidle")
        # No third-party request: the font, styles and scripts are all Lectern's own.
        assert all(u.startswith((live_server, "data:")) for u in requested), requested
        assert any(u.endswith(".woff2") for u in requested) or email, requested
        assert page.evaluate("getComputedStyle(document.documentElement).colorScheme") == scheme
        for width_name, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            wide = page.evaluate("document.documentElement.scrollWidth")
            if name in MINE:  # the others' widths are the page-width work's (issue 16, item 1)
                assert wide <= width, (name, width, wide)
            watch.shot(f"design-{name}-{width_name}-{scheme}", full_page=width_name != "desktop")
            if width_name == "phone":  # the first screen, as the README shows it
                watch.shot(f"design-{name}-{width_name}-{scheme}-top", full_page=False)
        page.set_viewport_size({"width": 1280, "height": 900})
        found[name] = watch.axe()
        # The YouTube player may report its own errors offline; ours must be clean.
        watch.errors = [e for e in watch.errors if "youtube" not in e.lower()]
        watch.assert_clean()
        context.close()
    assert all(v == [] for v in found.values()), {name: vs for name, vs in found.items() if vs}


def test_the_theme_toggle_works_by_keyboard_and_is_remembered(live_server, browser, school):
    """A visitor picks dark with the keyboard: the next page arrives dark from the server (no
    flash, no script); signed in, the choice is kept on the account."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, color_scheme="light", java_script_enabled=False
    )
    page = context.new_page()
    page.goto(live_server + "/courses")
    dark = page.get_by_role("button", name="Dark")
    expect(dark).to_have_attribute("aria-pressed", "false")
    dark.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/courses")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.get_by_role("button", name="Dark")).to_have_attribute("aria-pressed", "true")
    background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert background == "rgb(15, 20, 27)"
    # The HTML itself carries the theme: the first paint is dark.
    html = page.request.get(live_server + "/").text()
    assert 'data-theme="dark"' in html
    # Signed in: the account keeps it.
    _login(page, live_server, "lena@example.com")
    page.goto(live_server + "/learn")
    page.get_by_role("button", name="Light").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    db.session.expire_all()
    assert db.session.get(type(school["student"]), school["student"].id).theme == "light"
    context.close()
    # A chosen light theme wins over a dark system setting (and the reverse), from the first paint.
    for system, chosen, background in (
        ("dark", "light", "rgb(246, 247, 249)"),
        ("light", "dark", "rgb(15, 20, 27)"),
        ("dark", "system", "rgb(15, 20, 27)"),
    ):
        context = browser.new_context(color_scheme=system, java_script_enabled=False)
        context.add_cookies([{"name": "theme", "value": chosen, "url": live_server}])
        page = context.new_page()
        page.goto(live_server + "/")
        assert page.evaluate("getComputedStyle(document.documentElement).backgroundColor") == (
            background
        ), (system, chosen)
        context.close()


def test_the_catalogue_filter_works_with_and_without_javascript(live_server, browser, school):
    for js in (True, False):
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, java_script_enabled=js
        )
        page = context.new_page()
        _login(page, live_server, "lena@example.com")
        page.goto(live_server + "/courses")
        expect(page.locator(".course-card")).to_have_count(6)
        page.get_by_label("Enrolled", exact=True).check()
        if not js:
            page.get_by_role("button", name="Search").click()
        expect(page.locator(".course-card")).to_have_count(3)
        expect(page.locator("#results-count")).to_contain_text("3 courses you are enrolled in")
        assert "show=enrolled" in page.url
        page.get_by_label("Not enrolled").check()
        if not js:
            page.get_by_role("button", name="Search").click()
        expect(page.locator(".course-card")).to_have_count(3)
        expect(page.locator(".course-card.is-enrolled")).to_have_count(0)
        context.close()


def test_a_video_block_plays_in_the_nocookie_player_and_the_csp_blocks_other_frames(
    live_server, browser, school
):
    """The player's requests are answered by the test (no network): the frame loads, with the
    page's CSP; a frame from any other host is refused by the browser."""
    video = db.session.scalars(
        db.select(ContentBlock)
        .join(Section)
        .where(Section.course_id == school["courses"][0].id, ContentBlock.type == "video")
    ).first()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    player = "<!doctype html><title>player</title><p id=played>player</p>"
    context.route(
        "https://www.youtube-nocookie.com/**",
        lambda route: route.fulfill(body=player, content_type="text/html"),
    )
    context.route(
        "https://example.com/**", lambda route: route.fulfill(body=player, content_type="text/html")
    )
    page = context.new_page()
    from tests.e2e.conftest import PageWatch

    watch = PageWatch(page)
    _login(page, live_server, "lena@example.com")
    page.goto(live_server + f"/courses/{school['courses'][0].id}/blocks/{video.id}")
    frame = page.locator("iframe")
    expect(frame).to_have_attribute("title", f"YouTube video: {video.title}")
    expect(frame).to_have_attribute("src", "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ")
    expect(page.frame_locator("iframe").locator("#played")).to_have_text("player")
    watch.assert_clean()
    assert watch.axe() == []
    # Any other host: the browser refuses the frame (a CSP report in the console).
    page.evaluate(
        "() => { const f = document.createElement('iframe'); f.title = 'other';"
        " f.src = 'https://example.com/x'; document.body.append(f); }"
    )
    page.wait_for_timeout(500)
    assert any("frame-src" in e for e in watch.errors), watch.errors
    context.close()
