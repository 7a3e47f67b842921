"""The authoring aggregate: a course, its sections and their order; the values every part checks.

Content blocks are ``services/blocks.py``. Routes call the guards of ``services/access.py`` and
pass the guarded object in; a function here takes the acting user only where it needs one (the
owner of a new course or copy, the actor of an audited deletion, the per-user folded state).
Every change is one ``unit_of_work()``; structural changes take the course lock first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import (
    CollapsedSection,
    CompletedContentBlock,
    ContentBlock,
    Course,
    Section,
    StudentCourse,
    User,
    utcnow,
)
from . import Conflict, Invalid, NotAllowed, NotFound, audit, insert, unit_of_work
from .access import manages
from .progress import sync_course_completion

TITLE_MAX = 200
DESCRIPTION_MAX = 5000
CONTENT_MAX = 100_000
URL_MAX = 2000

# --- checking values -------------------------------------------------------------------------


def clean_title(value: str | None, what: str = "Title", name: str = "title") -> str:
    value = (value or "").strip()
    if not value:
        raise Invalid(f"{what} cannot be empty.", field=name)
    if len(value) > TITLE_MAX:
        raise Invalid(f"{what} must be at most {TITLE_MAX} characters.", field=name)
    return value


def clean_text(value: str | None, limit: int, name: str) -> str:
    value = (value or "").rstrip()
    if len(value) > limit:
        raise Invalid(f"At most {limit:,} characters.", field=name)
    return value


def is_web_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


def clean_url(value: str | None, required: bool) -> str | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise Invalid("A URL is required for this type.", field="url")
        return None
    if len(value) > URL_MAX:
        raise Invalid(f"At most {URL_MAX:,} characters.", field="url")
    if not is_web_url(value):
        raise Invalid("Use an http:// or https:// address.", field="url")
    return value


def _require_teacher(user: User) -> None:
    if user is None or not user.is_teacher:
        raise NotAllowed("Only teachers create courses.")


# --- reading ---------------------------------------------------------------------------------


@dataclass
class Outline:
    """Everything the editor shows, loaded in a fixed number of queries."""

    course: Course
    sections: list[Section]
    collapsed: set[int] = field(default_factory=set)
    completions: dict[int, int] = field(default_factory=dict)  # block id -> completions
    students: int = 0

    @property
    def block_count(self) -> int:
        return sum(len(s.blocks) for s in self.sections)

    def section_completions(self, section: Section) -> int:
        return sum(self.completions.get(b.id, 0) for b in section.blocks)

    @property
    def completion_count(self) -> int:
        return sum(self.completions.values())


def outline(course: Course, user: User) -> Outline:
    sections = (
        db.session.execute(
            select(Section)
            .where(Section.course_id == course.id)
            .order_by(Section.position, Section.id)
            .options(selectinload(Section.blocks))
        )
        .scalars()
        .all()
    )
    collapsed = set(
        db.session.execute(
            select(CollapsedSection.section_id)
            .join(Section, CollapsedSection.section_id == Section.id)
            .where(CollapsedSection.user_id == user.id, Section.course_id == course.id)
        ).scalars()
    )
    completions = dict(
        db.session.execute(
            select(CompletedContentBlock.content_block_id, func.count(CompletedContentBlock.id))
            .join(ContentBlock, CompletedContentBlock.content_block_id == ContentBlock.id)
            .join(Section, ContentBlock.section_id == Section.id)
            .where(Section.course_id == course.id)
            .group_by(CompletedContentBlock.content_block_id)
        ).all()
    )
    students = db.session.scalar(
        select(func.count(StudentCourse.id)).where(StudentCourse.course_id == course.id)
    )
    return Outline(course, list(sections), collapsed, completions, students or 0)


# --- courses ---------------------------------------------------------------------------------


@unit_of_work()
def create_course(user: User, title: str, description: str = "") -> Course:
    """A new draft owned by ``user``, who must be a teacher."""
    _require_teacher(user)
    course = Course(
        title=clean_title(title),
        description=clean_text(description, DESCRIPTION_MAX, "description"),
        user_id=user.id,
        is_published=False,
    )
    db.session.add(course)
    return course


def _set_text(row: Course | Section, name: str, value: str) -> None:
    """The title or the description of a course or a section (the in-place editors)."""
    if name == "title":
        row.title = clean_title(value)
    elif name == "description":
        row.description = clean_text(value, DESCRIPTION_MAX, "description")
    else:
        raise Invalid("Unknown field.")


@unit_of_work(missing="No such course.")  # deleted in another tab meanwhile
def update_course_field(course: Course, name: str, value: str) -> Course:
    """Set the course's title or description."""
    _set_text(course, name, value)
    return course


@unit_of_work()
def set_published(course: Course, published: bool) -> Course:
    """Publish or unpublish; enrolments and completions are kept either way."""
    course.is_published = bool(published)
    return course


@unit_of_work()
def delete_course(course: Course, user: User, ip: str = "") -> None:
    """Delete the course with its sections, blocks, enrolments and completions.

    When someone other than the owner (an admin) deletes it, an audit record says who, whose
    and what, in the same transaction.
    """
    if not manages(course, user):
        raise NotFound("No such course.")
    audit.course_deleted(course, user, ip)  # records only someone else's course
    db.session.execute(delete(Course).where(Course.id == course.id))


@unit_of_work()
def duplicate_course(course: Course, user: User) -> Course:
    """A new draft owned by ``user`` with copies of every section and block; no enrolments."""
    _require_teacher(user)
    title = f"Copy of {course.title}"[:TITLE_MAX]
    copy = Course(title=title, description=course.description, user_id=user.id, is_published=False)
    db.session.add(copy)
    sections = (
        db.session.execute(
            select(Section)
            .where(Section.course_id == course.id)
            .order_by(Section.position)
            .options(selectinload(Section.blocks))
        )
        .scalars()
        .all()
    )
    for s in sections:
        new = Section(course=copy, title=s.title, description=s.description, position=s.position)
        db.session.add(new)
        for b in s.blocks:
            db.session.add(
                ContentBlock(
                    section=new,
                    title=b.title,
                    description=b.description,
                    type=b.type,
                    url=b.url,
                    content=b.content,
                    position=b.position,
                )
            )
    return copy


# --- the structure: shared with services/blocks.py ---------------------------------------------


def touch(course_id: int) -> None:
    """Mark the course changed (its ``updated_at``)."""
    db.session.execute(update(Course).where(Course.id == course_id).values(updated_at=utcnow()))


def lock(course_id: int) -> None:
    """Serialise structural changes of one course (row lock on PostgreSQL; SQLite locks anyway).

    Two tabs adding or moving at once would otherwise both compute the same next position. The
    row is read under the lock: a course deleted while this waited is a 404, and whatever the
    caller read before the lock it reads again after it (a section or block may be gone).
    """
    found = db.session.scalar(select(Course.id).where(Course.id == course_id).with_for_update())
    if found is None:
        raise NotFound("No such course.")


def section_ids(course_id: int) -> list[int]:
    return list(
        db.session.execute(
            select(Section.id)
            .where(Section.course_id == course_id)
            .order_by(Section.position, Section.id)
        ).scalars()
    )


def block_ids(section_id: int) -> list[int]:
    return list(
        db.session.execute(
            select(ContentBlock.id)
            .where(ContentBlock.section_id == section_id)
            .order_by(ContentBlock.position, ContentBlock.id)
        ).scalars()
    )


def _renumber_sections(ids: list[int]) -> None:
    if ids:
        db.session.execute(
            update(Section),
            [{"id": sid, "position": i} for i, sid in enumerate(ids)],
        )


def place_blocks(section_id: int, ids: list[int]) -> None:
    if ids:
        db.session.execute(
            update(ContentBlock),
            [{"id": bid, "section_id": section_id, "position": i} for i, bid in enumerate(ids)],
        )


# --- sections --------------------------------------------------------------------------------


@unit_of_work()
def add_section(course: Course, title: str, description: str = "") -> Section:
    title = clean_title(title)
    description = clean_text(description, DESCRIPTION_MAX, "description")
    lock(course.id)
    position = len(section_ids(course.id))
    section = Section(course_id=course.id, title=title, description=description, position=position)
    db.session.add(section)
    touch(course.id)
    return section


@unit_of_work(missing="No such section.")
def update_section_field(section: Section, name: str, value: str) -> Section:
    """Set the section's title or description."""
    _set_text(section, name, value)
    touch(section.course_id)
    return section


@unit_of_work()
def delete_section(section: Section) -> int:
    """Delete a section with its blocks (and their completions); returns the course id."""
    course_id = section.course_id
    lock(course_id)
    db.session.execute(delete(Section).where(Section.id == section.id))
    _renumber_sections(section_ids(course_id))
    sync_course_completion(course_id)
    touch(course_id)
    return course_id


@unit_of_work()
def move_section(section: Section, direction: str) -> Section:
    """Move a section one place up or down; at either end nothing changes."""
    if direction not in ("up", "down"):
        raise Invalid("Move up or down.")
    lock(section.course_id)
    ids = section_ids(section.course_id)
    if section.id not in ids:  # deleted in another tab while this waited for the lock
        raise NotFound("No such section.")
    i = ids.index(section.id)
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(ids):
        ids[i], ids[j] = ids[j], ids[i]
        _renumber_sections(ids)
        touch(section.course_id)
    return section


@unit_of_work(missing="No such section.")  # deleted in another tab meanwhile
def set_collapsed(section: Section, user: User, collapsed: bool) -> None:
    """Remember per user whether the section is folded away in the editor.

    One statement each way, so two tabs (or a double click) cannot collide: the row is the whole
    state (its key is its only content), so the upsert is INSERT … ON CONFLICT DO NOTHING.
    """
    if collapsed:
        db.session.execute(
            insert(CollapsedSection)
            .values(user_id=user.id, section_id=section.id)
            .on_conflict_do_nothing(index_elements=["user_id", "section_id"])
        )
    else:
        db.session.execute(
            delete(CollapsedSection).where(
                CollapsedSection.user_id == user.id, CollapsedSection.section_id == section.id
            )
        )


ORDER_MAX_BYTES = 64 * 1024  # ~6,000 ids: far more than any course outline
_ORDER_CHARS = frozenset("0123456789[], \t\r\n")


def parse_order(text: str | None) -> list[tuple[int, list[int]]]:
    """The drag-and-drop order ``[[section id, [block id, …]], …]`` from its JSON text.

    Invalid for anything else. Only digits, brackets, commas and whitespace are accepted and the
    nesting is checked before ``json.loads``, so a deeply nested or odd payload is refused
    cheaply instead of reaching the parser's recursion limit.
    """
    unreadable = Invalid("The new order could not be read. Nothing was moved.", field="order")
    text = text or ""
    if len(text) > ORDER_MAX_BYTES:
        raise Invalid("The new order is too large. Nothing was moved.", field="order")
    if not text.strip() or not _ORDER_CHARS.issuperset(text):
        raise unreadable
    depth = 0
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if not 0 <= depth <= 3:
            raise unreadable
    try:
        raw = json.loads(text)
    except ValueError:
        raise unreadable from None
    if not isinstance(raw, list):
        raise unreadable
    order = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2):
            raise unreadable
        section_id, blocks = item
        if not isinstance(section_id, int) or not isinstance(blocks, list):
            raise unreadable
        if not all(isinstance(b, int) for b in blocks):
            raise unreadable
        order.append((section_id, blocks))
    return order


@unit_of_work()
def reorder(course: Course, order: list[tuple[int, list[int]]]) -> None:
    """Save a whole new order: sections, and for each section its blocks, in one transaction.

    The order must name every section and block of the course exactly once and nothing else;
    a stale or tampered order raises Conflict and changes nothing.
    """
    stale = Conflict("The outline changed since this page was loaded. Nothing was moved.")
    section_ids = [sid for sid, _ in order]
    block_ids = [bid for _, blocks in order for bid in blocks]
    if len(set(section_ids)) != len(section_ids) or len(set(block_ids)) != len(block_ids):
        raise stale
    lock(course.id)
    current = db.session.execute(
        select(Section.id, ContentBlock.id)
        .outerjoin(ContentBlock, ContentBlock.section_id == Section.id)
        .where(Section.course_id == course.id)
    ).all()
    have_sections = {sid for sid, _ in current}
    have_blocks = {bid for _, bid in current if bid is not None}
    if set(section_ids) != have_sections or set(block_ids) != have_blocks:
        raise stale
    _renumber_sections(section_ids)
    for sid, blocks in order:
        place_blocks(sid, blocks)
    touch(course.id)
