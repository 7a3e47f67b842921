"""A teacher builds and publishes a course in Chromium, without a page reload."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import PASSWORD, make_user
from webapp.extensions import db
from webapp.models import CollapsedSection


def log_in(page, base, user):
    page.goto(base + "/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def add_block(page, section, title, kind, url=None):
    form = section.locator("form.add-block")
    form.get_by_label("New block title").fill(title)
    form.get_by_label("Type").select_option(kind)
    if url:
        form.get_by_label("URL").fill(url)
    form.get_by_role("button", name="Add block").click()
    expect(section.locator(".block-title", has_text=title)).to_be_visible()


def test_teacher_builds_and_publishes_a_course(live_server, page, app):
    teacher = make_user("teacher", email="builder@example.com", name="Builder")
    log_in(page, live_server, teacher)
    page.goto(live_server + "/teach")
    expect(page.get_by_text("You have no courses yet")).to_be_visible()
    page.get_by_role("link", name="New course").click()
    page.get_by_label("Title").fill("Web basics")
    page.get_by_label("Description").fill("HTML, CSS and a little HTTP.")
    page.get_by_role("button", name="Create draft").click()
    page.wait_for_url(re.compile(r".*/teach/courses/\d+$"))
    page.wait_for_function("() => window.htmx !== undefined && window.Sortable !== undefined")
    # From here on the page must never reload: this marker would vanish.
    page.evaluate("() => { window.__noReload = true; }")

    for title in ("Getting started", "Going further"):
        page.get_by_label("Section title").fill(title)
        page.get_by_role("button", name="Add section").click()
        expect(page.locator(".section-title", has_text=title)).to_be_visible()
    first, second = page.locator(".section").nth(0), page.locator(".section").nth(1)

    # A video without its URL is refused next to the field, then added with one.
    form = first.locator("form.add-block")
    form.get_by_label("New block title").fill("Intro video")
    form.get_by_label("Type").select_option("video")
    form.get_by_role("button", name="Add block").click()
    expect(first.get_by_text("A URL is required for videos and links.")).to_be_visible()
    add_block(page, first, "Intro video", "video", "https://video.example/intro")
    add_block(page, first, "What is HTML", "lesson")
    add_block(page, first, "Reading list", "link", "https://developer.mozilla.org/")
    add_block(page, second, "Check yourself", "quiz")
    add_block(page, second, "Build a page", "assignment")
    expect(page.locator(".outline-summary")).to_contain_text("5 blocks")

    # Edit the course title in place: click the text, type, Enter saves.
    page.locator("#course-title h1").click()
    title_input = page.locator("#course-title").get_by_label("Course title")
    expect(title_input).to_be_focused()
    title_input.fill("Web basics for beginners")
    title_input.press("Enter")
    expect(page.locator("#course-title h1")).to_have_text("Web basics for beginners")
    expect(page.locator("#status")).to_contain_text("Course title saved: Web basics for beginners")
    # Escape cancels without saving.
    edit_title = page.locator("#course-title [data-inplace-edit]")
    expect(edit_title).to_be_focused()  # focus comes back to the Edit button
    edit_title.click()
    title_input = page.locator("#course-title").get_by_label("Course title")
    expect(title_input).to_be_focused()
    title_input.fill("Oops")
    page.keyboard.press("Escape")
    expect(page.locator("#course-title h1")).to_have_text("Web basics for beginners")
    expect(edit_title).to_be_focused()

    # A row shows its type, its title and one Edit; the rest is in its "More" menu.
    lesson = first.locator(".block", has_text="What is HTML")
    row_controls = lesson.locator(".block-actions > a, .block-actions > button")
    expect(row_controls).to_have_text(["Edit block What is HTML"])
    more = lesson.locator("details.menu > summary")
    expect(more).to_have_attribute("aria-expanded", "false")
    # Reorder by keyboard: open the menu, Move up, and the menu comes back open with focus on
    # Move up; Escape closes it and focus returns to "More".
    more.focus()
    page.keyboard.press("Enter")
    expect(more).to_have_attribute("aria-expanded", "true")
    page.watch.shot("authoring-row-menu")
    page.keyboard.press("Tab")
    expect(lesson.get_by_role("button", name="↑ Move up")).to_be_focused()
    page.keyboard.press("Enter")
    expect(first.locator(".block-title").first).to_have_text("What is HTML")
    expect(page.locator("#status")).to_contain_text(
        "What is HTML moved to position 1 in Getting started"
    )
    lesson = first.locator(".block", has_text="What is HTML")
    expect(lesson.get_by_role("button", name="↑ Move up")).to_be_focused()
    page.keyboard.press("Escape")
    more = lesson.locator("details.menu > summary")
    expect(more).to_be_focused()
    expect(more).to_have_attribute("aria-expanded", "false")
    expect(lesson.get_by_role("button", name="↑ Move up")).to_be_hidden()
    # Down past the end of the section moves a block into the next one.
    video = page.locator(".section").nth(0).locator(".block", has_text="Reading list")
    video.locator("details.menu > summary").click()
    video.get_by_role("button", name="↓ Move down").click()
    expect(page.locator(".section").nth(1).locator(".block-title").first).to_have_text(
        "Reading list"
    )
    expect(page.locator("#status")).to_contain_text(
        "Reading list moved to position 1 in Going further"
    )
    # Duplicate: the copy comes right after the block, its Edit focused.
    lesson = page.locator(".block", has_text="What is HTML")
    lesson.locator("details.menu > summary").click()
    lesson.get_by_role("button", name="Duplicate").click()
    copy = page.locator(".block", has_text="Copy of What is HTML")
    expect(copy.get_by_role("link", name="Edit block Copy of What is HTML")).to_be_focused()
    expect(page.locator("#status")).to_contain_text("Copy of What is HTML added at position 2")

    # Preview Markdown while writing the lesson, then save it.
    page.get_by_role("link", name="Edit block What is HTML", exact=True).click()
    editor = page.locator(".block-form")
    expect(editor.get_by_label("Title")).to_be_focused()  # swapped in and settled
    expect(editor.get_by_label("URL")).to_be_hidden()  # a lesson has no URL
    editor.get_by_label("Content").fill("## Tags\n\nHTML is made of **elements**.")
    preview = editor.locator(".preview .prose")
    expect(preview.locator("strong")).to_have_text("elements")
    expect(preview.locator("h2")).to_have_text("Tags")  # as students see it: right under the h1
    page.watch.shot("authoring-block-editor")
    assert page.watch.axe() == []  # with an inline editor open, too
    editor.get_by_role("button", name="Save block").click()
    expect(page.locator(".block-form")).to_have_count(0)

    # A section description in place: Shift+Enter is a new line, Enter saves.
    first = page.locator(".section").nth(0)
    first.locator(".inplace-description [data-inplace-edit]").click()
    description = first.get_by_label("Section description")
    expect(description).to_be_focused()
    description.type("Start here.")
    description.press("Shift+Enter")
    description.type("Then go on.")
    description.press("Enter")
    expect(first.locator(".inplace-description .description")).to_have_text(
        "Start here.\nThen go on."
    )

    # "Move to…" chooser: pick the section by keyboard, the block lands at its end.
    intro = page.locator(".block", has_text="Intro video")
    intro.locator("details.menu > summary").click()
    intro.get_by_role("link", name="Move to section…").click()
    chooser = page.get_by_label(re.compile("Move “Intro video” to the end of"))
    expect(chooser).to_be_focused()
    assert page.watch.axe() == []
    chooser.select_option(label="2. Going further")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.locator(".section").nth(1).locator(".block-title").last).to_have_text("Intro video")

    # Deleting asks first and says what would be lost.
    block = page.locator(".block", has_text="Check yourself")
    block.locator("details.menu > summary").click()
    block.locator("summary", has_text="Delete…").click()
    expect(block.locator(".confirm-body")).to_contain_text("0 student completions")
    assert page.watch.axe() == []
    page.keyboard.press("Escape")  # the confirmation closes, then the menu: nothing deleted
    expect(block.locator(".confirm-body")).to_be_hidden()
    page.keyboard.press("Escape")
    expect(block.locator("details.menu > summary")).to_be_focused()
    # The copy goes again (through its confirmation).
    copy = page.locator(".block", has_text="Copy of What is HTML")
    copy.locator("details.menu > summary").click()
    copy.locator("summary", has_text="Delete…").click()
    copy.get_by_role("button", name="Delete block").click()
    expect(page.locator(".block", has_text="Copy of What is HTML")).to_have_count(0)

    # Collapse the second section; the state is kept on the server.
    second = page.locator(".section").nth(1)
    second.get_by_role("button", name=re.compile("^Collapse")).click()
    expect(second.locator(".section-body")).to_be_hidden()
    expect(second.get_by_role("button", name=re.compile("^Expand"))).to_have_attribute(
        "aria-expanded", "false"
    )
    assert db.session.query(CollapsedSection).count() == 1

    # Publish.
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("#publish .badge")).to_have_text("Published")

    assert page.evaluate("() => window.__noReload === true")
    page.watch.shot("authoring-editor-desktop")
    assert page.watch.axe() == []
    page.set_viewport_size({"width": 390, "height": 844})
    page.watch.shot("authoring-editor-phone")
    assert page.watch.axe() == []

    # The dashboard counts what was built.
    page.goto(live_server + "/teach")
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("Web basics for beginners")
    expect(row.locator("[data-count=blocks]")).to_have_text("5")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.watch.shot("authoring-dashboard")
    assert page.watch.axe() == []
    # The one refused "Add block" above answered 422 on purpose; Chromium logs every 4xx.
    page.watch.errors = [e for e in page.watch.errors if "status of 422" not in e]
    page.watch.assert_clean()


def test_drag_and_drop_saves_the_order_and_a_stale_one_is_refused(live_server, page, app):
    from sqlalchemy import select

    from tests.conftest import make_course
    from webapp.extensions import db
    from webapp.models import ContentBlock, Section
    from webapp.services import blocks as block_svc

    teacher = make_user("teacher", email="dragger@example.com")
    course = make_course(teacher, title="Sortable", sections=2, blocks=2, types=("lesson",))
    log_in(page, live_server, teacher)
    page.goto(f"{live_server}/teach/courses/{course.id}")
    page.wait_for_function("() => window.Sortable !== undefined")

    def order():
        db.session.expire_all()
        return [
            (s.title, [b.title for b in s.blocks])
            for s in db.session.scalars(
                select(Section).where(Section.course_id == course.id).order_by(Section.position)
            )
        ]

    first = page.locator(".block", has_text="Block 1.1")
    target = page.locator(".block", has_text="Block 2.2")
    first.locator(".block-handle").drag_to(target)
    expect(page.locator("#status")).to_contain_text("moved to position")
    after = order()
    assert after[0] == ("Section 1", ["Block 1.2"])
    assert sorted(after[1][1]) == ["Block 1.1", "Block 2.1", "Block 2.2"]

    # Another tab adds a block: the order this page holds is stale and is refused whole.
    section = db.session.scalar(select(Section).where(Section.title == "Section 1"))
    block_svc.add_block(section, "Added elsewhere")
    before = order()
    page.locator(".block", has_text="Block 1.2").locator(".block-handle").drag_to(
        page.locator(".block", has_text="Block 2.1")
    )
    expect(page.locator("#status")).to_contain_text("Nothing was moved")
    expect(page.locator(".block-title", has_text="Added elsewhere")).to_be_visible()
    assert order() == before
    assert db.session.query(ContentBlock).count() == 5
    page.watch.errors = [e for e in page.watch.errors if "status of 409" not in e]
    page.watch.assert_clean()


def test_course_tabs_lead_from_the_editor_through_teaching_and_back(live_server, page, app):
    from tests.conftest import make_course
    from webapp.models import CompletedContentBlock, StudentCourse

    teacher = make_user("teacher", email="tabs@example.com", name="Tabby")
    student = make_user("student", email="learner@example.com", name="Lee")
    course = make_course(teacher, title="Tabs and the teaching of them", sections=2, blocks=5)
    quiz = next(b for s in course.sections for b in s.blocks if b.type == "quiz")
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=quiz.id))
    db.session.commit()
    log_in(page, live_server, teacher)
    editor_url = f"{live_server}/teach/courses/{course.id}"
    page.goto(editor_url)
    tabs = page.get_by_role("navigation", name=re.compile("^Course Tabs"))
    expect(tabs.get_by_role("link", name="Editor")).to_have_attribute("aria-current", "page")
    expect(tabs.get_by_role("link", name=re.compile("^To grade"))).to_contain_text("1")
    page.watch.shot("authoring-editor-tabs-desktop", full_page=False)
    assert page.watch.axe() == []
    page.set_viewport_size({"width": 390, "height": 844})
    page.watch.shot("authoring-editor-tabs-phone", full_page=False)
    assert page.watch.axe() == []
    # Every tab takes one click, and Editor brings the teacher back.
    for name, path in (
        ("Students", "/students"),
        (re.compile("^To grade"), "/grading"),
        ("Gradebook", "/gradebook"),
    ):
        page.goto(editor_url)
        tabs.get_by_role("link", name=name).click()
        page.wait_for_url(editor_url + path)
        expect(tabs.locator("[aria-current=page]")).not_to_have_text("Editor")
    tabs.get_by_role("link", name="Editor").click()
    page.wait_for_url(editor_url)
    expect(page.locator("#course-title")).to_contain_text("Tabs and the teaching of them")
    page.watch.assert_clean()


def test_a_request_in_flight_disables_its_button(live_server, page, app):
    """No double submits: while the answer is on its way the button cannot be pressed again."""
    from tests.conftest import make_course
    from webapp.models import Course

    teacher = make_user("teacher", email="impatient@example.com")
    course = make_course(teacher, title="Twice", sections=1, blocks=1, types=("lesson",))
    log_in(page, live_server, teacher)
    page.goto(f"{live_server}/teach/courses/{course.id}")
    page.wait_for_function("() => window.htmx !== undefined")

    held = []

    def hold_posts(route):
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.route("**/title", hold_posts)
    page.get_by_role("link", name="Edit course title").click()
    expect(page.locator("#course-edit-title")).to_be_focused()
    page.locator("#course-edit-title").fill("Twice, renamed")
    save = page.locator("#course-title").get_by_role("button", name="Save")
    save.click()
    expect(save).to_be_disabled()
    assert len(held) == 1
    held.pop().continue_()
    expect(page.locator("#course-title h1")).to_have_text("Twice, renamed")
    page.unroute("**/title")

    page.route("**/duplicate", lambda route: held.append(route))
    duplicate = page.get_by_role("button", name="Duplicate course")
    duplicate.click()
    expect(duplicate).to_be_disabled()
    duplicate.click(force=True)  # a disabled button sends nothing
    assert len(held) == 1
    held.pop().continue_()
    original = f"{live_server}/teach/courses/{course.id}"
    page.wait_for_url(lambda url: re.search(r"/teach/courses/\d+$", url) and url != original)
    db.session.expire_all()
    assert db.session.query(Course).count() == 2
    page.watch.assert_clean()


def test_every_action_works_without_javascript(live_server, browser, app):
    """The same editor with JavaScript off: plain forms and redirects all the way."""
    from sqlalchemy import select

    from webapp.models import ContentBlock, Course, Section

    teacher = make_user("teacher", email="nojs@example.com")
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        log_in(page, live_server, teacher)
        page.goto(live_server + "/teach/courses/new")
        page.get_by_label("Title").fill("Offline course")
        page.get_by_role("button", name="Create draft").click()
        page.wait_for_url(re.compile(r".*/teach/courses/\d+$"))
        course = db.session.scalar(select(Course))
        editor = f"{live_server}/teach/courses/{course.id}"

        # Title in place: the Edit link opens the form on the editor; errors sit by the field.
        page.get_by_role("link", name="Edit course title").click()
        page.locator("#course-edit-title").fill("   ")
        page.locator("#course-title").get_by_role("button", name="Save").click()
        expect(page.locator("#course-title")).to_contain_text("Give it a title.")
        page.locator("#course-edit-title").fill("Offline course, renamed")
        page.locator("#course-title").get_by_role("button", name="Save").click()
        expect(page.locator("#course-title h1")).to_have_text("Offline course, renamed")

        for title in ("First", "Second"):
            page.get_by_label("Section title").fill(title)
            page.get_by_role("button", name="Add section").click()
            expect(page.locator(".section-title", has_text=title)).to_be_visible()
        first = page.locator(".section").nth(0)
        form = first.locator("form.add-block")
        form.get_by_label("New block title").fill("Clip")
        form.get_by_label("Type").select_option("video")
        form.get_by_role("button", name="Add block").click()
        expect(page.get_by_text("A URL is required for videos and links.")).to_be_visible()
        add_block(page, page.locator(".section").nth(0), "Clip", "video", "https://v.example/1")
        add_block(page, page.locator(".section").nth(0), "Notes", "lesson")

        # The block editor, its Preview (a new tab) and Save.
        page.get_by_role("link", name="Edit block Notes").click()
        block_form = page.locator("form.block-form")
        block_form.get_by_label("Content").fill("Some **bold** [x](javascript:alert(1))")
        with context.expect_page() as preview:
            block_form.get_by_role("button", name="Preview").click()
        expect(preview.value.locator(".prose strong")).to_have_text("bold")
        expect(preview.value.locator(".prose a")).to_have_count(0)
        preview.value.close()
        block_form.get_by_role("button", name="Save block").click()
        page.wait_for_url(editor + "#block-*")
        assert "**bold**" in db.session.scalar(
            select(ContentBlock.content).where(ContentBlock.title == "Notes")
        )

        # Move up, move to the other section, collapse and expand.
        page.locator(".block", has_text="Notes").locator("details.menu > summary").click()
        page.get_by_role("button", name="↑ Move up").click()
        page.wait_for_url(editor + "#block-*")
        expect(page.locator(".section").nth(0).locator(".block-title").first).to_have_text("Notes")
        page.locator(".block", has_text="Clip").locator("details.menu > summary").click()
        page.get_by_role("link", name="Move to section…").click()
        page.get_by_label("Move “Clip” to the end of").select_option(label="2. Second")
        page.get_by_role("button", name="Move", exact=True).click()
        expect(page.locator(".section").nth(1).locator(".block-title")).to_have_text(["Clip"])
        page.get_by_role("button", name="Collapse section First").click()
        expect(page.get_by_role("button", name="Expand section First")).to_be_visible()
        page.get_by_role("button", name="Expand section First").click()

        page.get_by_role("button", name="Publish").click()
        expect(page.locator("#publish .badge")).to_have_text("Published")

        # Delete a block and a section, each after its confirmation.
        page.locator(".block", has_text="Notes").locator("details.menu > summary").click()
        page.locator("#outline summary", has_text="Delete…").first.click()
        page.get_by_role("button", name="Delete block").click()
        expect(page.locator(".block-title", has_text="Notes")).to_have_count(0)
        second = page.locator(".section", has_text="Second")
        second.locator(".section-head details.menu > summary").click()
        second.locator("summary", has_text="Delete section…").click()
        page.get_by_role("button", name="Delete section").click()
        expect(page.locator(".section")).to_have_count(1)
        assert db.session.query(Section).count() == 1
        assert db.session.query(ContentBlock).count() == 0

        page.get_by_role("button", name="Duplicate course").click()
        page.wait_for_url(re.compile(r".*/teach/courses/\d+$"))
        assert page.url != editor
        page.locator("summary", has_text="Delete course…").click()
        page.get_by_role("button", name="Delete course for good").click()
        page.wait_for_url(live_server + "/teach")
        db.session.expire_all()
        assert [c.title for c in db.session.scalars(select(Course))] == ["Offline course, renamed"]
    finally:
        context.close()
