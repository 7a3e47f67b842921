"""The authoring aggregate: a course, its sections and their order; the values every part checks.

Content blocks are ``services/blocks.py``. Routes call the guards of ``services/access.py`` and
pass the guarded object in; a function here takes the acting user only where it needs one (the
owner of a new course or copy, the actor of an audited deletion, the per-user folded state).
Every change is one ``unit_of_work()``; structural changes take the course lock first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import Row, ScalarSelect, delete, func, select, update
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
from . import Invalid, NotAllowed, NotFound, audit, insert, unit_of_work
from .access import manages
from .progress import block_total, sync_course_completion

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


def completions_of(block_id) -> ScalarSelect:
    """How many completions a block has: one range of ``ix_completed_content_blocks_block``.

    ``block_id`` is a column (correlated, one count per row) or the id of one block."""
    return (
        select(func.count())
        .select_from(CompletedContentBlock)
        .where(CompletedContentBlock.content_block_id == block_id)
        .scalar_subquery()
    )


def _block_columns() -> tuple:
    """What a block's row in the editor shows: its title and type, and its completions (the
    delete confirmation names them). Never the content: the editor loads that for the one block
    being edited."""
    return (
        ContentBlock.id,
        ContentBlock.section_id,
        ContentBlock.title,
        ContentBlock.type,
        completions_of(ContentBlock.id).label("done"),
    )


@dataclass
class Outline:
    """Everything the editor shows, in a fixed number of queries whatever the course's size.

    ``sections`` are the course's sections; their blocks are light rows (``id``,
    ``section_id``, ``title``, ``type``, ``done``: its completions), in ``blocks_of(section)``.
    """

    sections: list[Section]
    collapsed: set[int] = field(default_factory=set)
    blocks: dict[int, list[Row]] = field(default_factory=dict)  # section id -> its block rows
    students: int = 0

    def blocks_of(self, section: Section) -> list[Row]:
        return self.blocks.get(section.id, [])

    @property
    def block_count(self) -> int:
        return sum(len(rows) for rows in self.blocks.values())

    def section_completions(self, section: Section) -> int:
        return sum(b.done for b in self.blocks_of(section))

    @property
    def completion_count(self) -> int:
        return sum(b.done for rows in self.blocks.values() for b in rows)

    def has_block(self, block_id: int | str) -> bool:
        return any(str(b.id) == str(block_id) for rows in self.blocks.values() for b in rows)


def _outline(user: User, sections_where, blocks_where) -> Outline:
    """The sections with the user's folded state, then the blocks' rows with their completions
    (one count per block, each an index range): two statements."""
    folded = CollapsedSection.section_id.is_not(None)
    rows = db.session.execute(
        select(Section, folded)
        .outerjoin(
            CollapsedSection,
            (CollapsedSection.section_id == Section.id) & (CollapsedSection.user_id == user.id),
        )
        .where(sections_where)
        .order_by(Section.position, Section.id)
    ).all()
    blocks: dict[int, list[Row]] = {section.id: [] for section, _ in rows}
    for row in db.session.execute(
        select(*_block_columns())
        .join(Section, ContentBlock.section_id == Section.id)
        .where(blocks_where)
        .order_by(ContentBlock.position, ContentBlock.id)
    ):
        blocks[row.section_id].append(row)
    collapsed = {section.id for section, is_folded in rows if is_folded}
    return Outline([section for section, _ in rows], collapsed, blocks)


def outline(course: Course, user: User) -> Outline:
    """The editor's outline of ``course`` as ``user`` folds it, and its number of students:
    three statements."""
    o = _outline(user, Section.course_id == course.id, Section.course_id == course.id)
    o.students = (
        db.session.scalar(
            select(func.count(StudentCourse.id)).where(StudentCourse.course_id == course.id)
        )
        or 0
    )
    return o


def section_outline(section_id: int, user: User) -> Outline:
    """The outline of one section (its fragment in the editor): two statements."""
    return _outline(user, Section.id == section_id, ContentBlock.section_id == section_id)


def sections_of(course_id: int) -> list[Section]:
    """The course's sections in order (the "Move to section" chooser)."""
    return list(
        db.session.scalars(
            select(Section)
            .where(Section.course_id == course_id)
            .order_by(Section.position, Section.id)
        )
    )


def block_row(block: ContentBlock) -> Row:
    """One block's row as the editor shows it, with its course (for the editor's links)."""
    row = db.session.execute(
        select(*_block_columns(), Section.course_id)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(ContentBlock.id == block.id)
    ).one_or_none()
    if row is None:  # deleted meanwhile
        raise NotFound("No such block.")
    return row


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


def _text(name: str, value: str) -> dict[str, str]:
    """The title or the description of a course or a section (the in-place editors), checked."""
    if name == "title":
        return {"title": clean_title(value)}
    if name == "description":
        return {"description": clean_text(value, DESCRIPTION_MAX, "description")}
    raise Invalid("Unknown field.")


def _save_text(model: type[Course] | type[Section], row_id: int, values: dict, *shown) -> Row:
    """UPDATE one row and read back what its in-place field shows, in the same statement: the
    answer needs no other query, and the row it renders is not the ORM object that the commit
    expires (reading that again after the commit would be one more statement)."""
    row = db.session.execute(
        update(model)
        .where(model.id == row_id)
        .values(**values)
        .returning(model.id, model.title, model.description, *shown)
    ).one_or_none()
    if row is None:  # deleted meanwhile
        raise NotFound(f"No such {model.__name__.lower()}.")
    return row


@unit_of_work()
def update_course_field(course: Course, name: str, value: str) -> Row:
    """Set the course's title or description; returns the row as saved (id, title,
    description)."""
    return _save_text(Course, course.id, _text(name, value))


EMPTY_COURSE = "Add at least one block before publishing: there would be nothing to read."
PUBLISHED = {
    True: "Published: the course is in the catalogue.",
    False: "Unpublished: out of the catalogue; enrolled students keep it and their work.",
}


@unit_of_work()
def set_published(course: Course, published: bool) -> str:
    """Publish (a course with blocks; locked, as deleting a block locks it) or unpublish (out
    of the catalogue, kept by enrolled students); returns what the teacher is told."""
    if published:
        lock(course.id)
        if not db.session.scalar(block_total(course.id)):
            raise Invalid(EMPTY_COURSE, field="published")
    course.is_published = bool(published)
    return PUBLISHED[course.is_published]


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


def renumber_sections(ids: list[int]) -> None:
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


@unit_of_work()
def update_section_field(section: Section, name: str, value: str) -> Row:
    """Set the section's title or description; returns the row as saved (id, title, description,
    course_id)."""
    row = _save_text(Section, section.id, _text(name, value), Section.course_id)
    touch(row.course_id)
    return row


@unit_of_work()
def delete_section(section: Section) -> int:
    """Delete a section with its blocks (and their completions); returns the course id."""
    course_id = section.course_id
    lock(course_id)
    db.session.execute(delete(Section).where(Section.id == section.id))
    renumber_sections(section_ids(course_id))
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
        renumber_sections(ids)
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
