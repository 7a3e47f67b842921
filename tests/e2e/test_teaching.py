"""The teacher's journey: clear the grading queue by keyboard, edit the gradebook, export CSV."""

from __future__ import annotations

import csv
import io
import re

from playwright.sync_api import expect

from tests.conftest import PASSWORD, make_course, make_user
from tests.e2e.conftest import PageWatch
from tests.test_teaching import complete, enrol, gradable_of
from webapp.extensions import db
from webapp.models import CompletedContentBlock, Role


def log_in(page, base: str, user) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("networkidle")


def settled(page) -> None:
    """Wait until htmx has settled the last swap (focus moves to data-autofocus then)."""
    page.wait_for_function("() => !document.querySelector('.htmx-settling, .htmx-request')")


def test_teacher_grades_by_keyboard_edits_gradebook_and_exports(live_server, page, context, app):
    teacher = make_user(Role.TEACHER, name="Tess Teacher", email="tess@example.com")
    course = make_course(teacher, title="Organic Chemistry", sections=2, blocks=5)
    gradable = gradable_of(course)
    names = ("Ada Lovelace", "Ben Okri", "Cy Twombly")
    students = []
    for i, name in enumerate(names):
        s = make_user(Role.STUDENT, name=name, email=f"s{i}@example.com")
        enrol(s, course)
        complete(
            s,
            gradable[i],
            minutes_ago=30 - i,
            url=f"https://example.com/{i}",
            feedback=f"My answer, take {i}",
        )
        students.append(s)

    log_in(page, live_server, teacher)
    # the dashboard counts the queue and leads to it
    page.goto(f"{live_server}/teach")
    to_grade = page.locator('td[data-count="to_grade"]')
    expect(to_grade).to_have_text("3 to grade in Organic Chemistry")
    to_grade.get_by_role("link").click()
    page.wait_for_url(f"**/teach/courses/{course.id}/grading")
    # a mark on the window: it is gone if the page ever reloads
    page.evaluate("() => { window.__noReload = 'still here' }")
    panel = page.locator("#grading-panel")
    expect(page.locator("#grading-count")).to_contain_text("3")
    expect(page.get_by_text("Keyboard shortcuts")).to_be_visible()
    page.watch.shot("teaching-grading-queue")
    page.set_viewport_size({"width": 390, "height": 844})
    page.watch.shot("teaching-grading-queue-phone")
    assert page.watch.axe() == []
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.watch.axe() == []

    # j/k move through the queue, and letters typed in a field stay in the field
    page.keyboard.press("j")
    expect(panel).to_contain_text("Ben Okri")
    settled(page)
    expect(page.locator("#panel-heading")).to_be_focused()  # focus moves on purpose
    page.keyboard.press("k")
    expect(panel).to_contain_text("Ada Lovelace")
    settled(page)
    expect(page.locator("#panel-heading")).to_be_focused()

    grades = {"Ada Lovelace": "91", "Ben Okri": "78", "Cy Twombly": "64"}
    for left, name in zip((2, 1, 0), names, strict=True):
        expect(panel.locator("h2 + .submitted")).to_contain_text(name)
        if name == names[0]:
            page.keyboard.press("g")  # first time: jump to the grade field
        expect(page.locator("#grade")).to_be_focused()
        page.keyboard.type(grades[name])
        page.keyboard.press("Tab")
        page.keyboard.type(f"Well done, {name.split()[0]} (jk)")
        page.keyboard.press("Tab")  # the first button: Save & next
        expect(page.get_by_role("button", name="Save & next")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("#grading-count")).to_contain_text(str(left))
    expect(panel).to_contain_text("Nothing to grade")
    expect(page.locator("#grading-queue")).to_contain_text("Nothing is waiting")
    # three saves, no reload: every submission swapped in and the tab count updated out of band
    assert page.evaluate("() => window.__noReload") == "still here"
    page.watch.shot("teaching-grading-done")
    assert page.watch.axe() == []
    # the dashboard reads the same count afresh: now 0
    page.get_by_role("link", name="Teach", exact=True).click()
    expect(page.locator('td[data-count="to_grade"]')).to_have_text("0")
    db.session.expire_all()
    saved = {
        c.student.name: (c.grade, c.grader_comment)
        for c in db.session.query(CompletedContentBlock).all()
    }
    assert saved == {n: (int(g), f"Well done, {n.split()[0]} (jk)") for n, g in grades.items()}

    # the gradebook: change Ben's grade in place
    page.goto(f"{live_server}/teach/courses/{course.id}/gradebook")
    ben = db.session.query(CompletedContentBlock).filter_by(student_id=students[1].id).one()
    cell = page.locator(f"#cell-{ben.id}")
    expect(cell).to_have_text("78")
    page.watch.shot("teaching-gradebook")
    assert page.watch.axe() == []
    cell.get_by_role("link").click()
    field = cell.get_by_label(re.compile("Grade for Ben Okri"))
    expect(field).to_be_focused()
    field.fill("101")
    field.press("Enter")
    expect(cell).to_contain_text("from 0 to 100")
    # Chromium logs the deliberate 422 as a failed resource; that one is expected.
    expected = [e for e in page.watch.errors if "status of 422" in e]
    assert len(expected) == 1
    page.watch.errors.remove(expected[0])
    page.watch.shot("teaching-gradebook-error")
    field = cell.get_by_label(re.compile("Grade for Ben Okri"))
    field.fill("88")
    field.press("Enter")
    expect(cell.get_by_role("link")).to_have_text("88")
    expect(cell.get_by_role("link")).to_be_focused()
    expect(page.locator(f"#avg-s{students[1].id}")).to_have_text("88.0")
    page.watch.shot("teaching-gradebook-edited")
    db.session.expire_all()
    assert db.session.get(CompletedContentBlock, ben.id).grade == 88

    # the export
    with page.expect_download() as info:
        page.get_by_role("link", name="Export gradebook (CSV)").click()
    download = info.value
    assert download.suggested_filename == f"course-{course.id}-gradebook.csv"
    text = open(download.path(), encoding="utf-8-sig").read()  # noqa: SIM115
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0][:2] == ["Student", "Email"]
    by_name = {r[0]: r for r in rows[1:]}
    assert "88" in by_name["Ben Okri"] and "91" in by_name["Ada Lovelace"]

    page.goto(f"{live_server}/teach/courses/{course.id}/students")
    expect(page.locator("#roster-table")).to_contain_text("Cy Twombly")
    page.watch.shot("teaching-roster")
    assert page.watch.axe() == []
    page.watch.assert_clean()

    # the student sees the grade and the comment on the block page
    context.clear_cookies()
    student_page = context.new_page()
    student_page.set_default_timeout(10_000)
    log_in(student_page, live_server, students[1])
    block = gradable[1]
    student_page.goto(f"{live_server}/courses/{course.id}/blocks/{block.id}")
    expect(student_page.locator("body")).to_contain_text("88")
    expect(student_page.locator("body")).to_contain_text("Well done, Ben (jk)")
    watch = PageWatch(student_page)
    watch.shot("teaching-student-sees-grade")
    watch.assert_clean()


def test_shortcut_legend_shows_only_where_the_shortcuts_work(live_server, browser, app):
    """Without JavaScript the letter keys do nothing, so their legend is not shown."""
    teacher = make_user(Role.TEACHER, email="tess@example.com")
    course = make_course(teacher, sections=1, blocks=2)
    for with_js in (True, False):
        context = browser.new_context(java_script_enabled=with_js)
        page = context.new_page()
        try:
            log_in(page, live_server, teacher)
            page.goto(f"{live_server}/teach/courses/{course.id}/grading")
            legend = page.get_by_role("heading", name="Keyboard shortcuts")
            if with_js:
                expect(legend).to_be_visible()
            else:
                expect(legend).to_be_hidden()
        finally:
            context.close()
