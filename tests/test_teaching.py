"""Teaching: access rules on every URL, the roster, enrolling by email and removing students."""

from __future__ import annotations

import datetime as dt
import json
import re
from html import unescape

import pytest
from sqlalchemy import func, insert, select, text

from tests.conftest import ON_REAL_SERVERS, login_as, make_course, make_user
from webapp.extensions import db
from webapp.models import (
    BlockType,
    CompletedContentBlock,
    ContentBlock,
    OutboxMessage,
    Role,
    Section,
    StudentCourse,
    User,
    utcnow,
)
from webapp.services import roster

HX = {"HX-Request": "true"}


def analyze() -> None:
    """After a bulk insert: fresh planner statistics, as autovacuum keeps them in production."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))


def blocks_of(course) -> list[ContentBlock]:
    return list(
        db.session.scalars(
            select(ContentBlock)
            .join(Section)
            .where(Section.course_id == course.id)
            .order_by(Section.position, ContentBlock.position)
        )
    )


def gradable_of(course) -> list[ContentBlock]:
    return [b for b in blocks_of(course) if b.is_gradable]


def enrol(student, course, when=None) -> StudentCourse:
    row = StudentCourse(student_id=student.id, course_id=course.id, enrolled_at=when or utcnow())
    db.session.add(row)
    db.session.commit()
    return row


def complete(student, block, *, minutes_ago=60, url=None, feedback="", grade=None, grader=None):
    when = utcnow() - dt.timedelta(minutes=minutes_ago)
    row = CompletedContentBlock(
        student_id=student.id,
        content_block_id=block.id,
        url=url,
        feedback=feedback,
        completed_at=when,
        updated_at=when,
        grade=grade,
        graded_at=when + dt.timedelta(minutes=1) if grade is not None else None,
        graded_by_id=grader.id if grader is not None else None,
    )
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def course(teacher):
    # two sections × five blocks: every type twice (quiz and assignment are gradable)
    return make_course(teacher, title="Chemistry", sections=2, blocks=5)


@pytest.fixture
def setup(course, teacher, student):
    enrol(student, course)
    sub = complete(student, gradable_of(course)[0], url="https://example.com/work")
    return {"course": course, "teacher": teacher, "student": student, "sub": sub}


# --- access: only the owner, for every page, fragment and export -------------------------------


def _urls(s) -> list[tuple[str, str, dict]]:
    c, sub, st = s["course"].id, s["sub"].id, s["student"].id
    base = f"/teach/courses/{c}"
    grade = {"grade": "70", "comment": "x", "version": "1", "action": "save"}
    return [
        ("GET", f"{base}/students", {}),
        ("POST", f"{base}/students", {"emails": "someone@example.com"}),
        ("POST", f"{base}/students/{st}/remove", {}),
        ("GET", f"{base}/students/{st}", {}),
        ("GET", f"{base}/grading", {}),
        ("GET", f"{base}/grading/{sub}", {}),
        ("POST", f"{base}/grading/{sub}", grade),
        ("GET", f"{base}/gradebook", {}),
        ("GET", f"{base}/gradebook/cells/{sub}", {}),
        ("GET", f"{base}/gradebook/cells/{sub}/view", {}),
        (
            "POST",
            f"{base}/gradebook/cells/{sub}",
            {f"c{sub}-grade": "70", f"c{sub}-version": "1"},
        ),
        ("GET", f"{base}/gradebook.csv", {}),
        ("GET", f"{base}/progress.csv", {}),
        ("GET", f"{base}/grading/{sub}/next", {}),
        ("GET", f"{base}/grading/{sub}/previous", {}),
    ]


URL_COUNT = 15


def _state():
    return (
        db.session.scalar(select(func.count()).select_from(StudentCourse)),
        db.session.scalars(select(CompletedContentBlock.grade)).all(),
        db.session.scalar(select(func.count()).select_from(OutboxMessage)),
    )


@pytest.mark.parametrize("who", ["anonymous", "student", "other_teacher", "admin"])
@pytest.mark.parametrize("index", range(URL_COUNT))
@pytest.mark.parametrize("hx", [False, True], ids=["plain", "htmx"])
def test_only_the_owner_reaches_teaching_urls(client, setup, who, index, hx):
    method, url, data = _urls(setup)[index]
    if who == "student":
        login_as(client, setup["student"])
    elif who != "anonymous":
        login_as(client, make_user(Role.TEACHER if who == "other_teacher" else Role.ADMIN))
    before = _state()
    headers = {**HX, "HX-Target": "grading-panel"} if hx else {}
    resp = client.open(url, method=method, data=data, headers=headers)
    if who == "anonymous":
        if hx:
            assert resp.status_code == 204
            assert "/login" in resp.headers["HX-Redirect"]
        else:
            assert resp.status_code in (302, 303)
            assert "/login" in resp.headers["Location"]
    else:
        assert resp.status_code == 404
        assert "Chemistry" not in resp.get_data(as_text=True)
    assert _state() == before


@pytest.mark.parametrize("index", range(URL_COUNT))
def test_a_teacher_demoted_to_student_reaches_no_teaching_url(client, setup, index):
    method, url, data = _urls(setup)[index]
    owner = setup["teacher"]
    owner.role = Role.STUDENT
    db.session.commit()
    login_as(client, owner)
    before = _state()
    resp = client.open(url, method=method, data=data)
    assert resp.status_code == 404
    assert "Chemistry" not in resp.get_data(as_text=True)
    assert _state() == before


@pytest.mark.parametrize("index", range(URL_COUNT))
def test_missing_course_is_404_for_a_teacher(client, setup, index):
    method, url, data = _urls(setup)[index]
    login_as(client, setup["teacher"])
    missing = url.replace(f"/courses/{setup['course'].id}/", "/courses/999999/")
    assert client.open(missing, method=method, data=data).status_code == 404


@pytest.mark.parametrize("bad", ["abc", "-1", "99999999999", "0"])
@pytest.mark.parametrize("index", [2, 3, 5, 6, 8, 9, 10, 13, 14])  # with a student/submission id
def test_ids_that_are_not_row_ids_are_404_not_500(client, setup, index, bad):
    method, url, data = _urls(setup)[index]
    sub, st = setup["sub"].id, setup["student"].id
    base = f"/teach/courses/{setup['course'].id}"
    url = url.replace(f"{base}/students/{st}", f"{base}/students/{bad}")
    url = url.replace(f"/grading/{sub}", f"/grading/{bad}")
    url = url.replace(f"/cells/{sub}", f"/cells/{bad}")
    assert bad in url
    login_as(client, setup["teacher"])
    before = _state()
    resp = client.open(url, method=method, data=data, headers={**HX, "HX-Target": "grading-panel"})
    assert resp.status_code == 404
    assert _state() == before


def test_grading_services_refuse_ids_beyond_the_integer_range(setup):
    from webapp.services import NotFound, access, gradebook, grading, roster

    course = setup["course"]
    calls = (
        access.completion_for_grader,
        gradebook.gradebook_cell,
        roster.remove_student,
        access.student_for_teacher,
        roster.student_record,
        lambda c, i: grading.grade(c, i, setup["teacher"], 70, None, "1"),
        grading.submission,
        lambda c, i: grading.neighbour(c, i, "next"),
    )
    for bad in (99999999999, -1, 0, "abc", None):
        for call in calls:
            with pytest.raises(NotFound):
                call(course, bad)


def test_a_completion_of_another_course_is_404(client, setup, teacher, student):
    other = make_course(teacher, title="Other", sections=1, blocks=2, types=("quiz",))
    enrol(student, other)
    foreign = complete(student, blocks_of(other)[0])
    login_as(client, teacher)
    base = f"/teach/courses/{setup['course'].id}"
    assert client.get(f"{base}/grading/{foreign.id}").status_code == 404
    assert client.get(f"{base}/gradebook/cells/{foreign.id}").status_code == 404


def test_an_ungradable_completion_is_not_a_submission(client, setup, teacher, student):
    lesson = next(b for b in blocks_of(setup["course"]) if b.type == BlockType.LESSON)
    done = complete(student, lesson)
    login_as(client, teacher)
    resp = client.get(f"/teach/courses/{setup['course'].id}/grading/{done.id}")
    assert resp.status_code == 404


# --- roster ------------------------------------------------------------------------------------


def test_roster_lists_students_with_progress_and_tabs(client, setup, teacher, student):
    course = setup["course"]
    complete(student, blocks_of(course)[0], minutes_ago=5)
    login_as(client, teacher)
    resp = client.get(f"/teach/courses/{course.id}/students")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert student.name in html and student.email in html
    assert "20% · 2 of 10 blocks" in html
    assert 'id="grading-count"' in html
    assert f"/teach/courses/{course.id}/gradebook" in html
    assert 'aria-current="page"' in html
    assert "no-store" in resp.headers["Cache-Control"]


def test_roster_fragment_search_and_sort(client, course, teacher):
    for name in ("Zoe Zed", "Adam Ant", "Mia Moss"):
        enrol(make_user(Role.STUDENT, name=name), course)
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/students"
    resp = client.get(url + "?q=mo", headers={**HX, "HX-Target": "roster-table"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert html.lstrip().startswith('<div id="roster-table"')
    assert "<html" not in html
    assert "Mia Moss" in html and "Zoe Zed" not in html
    assert "HX-Target" in resp.headers["Vary"]
    resp = client.get(url + "?sort=name&order=desc", headers={**HX, "HX-Target": "roster-table"})
    html = resp.get_data(as_text=True)
    assert html.index("Zoe Zed") < html.index("Mia Moss") < html.index("Adam Ant")
    assert 'aria-sort="descending"' in html
    # a search with LIKE wildcards matches them literally
    resp = client.get(url + "?q=%25", headers={**HX, "HX-Target": "roster-table"})
    assert "No enrolled student matches" in resp.get_data(as_text=True)


def test_roster_sorts_by_progress_and_activity(client, course, teacher):
    a = make_user(Role.STUDENT, name="A Busy")
    b = make_user(Role.STUDENT, name="B Idle")
    enrol(a, course)
    enrol(b, course)
    for block in blocks_of(course)[:3]:
        complete(a, block)
    login_as(client, teacher)
    html = client.get(f"/teach/courses/{course.id}/students?sort=progress&order=desc").text
    assert html.index("A Busy") < html.index("B Idle")
    html = client.get(f"/teach/courses/{course.id}/students?sort=activity&order=asc").text
    assert html.index("A Busy") < html.index("B Idle")  # never-active students last


def enrol_many(course, n: int, tag: str, name: str) -> list[int]:
    """``n`` enrolled active students named ``name.format(i)``, emails ``{tag}{i}@…``: their ids."""
    rows = [
        {
            "email": f"{tag}{i:05}@example.com",
            "name": name.format(i),
            "role": "student",
            "is_active": True,
            "session_epoch": 0,
        }
        for i in range(n)
    ]
    db.session.execute(insert(User), rows)
    ids = db.session.scalars(select(User.id).where(User.email.like(f"{tag}%@example.com"))).all()
    db.session.execute(
        insert(StudentCourse), [{"student_id": i, "course_id": course.id} for i in ids]
    )
    db.session.commit()
    return ids


def test_roster_paginates(client, course, teacher):
    enrol_many(course, 120, "s", "Student {:03}")
    login_as(client, teacher)
    html = client.get(f"/teach/courses/{course.id}/students?page=3").text
    assert "Page 3 of 3" in html
    assert "Student 100" in html and "Student 099" not in html
    assert "120 students" in html
    assert client.get(f"/teach/courses/{course.id}/students?page=abc").status_code == 200
    # Pages out of range show the nearest page there is.
    for page, shown in (("99", 3), ("0", 1), ("-5", 1), ("abc", 1)):
        html = client.get(f"/teach/courses/{course.id}/students?page={page}").text
        assert f"Page {shown} of 3" in html, page
    assert "Student 100" in client.get(f"/teach/courses/{course.id}/students?page=99").text


def test_roster_search_matches_wildcards_and_backslashes_literally(client, course, teacher):
    for name in ("Ann_Lee", "AnnXLee", "Bo%Ek", "Bo\\Ek", "BoZZEk"):
        enrol(make_user(Role.STUDENT, name=name), course)
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/students"

    def found(q: str) -> set[str]:
        html = client.get(url, query_string={"q": q}, headers={**HX, "HX-Target": "roster-table"})
        return set(re.findall(r'/students/\d+">([^<]+)</a>', html.text))

    assert found("n_l") == {"Ann_Lee"}
    assert found("o%e") == {"Bo%Ek"}
    assert found("o\\e") == {"Bo\\Ek"}
    assert found("ANNX") == {"AnnXLee"}  # case does not matter


def test_roster_query_budget_does_not_grow(client, course, teacher, count_queries):
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/students"

    def add(n):
        for _ in range(n):
            s = make_user(Role.STUDENT)
            enrol(s, course)
            complete(s, blocks_of(course)[0])

    def counts() -> list[int]:
        found = []
        for query in ("", "?sort=progress&order=desc", "?sort=activity&page=2", "?q=example"):
            with count_queries() as counted:
                assert client.get(url + query).status_code == 200
            found.append(counted.count)
        return found

    add(2)
    small = counts()
    add(30)
    big = counts()
    assert big == small and max(small) <= 12


def test_roster_of_5000_students_is_fast(client, course, teacher, count_queries):

    ids = enrol_many(course, 5000, "bulk", "Bulk {:05}")
    block = blocks_of(course)[0]
    now = utcnow()
    db.session.execute(
        insert(CompletedContentBlock),
        [
            {"student_id": i, "content_block_id": block.id, "completed_at": now, "updated_at": now}
            for i in ids[::2]
        ],
    )
    db.session.commit()
    analyze()
    login_as(client, teacher)
    queries = (
        "",
        "?sort=progress&order=desc&page=60",
        "?sort=activity&page=100",
        "?sort=enrolled&order=desc&page=2",
        "?q=bulk 049",
        "?q=BULK&sort=progress&page=7",
    )
    for query in queries:
        with count_queries() as counted:
            resp = client.get(f"/teach/courses/{course.id}/students{query}")
        assert resp.status_code == 200
        # the same budget as with a handful of students (test_roster_query_budget_does_not_grow)
        assert counted.count <= 12, (query, counted.count)
    fragment = client.get(
        f"/teach/courses/{course.id}/students?sort=progress&page=60",
        headers={"HX-Request": "true", "HX-Target": "roster-table"},
    )
    assert fragment.status_code == 200 and "Bulk" in fragment.text
    assert "5000 students" in client.get(f"/teach/courses/{course.id}/students").text


# --- enrolling and removing --------------------------------------------------------------------


def test_enrol_by_pasting_addresses_reports_one_line_each(client, course, teacher, student):
    make_user(Role.STUDENT, email="fresh@example.com")
    make_user(Role.STUDENT, email="asleep@example.com", active=False)
    make_user(Role.TEACHER, email="prof@example.com")
    enrol(student, course)
    login_as(client, teacher)
    text = (
        f"FRESH@example.com, {student.email}\nasleep@example.com; prof@example.com "
        "nobody@example.com not-an-address fresh@example.com"
    )
    resp = client.post(
        f"/teach/courses/{course.id}/students",
        data={"emails": text},
        headers={**HX, "HX-Target": "enrol"},
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert html.lstrip().startswith('<section id="enrol"')
    lines = [
        ("fresh@example.com", "enrolled"),
        (student.email, "already enrolled"),
        ("asleep@example.com", "enrolled (their account is not activated yet)"),
        (
            "prof@example.com",
            "a teacher's account: only student accounts can be enrolled in a course",
        ),
        ("nobody@example.com", roster.INVITED),
        ("not-an-address", "not an email address"),
    ]
    for address, result in lines:
        assert f'<span class="address">{address}</span>: {result}</li>' in unescape(html)
    assert html.count('<span class="address">') == 6  # the repeated address is reported once
    assert 'id="roster-table" hx-swap-oob="true"' in html  # the roster updates too
    assert json.loads(resp.headers["HX-Trigger"])["announce"].startswith(
        f"3 students enrolled in {course.title}; "
    )
    enrolled = db.session.scalars(
        select(User.email)
        .join(StudentCourse, StudentCourse.student_id == User.id)
        .where(StudentCourse.course_id == course.id)
    ).all()
    assert sorted(enrolled) == sorted(
        [student.email, "fresh@example.com", "asleep@example.com", "nobody@example.com"]
    )


def test_enrol_without_htmx_redirects_with_messages(client, course, teacher):
    make_user(Role.STUDENT, email="plain@example.com")
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/students"
    resp = client.post(url, data={"emails": "plain@example.com ghost@example.com"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(url)
    html = client.get(url).text
    assert "plain@example.com: enrolled" in html
    assert "ghost@example.com: invited" in html


@pytest.mark.parametrize("emails", ["", "   ", ",;"])
def test_enrol_with_nothing_is_refused_next_to_the_field(client, course, teacher, emails):
    login_as(client, teacher)
    resp = client.post(
        f"/teach/courses/{course.id}/students",
        data={"emails": emails},
        headers={**HX, "HX-Target": "enrol"},
    )
    assert resp.status_code == 422
    assert 'id="emails-error"' in resp.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(StudentCourse)) == 0


def _addresses(n: int, start: int = 0) -> str:
    return "\n".join(f"probe{i}@example.com" for i in range(start, start + n))


def test_enrol_refuses_more_than_200_addresses_at_once(client, course, teacher):
    make_user(Role.STUDENT, email="probe0@example.com")
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/students"
    resp = client.post(url, data={"emails": _addresses(201)}, headers={**HX, "HX-Target": "enrol"})
    assert resp.status_code == 422
    assert "At most 200 addresses at a time (this paste has 201)" in resp.text
    assert db.session.scalar(select(func.count()).select_from(StudentCourse)) == 0
    resp = client.post(url, data={"emails": _addresses(200)}, headers={**HX, "HX-Target": "enrol"})
    # one student enrolled, 199 addresses without an account invited (and enrolled)
    announced = json.loads(resp.headers["HX-Trigger"])["announce"]
    assert resp.status_code == 200 and announced.startswith("200 students enrolled in")
    assert resp.text.count(roster.INVITED) == 199


def test_enrol_budget_counts_addresses_per_teacher(client, course, teacher, other_teacher):
    """500 addresses an hour per teacher, whatever the course; refused pastes cost nothing."""
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/students"
    hx = {**HX, "HX-Target": "enrol"}
    assert client.post(url, data={"emails": _addresses(201)}, headers=hx).status_code == 422
    other = make_course(teacher, title="Physics", sections=1, blocks=1)
    for n, start, target in ((200, 0, url), (200, 200, url), (99, 400, other.id)):
        target = target if isinstance(target, str) else f"/teach/courses/{target}/students"
        resp = client.post(target, data={"emails": _addresses(n, start)}, headers=hx)
        assert resp.status_code == 200, resp.status_code
    assert client.post(url, data={"emails": _addresses(2, 499)}, headers=hx).status_code == 429
    assert client.post(url, data={"emails": "last@example.com"}).status_code == 303  # the 500th
    make_user(Role.STUDENT, email="late@example.com")
    resp = client.post(url, data={"emails": "late@example.com"}, headers=hx)
    assert resp.status_code == 429 and "Retry-After" in resp.headers
    late = db.session.scalar(select(User.id).where(User.email == "late@example.com"))
    refused = (
        select(func.count()).select_from(StudentCourse).where(StudentCourse.student_id == late)
    )
    assert db.session.scalar(refused) == 0
    # Another teacher has a budget of their own.
    theirs = make_course(other_teacher, title="Biology", sections=1, blocks=1)
    login_as(client, other_teacher)
    resp = client.post(
        f"/teach/courses/{theirs.id}/students", data={"emails": "late@example.com"}, headers=hx
    )
    assert resp.status_code == 200 and "1 student enrolled in" in resp.headers["HX-Trigger"]


def test_enrol_twice_is_safe(client, course, teacher):
    make_user(Role.STUDENT, email="twice@example.com")
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/students"
    hx = {**HX, "HX-Target": "enrol"}
    client.post(url, data={"emails": "twice@example.com"}, headers=hx)
    resp = client.post(url, data={"emails": "twice@example.com"}, headers=hx)
    assert "twice@example.com</span>: already enrolled" in resp.text
    assert db.session.scalar(select(func.count()).select_from(StudentCourse)) == 1


def test_remove_keeps_completions_and_they_come_back(client, setup, teacher, student):
    course, sub = setup["course"], setup["sub"]
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/students/{student.id}/remove"
    resp = client.post(url, headers={**HX, "HX-Target": f"student-{student.id}"})
    assert resp.status_code == 200
    assert 'id="roster-count" class="muted" hx-swap-oob="true"' in resp.text
    assert "removed" in resp.headers["HX-Trigger"]
    assert db.session.scalar(select(func.count()).select_from(StudentCourse)) == 0
    assert db.session.get(CompletedContentBlock, sub.id) is not None
    # gone from the queue while not enrolled
    assert "Nothing to grade" in client.get(f"/teach/courses/{course.id}/grading").text
    assert client.post(url).status_code == 404  # not enrolled any more
    client.post(f"/teach/courses/{course.id}/students", data={"emails": student.email})
    html = client.get(f"/teach/courses/{course.id}/students").text
    assert "10% · 1 of 10 blocks" in html


def test_remove_without_htmx_asks_first_then_redirects(client, setup, teacher, student):
    course = setup["course"]
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/students/{student.id}/remove"
    # Without JavaScript nothing asked yet: a page asks, naming the student; nothing changes.
    page = client.post(url)
    assert page.status_code == 200
    assert f"Remove {student.name}?" in page.text
    assert "Their completions and grades are kept" in page.text
    assert 'name="confirm" value="yes"' in page.text
    assert db.session.scalar(select(func.count()).select_from(StudentCourse)) == 1
    resp = client.post(url, data={"confirm": "yes"})
    assert resp.status_code == 303
    assert "was removed" in client.get(resp.headers["Location"]).text
    assert db.session.scalar(select(func.count()).select_from(StudentCourse)) == 0


def test_student_record_page(client, setup, teacher, student):
    course, sub = setup["course"], setup["sub"]
    login_as(client, teacher)
    html = client.get(f"/teach/courses/{course.id}/students/{student.id}").text
    assert student.name in html and student.email in html
    assert f"/teach/courses/{course.id}/grading/{sub.id}" in html
    assert "https://example.com/work" in html
    stranger = make_user(Role.STUDENT)
    assert client.get(f"/teach/courses/{course.id}/students/{stranger.id}").status_code == 404


def test_course_tabs_partial_can_be_included_by_other_pages(app, setup, teacher, count_queries):
    """The tabs show the count the page passes; they never query (no count without one)."""
    from flask import render_template_string

    course = setup["course"]
    tabs = '{% include "teaching/partials/course_tabs.html" %}'
    assert course.title  # loaded before counting
    with app.test_request_context("/"), count_queries() as counted:
        given = render_template_string(tabs, course=course, queue_count=1)
        missing = render_template_string(tabs, course=course)
    assert counted.count == 0, counted.statements
    assert f'href="/teach/courses/{course.id}/students"' in given
    assert re.search(r'id="grading-count"[^>]*>.*1', given)
    assert 'id="grading-count"' not in missing and ">To grade</a>" in missing
    if "authoring.editor" in app.view_functions:
        assert 'aria-current="page">Editor' in given


@pytest.mark.skipif(not ON_REAL_SERVERS, reason="real concurrency needs PostgreSQL")
def test_concurrent_enrolments_of_the_same_address_on_postgresql(app, course, teacher):
    import threading

    make_user(Role.STUDENT, email="race@example.com")
    clients = []
    for _ in range(4):
        c = app.test_client()
        login_as(c, teacher)
        clients.append(c)
    barrier = threading.Barrier(len(clients))
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def enrol_it(c):
        with app.app_context():
            barrier.wait()
            resp = c.post(
                f"/teach/courses/{course.id}/students",
                data={"emails": "race@example.com"},
                headers={**HX, "HX-Target": "enrol"},
            )
        with lock:
            results.append((resp.status_code, resp.text))

    threads = [threading.Thread(target=enrol_it, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [status for status, _ in results] == [200] * 4
    said = sorted("</span>: enrolled</li>" in text for _, text in results)
    assert said == [False, False, False, True]
    assert db.session.scalar(select(func.count()).select_from(StudentCourse)) == 1


def test_empty_states(client, course, teacher):
    """A course nobody has joined yet, and one without blocks: each page says so plainly."""
    login_as(client, teacher)
    base = f"/teach/courses/{course.id}"
    assert "No students yet. Enrol them by pasting" in client.get(f"{base}/students").text
    assert "No enrolled student matches “zz”." in client.get(f"{base}/students?q=zz").text
    assert "Nothing to grade" in client.get(f"{base}/grading").text
    assert "No students yet." in client.get(f"{base}/gradebook").text
    for export in ("gradebook.csv", "progress.csv"):
        resp = client.get(f"{base}/{export}")
        assert resp.status_code == 200
        lines = resp.get_data().decode("utf-8-sig").splitlines()
        assert len(lines) == 1 and lines[0]  # the header row alone
    bare = make_course(teacher, title="Bare", sections=1, blocks=0)
    enrol(make_user(Role.STUDENT), bare)
    assert (
        "This course has no blocks yet." in client.get(f"/teach/courses/{bare.id}/gradebook").text
    )
