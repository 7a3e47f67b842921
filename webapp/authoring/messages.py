"""What the editor says in the status region after a change of the structure.

A screen reader user hears where the thing now is ("Installing Python moved to position 3 in
Getting started"), not just that something happened ("Block moved"). Each function takes what
the route knows before the change (the id) and returns a function of the new outline
(``courses.Outline``), which the route loads anyway to answer the fragment.
"""

from __future__ import annotations

from collections.abc import Callable

Say = Callable[[object], str]


def _block(o, block_id: int):
    """(the block's row, its 1-based position, its section) in the outline, or None."""
    for section in o.sections:
        for i, row in enumerate(o.blocks_of(section)):
            if row.id == block_id:
                return row, i + 1, section
    return None


def _section(o, section_id: int):
    for i, section in enumerate(o.sections):
        if section.id == section_id:
            return section, i + 1
    return None


def block_placed(block_id: int, verb: str = "moved to", kind: bool = False) -> Say:
    """ "Installing Python moved to position 3 in Getting started" (``verb`` "added at" for a new
    block; ``kind`` names its type first: "Video Installing Python added at …")."""

    def say(o) -> str:
        found = _block(o, block_id)
        if found is None:  # deleted in another tab meanwhile
            return "The block is gone."
        row, n, section = found
        what = f"{str(row.type).capitalize()} {row.title}" if kind else row.title
        return f"{what} {verb} position {n} in {section.title}"

    return say


def section_placed(section_id: int, verb: str = "moved to") -> Say:
    """ "Section Getting started moved to position 2 of 4"."""

    def say(o) -> str:
        found = _section(o, section_id)
        if found is None:
            return "The section is gone."
        section, n = found
        return f"Section {section.title} {verb} position {n} of {len(o.sections)}"

    return say


def order_of(o) -> list:
    """The outline's order in the form ``blocks.parse_order`` reads: [[section, [blocks]]…]."""
    return [[section.id, [row.id for row in o.blocks_of(section)]] for section in o.sections]


def _moved(before: list, after: list):
    """The one item dragged from ``before`` to ``after`` (lists), or None."""
    if before == after:
        return None
    for item in before:
        if [x for x in before if x != item] == [x for x in after if x != item]:
            return item
    return None


def reordered(before: list, after: list) -> Say:
    """After drag and drop: where the dragged section or block landed, like its menu's moves."""
    section = _moved([s for s, _ in before], [s for s, _ in after])
    # Sections and blocks in one row of tokens, so a block dragged over a section's edge
    # (from the end of one to the start of the next) is seen to move too.
    tokens = [
        [token for s, blocks in order for token in (("s", s), *(("b", b) for b in blocks))]
        for order in (before, after)
    ]
    block = _moved(*tokens) if section is None else None
    block = block if block is None or block[0] == "b" else None

    def say(o) -> str:
        if section is not None:
            return section_placed(section)(o)
        if block is not None:
            return block_placed(block[1])(o)
        n, m = len(o.sections), o.block_count
        return f"Order saved: {n} section{'s' * (n != 1)}, {m} block{'s' * (m != 1)}"

    return say


def field_saved(kind: str, name: str, row) -> str:
    """ "Course title saved: Web basics", "Description of section Getting started saved"."""
    if name == "title":
        return f"{kind.capitalize()} title saved: {row.title}"
    return f"Description of {'the course' if kind == 'course' else 'section ' + row.title} saved"
