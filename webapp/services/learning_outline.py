"""What a student reads of a course: the course page, a section's blocks, the block page.

The outline shows every section with its counts but the blocks of the open sections only (the
section holding the block to resume or the block shown; the others load on demand), so the HTML
stays small at any course size. Each part is one statement that reads this course's rows and
the student's own, nothing of other students or courses: the sections with their counts, the
open sections' blocks, the neighbours of a block, where to resume. Changes are in
``services/learning.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import and_, bindparam, exists, false, func, select, tuple_
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import CompletedContentBlock, ContentBlock, Course, Section, StudentCourse, User
from . import NotFound
from .access import block_for_reader, course_for_viewer, is_student, previews
from .access import enrolment as enrolment_of
from .progress import Figures, section_figures

NO_SECTION = "No such section."


# --- the outline -------------------------------------------------------------------------------


@dataclass
class OutlineBlock:
    id: int
    title: str
    type: str
    done: bool = False


@dataclass
class OutlineSection:
    id: int
    title: str
    position: int
    total: int
    done: int
    blocks: list[OutlineBlock] | None = None  # None: folded, loaded on demand

    @property
    def figures(self) -> Figures:
        return Figures(self.done, self.total)


@dataclass
class Outline:
    course_id: int
    sections: list[OutlineSection]

    @property
    def figures(self) -> Figures:
        return Figures(sum(s.done for s in self.sections), sum(s.total for s in self.sections))

    def section(self, section_id: int | None) -> OutlineSection | None:
        return next((s for s in self.sections if s.id == section_id), None)


@cache
def _sections(with_student: bool):
    """``section_figures`` built once (bound parameters ``p_course``, ``p_student``)."""
    return section_figures(bindparam("p_course"), bindparam("p_student") if with_student else None)


def sections(course_id: int, student_id: int | None) -> Outline:
    stmt = _sections(student_id is not None)
    rows = db.session.execute(stmt, {"p_course": course_id, "p_student": student_id})
    return Outline(course_id, [OutlineSection(*row) for row in rows])


def blocks_query(student_id: int | None, *, sections: bool = False):
    """SELECT blocks (section_id, id, title, type, done) in order; the caller adds a WHERE.
    ``sections``: from the sections, so a section without blocks gives one row of NULLs."""
    cols = [ContentBlock.section_id, ContentBlock.id, ContentBlock.title, ContentBlock.type]
    if sections:
        cols[0] = Section.id
    work = aliased(CompletedContentBlock)
    done = false() if student_id is None else work.id.is_not(None)
    stmt = select(*cols, done)
    if sections:
        stmt = stmt.select_from(Section).outerjoin(
            ContentBlock, ContentBlock.section_id == Section.id
        )
    if student_id is not None:
        stmt = stmt.outerjoin(
            work, and_(work.content_block_id == ContentBlock.id, work.student_id == student_id)
        )
    return stmt.order_by(ContentBlock.position, ContentBlock.id)


@cache
def _section_blocks(with_student: bool):
    """``blocks_query`` of some sections, built once (``p_student``, ``p_sections``)."""
    stmt = blocks_query(bindparam("p_student") if with_student else None)
    return stmt.where(ContentBlock.section_id.in_(bindparam("p_sections", expanding=True)))


def open_sections(outline: Outline, student_id: int | None, *section_ids: int | None) -> None:
    """Load the blocks of these sections of the outline (one statement)."""
    wanted = {s.id: s for s in outline.sections if s.id in section_ids}
    if not wanted:
        return
    for s in wanted.values():
        s.blocks = []
    rows = db.session.execute(
        _section_blocks(student_id is not None),
        {"p_student": student_id, "p_sections": list(wanted)},
    )
    for section_id, *block in rows:
        wanted[section_id].blocks.append(OutlineBlock(*block))


def _in_order(*cols):
    """SELECT ``cols`` over the course's blocks in course order (add the course's WHERE)."""
    return (
        select(*cols)
        .join(Section, ContentBlock.section_id == Section.id)
        .order_by(Section.position, Section.id, ContentBlock.position, ContentBlock.id)
    )


def _step(course_id: int, block_id, forward: bool = True):
    """The id of the block after (or before) ``block_id`` in course order, by keyset: in the
    same section along its (section_id, position) index, else the first (or last) block of the
    nearest section that has one."""
    here = aliased(ContentBlock)
    here_section = aliased(Section)
    key = tuple_(ContentBlock.position, ContentBlock.id)
    mark = tuple_(here.position, here.id)
    same = (
        select(ContentBlock.id)
        .join(here, here.id == block_id)
        .where(ContentBlock.section_id == here.section_id, key > mark if forward else key < mark)
        .order_by(*(key.clauses if forward else [c.desc() for c in key.clauses]))
        .limit(1)
    )
    skey = tuple_(Section.position, Section.id)
    smark = tuple_(here_section.position, here_section.id)
    order = [Section.position, Section.id, ContentBlock.position, ContentBlock.id]
    other = (
        select(ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .join(here, here.id == block_id)
        .join(here_section, here_section.id == here.section_id)
        .where(Section.course_id == course_id, skey > smark if forward else skey < smark)
        .order_by(*(order if forward else [c.desc() for c in order]))
        .limit(1)
    )
    return func.coalesce(same.scalar_subquery(), other.scalar_subquery())


@dataclass(frozen=True)
class Link:
    """A block linked to: previous, next, resume."""

    id: int
    title: str
    section_id: int | None = None


def link(id_, title, section_id=None) -> Link | None:
    return None if id_ is None else Link(id_, title, section_id)


def neighbours(course_id: int, block_id: int):
    """FROM-able SELECT of one row: prev_id, prev_title, next_id, next_title, ``present``."""
    present = exists(
        select(ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(ContentBlock.id == block_id, Section.course_id == course_id)
    )
    ids = select(
        _step(course_id, block_id, forward=False).label("p"),
        _step(course_id, block_id).label("n"),
        present.label("present"),
    ).subquery("ids")
    prev, nxt = aliased(ContentBlock), aliased(ContentBlock)
    return (
        select(ids.c.present, prev.id.label("prev_id"), prev.title.label("prev_title"),
               nxt.id.label("next_id"), nxt.title.label("next_title"))
        .select_from(ids)
        .outerjoin(prev, prev.id == ids.c.p)
        .outerjoin(nxt, nxt.id == ids.c.n)
    )  # fmt: skip


@cache
def _neighbours():
    """``neighbours`` built once (bound parameters ``p_course``, ``p_block``)."""
    return neighbours(bindparam("p_course"), bindparam("p_block"))


@cache
def _resume(with_last: bool):
    """The SELECT of ``resume``, built once
    (bound parameters ``p_course``, ``p_student``, ``p_last``)."""
    course_id, student_id, last_block_id = (
        bindparam("p_course"), bindparam("p_student"), bindparam("p_last"),
    )  # fmt: skip
    in_course = Section.course_id == course_id
    pending = ~exists().where(
        CompletedContentBlock.content_block_id == ContentBlock.id,
        CompletedContentBlock.student_id == student_id,
    )
    first = _in_order(ContentBlock.id).where(in_course).limit(1).scalar_subquery()
    candidates = []
    if with_last:
        last, last_section = aliased(ContentBlock), aliased(Section)
        candidates.append(
            select(ContentBlock.id)
            .join(Section, ContentBlock.section_id == Section.id)
            .where(ContentBlock.id == last_block_id, in_course, pending)
            .scalar_subquery()
        )
        candidates.append(
            _in_order(ContentBlock.id)
            .join(last, last.id == last_block_id)
            .join(last_section, last_section.id == last.section_id)
            .where(
                in_course,
                last_section.course_id == course_id,
                pending,
                tuple_(Section.position, Section.id, ContentBlock.position, ContentBlock.id)
                > tuple_(last_section.position, last_section.id, last.position, last.id),
            )
            .limit(1)
            .scalar_subquery()
        )
    candidates.append(
        _in_order(ContentBlock.id).where(in_course, pending).limit(1).scalar_subquery()
    )
    candidates.append(first)
    target = aliased(ContentBlock)  # not ContentBlock: the candidates would correlate to it
    return select(target.id, target.title, target.section_id, first.label("first")).where(
        target.id == func.coalesce(*candidates)
    )


def resume(
    course_id: int, student_id: int, last_block_id: int | None
) -> tuple[Link | None, int | None]:
    """Where to carry on, and the course's first block (see docs/learning.md, "Resume").

    The last block visited if it is not completed; else the first one not completed after it in
    course order, wrapping round to the start; else (everything done) the first block. One
    statement: each candidate is a keyset subquery, the first that exists wins.
    """
    params = {"p_course": course_id, "p_student": student_id, "p_last": last_block_id}
    row = db.session.execute(_resume(last_block_id is not None), params).one_or_none()
    if row is None:
        return None, None
    return Link(row.id, row.title, row.section_id), row.first


# --- the course page -----------------------------------------------------------------------------


@dataclass
class CourseView:
    course: Course
    outline: Outline
    enrolment: StudentCourse | None
    resume: Link | None = None  # where to carry on (enrolled students)
    first_id: int | None = None
    preview: bool = False  # the owner or an admin sees it as a student would

    @property
    def linked(self) -> bool:
        """The outline links to the block pages (for enrolled students and previews)."""
        return self.enrolment is not None or self.preview

    @property
    def figures(self) -> Figures:
        return self.outline.figures

    @property
    def state(self) -> str:
        """``enrol``, ``preview``, ``start``, ``resume``, ``review`` or ``empty`` (the main
        button)."""
        if self.preview:
            return "preview" if self.first_id is not None else "empty"
        if self.enrolment is None:
            return "enrol"
        if self.resume is None:
            return "empty"
        if self.enrolment.completed:
            return "review"
        if self.figures.done == 0 and self.enrolment.last_block_id is None:
            return "start"
        return "resume"


def course_page(course_id: int, user: User | None, section_id: int | None = None) -> CourseView:
    """The course page: sections with counts; the blocks of the section holding the resume block
    (or the first) and of ``section_id`` (a folded section opened without JavaScript)."""
    course = course_for_viewer(course_id, user)
    enrolled = enrolment_of(course.id, user)
    student_id = user.id if is_student(user) else None
    view = CourseView(
        course, sections(course.id, student_id), enrolled, preview=previews(course, user)
    )
    if enrolled is not None:
        view.resume, view.first_id = resume(course.id, enrolled.student_id, enrolled.last_block_id)
    elif view.preview:
        view.first_id = db.session.scalar(
            _in_order(ContentBlock.id).where(Section.course_id == course.id).limit(1)
        )
    current = view.resume.section_id if view.resume else None
    if current is None and view.outline.sections:
        current = view.outline.sections[0].id
    open_sections(view.outline, student_id, current, section_id)
    return view


def course_outline(course_id: int, user: User | None) -> CourseView:
    """The course page with every section's blocks (the API reads a course in one answer)."""
    view = course_page(course_id, user)
    student_id = user.id if is_student(user) else None
    open_sections(view.outline, student_id, *(s.id for s in view.outline.sections))
    return view


@dataclass
class SectionView:
    course_id: int
    section_id: int
    blocks: list[OutlineBlock]
    linked: bool


def section_blocks(course_id: int, section_id: int, user: User | None) -> SectionView:
    """A folded section's blocks, loaded on demand (links for enrolled students and
    previews)."""
    course = course_for_viewer(course_id, user)
    enrolled = enrolment_of(course.id, user)
    student_id = user.id if is_student(user) else None
    rows = db.session.execute(
        blocks_query(student_id, sections=True).where(
            Section.id == section_id, Section.course_id == course.id
        )
    ).all()
    if not rows:
        raise NotFound(NO_SECTION)
    blocks = [OutlineBlock(*row[1:]) for row in rows if row[1] is not None]
    linked = enrolled is not None or previews(course, user)
    return SectionView(course.id, section_id, blocks, linked)


def resume_target(course_id: int, student: User) -> Link | None:
    course = course_for_viewer(course_id, student)
    enrolled = enrolment_of(course.id, student)
    if enrolled is None:
        raise NotFound("You are not enrolled in this course.")
    return resume(course.id, enrolled.student_id, enrolled.last_block_id)[0]


# --- the block page ------------------------------------------------------------------------------


@dataclass
class BlockView:
    """The block page; the completion fragment reads the same names as ``Change`` has."""

    course: Course
    block: ContentBlock
    enrolment: StudentCourse | None  # None: a preview
    completion: CompletedContentBlock | None
    outline: Outline
    prev: Link | None = None
    next: Link | None = None

    @property
    def preview(self) -> bool:
        """The owner or an admin reading the block as a student would: nothing to record."""
        return self.enrolment is None

    @property
    def course_id(self) -> int:
        return self.course.id

    @property
    def completed(self) -> bool:
        return self.enrolment is not None and self.enrolment.completed

    @property
    def figures(self) -> Figures:
        return self.outline.figures

    @property
    def section(self) -> OutlineSection | None:
        return self.outline.section(self.block.section_id)


def block_page(
    course_id: int, block_id: int, reader: User, section_id: int | None = None
) -> BlockView:
    """The block page's data: the block, its section's blocks (and ``section_id``'s, opened
    without JavaScript), every section's counts, previous and next. Records no visit:
    ``record_visit`` does, once the page is rendered. For the course's owner or an admin, a
    preview: the same page without a student's progress (``access.block_for_reader``)."""
    held = block_for_reader(course_id, block_id, reader)
    course, block = held.course, held.block
    student_id = None if held.preview else held.enrolment.student_id
    outline = sections(course.id, student_id)
    open_sections(outline, student_id, block.section_id, section_id)
    row = db.session.execute(_neighbours(), {"p_course": course.id, "p_block": block.id}).one()
    return BlockView(
        course, block, held.enrolment, held.completion, outline,
        link(row.prev_id, row.prev_title), link(row.next_id, row.next_title),
    )  # fmt: skip
