"""Content blocks of a course: their values, adding, changing, moving and deleting them, and the
whole order of sections and blocks at once (drag and drop).

The route passes the guarded block or section (``access.block_for_owner``,
``access.section_for_owner``). Every change that touches the structure takes the course lock
(``courses.lock``) and then reads again what it is about to change: a block or section deleted
or moved in another tab while this waited is a 404, never a half-applied move.
"""

from __future__ import annotations

import json

from sqlalchemy import Row, delete, select, update

from ..extensions import db
from ..models import URL_TYPES, BlockType, ContentBlock, Course, Section
from . import Conflict, Invalid, NotFound, unit_of_work
from .courses import (
    CONTENT_MAX,
    DESCRIPTION_MAX,
    TITLE_MAX,
    block_ids,
    clean_text,
    clean_title,
    clean_url,
    completions_of,
    lock,
    place_blocks,
    renumber_sections,
    section_ids,
    touch,
)
from .progress import sync_course_completion


def clean_block(
    title: str, description: str, type_: str, url: str | None, content: str
) -> dict[str, object]:
    if type_ not in {str(t) for t in BlockType}:
        raise Invalid("Choose a type.", field="type")
    return {
        "title": clean_title(title),
        "description": clean_text(description, DESCRIPTION_MAX, "description"),
        "type": type_,
        "url": clean_url(url, required=type_ in URL_TYPES),
        "content": clean_text(content, CONTENT_MAX, "content"),
    }


def _section_of(block_id: int) -> int:
    """The block's section as committed now (read under the course lock)."""
    section_id = db.session.scalar(
        select(ContentBlock.section_id).where(ContentBlock.id == block_id)
    )
    if section_id is None:
        raise NotFound("No such block.")
    return section_id


def _require_section(section: Section) -> None:
    if section.id not in section_ids(section.course_id):
        raise NotFound("No such section.")


@unit_of_work()
def add_block(
    section: Section,
    title: str,
    type_: str = BlockType.LESSON,
    url: str | None = None,
    content: str = "",
    description: str = "",
) -> ContentBlock:
    """Append a block to the section."""
    values = clean_block(title, description, type_, url, content)
    lock(section.course_id)
    _require_section(section)
    position = len(block_ids(section.id))
    block = ContentBlock(section_id=section.id, position=position, **values)
    db.session.add(block)
    db.session.flush()
    sync_course_completion(section.course_id)
    touch(section.course_id)
    return block


@unit_of_work()
def update_block(
    block: ContentBlock,
    title: str,
    type_: str,
    url: str | None,
    content: str,
    description: str = "",
) -> Row:
    """Save the block's values; returns its row as the editor shows it (``id``, ``section_id``,
    ``title``, ``type``, ``done``: its completions, ``course_id``).

    Two statements whatever the course's size: the UPDATE reads that row back itself
    (RETURNING, with the block's completions counted on their index), then the course is
    marked changed. A block deleted in another tab meanwhile is a 404."""
    values = clean_block(title, description, type_, url, content)
    row = db.session.execute(
        update(ContentBlock)
        .where(ContentBlock.id == block.id)
        .values(**values)
        .returning(
            ContentBlock.id,
            ContentBlock.section_id,
            ContentBlock.title,
            ContentBlock.type,
            # Bound ids, not correlated columns: SQLite writes RETURNING unqualified.
            completions_of(block.id).label("done"),
            select(Section.course_id)
            .where(Section.id == block.section_id)
            .scalar_subquery()
            .label("course_id"),
        )
    ).one_or_none()
    if row is None:
        raise NotFound("No such block.")
    touch(row.course_id)
    return row


@unit_of_work()
def delete_block(block: ContentBlock) -> int:
    """Delete a block (and its completions); returns the course id."""
    course_id = block.section.course_id
    lock(course_id)
    section_id = _section_of(block.id)
    db.session.execute(delete(ContentBlock).where(ContentBlock.id == block.id))
    place_blocks(section_id, block_ids(section_id))
    sync_course_completion(course_id)
    touch(course_id)
    return course_id


@unit_of_work()
def duplicate_block(block: ContentBlock) -> ContentBlock:
    """A copy of the block ("Copy of …", same type and content, no completions) right after
    it in its section."""
    course_id = block.section.course_id
    lock(course_id)
    section_id = _section_of(block.id)
    copy = ContentBlock(
        section_id=section_id,
        position=0,  # placed below
        title=f"Copy of {block.title}"[:TITLE_MAX],
        description=block.description,
        type=block.type,
        url=block.url,
        content=block.content,
    )
    db.session.add(copy)
    db.session.flush()
    ids = [b for b in block_ids(section_id) if b != copy.id]
    ids.insert(ids.index(block.id) + 1, copy.id)
    place_blocks(section_id, ids)
    sync_course_completion(course_id)
    touch(course_id)
    return copy


@unit_of_work()
def move_block(block: ContentBlock, direction: str) -> ContentBlock:
    """One place up or down; past the edge of its section into the neighbouring section."""
    if direction not in ("up", "down"):
        raise Invalid("Move up or down.")
    course_id = block.section.course_id
    lock(course_id)
    section_id = _section_of(block.id)
    sections = section_ids(course_id)
    ids = block_ids(section_id)
    i = ids.index(block.id)
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(ids):
        ids[i], ids[j] = ids[j], ids[i]
        place_blocks(section_id, ids)
    else:
        k = sections.index(section_id) + (-1 if direction == "up" else 1)
        if 0 <= k < len(sections):
            target = sections[k]
            ids.remove(block.id)
            others = block_ids(target)
            others = others + [block.id] if direction == "up" else [block.id, *others]
            place_blocks(section_id, ids)
            place_blocks(target, others)
    touch(course_id)
    return block


@unit_of_work()
def move_block_to_section(block: ContentBlock, target: Section) -> ContentBlock:
    """Move the block to the end of ``target``, another section of the same course."""
    if target.course_id != block.section.course_id:
        raise NotFound("No such section.")
    lock(target.course_id)
    _require_section(target)
    source_id = _section_of(block.id)
    if target.id != source_id:
        place_blocks(source_id, [b for b in block_ids(source_id) if b != block.id])
        place_blocks(target.id, [*block_ids(target.id), block.id])
    touch(target.course_id)
    return block


# --- the whole order at once (drag and drop) --------------------------------------------------


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
    renumber_sections(section_ids)
    for sid, blocks in order:
        place_blocks(sid, blocks)
    touch(course.id)
