"""A NUL character anywhere a request carries text is refused once, before any view: 400.

PostgreSQL text cannot store NUL (0x00); without the one check in webapp/inputs.py every text
field and search answered 500 (``psycopg.DataError``). These tests send it to every route the
app has, in the query string and in every form field any form declares, signed in as each role.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from html.parser import HTMLParser

import pytest
from flask_wtf import FlaskForm
from wtforms.fields.core import UnboundField

import webapp
from webapp.extensions import db
from webapp.models import CompletedContentBlock, Course, StudentCourse, User, utcnow

from .conftest import login_as, make_course, make_user

NUL = "a\x00b"
MESSAGE = "cannot contain the NUL character"


def _form_field_names() -> set[str]:
    names = {"q", "confirm", "next", "order", "ids", "action"}
    for info in pkgutil.walk_packages(webapp.__path__, "webapp."):
        if not info.name.endswith(".forms"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, FlaskForm) and cls is not FlaskForm:
                names.update(n for n in dir(cls) if isinstance(getattr(cls, n), UnboundField))
    return names


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)


def _text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


@pytest.fixture
def world(app, teacher, student, admin):
    course = make_course(teacher, sections=1, blocks=2, types=("assignment",))
    section = course.sections[0]
    block = section.blocks[0]
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id, completed=False))
    done = CompletedContentBlock(
        student_id=student.id,
        content_block_id=block.id,
        url="https://example.com/work",
        feedback="",
        grader_comment="",
        completed_at=utcnow(),
        updated_at=utcnow(),
    )
    db.session.add(done)
    db.session.commit()
    return {
        "course_id": course.id,
        "section_id": section.id,
        "block_id": block.id,
        "completion_id": done.id,
        "student_id": student.id,
        "user_id": student.id,
        "people": {"teacher": teacher, "student": student, "admin": admin},
    }


def _urls(app, world, method: str) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or method not in rule.methods:
            continue
        values = dict(rule.defaults or {})
        for arg in rule.arguments - set(values):
            converter = rule._converters[arg]
            choices = getattr(converter, "items", None)  # <any(a, b):name>
            if choices:
                values[arg] = sorted(choices)[0]
            elif arg in world:
                values[arg] = world[arg]
            else:
                values[arg] = world["course_id"] if converter.regex == r"\d+" else "token"
        urls.append(rule.build(values, append_unknown=False)[1])
    assert len(urls) > 10
    return urls


def _assert_refused(response, what: str) -> None:
    assert response.status_code == 400, f"{what}: {response.status_code}"
    assert MESSAGE in _text(response.get_data(as_text=True)), what


@pytest.mark.parametrize("role", [None, "student", "teacher", "admin"])
def test_nul_in_any_query_string_is_a_400(app, client, world, role):
    if role:
        login_as(client, world["people"][role])
    for url in _urls(app, world, "GET"):
        _assert_refused(client.get(url, query_string={"q": NUL, "page": "1"}), url)
        _assert_refused(client.get(url, query_string={NUL: "x"}), f"{url} (key)")


@pytest.mark.parametrize("role", [None, "teacher"])
def test_nul_in_any_form_field_of_any_post_is_a_400(app, client, world, role):
    if role:
        login_as(client, world["people"][role])
    fields = _form_field_names()
    assert {"title", "description", "email", "password", "grade", "url"} <= fields
    for url in _urls(app, world, "POST"):
        for name in sorted(fields):
            _assert_refused(client.post(url, data={name: NUL}), f"{url} {name}")


def test_nul_in_a_json_body_is_a_400(app, client, world):
    login_as(client, world["people"]["teacher"])
    url = f"/teach/courses/{world['course_id']}/title"
    _assert_refused(client.post(url, json={"title": ["ok", {"k": NUL}]}), url)


def test_nul_is_refused_before_anything_is_written(app, client):
    response = client.post(
        "/signup",
        data={"name": NUL, "email": "nul@example.com", "password": "x" * 20, "role": "student"},
    )
    _assert_refused(response, "sign-up")
    assert db.session.query(User).filter_by(email="nul@example.com").count() == 0


def test_the_catalogue_search_with_nul_answers_400_and_a_normal_one_still_works(app, client):
    teacher = make_user("teacher")
    make_course(teacher, title="Chemistry")
    _assert_refused(client.get("/courses?q=a%00b"), "catalogue")
    response = client.get("/courses?q=chem")
    assert response.status_code == 200
    assert "Chemistry" in _text(response.get_data(as_text=True))


def test_htmx_requests_get_the_error_fragment(app, client, world):
    login_as(client, world["people"]["teacher"])
    response = client.post(
        f"/teach/courses/{world['course_id']}/title",
        data={"title": NUL},
        headers={"HX-Request": "true", "HX-Target": "course-title"},
    )
    _assert_refused(response, "htmx")
    assert "<html" not in response.get_data(as_text=True).lower()
    assert db.session.get(Course, world["course_id"]).title == "A course"
