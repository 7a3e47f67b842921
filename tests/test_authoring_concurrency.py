"""Concurrent structural changes on PostgreSQL: positions stay dense and unique, never a 500."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, select

from tests.conftest import DATABASE_URL, login_as, make_course
from tests.test_learning_concurrency import (  # noqa: F401 - config_overrides is a fixture
    config_overrides,
    race_with_deletion,
    room_for_everyone,
)
from webapp.extensions import db
from webapp.models import CollapsedSection, ContentBlock, Section

pytestmark = pytest.mark.skipif(
    not DATABASE_URL.startswith("postgresql"), reason="real concurrency needs PostgreSQL"
)

N = 8


def _at_once(app, user, requests: list[tuple[str, dict]]) -> list[int]:
    """Each (url, data) POSTed by its own client at the same moment."""
    clients = []
    for _ in requests:
        c = app.test_client()
        login_as(c, user)
        clients.append(c)
    barrier = threading.Barrier(len(requests))
    statuses: list[int] = []
    lock = threading.Lock()

    def run(c, url, data):
        with app.app_context():
            barrier.wait(timeout=30)
            resp = c.post(url, data=data)
        with lock:
            statuses.append(resp.status_code)

    threads = [
        threading.Thread(target=run, args=(c, url, data))
        for c, (url, data) in zip(clients, requests, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return statuses


def test_concurrent_adds_and_moves_keep_positions_dense(app, teacher):
    course = make_course(teacher, sections=2, blocks=3, types=("lesson",))
    s1, s2 = [s.id for s in course.sections]
    moving = [b.id for b in course.sections[0].blocks]
    requests = [
        (f"/teach/sections/{s1}/blocks", {f"new-block-{s1}-title": f"New {i}"}) for i in range(N)
    ]
    requests += [(f"/teach/blocks/{b}/move", {"section_id": str(s2)}) for b in moving]
    requests += [(f"/teach/courses/{course.id}/sections", {"new-section-title": "More"})] * 3
    statuses = _at_once(app, teacher, requests)
    assert statuses == [303] * len(requests)
    db.session.expire_all()
    sections = db.session.scalars(
        select(Section).where(Section.course_id == course.id).order_by(Section.position)
    ).all()
    assert [s.position for s in sections] == list(range(5))
    for s in sections:
        positions = sorted(b.position for b in s.blocks)
        assert positions == list(range(len(positions)))
    assert db.session.query(ContentBlock).count() == 6 + N
    assert len(sections[1].blocks) == 6


def test_concurrent_collapses_of_one_section_store_one_row(app, teacher):
    """A double click or two tabs: every request succeeds, the state is one row (ON CONFLICT)."""
    course = make_course(teacher, sections=1, blocks=1, types=("lesson",))
    sid = course.sections[0].id
    url = f"/teach/sections/{sid}/collapse"
    for _ in range(3):
        statuses = _at_once(app, teacher, [(url, {"collapsed": "1"})] * N)
        assert statuses == [303] * N
        db.session.expire_all()
        assert db.session.query(CollapsedSection).filter_by(section_id=sid).count() == 1
    statuses = _at_once(app, teacher, [(url, {"collapsed": "0"})] * N)
    assert statuses == [303] * N
    assert db.session.query(CollapsedSection).count() == 0


@room_for_everyone
def test_block_changes_racing_the_deletion_of_their_section_are_not_found(app, teacher):
    """One tab deletes a section while others add a block to it, move its blocks, move a block
    into it and fold it: each waits for the deletion, then finds its section or block gone and
    answers 404 (not a foreign-key violation or a lost index: 500). Nothing is left behind."""
    course = make_course(teacher, sections=2, blocks=2, types=("lesson",))
    (gone, kept), course_id = course.sections, course.id
    gone_id, kept_id, moving = gone.id, kept.id, gone.blocks[0].id
    incoming = kept.blocks[0].id
    requests = [
        (f"/teach/sections/{gone_id}/blocks", {f"new-block-{gone_id}-title": "New"}),
        (f"/teach/blocks/{moving}/move", {"direction": "down"}),
        (f"/teach/blocks/{incoming}/move", {"section_id": str(gone_id)}),
        (f"/teach/sections/{gone_id}/collapse", {"collapsed": "1"}),
    ]
    requests = [(teacher, url, data) for url, data in requests] * (N // len(requests))

    statuses = race_with_deletion(app, teacher, f"/teach/sections/{gone_id}/delete", requests)
    assert statuses == [404] * len(requests)
    db.session.expire_all()
    sections = db.session.scalars(select(Section).where(Section.course_id == course_id)).all()
    assert [(s.id, s.position) for s in sections] == [(kept_id, 0)]
    assert sorted(b.position for b in sections[0].blocks) == [0, 1]
    assert db.session.query(ContentBlock).count() == 2
    assert db.session.query(CollapsedSection).count() == 0


def test_editing_a_block_deleted_meanwhile_is_a_404_not_a_500(app, teacher):
    """The editor's form was loaded, then the block was deleted elsewhere: the save finds no row
    to update (StaleDataError in the ORM) and answers the 404 a later request would get."""
    from webapp.services import NotFound, blocks

    course = make_course(teacher, sections=1, blocks=1)
    block = course.sections[0].blocks[0]
    assert block.section.course_id == course.id  # loaded, as the route's guard loads it
    with db.engine.begin() as elsewhere:  # another request, committed
        elsewhere.execute(delete(ContentBlock).where(ContentBlock.id == block.id))
    with pytest.raises(NotFound):
        blocks.update_block(block, "New title", "lesson", None, "Some text")
