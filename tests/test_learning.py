"""Learning for students: catalogue, course page, enrolment, block page, completions, resume."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, func, insert, select

from tests.cards import course_cards
from tests.conftest import login_as, make_course, make_user
from webapp.extensions import db
from webapp.models import (
    CompletedContentBlock,
    ContentBlock,
    Course,
    Role,
    Section,
    StudentCourse,
    utcnow,
)
from webapp.services import access, progress
from webapp.services import learning_outline as outline
from webapp.services.catalogue import PER_PAGE

HX_COMPLETION = {"HX-Request": "true", "HX-Target": "completion"}
HX_RESULTS = {"HX-Request": "true", "HX-Target": "catalogue-results"}


# --- helpers -------------------------------------------------------------------------------------


def blocks_of(course: Course) -> list[ContentBlock]:
    """The course's blocks in course order."""
    return list(
        db.session.scalars(
            select(ContentBlock)
            .join(Section)
            .where(Section.course_id == course.id)
            .order_by(Section.position, Section.id, ContentBlock.position, ContentBlock.id)
        )
    )


def enrol(student, course) -> StudentCourse:
    row = StudentCourse(student_id=student.id, course_id=course.id, completed=False)
    db.session.add(row)
    db.session.commit()
    return row


def enrolment_of(student, course) -> StudentCourse | None:
    return db.session.scalar(
        select(StudentCourse).where(
            StudentCourse.student_id == student.id, StudentCourse.course_id == course.id
        )
    )


def completions(student, block=None) -> list[CompletedContentBlock]:
    stmt = select(CompletedContentBlock).where(CompletedContentBlock.student_id == student.id)
    if block is not None:
        stmt = stmt.where(CompletedContentBlock.content_block_id == block.id)
    return list(db.session.scalars(stmt))


def complete_directly(student, block, **values) -> CompletedContentBlock:
    values.setdefault("feedback", "")
    row = CompletedContentBlock(
        student_id=student.id, content_block_id=block.id, grader_comment="", **values
    )
    db.session.add(row)
    db.session.commit()
    return row


def first_of(course, kind: str) -> ContentBlock:
    return next(b for b in blocks_of(course) if b.type == kind)


def block_url(course, block, suffix: str = "") -> str:
    return f"/courses/{course.id}/blocks/{block.id}{suffix}"


def assert_progress_invariant(course_id: int) -> None:
    """completed/completed_at are true exactly when every block of the course is completed."""
    db.session.expire_all()
    block_ids = set(
        db.session.scalars(
            select(ContentBlock.id).join(Section).where(Section.course_id == course_id)
        )
    )
    for row in db.session.scalars(
        select(StudentCourse).where(StudentCourse.course_id == course_id)
    ):
        done = set(
            db.session.scalars(
                select(CompletedContentBlock.content_block_id).where(
                    CompletedContentBlock.student_id == row.student_id,
                    CompletedContentBlock.content_block_id.in_(block_ids or {-1}),
                )
            )
        )
        expected = bool(block_ids) and done == block_ids
        assert row.completed is expected, (row.student_id, done, block_ids)
        assert (row.completed_at is not None) is expected


@pytest.fixture
def course(teacher):
    # 2 sections x 3 blocks: lesson, quiz, assignment | video, link, lesson
    return make_course(teacher, title="Python basics", sections=2, blocks=3)


@pytest.fixture
def draft(teacher):
    return make_course(teacher, title="Secret draft", published=False)


# --- catalogue -----------------------------------------------------------------------------------


def test_catalogue_lists_published_courses_with_counts_for_anonymous(client, course, draft):
    resp = client.get("/courses")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert "Python basics" in body and "Secret draft" not in body
    assert course.owner.name in body
    [card] = course_cards(body)
    assert card["title"] == "Python basics" and card["teacher"] == course.owner.name
    assert card["facts"][0] == "6 blocks" and card["cover"]
    assert (
        'id="catalogue-results"' in body
        and 'hx-trigger="input changed delay:300ms, search"' in body
    )
    assert "Enrolled" not in body


def test_catalogue_marks_my_enrolments(client, student, course, teacher):
    other = make_course(teacher, title="Other course")
    enrol(student, course)
    login_as(client, student)
    body = client.get("/courses").get_data(as_text=True)
    cards = {card["title"]: card for card in course_cards(body)}
    assert cards["Python basics"]["enrolled"] and cards["Python basics"]["badge"] == "Enrolled"
    assert not cards[other.title]["enrolled"] and "badge" not in cards[other.title]


def test_catalogue_search_by_title_or_teacher_as_fragment(client, teacher, other_teacher):
    make_course(teacher, title="Rust for beginners")
    make_course(other_teacher, title="Cooking")
    other_teacher.name = "Ada Lovelace"
    db.session.commit()
    resp = client.get("/courses?q=rust", headers=HX_RESULTS)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "<html" not in body
    assert 'id="catalogue-results"' in body and "Rust for beginners" in body
    assert "Cooking" not in body
    assert "HX-Target" in resp.headers["Vary"]
    assert json.loads(resp.headers["HX-Trigger"]) == {"announce": "1 course found for “rust”"}
    body = client.get("/courses?q=lovelace", headers=HX_RESULTS).get_data(as_text=True)
    assert "Cooking" in body and "Rust" not in body
    # The same URL without the htmx target is the whole page (bookmarks, Back).
    page = client.get("/courses?q=lovelace").get_data(as_text=True)
    assert "<html" in page and 'value="lovelace"' in page and "Cooking" in page


def test_catalogue_search_treats_wildcards_literally(client, teacher):
    make_course(teacher, title="100% Python")
    make_course(teacher, title="Other things")
    body = client.get("/courses?q=%25", headers=HX_RESULTS).get_data(as_text=True)
    assert "100% Python" in body and "Other things" not in body


def test_catalogue_pagination(client, teacher):
    for i in range(PER_PAGE + 3):
        db.session.add(Course(title=f"Course {i:02d}", user_id=teacher.id, is_published=True))
    db.session.commit()
    first = client.get("/courses").get_data(as_text=True)
    assert "Course 00" in first and "Course 22" not in first and "page=2" in first
    second = client.get("/courses?page=2", headers=HX_RESULTS).get_data(as_text=True)
    assert "Course 22" in second and "Course 00" not in second and "page 2 of 2" in second
    # out of range pages clamp instead of failing
    assert "Course 22" in client.get("/courses?page=99").get_data(as_text=True)


# --- course page ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 404),
        ("student", 404),
        ("other_teacher", 404),
        ("teacher", 200),
        ("admin", 200),
    ],
)
def test_draft_course_page_only_for_owner_and_admin(client, request, draft, who, status):
    if who != "anonymous":
        login_as(client, request.getfixturevalue(who))
    resp = client.get(f"/courses/{draft.id}")
    assert resp.status_code == status
    if status == 200:
        assert "Draft" in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("anonymous", "Log in to enrol"),
        ("student", ">Enrol</button>"),
        ("other_teacher", "Students enrol in this course here."),
        ("admin", "Preview the first block"),
        ("teacher", "Preview the first block"),
    ],
)
def test_course_page_for_each_role(client, request, course, who, expected):
    if who != "anonymous":
        login_as(client, request.getfixturevalue(who))
    resp = client.get(f"/courses/{course.id}")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert expected in body
    previewing = who in ("admin", "teacher")  # the owner and admins: the student view, linked
    assert "Block 1.1" in body and ("/blocks/" in body) is previewing
    assert ("Nothing is recorded here" in body) is previewing
    assert "<progress" not in body


def test_missing_course_is_404(client, student):
    login_as(client, student)
    assert client.get("/courses/9999").status_code == 404


def test_course_page_main_button_states(client, student, course):
    blocks = blocks_of(course)
    login_as(client, student)
    enrol(student, course)
    body = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert ">Start</a>" in body and f"/blocks/{blocks[0].id}" in body
    assert 'value="0"' in body and "0%" in body
    # visited the second block: resume there (not completed yet)
    client.get(block_url(course, blocks[1]))
    body = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert f"Resume: {blocks[1].title}" in body
    # completed it: resume at the next one not completed
    complete_directly(student, blocks[1], url="https://example.com/w")
    complete_directly(student, blocks[2], url="https://example.com/w")
    body = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert f"Resume: {blocks[3].title}" in body
    assert "2 of 3 done" in body and "0 of 3 done" in body
    # only the resume block's section lists its blocks; ?section= opens another one too
    assert '">✓<' not in body and f'id="outline-block-{blocks[3].id}"' in body
    body = client.get(f"/courses/{course.id}?section={blocks[0].section_id}").get_data(as_text=True)
    assert body.count('class="tick" aria-hidden="true">✓') == 2
    for b in blocks:
        if b.id not in (blocks[1].id, blocks[2].id):
            complete_directly(student, b, url="https://example.com/w")
    progress.sync_course_completion(course.id, student.id)
    db.session.commit()
    body = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert "Review course" in body and "100%" in body and "Course completed" in body


# --- the outline: the current section open, the others on demand ---------------------------------


def test_course_page_opens_the_resume_section_and_folds_the_others(client, student, teacher):
    course = make_course(teacher, sections=3, blocks=2)
    blocks = blocks_of(course)
    s1, s2, s3 = (blocks[i].section_id for i in (0, 2, 4))
    row = enrol(student, course)
    row.last_block_id = blocks[2].id
    db.session.commit()
    login_as(client, student)
    body = client.get(f"/courses/{course.id}").get_data(as_text=True)
    # every section: its title, counts and a disclosure link (a real link without JavaScript)
    for sid in (s1, s2, s3):
        assert f'id="section-progress-{sid}" class="section-progress">0 of 2 done' in body
        assert f'href="/courses/{course.id}?section={sid}#section-{sid}"' in body
        assert f'hx-get="/courses/{course.id}/sections/{sid}"' in body
    # only the resume block's section lists its blocks
    assert f'aria-controls="section-blocks-{s2}" aria-expanded="true"' in body
    assert f'aria-controls="section-blocks-{s1}" aria-expanded="false"' in body
    assert f'<ol id="section-blocks-{s1}" class="outline-blocks" hidden></ol>' in body
    assert [b.title for b in blocks if f">{b.title}</a>" in body] == ["Block 2.1", "Block 2.2"]
    # ?section= opens one more, without JavaScript
    body = client.get(f"/courses/{course.id}?section={s3}").get_data(as_text=True)
    assert f'aria-controls="section-blocks-{s3}" aria-expanded="true"' in body
    assert ">Block 3.1</a>" in body and ">Block 2.1</a>" in body and ">Block 1.1</a>" not in body
    # a section of another course, or no number, is ignored
    other = make_course(teacher, title="Other")
    for bad in (blocks_of(other)[0].section_id, "x"):
        body = client.get(f"/courses/{course.id}?section={bad}").get_data(as_text=True)
        assert ">Block 2.1</a>" in body and ">Block 3.1</a>" not in body


def test_a_folded_section_loads_its_blocks_on_demand(client, student, teacher):
    course = make_course(teacher, sections=2, blocks=2)
    blocks = blocks_of(course)
    s2 = blocks[2].section_id
    enrol(student, course)
    complete_directly(student, blocks[3])
    login_as(client, student)
    resp = client.get(f"/courses/{course.id}/sections/{s2}", headers={"HX-Request": "true"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<html" not in body
    assert body.startswith(f'<ol id="section-blocks-{s2}" class="outline-blocks" data-loaded>')
    assert f'href="/courses/{course.id}/blocks/{blocks[2].id}"' in body
    assert body.count('aria-hidden="true">✓') == 1 and "Block 1.1" not in body
    assert "HX-Request" in resp.headers["Vary"]
    # without htmx: the course page with that section open
    resp = client.get(f"/courses/{course.id}/sections/{s2}")
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/courses/{course.id}?section={s2}#section-{s2}"
    # a section of another course is 404; a draft's sections too
    other = make_course(teacher, title="Other", published=False)
    for cid, sid in (
        (course.id, blocks_of(other)[0].section_id),
        (other.id, blocks_of(other)[0].section_id),
    ):
        assert (
            client.get(f"/courses/{cid}/sections/{sid}", headers={"HX-Request": "true"}).status_code
            == 404
        )


def test_a_section_for_visitors_lists_blocks_without_links(client, teacher):
    course = make_course(teacher, sections=2, blocks=3)
    blocks = blocks_of(course)
    body = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert "3 blocks</span>" in body and " done</span>" not in body
    assert ">Block 1.1</span>" in body and "Block 2.1" not in body  # the first section is open
    body = client.get(
        f"/courses/{course.id}/sections/{blocks[3].section_id}", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert ">Block 2.1</span>" in body and "/blocks/" not in body
    empty = make_course(teacher, title="Empty", sections=1, blocks=0)
    section_id = db.session.scalar(select(Section.id).where(Section.course_id == empty.id))
    body = client.get(
        f"/courses/{empty.id}/sections/{section_id}", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "No blocks yet." in body


def test_block_page_opens_its_own_section(client, student, teacher):
    course = make_course(teacher, sections=3, blocks=2)
    blocks = blocks_of(course)
    enrol(student, course)
    login_as(client, student)
    body = client.get(block_url(course, blocks[2])).get_data(as_text=True)
    s1, s2 = blocks[0].section_id, blocks[2].section_id
    assert f'aria-controls="section-blocks-{s2}" aria-expanded="true"' in body
    assert f'aria-current="page">{blocks[2].title}</a>' in body
    assert f'aria-controls="section-blocks-{s1}" aria-expanded="false"' in body
    assert f'href="{block_url(course, blocks[2])}?section={s1}#section-{s1}"' in body
    # previous and next cross the sections' edges
    assert f'rel="prev" href="{block_url(course, blocks[1])}"' in body
    body = client.get(block_url(course, blocks[3], f"?section={s1}")).get_data(as_text=True)
    assert f'aria-controls="section-blocks-{s1}" aria-expanded="true"' in body
    assert f'rel="next" href="{block_url(course, blocks[4])}"' in body


def test_resume_rules(student, teacher):
    """Resume: last block if not completed, else the next pending block after it (wrapping),
    across sections; everything done (or nothing left): the first block."""
    course = make_course(teacher, sections=2, blocks=3)
    ids = [b.id for b in blocks_of(course)]

    def resume_at(last: int | None, done: list[int]) -> int:
        db.session.execute(delete(CompletedContentBlock))
        for i in done:
            db.session.add(
                CompletedContentBlock(
                    student_id=student.id, content_block_id=ids[i], feedback="", grader_comment=""
                )
            )
        db.session.commit()
        last_id = ids[last] if last is not None and last >= 0 else (99999 if last else None)
        target, first = outline.resume(course.id, student.id, last_id)
        assert first == ids[0]
        return ids.index(target.id)

    assert resume_at(None, []) == 0
    assert resume_at(None, [0, 1]) == 2  # nothing visited: first pending
    assert resume_at(3, [0, 1]) == 3  # last visited, not completed
    assert resume_at(3, [0, 1, 3]) == 4  # after the last activity
    assert resume_at(2, [0, 1, 2]) == 3  # into the next section
    assert resume_at(5, [1, 3, 4, 5]) == 0  # wraps to the first pending block
    assert resume_at(4, [0, 2, 3, 4, 5]) == 1
    assert resume_at(3, [0, 1, 2, 3, 4, 5]) == 0  # all done: review from the start
    assert resume_at(-1, [0]) == 1  # the last block was deleted meanwhile
    empty = make_course(teacher, sections=1, blocks=0)
    assert outline.resume(empty.id, student.id, None) == (None, None)


def test_resume_route_redirects_to_the_resume_block(client, student, course):
    blocks = blocks_of(course)
    row = enrol(student, course)
    row.last_block_id = blocks[0].id
    db.session.commit()
    complete_directly(student, blocks[0])
    login_as(client, student)
    resp = client.get(f"/courses/{course.id}/resume")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(
        block_url(course, blocks[1])
    )


def test_resume_route_needs_enrolment(client, student, course):
    login_as(client, student)
    assert client.get(f"/courses/{course.id}/resume").status_code == 404


# --- enrolment -----------------------------------------------------------------------------------


def test_enrol_creates_one_enrolment_however_often(client, student, course):
    login_as(client, student)
    for _ in range(3):
        resp = client.post(f"/courses/{course.id}/enrol", data={"student_id": 999})
        assert resp.status_code == 303 and resp.headers["Location"] == f"/courses/{course.id}"
    assert db.session.scalar(select(func.count(StudentCourse.id))) == 1
    assert enrolment_of(student, course) is not None
    assert "You are enrolled" in client.get(f"/courses/{course.id}").get_data(as_text=True)


@pytest.mark.parametrize(("who", "status"), [("teacher", 404), ("admin", 404), ("anonymous", 303)])
def test_only_students_enrol(client, request, course, who, status):
    if who != "anonymous":
        login_as(client, request.getfixturevalue(who))
    resp = client.post(f"/courses/{course.id}/enrol")
    assert resp.status_code == status
    if who == "anonymous":
        assert "/login" in resp.headers["Location"]
    assert db.session.scalar(select(func.count(StudentCourse.id))) == 0


def test_cannot_enrol_in_a_draft(client, student, draft):
    login_as(client, student)
    assert client.post(f"/courses/{draft.id}/enrol").status_code == 404
    assert enrolment_of(student, draft) is None


def test_unenrol_keeps_completions_and_reenrol_brings_progress_back(client, student, course):
    login_as(client, student)
    client.post(f"/courses/{course.id}/enrol")
    for b in blocks_of(course):
        complete_directly(student, b, url="https://example.com/w")
    progress.sync_course_completion(course.id, student.id)
    db.session.commit()
    assert enrolment_of(student, course).completed
    resp = client.post(f"/courses/{course.id}/unenrol")
    assert resp.status_code == 303
    assert enrolment_of(student, course) is None
    assert len(completions(student)) == 6
    body = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert "your completed blocks count again" in body and ">Enrol</button>" in body
    client.post(f"/courses/{course.id}/enrol")
    row = enrolment_of(student, course)
    assert row.completed and row.completed_at is not None
    assert_progress_invariant(course.id)
    assert "100%" in client.get(f"/courses/{course.id}").get_data(as_text=True)


def test_unenrol_only_touches_my_enrolment(client, student, course):
    other = make_user(Role.STUDENT)
    enrol(other, course)
    enrol(student, course)
    login_as(client, student)
    client.post(f"/courses/{course.id}/unenrol", data={"student_id": other.id})
    assert enrolment_of(other, course) is not None and enrolment_of(student, course) is None


# --- block page ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 303),
        ("teacher", 200),  # the owner: a preview (tests/test_learning_preview.py)
        ("other_teacher", 404),
        ("admin", 200),
        ("student", 303),
    ],
)
def test_block_page_for_enrolled_students_and_previews(client, request, course, who, status):
    block = blocks_of(course)[0]
    if who != "anonymous":
        login_as(client, request.getfixturevalue(who))
    resp = client.get(block_url(course, block))
    assert resp.status_code == status
    if who == "anonymous":
        assert "/login" in resp.headers["Location"]
    if who == "student":  # not enrolled: sent to the course page to enrol
        assert resp.headers["Location"] == f"/courses/{course.id}"
    assert ("Some" in resp.get_data(as_text=True)) is (status == 200)


def test_block_page_for_enrolled_student(client, student, course):
    blocks = blocks_of(course)
    block = blocks[3]  # video, first of section 2
    block.content = "Hello **world** <script>alert(1)</script>"
    db.session.commit()
    enrol(student, course)
    login_as(client, student)
    resp = client.get(block_url(course, block))
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert '<div class="prose block-content" hx-disable>' in body
    assert "<strong>world</strong>" in body and "<script>alert" not in body
    assert 'href="https://example.com/x" target="_blank" rel="noopener noreferrer"' in body
    assert "Watch the video" in body
    assert (
        f'Previous<span class="visually-hidden">:</span> <span class="nav-title">{blocks[2].title}'
        in body
    )
    assert f'rel="next" href="{block_url(course, blocks[4])}"' in body
    assert 'aria-current="page"' in body and ">Mark complete</button>" in body
    assert enrolment_of(student, course).last_block_id == block.id


def test_lesson_page_shows_its_title_once(client, student, course):
    """A lesson whose Markdown starts with its own title as a heading (as the demo's and
    many imported lessons do) shows that title in one heading: the page's <h1>."""
    from html.parser import HTMLParser

    block = blocks_of(course)[0]
    block.title = "Welcome"
    block.content = "# Welcome\n\nThis course teaches **Python**.\n\n# Before you start"
    db.session.commit()
    enrol(student, course)
    login_as(client, student)
    resp = client.get(block_url(course, block))
    assert resp.status_code == 200

    class Headings(HTMLParser):
        found: list[tuple[str, str]] = []
        tag: str | None = None

        def handle_starttag(self, tag, attrs):
            if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                self.tag = tag
                self.found.append((tag, ""))

        def handle_endtag(self, tag):
            if tag == self.tag:
                self.tag = None

        def handle_data(self, data):
            if self.tag:
                self.found[-1] = (self.tag, self.found[-1][1] + data)

    parser = Headings()
    parser.feed(resp.get_data(as_text=True))
    headings = [(tag, text.strip()) for tag, text in parser.found]
    assert [h for h in headings if h[1] == "Welcome"] == [("h1", "Welcome")]
    assert [h for h in headings if h[0] == "h1"] == [("h1", "Welcome")]
    assert ("h2", "Before you start") in headings  # the lesson's own heading, one level down


def test_block_of_another_course_is_404(client, student, course, teacher):
    other = make_course(teacher, title="Other")
    enrol(student, course)
    login_as(client, student)
    assert client.get(block_url(course, blocks_of(other)[0])).status_code == 404
    assert client.get(f"/courses/{course.id}/blocks/99999").status_code == 404


@pytest.mark.parametrize("bad", ["abc", "-1", "99999999999", "1e3"])
def test_block_ids_that_are_not_row_ids_are_404_not_500(client, student, course, bad):
    enrol(student, course)
    login_as(client, student)
    base = f"/courses/{course.id}/blocks/{bad}"
    assert client.get(base).status_code == 404
    assert client.get(base, headers=HX_COMPLETION).status_code == 404
    for suffix in ("/complete", "/completion", "/undo"):
        assert client.post(base + suffix, headers=HX_COMPLETION).status_code == 404, suffix
    assert client.get(f"/courses/{bad}").status_code == 404
    assert client.post(f"/courses/{bad}/enrol").status_code == 404


def test_block_ids_beyond_the_integer_range_in_the_service(student, course):
    from webapp.services import NotFound

    enrol(student, course)
    for bad in (99999999999, -1, "abc", None):
        with pytest.raises(NotFound):
            access.block_for_student(course.id, bad, student)


def test_block_of_unpublished_course_is_404_when_not_enrolled(client, student, course):
    course.is_published = False
    db.session.commit()
    login_as(client, student)
    assert client.get(block_url(course, blocks_of(course)[0])).status_code == 404
    assert client.post(block_url(course, blocks_of(course)[0], "/complete")).status_code == 404


# --- completing ----------------------------------------------------------------------------------


def test_mark_complete_over_htmx_updates_everything_in_one_response(client, student, course):
    blocks = blocks_of(course)
    lesson = blocks[0]
    enrol(student, course)
    login_as(client, student)
    resp = client.post(block_url(course, lesson, "/complete"), headers=HX_COMPLETION)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert body.lstrip().startswith('<section id="completion"')
    assert "Completed" in body and "Undo" in body and "data-autofocus" in body
    assert (
        f'<li id="outline-block-{lesson.id}" class="outline-block done current" hx-swap-oob="true">'
        in body
    )
    section_id = lesson.section_id
    assert (
        f'id="section-progress-{section_id}" class="section-progress" hx-swap-oob="true">1 of 3'
        in body
    )
    assert '<div id="course-progress" class="course-progress" hx-swap-oob="true">' in body
    assert 'max="6" value="1"' in body and "16%" in body
    assert '<nav id="block-nav"' in body and 'class="button next" rel="next"' in body
    assert json.loads(resp.headers["HX-Trigger"]) == {
        "announce": f"{lesson.title} marked complete. Course progress 16% (1 of 6 blocks)."
    }
    assert "HX-Target" in resp.headers["Vary"]
    [row] = completions(student)
    assert row.content_block_id == lesson.id and row.url is None
    assert_progress_invariant(course.id)


def test_mark_complete_plain_form_redirects(client, student, course):
    lesson = blocks_of(course)[0]
    enrol(student, course)
    login_as(client, student)
    resp = client.post(block_url(course, lesson, "/complete"))
    assert resp.status_code == 303 and resp.headers["Location"] == block_url(course, lesson)
    assert len(completions(student, lesson)) == 1
    body = client.get(block_url(course, lesson)).get_data(as_text=True)
    assert "Completed" in body and 'class="outline-block done current"' in body


def test_double_submit_makes_one_completion(client, student, course):
    lesson = blocks_of(course)[0]
    enrol(student, course)
    login_as(client, student)
    for _ in range(3):
        assert (
            client.post(block_url(course, lesson, "/complete"), headers=HX_COMPLETION).status_code
            == 200
        )
    assert len(completions(student)) == 1


@pytest.mark.parametrize("who", ["anonymous", "teacher", "admin", "not_enrolled"])
def test_only_enrolled_students_complete(client, request, course, who, student):
    lesson = blocks_of(course)[0]
    if who == "not_enrolled":
        login_as(client, student)
    elif who != "anonymous":
        login_as(client, request.getfixturevalue(who))
    resp = client.post(block_url(course, lesson, "/complete"), headers=HX_COMPLETION)
    assert resp.status_code in (204, 404)
    if who == "anonymous":
        assert "/login" in resp.headers["HX-Redirect"]
    assert db.session.scalar(select(func.count(CompletedContentBlock.id))) == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "Give the address of your work."),
        ("javascript:alert(1)", "starting with http:// or https://"),
        ("ftp://example.com/x", "starting with http:// or https://"),
        ("https://example.com/" + "x" * 2000, "2000"),
    ],
)
def test_assignment_needs_an_http_url(client, student, course, url, message):
    assignment = first_of(course, "assignment")
    enrol(student, course)
    login_as(client, student)
    resp = client.post(
        block_url(course, assignment, "/complete"), data={"url": url}, headers=HX_COMPLETION
    )
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert message in body and 'aria-invalid="true"' in body and "data-autofocus" in body
    assert "hx-swap-oob" not in body
    assert completions(student) == []


def test_assignment_errors_without_htmx_rerender_the_page(client, student, course):
    assignment = first_of(course, "assignment")
    enrol(student, course)
    login_as(client, student)
    resp = client.post(
        block_url(course, assignment, "/complete"), data={"url": "nope", "remarks": "hi"}
    )
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "<html" in body and "starting with http" in body
    assert "hi</textarea>" in body


def test_assignment_submission_ignores_smuggled_fields(client, student, course):
    other = make_user(Role.STUDENT)
    assignment = first_of(course, "assignment")
    enrol(student, course)
    login_as(client, student)
    resp = client.post(
        block_url(course, assignment, "/complete"),
        data={
            "url": " https://github.com/me/work ",
            "remarks": "Done it",
            "student_id": other.id,
            "grade": 100,
            "graded_by_id": other.id,
            "grader_comment": "self-praise",
        },
        headers=HX_COMPLETION,
    )
    assert resp.status_code == 200
    [row] = completions(student)
    assert row.url == "https://github.com/me/work" and row.feedback == "Done it"
    assert row.grade is None and row.graded_by_id is None and row.grader_comment == ""
    assert completions(other) == []
    body = resp.get_data(as_text=True)
    assert "https://github.com/me/work" in body and "Edit" in body


def test_lesson_ignores_url(client, student, course):
    lesson = blocks_of(course)[0]
    enrol(student, course)
    login_as(client, student)
    client.post(block_url(course, lesson, "/complete"), data={"url": "https://x.example"})
    assert completions(student)[0].url is None


def grade(row: CompletedContentBlock, teacher, value=80, comment="Good") -> None:
    row = db.session.get(CompletedContentBlock, row.id)
    row.grade = value
    row.grader_comment = comment
    row.graded_by_id = teacher.id
    row.graded_at = utcnow()
    db.session.commit()


def test_edit_form_fragment(client, student, course):
    assignment = first_of(course, "assignment")
    enrol(student, course)
    complete_directly(student, assignment, url="https://example.com/a", feedback="first")
    login_as(client, student)
    resp = client.get(block_url(course, assignment, "?edit=1"), headers=HX_COMPLETION)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<html" not in body
    assert 'value="https://example.com/a"' in body and "first</textarea>" in body
    assert "Save changes" in body and "/completion" in body and "Cancel" in body


def test_edit_after_grading_keeps_the_grade_and_shows_it_changed(client, student, course, teacher):
    assignment = first_of(course, "assignment")
    enrol(student, course)
    row = complete_directly(student, assignment, url="https://example.com/a", feedback="v1")
    grade(row, teacher)
    before = db.session.get(CompletedContentBlock, row.id)
    graded_at, updated_before = before.graded_at, before.updated_at
    assert not before.changed_since_graded
    login_as(client, student)
    body = client.get(block_url(course, assignment)).get_data(as_text=True)
    assert (
        ">80</strong> / 100" in body and "Good" in body and "Graded work cannot be undone" in body
    )
    resp = client.post(
        block_url(course, assignment, "/completion"),
        data={"url": "https://example.com/b", "remarks": "v2", "grade": 100},
        headers=HX_COMPLETION,
    )
    assert resp.status_code == 200
    assert json.loads(resp.headers["HX-Trigger"]) == {
        "announce": f"Your work for {assignment.title} is updated."
    }
    db.session.expire_all()
    after = db.session.get(CompletedContentBlock, row.id)
    assert (after.url, after.feedback) == ("https://example.com/b", "v2")
    assert after.grade == 80 and after.grader_comment == "Good" and after.graded_by_id == teacher.id
    assert after.graded_at == graded_at and after.updated_at > updated_before
    assert after.changed_since_graded
    assert "your teacher sees that" in resp.get_data(as_text=True)


def test_edit_with_no_change_does_not_bump_updated_at(client, student, course, teacher):
    assignment = first_of(course, "assignment")
    enrol(student, course)
    row = complete_directly(student, assignment, url="https://example.com/a", feedback="v1")
    grade(row, teacher)
    login_as(client, student)
    resp = client.post(
        block_url(course, assignment, "/completion"),
        data={"url": "https://example.com/a", "remarks": "v1"},
    )
    assert resp.status_code == 303
    db.session.expire_all()
    assert not db.session.get(CompletedContentBlock, row.id).changed_since_graded


def test_edit_rejects_bad_url_with_422(client, student, course):
    assignment = first_of(course, "assignment")
    enrol(student, course)
    row = complete_directly(student, assignment, url="https://example.com/a")
    login_as(client, student)
    resp = client.post(
        block_url(course, assignment, "/completion"), data={"url": "data:x"}, headers=HX_COMPLETION
    )
    assert resp.status_code == 422 and "Save changes" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(CompletedContentBlock, row.id).url == "https://example.com/a"


def test_edit_of_something_not_completed_is_a_conflict(client, student, course):
    assignment = first_of(course, "assignment")
    enrol(student, course)
    login_as(client, student)
    url = block_url(course, assignment, "/completion")
    resp = client.post(url, data={"url": "https://a.example"}, headers=HX_COMPLETION)
    assert resp.status_code == 409
    assert 'id="completion"' in resp.text and "not marked complete" in resp.text
    assert "Submit and mark complete" in resp.text
    resp = client.post(url, data={"url": "https://a.example"})
    assert resp.status_code == 303
    assert completions(student) == []


def test_edit_of_a_lesson_is_a_conflict(client, student, course):
    lesson = blocks_of(course)[0]
    enrol(student, course)
    complete_directly(student, lesson)
    login_as(client, student)
    resp = client.post(block_url(course, lesson, "/completion"), headers=HX_COMPLETION)
    assert resp.status_code == 409 and "nothing to edit" in resp.text


def test_undo_over_htmx(client, student, course):
    lesson = blocks_of(course)[0]
    enrol(student, course)
    login_as(client, student)
    client.post(block_url(course, lesson, "/complete"))
    resp = client.post(block_url(course, lesson, "/undo"), headers=HX_COMPLETION)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert ">Mark complete</button>" in body
    assert (
        f'<li id="outline-block-{lesson.id}" class="outline-block current" hx-swap-oob="true">'
        in body
    )
    assert 'value="0"' in body
    announced = json.loads(resp.headers["HX-Trigger"])["announce"]
    assert announced.startswith(f"{lesson.title} marked not done.")
    # Focus goes to the new Mark complete button (the Undo button it was on is gone).
    assert ">Mark complete</button>" in body and '<button type="submit" data-autofocus>' in body
    assert completions(student) == []
    # undoing twice is harmless
    assert client.post(block_url(course, lesson, "/undo")).status_code == 303


def test_undo_after_grading_is_refused(client, student, course, teacher):
    assignment = first_of(course, "assignment")
    enrol(student, course)
    row = complete_directly(student, assignment, url="https://example.com/a")
    grade(row, teacher)
    login_as(client, student)
    resp = client.post(block_url(course, assignment, "/undo"), headers=HX_COMPLETION)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert 'id="completion"' in body and "has been graded, so it cannot be undone" in body
    assert "hx-swap-oob" not in body
    assert "cannot be undone" in json.loads(resp.headers["HX-Trigger"])["announce"]
    # and as a plain form: redirect with the message
    resp = client.post(block_url(course, assignment, "/undo"))
    assert resp.status_code == 303
    assert "cannot be undone" in client.get(block_url(course, assignment)).get_data(as_text=True)
    assert len(completions(student)) == 1


def test_a_student_only_acts_on_their_own_completion(client, student, course):
    other = make_user(Role.STUDENT)
    assignment = first_of(course, "assignment")
    enrol(student, course)
    enrol(other, course)
    theirs = complete_directly(other, assignment, url="https://example.com/theirs")
    login_as(client, student)
    client.post(block_url(course, assignment, "/undo"), data={"student_id": other.id})
    client.post(
        block_url(course, assignment, "/completion"),
        data={"url": "https://evil.example", "student_id": other.id},
    )
    db.session.expire_all()
    assert db.session.get(CompletedContentBlock, theirs.id).url == "https://example.com/theirs"


# --- the progress invariant ----------------------------------------------------------------------


def test_progress_invariant_after_every_kind_of_change(client, student, course, teacher):
    blocks = blocks_of(course)
    login_as(client, student)
    client.post(f"/courses/{course.id}/enrol")
    assert_progress_invariant(course.id)
    for b in blocks:
        data = {"url": "https://example.com/w"} if b.is_gradable else {}
        assert client.post(block_url(course, b, "/complete"), data=data).status_code == 303
        assert_progress_invariant(course.id)
    assert enrolment_of(student, course).completed
    client.post(block_url(course, blocks[0], "/undo"))
    assert_progress_invariant(course.id)
    assert not enrolment_of(student, course).completed
    client.post(block_url(course, blocks[0], "/complete"))
    assert_progress_invariant(course.id)
    first_done_at = enrolment_of(student, course).completed_at
    # a teacher adds a block: the course is no longer complete (authoring calls the sync)
    new = ContentBlock(section_id=blocks[0].section_id, title="New", type="lesson", position=9)
    db.session.add(new)
    db.session.flush()
    progress.sync_course_completion(course.id)
    db.session.commit()
    assert_progress_invariant(course.id)
    assert not enrolment_of(student, course).completed
    # ... and deletes it again: complete once more
    db.session.execute(delete(ContentBlock).where(ContentBlock.id == new.id))
    progress.sync_course_completion(course.id)
    db.session.commit()
    assert_progress_invariant(course.id)
    assert enrolment_of(student, course).completed_at >= first_done_at
    client.post(f"/courses/{course.id}/unenrol")
    client.post(f"/courses/{course.id}/enrol")
    assert_progress_invariant(course.id)
    assert enrolment_of(student, course).completed


def test_last_block_completed_announces_course_completion(client, student, teacher):
    course = make_course(teacher, sections=1, blocks=1)
    [only] = blocks_of(course)
    enrol(student, course)
    login_as(client, student)
    resp = client.post(block_url(course, only, "/complete"), headers=HX_COMPLETION)
    assert "You have completed the course!" in json.loads(resp.headers["HX-Trigger"])["announce"]
    assert "Course complete: back to the course" in resp.get_data(as_text=True)


# --- my learning ---------------------------------------------------------------------------------


def test_my_learning_lists_courses_progress_and_graded_work(client, student, course, teacher):
    other = make_course(teacher, title="Second course", sections=1, blocks=2)
    enrol(student, course)
    enrol(student, other)
    assignment = first_of(course, "assignment")
    row = complete_directly(student, assignment, url="https://example.com/a")
    grade(row, teacher, 91, "Lovely")
    login_as(client, student)
    body = client.get("/learn").get_data(as_text=True)
    assert "Python basics" in body and "Second course" in body
    assert 'max="6" value="1"' in body and 'max="2" value="0"' in body
    assert f"/courses/{course.id}/resume" in body
    assert "Recently graded" in body and "<td>91</td>" in body and "Lovely" in body


@pytest.mark.parametrize(("who", "status"), [("anonymous", 303), ("teacher", 404), ("admin", 404)])
def test_my_learning_is_for_students(client, request, who, status):
    if who != "anonymous":
        login_as(client, request.getfixturevalue(who))
    assert client.get("/learn").status_code == status


def test_my_learning_empty(client, student):
    login_as(client, student)
    body = client.get("/learn").get_data(as_text=True)
    assert "not enrolled in a course yet" in body and "Nothing graded yet" in body


# --- query budgets -------------------------------------------------------------------------------


@pytest.fixture
def big_course(teacher, student):
    """A course of 1,000 blocks in 10 sections, the student enrolled with 500 completions."""
    course = Course(title="Big course", description="", user_id=teacher.id, is_published=True)
    db.session.add(course)
    db.session.flush()
    db.session.execute(
        insert(Section),
        [
            {"course_id": course.id, "title": f"S{s}", "description": "", "position": s}
            for s in range(10)
        ],
    )
    section_ids = list(db.session.scalars(select(Section.id).where(Section.course_id == course.id)))
    db.session.execute(
        insert(ContentBlock),
        [
            {
                "section_id": sid,
                "title": f"B{i}.{b}",
                "description": "",
                "type": "lesson",
                "content": "text",
                "position": b,
            }
            for i, sid in enumerate(section_ids)
            for b in range(100)
        ],
    )
    block_ids = list(
        db.session.scalars(
            select(ContentBlock.id)
            .join(Section)
            .where(Section.course_id == course.id)
            .order_by(ContentBlock.id)
        )
    )
    db.session.execute(
        insert(StudentCourse),
        [{"student_id": student.id, "course_id": course.id, "completed": False}],
    )
    now = utcnow()
    db.session.execute(
        insert(CompletedContentBlock),
        [
            {
                "student_id": student.id,
                "content_block_id": bid,
                "feedback": "",
                "grader_comment": "",
                "completed_at": now,
                "updated_at": now,
            }
            for bid in block_ids[:500]
        ],
    )
    db.session.commit()
    return course, block_ids


def _queries(client, count_queries, url) -> int:
    with count_queries() as q:
        resp = client.get(url)
    assert resp.status_code == 200, url
    return q.count


def test_query_budgets_do_not_grow_with_the_data(
    client, student, teacher, big_course, count_queries
):
    course, block_ids = big_course
    small = make_course(teacher, title="Small course", sections=1, blocks=1)
    enrol(student, small)
    [small_block] = blocks_of(small)
    login_as(client, student)
    budgets = {}
    for name, big_url, small_url, limit in [
        ("catalogue", "/courses", "/courses?q=small", 4),
        ("course", f"/courses/{course.id}", f"/courses/{small.id}", 6),
        (
            "block",
            f"/courses/{course.id}/blocks/{block_ids[700]}",
            block_url(small, small_block),
            5,  # the first visit adds the UPDATE of last_block_id (tests/test_learning_budget.py)
        ),
        ("my learning", "/learn", "/learn", 6),
    ]:
        # warm up: the first visit of a block records it as last_block_id
        _queries(client, count_queries, big_url)
        _queries(client, count_queries, small_url)
        big = _queries(client, count_queries, big_url)
        little = _queries(client, count_queries, small_url)
        budgets[name] = big
        assert big <= limit, (name, big)
        assert big == little, (name, big, little)
    print("query budgets", budgets)
    body = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert "50%" in body and 'value="500"' in body


def test_catalogue_queries_do_not_grow_with_rows(client, student, teacher, count_queries):
    make_course(teacher, title="Only one")
    login_as(client, student)
    with count_queries() as one:
        assert client.get("/courses").status_code == 200
    for i in range(30):
        c = make_course(teacher, title=f"More {i:02d}", sections=2, blocks=2)
        if i % 2:
            enrol(student, c)
    with count_queries() as many:
        body = client.get("/courses").get_data(as_text=True)
    cards = course_cards(body)
    assert len(cards) == PER_PAGE  # a full page
    assert any(card["enrolled"] for card in cards)
    assert many.count == one.count
