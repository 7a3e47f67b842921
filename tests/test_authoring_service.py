"""The authoring service: each operation, positions kept dense, and reorder edge cases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import make_course
from webapp.extensions import db
from webapp.models import (
    CollapsedSection,
    CompletedContentBlock,
    ContentBlock,
    Course,
    Section,
    StudentCourse,
)
from webapp.services import Conflict, Invalid, NotAllowed, NotFound, access
from webapp.services import blocks as block_svc
from webapp.services import courses as svc
from webapp.services.dashboard import teacher_dashboard


def layout(course_id: int) -> list[tuple[int, list[int]]]:
    """[(section id, [block ids in order])] as stored, checking positions are dense."""
    db.session.expire_all()
    sections = (
        db.session.execute(
            select(Section).where(Section.course_id == course_id).order_by(Section.position)
        )
        .scalars()
        .all()
    )
    assert [s.position for s in sections] == list(range(len(sections)))
    result = []
    for s in sections:
        blocks = sorted(s.blocks, key=lambda b: b.position)
        assert [b.position for b in blocks] == list(range(len(blocks)))
        result.append((s.id, [b.id for b in blocks]))
    return result


def test_create_course_is_a_draft_of_the_teacher(teacher):
    course = svc.create_course(teacher, "  Algebra  ", "Numbers")
    assert (course.title, course.is_published, course.user_id) == ("Algebra", False, teacher.id)


@pytest.mark.parametrize("title", ["", "   ", "x" * 201])
def test_create_course_refuses_bad_titles(teacher, title):
    with pytest.raises(Invalid):
        svc.create_course(teacher, title)
    assert db.session.scalar(select(Course.id)) is None


def test_only_teachers_create_courses(student, admin):
    for user in (student, admin):
        with pytest.raises(NotAllowed):
            svc.create_course(user, "Mine")


def test_guards_hide_other_peoples_things(teacher, other_teacher, admin):
    course = make_course(teacher, published=False)
    section = course.sections[0]
    block = section.blocks[0]
    for guard, ident in (
        (access.course_for_owner, course.id),
        (access.section_for_owner, section.id),
        (access.block_for_owner, block.id),
    ):
        assert guard(ident, teacher).id == ident
        for user in (other_teacher, admin):
            with pytest.raises(NotFound):
                guard(ident, user)
    assert access.course_for_manager(course.id, admin).id == course.id
    with pytest.raises(NotFound):
        access.course_for_manager(course.id, other_teacher)


def test_a_demoted_owner_loses_the_guards(teacher, admin):
    """Roles are read per request: a teacher made a student keeps no owner rights."""
    course = make_course(teacher, published=False)
    section = course.sections[0]
    block = section.blocks[0]
    teacher.role = "student"
    db.session.commit()
    for guard, ident in (
        (access.course_for_owner, course.id),
        (access.course_for_manager, course.id),
        (access.course_for_viewer, course.id),
        (access.section_for_owner, section.id),
        (access.block_for_owner, block.id),
    ):
        with pytest.raises(NotFound):
            guard(ident, teacher)
    with pytest.raises(NotFound):
        svc.delete_course(course, teacher)
    # An admin still manages it (to delete or hand it over); a re-promoted owner owns it again.
    assert access.course_for_manager(course.id, admin).id == course.id
    teacher.role = "teacher"
    db.session.commit()
    assert access.course_for_owner(course.id, teacher).id == course.id


def test_sections_and_blocks_keep_dense_positions(teacher):
    course = svc.create_course(teacher, "C")
    a = svc.add_section(course, "A")
    b = svc.add_section(course, "B")
    c = svc.add_section(course, "C")
    b1 = block_svc.add_block(b, "b1")
    b2 = block_svc.add_block(b, "b2", "video", url="https://example.com/v")
    b3 = block_svc.add_block(b, "b3", "quiz", content="Answer")
    assert layout(course.id) == [(a.id, []), (b.id, [b1.id, b2.id, b3.id]), (c.id, [])]
    svc.move_section(db.session.get(Section, c.id), "up")
    assert layout(course.id) == [(a.id, []), (c.id, []), (b.id, [b1.id, b2.id, b3.id])]
    svc.move_section(db.session.get(Section, a.id), "up")  # already first: no change
    assert [s for s, _ in layout(course.id)] == [a.id, c.id, b.id]
    block_svc.move_block(db.session.get(ContentBlock, b3.id), "up")
    assert layout(course.id)[2] == (b.id, [b1.id, b3.id, b2.id])
    # Past the top of its section a block moves to the end of the previous section.
    block_svc.move_block(db.session.get(ContentBlock, b1.id), "up")
    assert layout(course.id) == [(a.id, []), (c.id, [b1.id]), (b.id, [b3.id, b2.id])]
    # Past the bottom: to the start of the next section.
    block_svc.move_block(db.session.get(ContentBlock, b1.id), "down")
    assert layout(course.id)[2] == (b.id, [b1.id, b3.id, b2.id])
    block_svc.move_block(db.session.get(ContentBlock, b2.id), "down")  # last of last
    assert layout(course.id)[2] == (b.id, [b1.id, b3.id, b2.id])
    target = access.section_for_owner(a.id, teacher)
    block_svc.move_block_to_section(db.session.get(ContentBlock, b3.id), target)
    assert layout(course.id) == [(a.id, [b3.id]), (c.id, []), (b.id, [b1.id, b2.id])]
    block_svc.delete_block(db.session.get(ContentBlock, b1.id))
    assert layout(course.id) == [(a.id, [b3.id]), (c.id, []), (b.id, [b2.id])]
    svc.delete_section(db.session.get(Section, c.id))
    assert layout(course.id) == [(a.id, [b3.id]), (b.id, [b2.id])]


def test_move_to_a_section_of_another_course_is_not_found(teacher, other_teacher):
    mine = make_course(teacher)
    theirs = make_course(other_teacher)
    other_mine = make_course(teacher)
    block = mine.sections[0].blocks[0]
    before = layout(mine.id)
    for target in (theirs.sections[0].id, other_mine.sections[0].id, 99999):
        with pytest.raises(NotFound):  # the guard (not yours, missing) or the service (same course)
            section = access.section_for_owner(target, teacher)
            block_svc.move_block_to_section(db.session.get(ContentBlock, block.id), section)
    assert layout(mine.id) == before


def test_block_rules_by_type(teacher):
    course = make_course(teacher, sections=1, blocks=0)
    section = course.sections[0]
    with pytest.raises(Invalid) as exc:
        block_svc.add_block(section, "Video", "video")
    assert exc.value.field == "url"
    for bad in ("javascript:alert(1)", "ftp://example.com/x", "https://" + "x" * 2000, "nope"):
        with pytest.raises(Invalid):
            block_svc.add_block(section, "Link", "link", url=bad)
    with pytest.raises(Invalid):
        block_svc.add_block(section, "Odd", "podcast")
    with pytest.raises(Invalid):
        block_svc.add_block(section, "   ")
    block = block_svc.add_block(section, "Link", "link", url="https://example.com")
    assert block.url == "https://example.com"


def test_reorder_saves_a_full_order(teacher):
    course = make_course(teacher, sections=2, blocks=2)
    (s1, (a, b)), (s2, (c, d)) = layout(course.id)
    block_svc.reorder(db.session.get(Course, course.id), [(s2, [d, a]), (s1, [c, b])])
    assert layout(course.id) == [(s2, [d, a]), (s1, [c, b])]


@pytest.mark.parametrize(
    "tamper",
    [
        "duplicate_block",
        "missing_block",
        "duplicate_section",
        "missing_section",
        "foreign_block",
        "foreign_section",
        "unknown_block",
    ],
)
def test_reorder_refuses_stale_or_tampered_orders(teacher, other_teacher, tamper):
    course = make_course(teacher, sections=2, blocks=2)
    foreign = make_course(other_teacher, sections=1, blocks=1)
    fs, (fb,) = layout(foreign.id)[0]
    (s1, (a, b)), (s2, (c, d)) = before = layout(course.id)
    order = {
        "duplicate_block": [(s2, [a, a]), (s1, [b, c, d])],
        "missing_block": [(s2, [a]), (s1, [b, c])],
        "duplicate_section": [(s1, [a, b]), (s1, [c, d])],
        "missing_section": [(s1, [a, b, c, d])],
        "foreign_block": [(s2, [a, b, fb]), (s1, [c, d])],
        "foreign_section": [(s2, [a, b]), (s1, [c]), (fs, [d])],
        "unknown_block": [(s2, [a, b, 987654]), (s1, [c, d])],
    }[tamper]
    with pytest.raises(Conflict):
        block_svc.reorder(db.session.get(Course, course.id), order)
    db.session.rollback()
    assert layout(course.id) == before
    assert layout(foreign.id) == [(fs, [fb])]


def test_adding_and_deleting_blocks_keeps_course_completion_in_step(teacher, student):
    course = make_course(teacher, sections=2, blocks=1)
    (s1, (b1,)), (s2, (b2,)) = layout(course.id)
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=b1))
    db.session.commit()
    enrolment = db.session.scalar(select(StudentCourse))
    assert enrolment.completed is False
    svc.delete_section(db.session.get(Section, s2))
    db.session.expire_all()
    assert db.session.scalar(select(StudentCourse)).completed is True
    block_svc.add_block(db.session.get(Section, s1), "New lesson")
    db.session.expire_all()
    assert db.session.scalar(select(StudentCourse)).completed is False
    new_id = layout(course.id)[0][1][1]
    block_svc.delete_block(db.session.get(ContentBlock, new_id))
    db.session.expire_all()
    assert db.session.scalar(select(StudentCourse)).completed is True


def test_unpublish_keeps_enrolments_and_completions(teacher, student):
    course = make_course(teacher, sections=1, blocks=1)
    block_id = layout(course.id)[0][1][0]
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=block_id))
    db.session.commit()
    svc.set_published(db.session.get(Course, course.id), False)
    assert db.session.scalar(select(Course.is_published)) is False
    assert db.session.query(StudentCourse).count() == 1
    assert db.session.query(CompletedContentBlock).count() == 1


def test_duplicate_copies_sections_and_blocks_but_not_students(teacher, student):
    course = make_course(teacher, sections=2, blocks=3)
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.commit()
    copy = svc.duplicate_course(db.session.get(Course, course.id), teacher)
    assert copy.id != course.id and copy.is_published is False
    assert copy.title == "Copy of A course"
    original, copied = layout(course.id), layout(copy.id)
    assert [len(b) for _, b in copied] == [len(b) for _, b in original]
    titles = db.session.execute(
        select(ContentBlock.title, ContentBlock.type, ContentBlock.url)
        .join(Section)
        .where(Section.course_id == copy.id)
        .order_by(Section.position, ContentBlock.position)
    ).all()
    assert titles[0][0] == "Block 1.1" and len(titles) == 6
    assert db.session.query(StudentCourse).filter_by(course_id=copy.id).count() == 0


def test_delete_course_removes_everything(teacher, student, admin):
    course = make_course(teacher, sections=2, blocks=2)
    block_id = layout(course.id)[0][1][0]
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=block_id))
    db.session.commit()
    svc.delete_course(db.session.get(Course, course.id), admin)
    for model in (Course, Section, ContentBlock, StudentCourse, CompletedContentBlock):
        assert db.session.query(model).count() == 0


def test_collapse_is_per_user(teacher, other_teacher):
    course = make_course(teacher)
    section = db.session.get(Section, layout(course.id)[0][0])
    svc.set_collapsed(section, teacher, True)
    svc.set_collapsed(section, teacher, True)  # idempotent
    assert svc.outline(course, teacher).collapsed == {section.id}
    assert svc.outline(course, other_teacher).collapsed == set()
    svc.set_collapsed(section, teacher, False)
    assert db.session.query(CollapsedSection).count() == 0


def test_dashboard_counts(teacher, other_teacher, student):
    from tests.conftest import make_user

    course = make_course(teacher, sections=2, blocks=5)  # types cycle: 2 quiz, 2 assignment
    empty = svc.create_course(teacher, "Empty")
    make_course(other_teacher)
    blocks = {b.type: b for s in course.sections for b in s.blocks}
    students = [student, make_user("student")]
    for s in students:
        db.session.add(StudentCourse(student_id=s.id, course_id=course.id))
    from webapp.models import utcnow

    now = utcnow()
    db.session.add_all(
        [
            # waiting: ungraded quiz
            CompletedContentBlock(student_id=students[0].id, content_block_id=blocks["quiz"].id),
            # not waiting: graded assignment
            CompletedContentBlock(
                student_id=students[0].id,
                content_block_id=blocks["assignment"].id,
                grade=80,
                graded_at=now,
                updated_at=now,
            ),
            # waiting: resubmitted after grading
            CompletedContentBlock(
                student_id=students[1].id,
                content_block_id=blocks["assignment"].id,
                grade=50,
                graded_at=now,
                updated_at=now.replace(year=now.year + 1),
            ),
            # not gradable: a lesson
            CompletedContentBlock(student_id=students[1].id, content_block_id=blocks["lesson"].id),
        ]
    )
    db.session.commit()
    rows = {r.course.id: r for r in teacher_dashboard(teacher)}
    assert set(rows) == {course.id, empty.id}
    r = rows[course.id]
    assert (r.sections, r.blocks, r.students, r.to_grade) == (2, 10, 2, 2)
    e = rows[empty.id]
    assert (e.sections, e.blocks, e.students, e.to_grade) == (0, 0, 0, 0)
