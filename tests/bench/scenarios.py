"""The scenarios: one small table of URL, method, form fields and headers, easy to update when
the routes change; where the varying values come from; how each write is checked.

Values in ``path``, ``fields`` and ``headers`` are ``str.format`` templates over the run's
context (``course``, ``lesson``, ``q``, ``origin``), the session (``csrf``) and the item (a
block, a submission, …). ``__N__`` in a field becomes the request's number in its wrk thread.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from dataclasses import dataclass, field

import psycopg

from . import seed
from .wrk import Req

HX = {"HX-Request": "true"}


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    who: str  # "student", "teacher" or "admin": whose sessions send it
    method: str
    path: str
    fields: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    items: str | None = None  # a key of ITEMS: what varies between requests (None: a page)
    check: str | None = None  # a key of CHECKS: how the write is found in the database


def _hx(target: str, page: str) -> dict[str, str]:
    """The headers htmx sends for a form with hx-target="#<target>" on ``page``."""
    return {**HX, "HX-Target": target, "HX-Current-URL": "{origin}" + page}


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("course", "large course page (student)", "student", "GET", "/courses/{course}"),
    Scenario(
        "block", "block page (student)", "student", "GET", "/courses/{course}/blocks/{lesson}"
    ),
    Scenario(
        "complete", "mark complete (htmx)", "student",
        "POST", "/courses/{course}/blocks/{block}/complete",
        fields={"csrf_token": "{csrf}", "url": "https://work.example.org/b/{block}", "remarks": ""},
        headers=_hx("completion", "/courses/{course}/blocks/{block}"),
        items="not_done", check="completions_up",
    ),
    Scenario(
        "undo", "undo (htmx)", "student", "POST", "/courses/{course}/blocks/{block}/undo",
        fields={"csrf_token": "{csrf}"},
        headers=_hx("completion", "/courses/{course}/blocks/{block}"),
        items="done_by_bench", check="completions_down",
    ),
    Scenario(
        "title", "teacher edits a block title (htmx)", "teacher", "POST", "/teach/blocks/{block}",
        fields={
            "csrf_token": "{csrf}",
            "block-{block}-title": "{title}",
            "block-{block}-type": "{type}",
            "block-{block}-url": "{url}",
            "block-{block}-description": "{description}",
            "block-{block}-content": "{content}",
        },
        headers=_hx("block-{block}", "/teach/courses/{course}"),
        items="title_blocks", check="titles",
    ),
    Scenario("queue", "grading queue", "teacher", "GET", "/teach/courses/{course}/grading"),
    Scenario(
        "grade", "grade, Save & next (htmx)", "teacher",
        "POST", "/teach/courses/{course}/grading/{completion}",
        fields={
            "csrf_token": "{csrf}", "version": "{version}", "grade": "{grade}", "comment": "",
            "action": "next",
        },
        headers=_hx("grading-panel", "/teach/courses/{course}/grading/{completion}"),
        items="queue", check="grades_up",
    ),
    Scenario(
        "gradebook", "gradebook, first page", "teacher", "GET", "/teach/courses/{course}/gradebook"
    ),
    Scenario("search", "admin search over 100,000 users", "admin", "GET", "/admin/users?q={q}"),
)  # fmt: skip


# --- the requests -----------------------------------------------------------------------------


@dataclass
class Slot:
    """One sender: a wrk thread (index 0..15), the single connection (16) or the probe (17)."""

    index: int
    session: object  # server.Session


SINGLE, PROBE = 16, 17


@dataclass
class Context:
    seeded_at: dt.datetime
    course: int = seed.LARGE_COURSE
    lesson: int = 501  # a lesson in week 21, with content
    q: str = "garcia"  # 2,000 of the 100,000 users
    origin: str = "https://lectern.bench.invalid"
    encoding: str = "br, gzip"
    tag: str = ""  # this run, in edited titles

    def values(self) -> dict[str, object]:
        return {"course": self.course, "lesson": self.lesson, "q": self.q, "origin": self.origin}


def build(s: Scenario, ctx: Context, slot: Slot, item: dict) -> Req:
    values = {**ctx.values(), "csrf": slot.session.csrf, **item}
    headers = {k.format(**values): v.format(**values) for k, v in s.headers.items()}
    headers["Cookie"] = slot.session.cookie
    if ctx.encoding:
        headers["Accept-Encoding"] = ctx.encoding
    body = None
    if s.method == "POST":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers.setdefault("X-CSRFToken", slot.session.csrf)  # layout.html's hx-headers
        body = urllib.parse.urlencode(
            {k.format(**values): v.format(**values) for k, v in s.fields.items()}
        )
    return Req(s.method, s.path.format(**values), headers, body)


def requests(
    s: Scenario, conn: psycopg.Connection, ctx: Context, slots: list[Slot], cap: int
) -> list[list[Req]]:
    """One list of requests per slot (a page: the one request)."""
    if s.items is None:
        return [[build(s, ctx, slot, {})] for slot in slots]
    lists = ITEMS[s.items](conn, ctx, slots, cap)
    pairs = zip(slots, lists, strict=True)
    return [[build(s, ctx, slot, item) for item in items] for slot, items in pairs]


# --- where the items come from ----------------------------------------------------------------

_BLOCKS = """
SELECT b.id, b.type FROM content_blocks b JOIN sections s ON s.id = b.section_id
WHERE s.course_id = %(course)s {where}
ORDER BY s.position, b.position LIMIT %(limit)s"""
_NOT_DONE = """AND NOT EXISTS (SELECT 1 FROM completed_content_blocks c
                               WHERE c.student_id = %(sid)s AND c.content_block_id = b.id)"""


def _not_done(conn, ctx: Context, slots: list[Slot], cap: int) -> list[list[dict]]:
    """Each student's blocks not done yet, in course order (their next steps)."""
    sql = _BLOCKS.format(where=_NOT_DONE)
    return [
        [
            {"block": bid}
            for bid, _ in conn.execute(
                sql, {"course": ctx.course, "sid": slot.session.user_id, "limit": cap}
            )
        ]
        for slot in slots
    ]


def _done_by_bench(conn, ctx: Context, slots: list[Slot], cap: int) -> list[list[dict]]:
    """Each student's completions made by the bench, newest first; topped up with plain
    lesson/video/link completions (SQL) so that every student has ``cap`` to undo."""
    lists = []
    for slot in slots:
        sid = slot.session.user_id
        args = {"course": ctx.course, "sid": sid, "at": ctx.seeded_at, "limit": cap}
        mine = """
SELECT c.content_block_id FROM completed_content_blocks c
JOIN content_blocks b ON b.id = c.content_block_id JOIN sections s ON s.id = b.section_id
WHERE s.course_id = %(course)s AND c.student_id = %(sid)s AND c.completed_at > %(at)s
  AND c.grade IS NULL AND c.graded_at IS NULL
ORDER BY c.completed_at DESC, c.id DESC LIMIT %(limit)s"""
        have = [row[0] for row in conn.execute(mine, args)]
        if len(have) < cap:
            plain = _NOT_DONE + " AND b.type NOT IN ('quiz', 'assignment')"
            conn.execute(
                "INSERT INTO completed_content_blocks (student_id, content_block_id, feedback, "
                "grader_comment, completed_at, updated_at) "
                "SELECT %(sid)s, x.id, '', '', now(), now() "
                f"FROM ({_BLOCKS.format(where=plain)}) x",
                {**args, "limit": cap - len(have)},
            )
            conn.commit()
            have = [row[0] for row in conn.execute(mine, args)]
        lists.append([{"block": bid} for bid in have])
    return lists


TITLE_BLOCKS = [1 + 56 * k for k in range(18)]  # lessons (position ≡ 0 mod 8), one per slot


def _title_blocks(conn, ctx: Context, slots: list[Slot], cap: int) -> list[list[dict]]:
    """One lesson per slot, its other fields sent back unchanged; the title numbered."""
    lists = []
    for slot in slots:
        bid = TITLE_BLOCKS[slot.index]
        row = conn.execute(
            "SELECT type, coalesce(url, ''), description, content FROM content_blocks "
            "WHERE id = %s",
            (bid,),
        ).fetchone()
        kind, url, description, content = row
        title = f"Edited {ctx.tag} s{slot.index} #__N__"
        lists.append(
            [
                {
                    "block": bid, "type": kind, "url": url, "description": description,
                    "content": content, "title": title,
                }
            ]
        )  # fmt: skip
    return lists


QUEUE = """
SELECT c.id, c.version FROM completed_content_blocks c
JOIN content_blocks b ON b.id = c.content_block_id JOIN sections s ON s.id = b.section_id
JOIN student_courses sc ON sc.student_id = c.student_id AND sc.course_id = s.course_id
WHERE s.course_id = %(course)s AND b.type IN ('quiz', 'assignment')
  AND (c.grade IS NULL OR c.graded_at IS NULL OR c.updated_at > c.graded_at)
ORDER BY c.updated_at, c.id LIMIT %(limit)s"""


def _queue(conn, ctx: Context, slots: list[Slot], cap: int) -> list[list[dict]]:
    """The grading queue, oldest first, dealt round-robin to the slots (no two grade the same
    submission). ``version`` is what the grading form carries: the row's version column
    (migration 0004), which the grade's UPDATE must still find."""
    rows = conn.execute(QUEUE, {"course": ctx.course, "limit": cap * len(slots)}).fetchall()
    lists: list[list[dict]] = [[] for _ in slots]
    for i, (cid, version) in enumerate(rows):
        item = {"completion": cid, "version": version, "grade": 40 + cid % 61}
        lists[i % len(slots)].append(item)
    return lists


ITEMS = {
    "not_done": _not_done,
    "done_by_bench": _done_by_bench,
    "title_blocks": _title_blocks,
    "queue": _queue,
}


# --- did the writes happen? -------------------------------------------------------------------


def _completions(conn, ctx: Context, slots: list[Slot]) -> int:
    ids = sorted({slot.session.user_id for slot in slots})
    return conn.execute(
        "SELECT count(*) FROM completed_content_blocks c JOIN content_blocks b "
        "ON b.id = c.content_block_id JOIN sections s ON s.id = b.section_id "
        "WHERE s.course_id = %s AND c.student_id = ANY(%s)",
        (ctx.course, ids),
    ).fetchone()[0]


def _graded(conn, ctx: Context, slots: list[Slot]) -> int:
    return conn.execute(
        "SELECT count(*) FROM completed_content_blocks WHERE graded_at > %s", (ctx.seeded_at,)
    ).fetchone()[0]


def _titles(conn, ctx: Context, slots: list[Slot]) -> dict[int, str]:
    ids = [TITLE_BLOCKS[slot.index] for slot in slots]
    return dict(conn.execute("SELECT id, title FROM content_blocks WHERE id = ANY(%s)", (ids,)))


def _bounds(threads: list[dict]) -> tuple[int, int, bool]:
    """Rows that must have changed (answered 2xx/3xx) and may have (sent: the last request of
    each connection may still be served after wrk stops); distinct items only."""
    low = sum(min(t["ok"], t["items"]) for t in threads)
    high = sum(min(t["sent"], t["items"]) for t in threads)
    wrapped = any(t["sent"] > t["items"] for t in threads)
    return low, high, wrapped


def _count_check(measure, sign: int, what: str):
    def check(conn, ctx, slots, before, after, threads) -> tuple[bool, str]:
        delta = sign * (after - before)
        low, high, wrapped = _bounds(threads)
        ok = low <= delta <= high
        note = " (lists wrapped: repeats are no-ops)" if wrapped else ""
        verb = "rose" if sign > 0 else "fell"
        return ok, f"{what} {verb} by {delta:,}; {low:,} answered OK, {high:,} sent{note}"

    return measure, check


def _titles_check(conn, ctx, slots, before, after, threads) -> tuple[bool, str]:
    wrong = []
    for slot, t in zip(slots, sorted(threads, key=lambda t: t["id"]), strict=True):
        bid = TITLE_BLOCKS[slot.index]
        allowed = {f"Edited {ctx.tag} s{slot.index} #{n}" for n in (t["last_ok"], t["sent"])}
        if t["ok"] and after[bid] not in allowed:
            wrong.append(f"block {bid}: {after[bid]!r}")
    total = sum(t["ok"] for t in threads)
    if wrong:
        return False, f"titles not the last sent: {'; '.join(wrong[:3])}"
    return True, f"{len(slots)} titles are the last sent ({total:,} edits answered OK)"


CHECKS = {
    "completions_up": _count_check(_completions, +1, "completions"),
    "completions_down": _count_check(_completions, -1, "completions"),
    "grades_up": _count_check(_graded, +1, "graded submissions"),
    "titles": (_titles, _titles_check),
}
