"""The look (docs/design.md): design tokens, the light/dark theme and its toggle, the course
cards (cover, teacher, summary, blocks, estimated length, progress), the enrolled filter."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.cards import course_cards
from tests.conftest import login_as, make_course
from webapp.covers import cover
from webapp.extensions import db
from webapp.models import CompletedContentBlock, ContentBlock, Section, StudentCourse, User
from webapp.services import estimates, progress
from webapp.services.catalogue import PER_PAGE

ROOT = Path(__file__).resolve().parents[1]
APP_CSS = (ROOT / "static" / "css" / "app.css").read_text()
HX_RESULTS = {"HX-Request": "true", "HX-Target": "catalogue-results"}


def _blocks(course) -> list[ContentBlock]:
    return list(
        db.session.scalars(
            select(ContentBlock)
            .join(Section)
            .where(Section.course_id == course.id)
            .order_by(Section.position, ContentBlock.position)
        )
    )


def _enrol(student, course, done: int = 0) -> None:
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    for block in _blocks(course)[:done]:
        db.session.add(
            CompletedContentBlock(
                student_id=student.id, content_block_id=block.id, feedback="", grader_comment=""
            )
        )
    db.session.commit()


# --- tokens ------------------------------------------------------------------------------------


def _block(css: str, selector: str) -> dict[str, str]:
    start = css.index(selector + " {") + len(selector) + 2
    body = css[start : css.index("}", start)]
    return dict(re.findall(r"(--[\w-]+):\s*([^;]+);", body))


def test_the_dark_palette_is_the_same_chosen_or_from_the_system():
    chosen = _block(APP_CSS, ':root[data-theme="dark"]')
    system = _block(APP_CSS, ':root:not([data-theme="light"])')
    assert chosen == system and len(chosen) > 20
    light = _block(APP_CSS, ":root")
    assert set(chosen) <= set(light)  # the dark theme only changes colours the light one has


def test_every_custom_property_a_stylesheet_reads_is_a_token():
    defined = set(_block(APP_CSS, ":root"))
    for sheet in (ROOT / "static" / "css").glob("*.css"):
        used = set(re.findall(r"var\((--[\w-]+)", sheet.read_text()))
        assert used <= defined, (sheet.name, used - defined)
    for token in ("--focus", "--accent-2", "--step-0", "--space-4", "--width-prose"):
        assert token in defined


# --- the theme -----------------------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.theme: str | None = None
        self.pressed: dict[str, str] = {}
        self.next: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.theme = a.get("data-theme")
        if tag == "button" and a.get("name") == "theme":
            self.pressed[a["value"]] = a["aria-pressed"]
        if tag == "input" and a.get("name") == "next":
            self.next = a["value"]


def _page(client, url="/courses") -> _Page:
    response = client.get(url)
    assert response.status_code == 200
    parser = _Page()
    parser.feed(response.get_data(as_text=True))
    return parser


def test_a_visitor_follows_the_system_until_choosing(client):
    page = _page(client, "/courses?q=x")
    assert page.theme is None  # no attribute: prefers-color-scheme decides, in CSS
    assert page.pressed == {"system": "true", "light": "false", "dark": "false"}
    assert page.next == "/courses?q=x"
    response = client.post("/theme", data={"theme": "dark", "next": page.next})
    assert response.status_code == 303 and response.headers["Location"] == "/courses?q=x"
    cookie = client.get_cookie("theme")
    assert cookie.value == "dark" and cookie.http_only and cookie.same_site == "Lax"
    page = _page(client)
    assert page.theme == "dark" and page.pressed["dark"] == "true"
    client.post("/theme", data={"theme": "system"})
    assert _page(client).theme is None


def test_a_signed_in_person_keeps_the_theme_on_the_account(client, student):
    login_as(client, student)
    assert client.post("/theme", data={"theme": "light"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(User, student.id).theme == "light"
    client.delete_cookie("theme")  # another browser: the account decides
    assert _page(client, "/learn").theme == "light"


@pytest.mark.parametrize("value", ["", "blue", "DARK", "dark "])
def test_an_unknown_theme_is_refused(client, student, value):
    login_as(client, student)
    assert client.post("/theme", data={"theme": value}).status_code == 400
    db.session.expire_all()
    assert db.session.get(User, student.id).theme == "system"


def test_a_forged_cookie_is_ignored(client):
    client.set_cookie("theme", '"><script>')
    assert _page(client).theme is None


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil"])
def test_the_toggle_never_redirects_off_site(client, target):
    response = client.post("/theme", data={"theme": "dark", "next": target})
    assert response.status_code == 303 and response.headers["Location"] == "/"


# --- estimated length -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "label"),
    [
        (0, "No content yet"),
        (2, "About 5 min"),
        (21, "About 25 min"),
        (60, "About 1 h"),
        (64, "About 1 h"),
        (125, "About 2 h 10 min"),
    ],
)
def test_length_labels(minutes, label):
    assert estimates.length_label(minutes) == label


def test_the_length_rule_in_sql_is_the_documented_one(app, teacher):
    course = make_course(teacher, sections=1, blocks=5)  # lesson, quiz, assignment, video, link
    lesson = _blocks(course)[0]
    lesson.content = "x" * 6001  # 5.0008 minutes of reading: 6
    db.session.commit()
    total = db.session.scalar(estimates.course_minutes(course.id))
    assert estimates.lesson_minutes(6001) == 6 and estimates.lesson_minutes(10) == 2
    assert total == 6 + 10 + 30 + 10 + 5
    lesson.content = ""
    db.session.commit()
    assert db.session.scalar(estimates.course_minutes(course.id)) == 2 + 10 + 30 + 10 + 5


# --- covers -----------------------------------------------------------------------------------


def test_a_cover_is_drawn_from_the_title_alone():
    assert cover("Python basics") == cover("Python basics")
    assert cover("Python basics") != cover("Cooking")
    hostile = cover('"><script>alert(1)</script>')
    assert "script" not in hostile and "alert" not in hostile
    assert 'aria-hidden="true"' in hostile and "style=" not in hostile
    assert re.fullmatch(r"<svg [^<]*>(<[^<>]*>)*</svg>", str(hostile))


# --- cards ------------------------------------------------------------------------------------


def test_catalogue_cards_show_the_course_and_my_progress(client, student, teacher):
    course = make_course(teacher, title="Python basics", sections=2, blocks=3)
    other = make_course(teacher, title="Cooking", sections=1, blocks=1)
    _enrol(student, course, done=2)
    login_as(client, student)
    cards = {c["title"]: c for c in course_cards(client.get("/courses").get_data(as_text=True))}
    mine = cards["Python basics"]
    assert mine["teacher"] == teacher.name and mine["summary"] == "About it" and mine["cover"]
    minutes = db.session.scalar(estimates.course_minutes(course.id))
    assert mine["facts"] == ["6 blocks", estimates.length_label(minutes)]
    figures = db.session.scalar(progress.done_count(course.id, student.id))
    assert (mine["value"], mine["max"]) == (figures, 6) == (2, 6)
    assert mine["progress"].startswith(f"{progress.percent(2, 6)}%")
    assert mine["enrolled"] and mine["badge"] == "Enrolled"
    assert not cards[other.title]["enrolled"] and "value" not in cards[other.title]
    assert cards[other.title]["facts"][0] == "1 block"


def test_my_learning_cards(client, student, teacher):
    course = make_course(teacher, title="Python basics", sections=1, blocks=2)
    _enrol(student, course, done=2)
    db.session.get(StudentCourse, 1).completed = True
    db.session.commit()
    login_as(client, student)
    [card] = course_cards(client.get("/learn").get_data(as_text=True))
    assert card["badge"] == "Completed" and (card["value"], card["max"]) == (2, 2)
    assert card["teacher"] == teacher.name and card["facts"][0] == "2 blocks"
    assert f"/courses/{course.id}" in card["links"]


@pytest.mark.parametrize(
    ("show", "titles", "count"),
    [
        ("all", {"Mine", "Theirs"}, "2 courses"),
        ("enrolled", {"Mine"}, "1 course you are enrolled in"),
        ("not-enrolled", {"Theirs"}, "1 course you are not enrolled in"),
        ("nonsense", {"Mine", "Theirs"}, "2 courses"),
    ],
)
def test_the_enrolled_filter(client, student, teacher, show, titles, count):
    _enrol(student, make_course(teacher, title="Mine"))
    make_course(teacher, title="Theirs")
    login_as(client, student)
    for headers in ({}, HX_RESULTS):  # the page without JavaScript, the fragment with htmx
        body = client.get(f"/courses?show={show}", headers=headers).get_data(as_text=True)
        assert {c["title"] for c in course_cards(body)} == titles
        assert count in body
    page = client.get(f"/courses?show={show}").get_data(as_text=True)
    checked = re.search(r'name="show" value="([\w-]+)" checked', page)
    assert checked and checked.group(1) == (show if show != "nonsense" else "all")


def test_visitors_and_teachers_have_no_filter(client, student, teacher):
    _enrol(student, make_course(teacher, title="Mine"))
    make_course(teacher, title="Theirs")
    for who in (None, teacher):
        if who:
            login_as(client, who)
        body = client.get("/courses?show=enrolled").get_data(as_text=True)
        assert len(course_cards(body)) == 2 and 'name="show"' not in body


def test_paging_keeps_the_filter(client, student, teacher):
    for n in range(PER_PAGE + 2):
        course = make_course(teacher, title=f"Course {n:02d}", sections=1, blocks=1)
        _enrol(student, course)
    login_as(client, student)
    body = client.get("/courses?show=enrolled").get_data(as_text=True)
    assert "/courses?show=enrolled&amp;page=2" in body


def test_catalogue_card_statements_do_not_grow_with_courses_or_filter(
    client, student, teacher, count_queries
):
    _enrol(student, make_course(teacher, title="Mine", sections=1, blocks=1))
    make_course(teacher, title="Theirs", sections=1, blocks=1)
    login_as(client, student)
    counts = {}
    for size in ("small", "large"):
        if size == "large":
            for i in range(30):
                c = make_course(teacher, title=f"More {i:02d}", sections=3, blocks=4)
                if i % 2:
                    _enrol(student, c, done=i % 5)
        for show in ("all", "enrolled", "not-enrolled"):
            with count_queries() as q:
                assert client.get(f"/courses?show={show}").status_code == 200
            counts[size, show] = q.count
    assert len(set(counts.values())) == 1, counts
    assert counts["large", "all"] <= 4


def test_a_full_catalogue_page_of_cards_stays_small(client, student, teacher):
    """Twenty cards with their covers: the covers are inline SVG, so they weigh in the page."""
    import brotli

    for n in range(PER_PAGE):
        make_course(teacher, title=f"A course about topic number {n}", sections=1, blocks=1)
    login_as(client, student)
    response = client.get("/courses", headers={"Accept-Encoding": "br"})
    assert len(course_cards(brotli.decompress(response.get_data()).decode())) == PER_PAGE
    assert len(brotli.decompress(response.get_data())) < 50_000
    assert len(response.get_data()) < 8_000
    assert max(len(cover(f"Course {n}")) for n in range(500)) < 4_000
