"""Content blocks of a course: their values, and adding, changing, moving and deleting them.

The route passes the guarded block or section (``access.block_for_owner``,
``access.section_for_owner``). Every change that touches the structure takes the course lock
(``courses.lock``) and then reads again what it is about to change: a block or section deleted
or moved in another tab while this waited is a 404, never a half-applied move.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from ..extensions import db
from ..models import URL_TYPES, BlockType, ContentBlock, Section
from . import Invalid, NotFound, unit_of_work
from .courses import (
    CONTENT_MAX,
    DESCRIPTION_MAX,
    block_ids,
    clean_text,
    clean_title,
    clean_url,
    lock,
    place_blocks,
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


@unit_of_work(missing="No such block.")  # deleted in another tab meanwhile
def update_block(
    block: ContentBlock,
    title: str,
    type_: str,
    url: str | None,
    content: str,
    description: str = "",
) -> ContentBlock:
    for name, value in clean_block(title, description, type_, url, content).items():
        setattr(block, name, value)
    touch(block.section.course_id)
    return block


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
