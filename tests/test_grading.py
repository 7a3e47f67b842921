"""Grading: the queue, grade validation, optimistic concurrency, the email, the gradebook."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from sqlalchemy import func, insert, select, text, update

from tests.conftest import ON_REAL_SERVERS, at_once, login_as, make_course, make_user
from tests.test_teaching import HX, analyze, blocks_of, complete, enrol, gradable_of
from webapp.extensions import db
from webapp.models import (
    CompletedContentBlock,
    ContentBlock,
    OutboxMessage,
    Role,
    Section,
    StudentCourse,
    User,
    utcnow,
)
from webapp.services import gradebook, grading, grading_queue

PANEL = {**HX, "HX-Target": "grading-panel"}


@pytest.fixture
def course(teacher):
    return make_course(teacher, title="Biology", sections=2, blocks=5)


@pytest.fixture
def queue(course, teacher):
    """Three submissions from three students, oldest first: Ann, Ben, Cy."""
    gradable = gradable_of(course)
    subs = []
    for i, name in enumerate(("Ann", "Ben", "Cy")):
        s = make_user(Role.STUDENT, name=name, email=f"{name.lower()}@example.com")
        enrol(s, course)
        subs.append(
            complete(
                s,
                gradable[i % len(gradable)],
                minutes_ago=30 - i,
                url="https://example.com/" + name,
                feedback=f"{name}'s remarks",
            )
        )
    return subs


def version(sub) -> str:
    db.session.refresh(sub)
    return grading.version_of(sub)


def post_grade(client, course, sub, grade="85", comment="Good", action="save", ver=None, **kw):
    data = {"grade": grade, "comment": comment, "action": action}
    data["version"] = ver if ver is not None else version(sub)
    return client.post(f"/teach/courses/{course.id}/grading/{sub.id}", data=data, **kw)


# --- the queue ---------------------------------------------------------------------------------


def waiting(html: str) -> str:
    """The count in the queue's heading (the span that Save & next swaps out of band)."""
    return re.search(r'<span id="queue-waiting"[^>]*>([^<]*)</span>', html).group(1)


def test_queue_page_shows_the_oldest_first_with_a_safe_link(client, course, teacher, queue):
    login_as(client, teacher)
    html = client.get(f"/teach/courses/{course.id}/grading").text
    assert waiting(html) == "3"
    assert html.index(">Ann<") < html.index(">Ben<") < html.index(">Cy<")
    panel = html[html.index('id="grading-panel"') :]
    assert "Ann" in panel and "Ann&#39;s remarks" in panel
    assert 'href="https://example.com/Ann" rel="noopener noreferrer nofollow"' in panel
    assert 'data-shortcut="next"' in panel
    assert "Keyboard shortcuts" in html and "<kbd>j</kbd>" in html
    assert re.search(r'id="grading-count"[^>]*>.*3', html)


def test_unsafe_submission_urls_are_not_links(client, course, teacher, student):
    enrol(student, course)
    sub = complete(student, gradable_of(course)[0], url="javascript:alert(1)")
    login_as(client, teacher)
    html = client.get(f"/teach/courses/{course.id}/grading/{sub.id}").text
    assert 'href="javascript' not in html
    assert "<code>javascript:alert(1)</code>" in html


def test_panel_fragment_for_htmx_and_page_otherwise(client, course, teacher, queue):
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/grading/{queue[1].id}"
    frag = client.get(url, headers=PANEL)
    assert frag.text.lstrip().startswith('<section id="grading-panel"')
    assert "<html" not in frag.text
    assert "grading-queue" not in frag.text  # the queue beside the panel is not sent again
    assert f'data-current="{queue[1].id}"' in frag.text  # teaching.js marks it in the queue
    assert "HX-Target" in frag.headers["Vary"]
    page = client.get(url)
    assert "<html" in page.text and "Ben" in page.text and 'id="grading-queue"' in page.text
    # Previous and Next are looked up when followed
    assert f'href="{url}/previous"' in frag.text and f'href="{url}/next"' in frag.text


def test_previous_and_next_are_found_when_followed(client, course, teacher, queue):
    ann, ben, cy = queue
    login_as(client, teacher)
    base = f"/teach/courses/{course.id}/grading"
    resp = client.get(f"{base}/{ben.id}/next", headers=PANEL)
    assert resp.status_code == 200 and "Cy&#39;s remarks" in resp.text
    assert resp.headers["HX-Push-Url"] == f"{base}/{cy.id}"  # the submission, not the link
    resp = client.get(f"{base}/{ben.id}/previous", headers=PANEL)
    assert "Ann&#39;s remarks" in resp.text and resp.headers["HX-Push-Url"] == f"{base}/{ann.id}"
    # Next after the newest goes round to the oldest; nothing is before the oldest
    assert "Ann&#39;s remarks" in client.get(f"{base}/{cy.id}/next", headers=PANEL).text
    resp = client.get(f"{base}/{ann.id}/previous", headers=PANEL)
    assert "Ann&#39;s remarks" in resp.text
    assert "oldest submission waiting" in resp.headers["HX-Trigger"]
    # without JavaScript: a redirect to the submission's own page
    resp = client.get(f"{base}/{ann.id}/next")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"{base}/{ben.id}")
    # a graded submission still has its neighbours (by its place in time)
    complete_grade = grading.grade(course, ben.id, teacher, 80, "", version(ben))
    assert complete_grade.grade == 80
    assert "Cy&#39;s remarks" in client.get(f"{base}/{ben.id}/next", headers=PANEL).text
    # another course's submission, or none at all: 404
    assert client.get(f"{base}/99999999/next").status_code == 404


def test_changed_since_graded_returns_to_the_queue(client, course, teacher, student):
    enrol(student, course)
    sub = complete(student, gradable_of(course)[0], grade=70, grader=teacher)
    assert grading.queue_count(course.id) == 0
    sub.updated_at = utcnow()  # the student edits their submission
    db.session.commit()
    assert grading.queue_count(course.id) == 1
    login_as(client, teacher)
    html = client.get(f"/teach/courses/{course.id}/grading").text
    assert "changed since graded" in html


def test_queue_counts_for_a_dashboard(course, teacher, queue, other_teacher):
    assert grading_queue.queue_counts(teacher) == {course.id: 3}
    assert grading_queue.queue_counts(other_teacher) == {}


def test_counts_stop_at_the_cap(course, teacher, student):
    """Counting is constant work: past COUNT_CAP it says "100+" (docs/teaching.md)."""
    enrol(student, course)
    gradable = gradable_of(course)
    for i in range(grading_queue.COUNT_CAP + 5):
        s = make_user(Role.STUDENT)
        enrol(s, course)
        complete(s, gradable[i % len(gradable)])
    count = grading_queue.queue_count(course.id)
    assert count == grading_queue.COUNT_CAP + 1 and count.capped and str(count) == "100+"
    assert str(grading_queue.queue_counts(teacher)[course.id]) == "100+"
    assert str(grading_queue.Count(3)) == "3"


# --- grading -----------------------------------------------------------------------------------


def test_grade_and_advance_returns_the_next_in_the_queue(course, teacher, queue):
    ann, ben, cy = queue
    done, target, left = grading.grade_and_advance(
        course, ann.id, teacher, 80, "ok", version(ann), advance=True
    )
    assert (done.id, done.grade, target.id, left) == (ann.id, 80, ben.id, 2)
    assert (target.student.name, target.feedback) == ("Ben", "Ben's remarks")
    done, target, left = grading.grade_and_advance(
        course, ben.id, teacher, 60, "", version(ben), advance=False
    )
    assert target.id == done.id == ben.id and (target.grade, target.grader) == (60, teacher.name)
    done, target, left = grading.grade_and_advance(
        course, cy.id, teacher, 90, "", version(cy), advance=True
    )
    assert target is None and left == 0 and grading.queue_count(course.id) == 0


def test_the_queue_is_oldest_first_across_blocks_and_skips_removed_students(
    client, course, teacher
):
    """The queue merges one list per gradable block: its order is (updated_at, id) overall."""
    gradable = gradable_of(course)
    people = [make_user(Role.STUDENT, name=f"P{i}") for i in range(4)]
    for s in people:
        enrol(s, course)
    made = []  # (minutes ago, id): blocks interleaved in time
    for i, s in enumerate(people):
        for j, block in enumerate(gradable):
            made.append((40 - i - 10 * j, complete(s, block, minutes_ago=40 - i - 10 * j).id))
    gone = make_user(Role.STUDENT)  # work of a student no longer enrolled waits nowhere
    complete(gone, gradable[0], minutes_ago=500)
    expected = [cid for _, cid in sorted(made, key=lambda m: (-m[0], m[1]))]
    items, count = grading_queue.queue_list(course.id)
    assert [i.id for i in items] == expected and count == len(expected)
    login_as(client, teacher)
    base = f"/teach/courses/{course.id}/grading"
    walked, at = [], expected[0]
    for _ in expected:
        walked.append(at)
        resp = client.get(f"{base}/{at}/next", headers=PANEL)
        at = int(resp.headers["HX-Push-Url"].rsplit("/", 1)[1])
    assert walked == expected and at == expected[0]  # and round again


def test_save_cell_keeps_the_comment_and_returns_the_averages(course, teacher, queue):
    ann, ben, _ = queue
    ann.grader_comment = "kept"
    db.session.commit()
    loaded = version(ann)
    saved = gradebook.save_cell(course, ann.id, teacher, 40, loaded)
    assert (saved.graded.grade, saved.graded.comment) == (40, "kept")
    assert (saved.cell.grade, saved.row_avg, saved.col_avg) == (40, 40.0, 40.0)
    assert db.session.get(CompletedContentBlock, ann.id).grader_comment == "kept"
    with pytest.raises(grading.StaleGrade):
        gradebook.save_cell(course, ann.id, teacher, 50, loaded)


def test_save_grades_and_emails_the_student_once(client, course, teacher, queue, mailbox):
    login_as(client, teacher)
    sub = queue[0]
    resp = post_grade(client, course, sub, "85", "Well argued", headers=PANEL)
    assert resp.status_code == 200
    assert "Saved: 85 for Ann" in resp.headers["HX-Trigger"]
    assert 'id="grading-count" class="count" hx-swap-oob="true"' in resp.text
    row = db.session.get(CompletedContentBlock, sub.id)
    assert (row.grade, row.grader_comment, row.graded_by_id) == (85, "Well argued", teacher.id)
    assert row.graded_at is not None
    assert grading.queue_count(course.id) == 2
    messages = mailbox.to("ann@example.com")
    assert len(messages) == 1
    msg = messages[0]
    block = db.session.get(ContentBlock, sub.content_block_id)
    assert msg["Subject"] == f"Graded: {block.title} (85/100)"
    body = mailbox.text(msg)
    assert "Grade: 85 / 100" in body and "Well argued" in body
    assert f"http://lectern.test/courses/{course.id}/blocks/{block.id}" in body
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert f'href="http://lectern.test/courses/{course.id}/blocks/{block.id}"' in html


def test_links_in_the_email_ignore_the_request_host(client, course, teacher, queue):
    login_as(client, teacher)
    # the test client's requests come to http://localhost/; the link uses BASE_URL
    assert post_grade(client, course, queue[0]).status_code == 303
    body = db.session.scalar(select(OutboxMessage.text_body))
    assert "localhost" not in body and "http://lectern.test/courses/" in body


def test_save_and_next_swaps_in_the_next_submission(client, course, teacher, queue):
    login_as(client, teacher)
    resp = post_grade(client, course, queue[0], "90", action="next", headers=PANEL)
    assert resp.status_code == 200
    panel = resp.text[: resp.text.index('id="grading-count"')]
    assert "Ben" in panel and "Ann&#39;s remarks" not in panel
    assert "data-autofocus" in panel
    assert f'data-graded="{queue[0].id}"' in panel  # teaching.js marks Ann in the queue
    assert '<span id="queue-waiting" hx-swap-oob="true">2</span>' in resp.text
    assert re.search(r'id="grading-count"[^>]*hx-swap-oob="true">.*2', resp.text)
    assert "grading-queue" not in resp.text  # the list is not read again
    post_grade(client, course, queue[1], "80", action="next", headers=PANEL)
    resp = post_grade(client, course, queue[2], "70", action="next", headers=PANEL)
    assert "Nothing to grade" in resp.text
    # the queue beside the panel is emptied out of band
    assert 'id="grading-queue" class="card grading-queue"' in resp.text
    assert "Nothing is waiting" in resp.text
    assert grading.queue_count(course.id) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 3


def test_save_and_next_without_htmx_redirects_to_the_next(client, course, teacher, queue):
    login_as(client, teacher)
    resp = post_grade(client, course, queue[0], "90", action="next")
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(f"/grading/{queue[1].id}")
    resp = post_grade(client, course, queue[1], "90", action="save")
    assert resp.headers["Location"].endswith(f"/grading/{queue[1].id}")
    assert "Saved: 90 for Ben" in client.get(resp.headers["Location"]).text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("101", "from 0 to 100"),
        ("-1", "from 0 to 100"),
        ("A+", "Not a valid integer"),
        ("1e9", "Not a valid integer"),
        ("85.5", "Not a valid integer"),
        ("", "Enter a grade"),
        ("99999999999999999999", "from 0 to 100"),
    ],
)
@pytest.mark.parametrize("hx", [True, False], ids=["htmx", "plain"])
def test_bad_grades_are_refused_next_to_the_field(
    client, course, teacher, queue, value, message, hx
):
    login_as(client, teacher)
    resp = post_grade(client, course, queue[0], value, headers=PANEL if hx else {})
    assert resp.status_code == 422
    html = resp.text
    assert ("<html" in html) is not hx
    error = re.search(r'<p class="error" id="grade-error">([^<]*)</p>', html)
    assert error and message in error.group(1)
    assert 'aria-invalid="true"' in html
    assert db.session.get(CompletedContentBlock, queue[0].id).grade is None
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_a_mangled_version_is_refused(client, course, teacher, queue):
    login_as(client, teacher)
    resp = post_grade(client, course, queue[0], ver="garbage", headers=PANEL)
    assert resp.status_code == 422
    assert db.session.get(CompletedContentBlock, queue[0].id).grade is None


def test_stale_version_gives_409_with_the_new_state(client, course, teacher, queue):
    login_as(client, teacher)
    sub = queue[0]
    loaded = version(sub)
    post_grade(client, course, sub, "60", "First grader", ver=loaded, headers=PANEL)
    resp = post_grade(client, course, sub, "95", "Second grader", ver=loaded, headers=PANEL)
    assert resp.status_code == 409
    assert "changed since you opened it" in resp.text
    assert "graded <strong>60</strong>" in resp.text and "First grader" in resp.text
    assert 'value="95"' in resp.text  # the grader's input is kept to save again on purpose
    row = db.session.get(CompletedContentBlock, sub.id)
    assert (row.grade, row.grader_comment) == (60, "First grader")
    assert f'value="{grading.version_of(row)}"' in resp.text
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    # saving again with the new version is deliberate and works
    resp = post_grade(client, course, sub, "95", "Second grader", headers=PANEL)
    assert resp.status_code == 200
    assert db.session.get(CompletedContentBlock, sub.id).grade == 95


def test_student_edit_while_grading_gives_409(client, course, teacher, queue):
    login_as(client, teacher)
    sub = queue[0]
    loaded = version(sub)
    sub.url = "https://example.com/new-version"
    sub.updated_at = utcnow()
    db.session.commit()
    resp = post_grade(client, course, sub, "70", ver=loaded)
    assert resp.status_code == 409
    assert "https://example.com/new-version" in resp.text
    assert db.session.get(CompletedContentBlock, sub.id).grade is None


def _version_in(html: str) -> str:
    """The version the grading form carries (its hidden input, whatever the attribute order)."""
    field = re.search(r'<input[^>]*name="version"[^>]*>', html).group(0)
    return re.search(r'value="([^"]*)"', field).group(1)


def _student_client(app, student):
    other = app.test_client()
    login_as(other, student)
    return other


def test_version_is_an_integer_every_update_bumps(course, teacher, student):
    """Every UPDATE of a completion, the ORM's or a bulk one, makes a new version."""
    enrol(student, course)
    sub = complete(student, gradable_of(course)[0])
    assert version(sub) == "1"
    db.session.execute(
        update(CompletedContentBlock)
        .where(CompletedContentBlock.id == sub.id)
        .values(url="https://example.com/bulk", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    assert version(sub) == "2"
    grading.grade(course, sub.id, teacher, 50, None, "2")
    assert version(sub) == "3"
    sub.grader_comment = "changed by the ORM"
    db.session.commit()
    assert version(sub) == "4"


def test_student_edit_on_the_learning_page_makes_an_opened_grade_stale(
    app, client, course, teacher, student
):
    """The student changes their work (learning's bulk UPDATE) after the teacher opened it."""
    enrol(student, course)
    block = gradable_of(course)[0]
    sub = complete(student, block, url="https://example.com/first")
    login_as(client, teacher)
    panel = client.get(f"/teach/courses/{course.id}/grading/{sub.id}", headers=PANEL).text
    loaded = _version_in(panel)
    edit = _student_client(app, student).post(
        f"/courses/{course.id}/blocks/{block.id}/completion",
        data={"url": "https://example.com/second", "remarks": "better now"},
    )
    assert edit.status_code == 303
    resp = post_grade(client, course, sub, "70", ver=loaded, headers=PANEL)
    assert resp.status_code == 409
    assert "https://example.com/second" in resp.text
    assert _version_in(resp.text) != loaded
    assert db.session.get(CompletedContentBlock, sub.id).grade is None
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_work_undone_and_submitted_again_never_takes_an_opened_grade(
    app, client, course, teacher, student
):
    """Undo deletes the row and completing again inserts one: it never gets the old id (SQLite
    would reuse the highest id), so the grade the teacher opened cannot land on the new work."""
    enrol(student, course)
    block = gradable_of(course)[0]
    old_id = complete(student, block, url="https://example.com/first").id
    login_as(client, teacher)
    loaded = _version_in(client.get(f"/teach/courses/{course.id}/grading/{old_id}").text)
    learner = _student_client(app, student)
    assert learner.post(f"/courses/{course.id}/blocks/{block.id}/undo").status_code == 303
    again = learner.post(
        f"/courses/{course.id}/blocks/{block.id}/complete",
        data={"url": "https://example.com/redone", "remarks": ""},
    )
    assert again.status_code == 303
    resp = client.post(
        f"/teach/courses/{course.id}/grading/{old_id}",
        data={"grade": "70", "comment": "", "action": "save", "version": loaded},
    )
    assert resp.status_code in (404, 409)
    redone = db.session.scalar(select(CompletedContentBlock))
    assert redone.id != old_id and redone.grade is None


@pytest.mark.skipif(not ON_REAL_SERVERS, reason="real concurrency needs PostgreSQL")
def test_concurrent_graders_on_postgresql_one_wins(app, course, teacher, queue):
    sub = queue[0]
    loaded = version(sub)
    graders = [teacher] * 6
    clients = []
    for _ in graders:
        c = app.test_client()
        login_as(c, teacher)
        clients.append(c)
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []
    lock = threading.Lock()

    def grade_it(c, value):
        with app.app_context():
            barrier.wait()
            resp = c.post(
                f"/teach/courses/{course.id}/grading/{sub.id}",
                data={"grade": str(value), "comment": f"by {value}", "version": loaded},
                headers=PANEL,
            )
        with lock:
            statuses.append(resp.status_code)

    threads = [threading.Thread(target=grade_it, args=(c, 50 + i)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(statuses) == [200] + [409] * (len(clients) - 1)
    db.session.expire_all()
    row = db.session.get(CompletedContentBlock, sub.id)
    assert row.grader_comment == f"by {row.grade}"
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def _student_of(sub) -> User:
    return db.session.get(User, sub.student_id)


def _edit_work(client, course, sub, url: str):
    return client.post(
        f"/courses/{course.id}/blocks/{sub.content_block_id}/completion",
        data={"url": url, "remarks": "edited"},
        headers={**HX, "HX-Target": "completion"},
    )


@pytest.mark.skipif(not ON_REAL_SERVERS, reason="row locks need PostgreSQL")
def test_a_grade_saved_while_the_students_edit_waits_still_reads_as_changed(
    app, course, teacher, queue
):
    """The edit reads its clock, then waits for the row a grader is saving with a later clock:
    after both, the grade is on the old work, so the new work must wait in the queue again."""
    sub = queue[0]
    student_client = _student_client(app, _student_of(sub))
    later = utcnow() + dt.timedelta(seconds=5)  # the grader's clock, after the edit's
    grader = db.engine.connect()
    grader.execute(
        update(CompletedContentBlock)
        .where(CompletedContentBlock.id == sub.id)
        .values(grade=70, graded_at=later, graded_by_id=teacher.id)
    )  # not committed: the row stays locked
    answers = []

    def edit():
        with app.app_context():
            answers.append(_edit_work(student_client, course, sub, "https://example.com/v2"))

    thread = threading.Thread(target=edit)
    thread.start()
    _wait_for_a_lock_wait()
    grader.commit()
    grader.close()
    thread.join(timeout=30)
    assert [r.status_code for r in answers] == [200]
    db.session.expire_all()
    row = db.session.get(CompletedContentBlock, sub.id)
    assert (row.grade, row.url) == (70, "https://example.com/v2")
    assert row.changed_since_graded and row.graded_at < row.updated_at


def _wait_for_a_lock_wait() -> None:
    """Until some backend of this database waits for a row lock (the edit, blocked)."""
    for _ in range(300):
        with db.engine.connect() as conn:
            waiting = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        threading.Event().wait(0.02)
    raise AssertionError("the edit never waited for the row")


@pytest.mark.skipif(not ON_REAL_SERVERS, reason="real concurrency needs PostgreSQL")
def test_grades_racing_student_edits_follow_the_optimistic_rule(app, course, teacher, queue):
    """Released at once, ten times: a grade lands only on the version the grader loaded; when
    the student's edit comes after it, the work reads as changed since graded. Never a 5xx."""
    sub = queue[0]
    student = _student_of(sub)
    for round_ in range(10):
        loaded = version(sub)
        tutor, learner = app.test_client(), app.test_client()
        login_as(tutor, teacher)
        login_as(learner, student)
        url = f"https://example.com/round-{round_}"
        mails = db.session.scalar(select(func.count()).select_from(OutboxMessage))

        def send(c, i, url=url, loaded=loaded, round_=round_):
            if i == 0:
                return c.post(
                    f"/teach/courses/{course.id}/grading/{sub.id}",
                    data={"grade": str(round_), "comment": "", "version": loaded},
                    headers=PANEL,
                )
            return _edit_work(c, course, sub, url)

        statuses = at_once(app, [tutor, learner], send)
        db.session.expire_all()
        row = db.session.get(CompletedContentBlock, sub.id)
        new_mails = db.session.scalar(select(func.count()).select_from(OutboxMessage)) - mails
        assert row.url == url and row.version == int(loaded) + 1 + (row.grade == round_)
        if row.grade == round_:  # the grade won the row: the edit came after it
            assert sorted(statuses) == [200, 200] and new_mails == 1
            assert row.changed_since_graded
        else:  # the edit won: the grader's version was stale
            assert sorted(statuses) == [200, 409] and new_mails == 0


def test_queue_query_budget_does_not_grow(client, course, teacher, queue, count_queries):
    """(tests/test_teaching_budget.py measures these at size, with the rows read.)"""
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/grading"
    with count_queries() as small:
        client.get(url)
    for _ in range(30):
        s = make_user(Role.STUDENT)
        enrol(s, course)
        complete(s, gradable_of(course)[1])
    with count_queries() as big:
        client.get(url)
    assert big.count == small.count == 4
    data = {"grade": "85", "comment": "", "action": "next", "version": version(queue[0])}
    url = f"/teach/courses/{course.id}/grading/{queue[0].id}"  # (read before counting)
    with count_queries() as post:
        client.post(url, data=data, headers=PANEL)
    assert post.count == (4 if db.engine.dialect.name == "postgresql" else 5), [
        " ".join(x.split())[:70] for x in post.statements
    ]


# --- the gradebook -----------------------------------------------------------------------------


def test_gradebook_shows_grades_marks_and_averages(client, course, teacher):
    a = make_user(Role.STUDENT, name="Ada")
    b = make_user(Role.STUDENT, name="Bo")
    for s in (a, b):
        enrol(s, course)
    quiz, assignment = gradable_of(course)[:2]
    lesson = next(x for x in blocks_of(course) if not x.is_gradable)
    complete(a, quiz, grade=80, grader=teacher)
    complete(a, assignment, grade=60, grader=teacher)
    complete(b, quiz, grade=90, grader=teacher)
    waiting = complete(b, assignment)
    complete(a, lesson)
    login_as(client, teacher)
    html = client.get(f"/teach/courses/{course.id}/gradebook").text
    assert re.search(rf'<span id="avg-s{a.id}">70.0</span>', html)
    assert re.search(rf'<span id="avg-s{b.id}">90.0</span>', html)
    assert re.search(rf'<span id="avg-b{quiz.id}">85.0</span>', html)
    assert re.search(rf'<span id="avg-b{assignment.id}">60.0</span>', html)
    assert "are of the grades on this page" in html and "average of graded work" in html
    assert f'id="cell-{waiting.id}"' in html and ">grade</a>" in html
    assert '<td class="done">done</td>' in html
    assert '<td class="none">–</td>' in html
    assert f"/teach/courses/{course.id}/students/{a.id}" in html
    assert "gradebook.csv" in html and "progress.csv" in html


def test_gradebook_cell_edit_in_place(client, course, teacher, student, mailbox):
    enrol(student, course)
    quiz = gradable_of(course)[0]
    done = complete(student, quiz, grade=50, grader=teacher)
    done.grader_comment = "Keep this"
    db.session.commit()
    login_as(client, teacher)
    base = f"/teach/courses/{course.id}/gradebook/cells/{done.id}"
    cell = {**HX, "HX-Target": f"cell-{done.id}"}
    form = client.get(base, headers=cell)
    assert form.status_code == 200
    assert form.text.lstrip().startswith("<form") and "<html" not in form.text
    assert f'name="c{done.id}-grade"' in form.text and 'value="50"' in form.text
    ver = re.search(rf'name="c{done.id}-version" type="hidden" value="([^"]+)"', form.text)
    ver = ver.group(1) if ver else re.search(r'type="hidden" value="(\d+)"', form.text).group(1)
    bad = client.post(
        base, data={f"c{done.id}-grade": "101", f"c{done.id}-version": ver}, headers=cell
    )
    assert bad.status_code == 422 and "from 0 to 100" in bad.text
    ok = client.post(
        base, data={f"c{done.id}-grade": "75", f"c{done.id}-version": ver}, headers=cell
    )
    assert ok.status_code == 200
    assert ">75</a>" in ok.text
    assert f'<span id="avg-s{student.id}" hx-swap-oob="true">75.0</span>' in ok.text
    assert f'<span id="avg-b{quiz.id}" hx-swap-oob="true">75.0</span>' in ok.text
    row = db.session.get(CompletedContentBlock, done.id)
    assert (row.grade, row.grader_comment) == (75, "Keep this")
    assert len(mailbox.to(student.email)) == 1
    again = client.post(
        base, data={f"c{done.id}-grade": "10", f"c{done.id}-version": ver}, headers=cell
    )
    assert again.status_code == 409 and "Now: 75" in again.text
    assert db.session.get(CompletedContentBlock, done.id).grade == 75
    view = client.get(base + "/view", headers=cell)
    assert ">75</a>" in view.text


def test_gradebook_cell_without_htmx(client, course, teacher, student):
    enrol(student, course)
    done = complete(student, gradable_of(course)[0])
    login_as(client, teacher)
    base = f"/teach/courses/{course.id}/gradebook/cells/{done.id}"
    page = client.get(base)
    assert "<html" in page.text and "hx-post" not in page.text.split('class="cell-form"')[0][-300:]
    resp = client.post(base, data={f"c{done.id}-grade": "66", f"c{done.id}-version": version(done)})
    assert resp.status_code == 303  # back to the page that shows the cell
    assert resp.headers["Location"].endswith(
        f"/teach/courses/{course.id}/gradebook?page=1&blocks=1"
    )
    assert db.session.get(CompletedContentBlock, done.id).grade == 66
    assert f'href="/teach/courses/{course.id}/gradebook?page=1&amp;blocks=1">Cancel' in page.text


def _bulk_course(teacher, students: int, blocks: int, fill: float = 0.5):
    course = make_course(teacher, title="Big", sections=1, blocks=0)
    section = db.session.scalar(select(Section).where(Section.course_id == course.id))
    db.session.execute(
        insert(ContentBlock),
        [
            {
                "section_id": section.id,
                "title": f"B{i}",
                "type": ("quiz", "assignment", "lesson")[i % 3],
                "position": i,
                "description": "",
                "content": "",
            }
            for i in range(blocks)
        ],
    )
    tag = f"c{course.id}"
    db.session.execute(
        insert(User),
        [
            {
                "email": f"{tag}-s{i}@example.com",
                "name": f"Student {i:05}",
                "role": "student",
                "is_active": True,
                "session_epoch": 0,
            }
            for i in range(students)
        ],
    )
    sids = db.session.scalars(select(User.id).where(User.email.like(f"{tag}-s%"))).all()
    bids = db.session.scalars(
        select(ContentBlock.id).where(ContentBlock.section_id == section.id)
    ).all()
    db.session.execute(
        insert(StudentCourse), [{"student_id": s, "course_id": course.id} for s in sids]
    )
    now = utcnow()
    every = max(1, round(1 / fill)) if fill else 0
    rows = [
        {
            "student_id": s,
            "content_block_id": b,
            "completed_at": now,
            "updated_at": now,
            "grade": (s + b) % 101,
            "graded_at": now,
            "feedback": "",
            "grader_comment": "",
        }
        for i, s in enumerate(sids)
        for j, b in enumerate(bids)
        if every and (i + j) % every == 0
    ]
    for k in range(0, len(rows), 10000):
        db.session.execute(insert(CompletedContentBlock), rows[k : k + 10000])
    db.session.commit()
    analyze()
    return course


def test_gradebook_query_budget_does_not_grow(client, teacher, count_queries):
    small = _bulk_course(teacher, 3, 4)
    big = _bulk_course(teacher, 120, 30)
    login_as(client, teacher)
    with count_queries() as q_small:
        assert client.get(f"/teach/courses/{small.id}/gradebook").status_code == 200
    with count_queries() as q_big:
        assert client.get(f"/teach/courses/{big.id}/gradebook?page=2").status_code == 200
    assert q_big.count == q_small.count <= 12


def test_gradebook_pages_out_of_range_show_the_nearest(client, teacher):
    course = _bulk_course(teacher, 120, 45)
    login_as(client, teacher)
    base = f"/teach/courses/{course.id}/gradebook"
    for page, shown in (
        ("99", "101–120"),
        ("0", "1–25"),
        ("-2", "1–25"),
        ("x", "1–25"),
        ("2", "26–50"),
    ):
        html = client.get(f"{base}?page={page}").text
        assert f"Students {shown} of 120" in html, page
    assert "Student 00119" in client.get(f"{base}?page=99").text
    for blocks, shown in (("9", "41–45"), ("0", "1–20"), ("2", "21–40")):
        html = client.get(f"{base}?blocks={blocks}").text
        assert f"Blocks {shown} of 45" in html, blocks


def test_gradebook_moves_in_both_directions_with_links_and_htmx(client, teacher):
    course = _bulk_course(teacher, 60, 45)
    login_as(client, teacher)
    base = f"/teach/courses/{course.id}/gradebook"
    html = client.get(f"{base}?page=2&blocks=2").text
    for rel, page, blocks in (("prev", 1, 2), ("next", 3, 2), ("prev", 2, 1), ("next", 2, 3)):
        href = f"{base}?page={page}&amp;blocks={blocks}"
        assert re.search(rf'<a href="{re.escape(href)}" hx-get="[^"]+" [^>]*rel="{rel}"', html)
    frag = client.get(f"{base}?page=3&blocks=3", headers={**HX, "HX-Target": "gradebook-view"})
    assert frag.text.lstrip().startswith('<div id="gradebook-view">')
    assert "Students 51–60 of 60" in frag.text and "Blocks 41–45 of 45" in frag.text
    assert "<html" not in frag.text and "course-tabs" not in frag.text
    assert "Student 00059" in frag.text and ">B43<" in frag.text and ">B39<" not in frag.text
