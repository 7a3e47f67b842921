"""How long a course takes: the estimated length on the course cards (docs/design.md).

The rule, per block, by its type:

- a lesson is read at 200 words a minute, a word counted as 6 characters of its Markdown
  (1,200 characters a minute), rounded up, and takes at least 2 minutes;
- a video 10 minutes (its real length is not known to Lectern);
- a link 5 minutes;
- a quiz 10 minutes;
- an assignment 30 minutes.

A course's length is the sum over its blocks, computed in SQL alongside the other card figures
(no statement of its own); ``length_label`` words it for a card.
"""

from __future__ import annotations

from sqlalchemy import case, func, select

from ..models import BlockType, ContentBlock, Section

READING_CHARS_PER_MINUTE = 1200
LESSON_MIN_MINUTES = 2
FIXED_MINUTES = {
    BlockType.VIDEO: 10,
    BlockType.LINK: 5,
    BlockType.QUIZ: 10,
    BlockType.ASSIGNMENT: 30,
}


def lesson_minutes(characters: int) -> int:
    """The rule for a lesson's text, in Python (the SQL below says the same)."""
    return max(LESSON_MIN_MINUTES, -(-characters // READING_CHARS_PER_MINUTE))


def block_minutes():
    """SQL: the estimated minutes of one ``ContentBlock`` row."""
    # Whole minutes, rounded up: integer division on both databases (``//``, not ``/``, which
    # SQLAlchemy 2 renders as a true division on PostgreSQL).
    reading = (func.length(ContentBlock.content) + READING_CHARS_PER_MINUTE - 1) // (
        READING_CHARS_PER_MINUTE
    )
    return case(
        *((ContentBlock.type == str(kind), minutes) for kind, minutes in FIXED_MINUTES.items()),
        (reading < LESSON_MIN_MINUTES, LESSON_MIN_MINUTES),
        else_=reading,
    )


def course_minutes(course_id):
    """SELECT: the estimated minutes of a course (``course_id`` a value or a column)."""
    return (
        select(func.coalesce(func.sum(block_minutes()), 0))
        .join(Section, ContentBlock.section_id == Section.id)
        .where(Section.course_id == course_id)
    )


def length_label(minutes: int) -> str:
    """ "About 25 min", "About 2 h 10 min": to 5 minutes under an hour, else to 10 minutes."""
    minutes = int(minutes)
    if minutes <= 0:
        return "No content yet"
    if minutes < 60:
        return f"About {max(5, -(-minutes // 5) * 5)} min"
    rounded = (minutes + 5) // 10 * 10
    hours, rest = divmod(rounded, 60)
    return f"About {hours} h" + (f" {rest} min" if rest else "")
