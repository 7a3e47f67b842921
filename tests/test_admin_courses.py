"""Administration of courses (issue 16, item 8): every course with search, owner and students,
transfer to another teacher and delete, both audited; within the page budgets."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select

from tests.conftest import login_as, make_course, make_user
from tests.test_admin import PAGE_BYTES, hx
from tests.test_teaching_progress import texts
from webapp.extensions import db
from webapp.models import AuditEvent, Course, Role, StudentCourse, User, utcnow
from webapp.services.users import PAGE_SIZE

BUDGET = 8  # statements a page, whatever the number of courses and students


@pytest.fixture
def admin_client(app, admin):
    client = app.test_client()
    login_as(client, admin)
    return client


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def row_titles(html: str) -> list[str]:
    return [t.strip() for t in texts(html, "th", scope="row")]


def many_courses(owner: User, n: int, title: str = "Course {i:04d}") -> None:
    now = utcnow()
    db.session.execute(
        insert(Course),
        [
            {"title": title.format(i=i), "description": "", "user_id": owner.id,
             "is_published": i % 2 == 0, "created_at": now, "updated_at": now}
            for i in range(n)
        ],
    )  # fmt: skip
    db.session.commit()


@pytest.mark.parametrize("role", [None, Role.STUDENT, Role.TEACHER])
def test_only_admins_reach_the_courses_pages(client, teacher, role):
    course = make_course(teacher)
    if role is not None:
        login_as(client, make_user(role))
    other = make_user(Role.TEACHER, email="other@school.org")
    requests = [
        ("get", "/admin/courses", {}),
        ("get", f"/admin/courses/{course.id}", {}),
        ("post", f"/admin/courses/{course.id}/transfer", {"to_email": other.email}),
        ("post", f"/admin/courses/{course.id}/delete", {}),
    ]
    for method, url, data in requests:
        resp = getattr(client, method)(url, data=data)
        assert resp.status_code == (303 if role is None else 404), url
    assert db.session.scalar(select(Course.user_id)) == teacher.id


def test_lists_drafts_and_published_with_owner_and_students(admin_client, teacher, student):
    draft = make_course(teacher, title="Draft one", published=False)
    live = make_course(teacher, title="Live one")
    db.session.add(StudentCourse(student_id=student.id, course_id=live.id))
    db.session.commit()
    resp = admin_client.get("/admin/courses")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert row_titles(html) == ["Live one", "Draft one"]  # newest first
    [live_row] = texts(html, "tr", id=f"course-{live.id}")
    [draft_row] = texts(html, "tr", id=f"course-{draft.id}")
    assert "Published" in live_row and teacher.email in live_row
    assert "Draft" in draft_row and teacher.email in draft_row
    assert texts(html, "td", class_="num") == ["1", "0"]  # students, in row order


@pytest.mark.parametrize(
    ("q", "status", "expected"),
    [
        ("algebra", "", ["Algebra 100%"]),
        ("100%", "", ["Algebra 100%"]),  # % is a character, not a wildcard
        ("_", "", ["Under_score"]),
        ("ann@", "", ["Under_score"]),  # the owner's address
        ("", "draft", ["Under_score"]),
        ("", "published", ["Algebra 100%"]),
    ],
)
def test_search_by_title_or_owner_and_filter_by_status(admin_client, teacher, q, status, expected):
    ann = make_user(Role.TEACHER, email="ann@school.org", name="Ann")
    make_course(teacher, title="Algebra 100%")
    make_course(ann, title="Under_score", published=False)
    resp = admin_client.get("/admin/courses", query_string={"q": q, "status": status})
    assert row_titles(resp.get_data(as_text=True)) == expected
    fragment = admin_client.get(
        "/admin/courses", query_string={"q": q, "status": status}, headers=hx("course-results")
    )
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="course-results">') and "<html" not in html
    assert row_titles(html) == expected


def test_pages_of_fifty(admin_client, teacher):
    many_courses(teacher, 120)
    first = admin_client.get("/admin/courses").get_data(as_text=True)
    assert len(row_titles(first)) == PAGE_SIZE and "Showing 1–50 of 120 courses" in first
    third = admin_client.get("/admin/courses?page=3").get_data(as_text=True)
    assert len(row_titles(third)) == 20 and 'rel="next"' not in third


def test_courses_page_budget_does_not_grow(admin_client, teacher, count_queries):
    """At most BUDGET statements and under 40 kB for 50 rows, with long titles and addresses,
    for 5 courses as for 300 with many students."""
    make_course(teacher)
    with count_queries() as small:
        assert admin_client.get("/admin/courses").status_code == 200
    long = "A rather long course title about everything one could want to learn {i:05d}"
    many_courses(make_user(Role.TEACHER, email="firstname.lastname.teacher@school.example.org"),
                 300, long)  # fmt: skip
    now = utcnow()
    db.session.execute(insert(User), [
        {"email": f"s{i}@example.com", "name": f"S {i}", "role": "student", "is_active": True,
         "session_epoch": 0, "created_at": now} for i in range(200)
    ])  # fmt: skip
    ids = db.session.scalars(select(User.id).where(User.role == "student")).all()
    course_ids = db.session.scalars(select(Course.id)).all()
    db.session.execute(insert(StudentCourse), [
        {"student_id": s, "course_id": c, "enrolled_at": now}
        for s in ids for c in course_ids[:20]
    ])  # fmt: skip
    db.session.commit()
    for url, headers in (
        ("/admin/courses", {}),
        ("/admin/courses?q=everything&status=draft", {}),
        ("/admin/courses?q=lastname", hx("course-results")),
    ):
        with count_queries() as big:
            resp = admin_client.get(url, headers=headers)
        assert resp.status_code == 200
        assert len(row_titles(resp.get_data(as_text=True))) == PAGE_SIZE
        assert big.count <= max(small.count, BUDGET) and big.count <= BUDGET, big.statements
        assert len(resp.data) < PAGE_BYTES, (url, len(resp.data))
        assert (
            "<form"
            not in resp.get_data(as_text=True).split('id="course-results"')[1].split("</main>")[0]
        )


def test_transfer_to_another_teacher_is_audited(admin_client, admin, teacher, student):
    course = make_course(teacher, title="Handed over")
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.commit()
    other = make_user(Role.TEACHER, email="next@school.org", name="Next Teacher")
    resp = admin_client.post(
        f"/admin/courses/{course.id}/transfer", data={"to_email": "Next@School.org"}
    )
    assert resp.status_code == 303
    assert db.session.get(Course, course.id).user_id == other.id
    assert db.session.scalar(select(func.count(StudentCourse.id))) == 1  # students stay
    [event] = events("admin.course_transferred")
    assert (event.actor_id, event.target_user_id) == (admin.id, teacher.id)
    assert event.details == {
        "course_id": course.id, "title": "Handed over", "to_user_id": other.id,
        "to_email": "next@school.org",
    }  # fmt: skip
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "now belongs to Next Teacher" in page


@pytest.mark.parametrize("to", ["student", "owner", "nobody@school.org"])
def test_transfer_only_to_another_active_teacher(admin_client, teacher, student, to):
    course = make_course(teacher)
    email = {"student": student.email, "owner": teacher.email}.get(to, to)
    resp = admin_client.post(f"/admin/courses/{course.id}/transfer", data={"to_email": email})
    assert resp.status_code == 422
    assert "another active teacher" in resp.get_data(as_text=True)
    assert db.session.get(Course, course.id).user_id == teacher.id
    assert events("admin.course_transferred") == []


def test_delete_is_audited(admin_client, admin, teacher):
    course = make_course(teacher, title="Gone soon", published=False)
    course_id = course.id
    page = admin_client.get(f"/admin/courses/{course_id}").get_data(as_text=True)
    assert f"/admin/courses/{course_id}/delete" in {a.get("action") for a in _forms(page)}
    resp = admin_client.post(f"/admin/courses/{course_id}/delete")
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/courses"
    assert db.session.get(Course, course_id) is None
    [event] = events("admin.course_deleted")
    assert (event.actor_id, event.target_user_id) == (admin.id, teacher.id)
    assert event.details == {"course_id": course_id, "title": "Gone soon"}


def _forms(html: str) -> list[dict]:
    from tests.test_learning_preview import tags

    return tags(html, "form")
