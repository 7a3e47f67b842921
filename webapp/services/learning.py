"""Learning: a student's way through a course: its outline, enrolment, visits and completions.

The catalogue is ``services/catalogue.py``, the student's overview ``services/my_learning.py``.
Every change is one ``unit_of_work()``. A change that depends on the course's structure holds
the course row (``_hold_structure``) and then reads again what it is about to use, so a block
or course deleted by its teacher meanwhile answers the 404 a later request would get.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.orm import load_only

from ..extensions import db
from ..models import (
    CompletedContentBlock,
    ContentBlock,
    Course,
    Section,
    StudentCourse,
    User,
    utcnow,
)
from . import Conflict, Invalid, NotFound, insert, unit_of_work
from .access import (
    block_for_student,
    course_for_student,
    course_for_viewer,
    enrolment,
    is_student,
)
from .progress import percent, sync_course_completion

NO_COURSE = "No such course."
NO_BLOCK = "No such block."


def _hold_structure(course_id: int) -> None:
    """Keep the course's blocks still until this student's change commits.

    Authoring takes ``FOR UPDATE`` on the course row before adding or deleting a block; this
    ``FOR KEY SHARE`` conflicts only with that (students do not wait for each other). Without
    it, a completion and a new block committed at the same moment would each recompute
    ``completed`` without seeing the other, and a course could stay "completed" with a block
    not done. Taken before any other row, so it cannot deadlock with the teacher's delete.

    The row is read under the lock: if the teacher deleted (or unpublished) the course while
    this waited, NotFound, before anything is written for a course that is gone.
    """
    published = db.session.scalar(
        select(Course.is_published)
        .where(Course.id == course_id)
        .with_for_update(read=True, key_share=True)
    )
    if not published:
        raise NotFound(NO_COURSE)


def _hold_block(course_id: int, block_id: int) -> None:
    """``_hold_structure``, then the block read again: still there, still in this course."""
    _hold_structure(course_id)
    still = db.session.scalar(
        select(ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(ContentBlock.id == block_id, Section.course_id == course_id)
    )
    if still is None:
        raise NotFound(NO_BLOCK)


# --- outline and progress ------------------------------------------------------------------------


@dataclass
class SectionOutline:
    section: Section
    blocks: list[ContentBlock]
    done: int = 0


@dataclass
class Outline:
    """A course's sections and blocks in order, and one student's completions in it."""

    course: Course
    sections: list[SectionOutline]
    order: list[ContentBlock]
    completed: set[int] = field(default_factory=set)

    @property
    def total(self) -> int:
        return len(self.order)

    @property
    def done(self) -> int:
        return len(self.completed)

    @property
    def percent(self) -> int:
        return percent(self.done, self.total)

    def section_of(self, block_id: int) -> SectionOutline | None:
        for s in self.sections:
            if any(b.id == block_id for b in s.blocks):
                return s
        return None

    def index(self, block_id: int | None) -> int | None:
        for i, b in enumerate(self.order):
            if b.id == block_id:
                return i
        return None

    def neighbours(self, block_id: int) -> tuple[ContentBlock | None, ContentBlock | None]:
        i = self.index(block_id)
        if i is None:
            return None, None
        prev = self.order[i - 1] if i > 0 else None
        nxt = self.order[i + 1] if i + 1 < len(self.order) else None
        return prev, nxt

    def resume_block(self, last_block_id: int | None) -> ContentBlock | None:
        """Where to carry on: see docs/learning.md ("Resume")."""
        if not self.order:
            return None
        start = self.index(last_block_id)
        if start is None:
            pending = [b for b in self.order if b.id not in self.completed]
            return pending[0] if pending else self.order[0]
        if self.order[start].id not in self.completed:
            return self.order[start]
        rotated = self.order[start + 1 :] + self.order[:start]
        for b in rotated:
            if b.id not in self.completed:
                return b
        return self.order[0]


def load_outline(course: Course, student: User | None) -> Outline:
    """Sections, blocks (without their content) and completions: three queries at most."""
    sections = db.session.scalars(
        select(Section)
        .where(Section.course_id == course.id)
        .order_by(Section.position, Section.id)
        .options(load_only(Section.id, Section.title, Section.position, Section.course_id))
    ).all()
    by_section: dict[int, SectionOutline] = {s.id: SectionOutline(s, []) for s in sections}
    blocks = db.session.scalars(
        select(ContentBlock)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(Section.course_id == course.id)
        .order_by(Section.position, Section.id, ContentBlock.position, ContentBlock.id)
        .options(
            load_only(
                ContentBlock.id,
                ContentBlock.title,
                ContentBlock.type,
                ContentBlock.position,
                ContentBlock.section_id,
            )
        )
    ).all()
    for b in blocks:
        by_section[b.section_id].blocks.append(b)
    completed: set[int] = set()
    if is_student(student):
        completed = set(
            db.session.scalars(
                select(CompletedContentBlock.content_block_id)
                .join(ContentBlock, CompletedContentBlock.content_block_id == ContentBlock.id)
                .join(Section, ContentBlock.section_id == Section.id)
                .where(
                    Section.course_id == course.id,
                    CompletedContentBlock.student_id == student.id,
                )
            )
        )
    for s in by_section.values():
        s.done = sum(1 for b in s.blocks if b.id in completed)
    return Outline(course, list(by_section.values()), list(blocks), completed)


# --- enrolment -----------------------------------------------------------------------------------


@dataclass
class CourseView:
    course: Course
    outline: Outline
    enrolment: StudentCourse | None

    @property
    def resume(self) -> ContentBlock | None:
        last = self.enrolment.last_block_id if self.enrolment else None
        return self.outline.resume_block(last)

    @property
    def state(self) -> str:
        """``enrol``, ``start``, ``resume``, ``review`` or ``empty`` (the main button)."""
        if self.enrolment is None:
            return "enrol"
        if not self.outline.order:
            return "empty"
        if self.enrolment.completed:
            return "review"
        if self.outline.done == 0 and self.enrolment.last_block_id is None:
            return "start"
        return "resume"


def course_page(course_id: int, user: User | None) -> CourseView:
    course = course_for_viewer(course_id, user)
    return CourseView(course, load_outline(course, user), enrolment(course.id, user))


@unit_of_work(missing=NO_COURSE)
def enrol(course_id: int, student: User) -> None:
    """Enrol once, whatever the number of clicks; completions kept from before count again."""
    course = course_for_student(course_id, student)
    _hold_structure(course.id)
    db.session.execute(
        insert(StudentCourse)
        .values(student_id=student.id, course_id=course.id, completed=False, enrolled_at=utcnow())
        .on_conflict_do_nothing(index_elements=["student_id", "course_id"])
    )
    sync_course_completion(course.id, student.id)


@unit_of_work()
def unenrol(course_id: int, student: User) -> None:
    """Leave a course; completions stay, so enrolling again brings the progress back."""
    course = course_for_viewer(course_id, student)
    if is_student(student):
        db.session.execute(
            delete(StudentCourse).where(
                StudentCourse.course_id == course.id, StudentCourse.student_id == student.id
            )
        )


def resume_target(course_id: int, student: User) -> ContentBlock | None:
    view = course_page(course_id, student)
    if view.enrolment is None:
        raise NotFound("You are not enrolled in this course.")
    return view.resume


# --- blocks and completions ----------------------------------------------------------------------


@dataclass
class BlockView:
    course: Course
    block: ContentBlock
    enrolment: StudentCourse
    outline: Outline
    completion: CompletedContentBlock | None

    @property
    def section(self) -> SectionOutline | None:
        return self.outline.section_of(self.block.id)

    @property
    def neighbours(self):
        return self.outline.neighbours(self.block.id)


def _completion(block_id: int, student_id: int) -> CompletedContentBlock | None:
    return db.session.scalar(
        select(CompletedContentBlock).where(
            CompletedContentBlock.content_block_id == block_id,
            CompletedContentBlock.student_id == student_id,
        )
    )


def _view(course, block, enrolled, student) -> BlockView:
    return BlockView(
        course, block, enrolled, load_outline(course, student), _completion(block.id, student.id)
    )


def visit_block(course_id: int, block_id: int, student: User) -> BlockView:
    """The block page's data; records the block as the student's last for resume."""
    course, block, enrolled = block_for_student(course_id, block_id, student)
    if enrolled.last_block_id != block.id:
        with unit_of_work():
            enrolled.last_block_id = block.id
    return _view(course, block, enrolled, student)


def block_view(course_id: int, block_id: int, student: User) -> BlockView:
    """The block page's data without recording a visit (for fragments after a change)."""
    course, block, enrolled = block_for_student(course_id, block_id, student)
    return _view(course, block, enrolled, student)


def check_work_url(url: str | None) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if not url or parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
        raise Invalid("Give the address of your work, starting with http:// or https://.", "url")
    return url


def _clean_work(block: ContentBlock, url: str | None, remarks: str | None):
    if not block.is_gradable:
        return None, ""
    remarks = (remarks or "").strip()
    if len(remarks) > 5000:
        raise Invalid("Remarks can be at most 5000 characters.", "remarks")
    return check_work_url(url), remarks


def complete_block(
    course_id: int, block_id: int, student: User, url: str | None = None, remarks: str = ""
) -> BlockView:
    """Mark a block complete (once, however many requests); assignments and quizzes need a url."""
    with unit_of_work(missing=NO_BLOCK):
        course, block, enrolled = block_for_student(course_id, block_id, student)
        url, remarks = _clean_work(block, url, remarks)
        _hold_block(course.id, block.id)
        now = utcnow()
        db.session.execute(
            insert(CompletedContentBlock)
            .values(
                student_id=student.id,
                content_block_id=block.id,
                url=url,
                feedback=remarks,
                grader_comment="",
                completed_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["student_id", "content_block_id"])
        )
        enrolled.last_block_id = block.id
        sync_course_completion(course.id, student.id)
    return block_view(course_id, block_id, student)


def edit_completion(
    course_id: int, block_id: int, student: User, url: str | None, remarks: str
) -> BlockView:
    """Change the url and remarks of submitted work; never the grade or the grader's comment."""
    with unit_of_work():
        _, block, _ = block_for_student(course_id, block_id, student)
        done = _completion(block.id, student.id)
        if done is None:
            raise Conflict("This block is not marked complete.")
        if not block.is_gradable:
            raise Conflict("There is nothing to edit on this block.")
        url, remarks = _clean_work(block, url, remarks)
        if (done.url, done.feedback) != (url, remarks):
            # Bumping updated_at tells the teacher the work changed after it was graded.
            db.session.execute(
                update(CompletedContentBlock)
                .where(CompletedContentBlock.id == done.id)
                .values(url=url, feedback=remarks, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
    return block_view(course_id, block_id, student)  # read again: the commit expired the rows


GRADED_UNDO = (
    "This work has been graded, so it cannot be undone. You can still edit its url and remarks."
)


def undo_completion(course_id: int, block_id: int, student: User) -> BlockView:
    """Take a completion back, unless a teacher has graded it."""
    with unit_of_work():
        course, block, _ = block_for_student(course_id, block_id, student)
        _hold_structure(course.id)
        # Only ungraded rows are deleted, so a grade given a moment ago is never lost.
        result = db.session.execute(
            delete(CompletedContentBlock)
            .where(
                CompletedContentBlock.content_block_id == block.id,
                CompletedContentBlock.student_id == student.id,
                CompletedContentBlock.graded_at.is_(None),
                CompletedContentBlock.grade.is_(None),
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0 and _completion(block.id, student.id) is not None:
            raise Conflict(GRADED_UNDO)  # the unit of work rolls back
        sync_course_completion(course.id, student.id)
    return block_view(course_id, block_id, student)
