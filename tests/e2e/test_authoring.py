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
    expect(page.locator("#status")).to_contain_text("Saved")
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

    # Reorder by keyboard: "What is HTML" moves up twice, focus staying on its Up button.
    lesson = first.locator(".block", has_text="What is HTML")
    lesson.get_by_role("button", name=re.compile("^↑ Up")).focus()
    page.keyboard.press("Enter")
    expect(first.locator(".block-title").first).to_have_text("What is HTML")
    lesson = first.locator(".block", has_text="What is HTML")
    expect(lesson.get_by_role("button", name=re.compile("^↑ Up"))).to_be_focused()
    # Down past the end of the section moves a block into the next one.
    video = page.locator(".section").nth(0).locator(".block", has_text="Reading list")
    video.get_by_role("button", name=re.compile("^↓ Down")).focus()
    page.keyboard.press("Enter")
    expect(page.locator(".section").nth(1).locator(".block-title").first).to_have_text(
        "Reading list"
    )

    # Preview Markdown while writing the lesson, then save it.
    block = page.locator(".block", has_text="What is HTML")
    block.get_by_role("link", name=re.compile("^Edit")).click()
    editor = page.locator(".block-form")
    expect(editor.get_by_label("Title")).to_be_focused()  # swapped in and settled
    expect(editor.get_by_label("URL")).to_be_hidden()  # a lesson has no URL
    editor.get_by_label("Content").fill("## Tags\n\nHTML is made of **elements**.")
    preview = editor.locator(".preview .prose")
    expect(preview.locator("strong")).to_have_text("elements")
    expect(preview.locator("h2")).to_have_text("Tags")
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
    intro.get_by_role("link", name=re.compile("^Move to")).click()
    chooser = page.get_by_label(re.compile("Move “Intro video” to the end of"))
    expect(chooser).to_be_focused()
    assert page.watch.axe() == []
    chooser.select_option(label="2. Going further")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.locator(".section").nth(1).locator(".block-title").last).to_have_text("Intro video")

    # Deleting asks first and says what would be lost.
    block = page.locator(".block", has_text="Check yourself")
    block.locator("summary").click()
    expect(block.locator(".confirm-body")).to_contain_text("0 student completions")
    assert page.watch.axe() == []
    block.locator("summary").click()  # closed again, nothing deleted

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
    expect(page.locator("#status")).to_contain_text("Order saved")
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
        page.get_by_role("button", name=re.compile("move block Notes up")).click()
        expect(page.locator(".section").nth(0).locator(".block-title").first).to_have_text("Notes")
        page.get_by_role("link", name="Move to… (block Clip)").click()
        page.get_by_label("Move “Clip” to the end of").select_option(label="2. Second")
        page.get_by_role("button", name="Move", exact=True).click()
        expect(page.locator(".section").nth(1).locator(".block-title")).to_have_text(["Clip"])
        page.get_by_role("button", name="Collapse section First").click()
        expect(page.get_by_role("button", name="Expand section First")).to_be_visible()
        page.get_by_role("button", name="Expand section First").click()

        page.get_by_role("button", name="Publish").click()
        expect(page.locator("#publish .badge")).to_have_text("Published")

        # Delete a block and a section, each after its confirmation.
        page.locator("summary", has_text="Delete… block Notes").click()
        page.get_by_role("button", name="Delete block").click()
        expect(page.locator(".block-title", has_text="Notes")).to_have_count(0)
        page.locator("summary", has_text="Delete… section Second").click()
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
