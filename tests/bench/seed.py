"""The school, seeded with bulk SQL (INSERT … SELECT generate_series) in its own database.

Schema by the app's migrations; data by a few INSERT … SELECT statements in one transaction,
then ANALYZE. A row in ``bench_seed`` records the seed version: later runs reuse the database,
and ``reset()`` takes back what an earlier run wrote (completions, grades, titles, emails) so
every run starts from the same state. SEED=fresh (or a new SEED_VERSION) seeds again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from werkzeug.security import generate_password_hash

from .settings import PASSWORD, ROOT, Settings

SEED_VERSION = 1

USERS = 100_000
ADMIN_ID = 1
TEACHERS = range(2, 302)  # 300 teachers; the first owns the large course
STUDENT_FIRST = 302
SMALL_COURSES = 500
LARGE_COURSE = 1  # ids 2..501 are the small courses
SECTIONS, PER_SECTION = 40, 25  # the large course: blocks 1..1000, in order
LARGE_STUDENTS = range(STUDENT_FIRST, STUDENT_FIRST + 2000)
WAITING_SPAN = 110  # gradable work in a student's last 110 blocks waits in the grading queue

# Cycling through the model's block types, lessons weighted: 2 of 8 gradable (quiz, assignment).
TYPE_CYCLE = ("lesson", "video", "lesson", "quiz", "lesson", "link", "lesson", "assignment")
GRADABLE = ("quiz", "assignment")
TOPICS = (
    "Reading the data", "Variables and names", "Counting things", "Tables and rows",
    "Asking questions", "Drawing a chart", "Averages", "Spread and outliers", "Sampling",
    "Chance", "Patterns", "Cleaning up", "Joining tables", "Grouping", "Sorting",
    "Ratios", "Growth", "Maps and places", "Time series", "Estimating", "Checking work",
    "Explaining a result", "Writing it up", "Peer review", "Looking back",
)  # fmt: skip
FIRST = (
    "Ada", "Ben", "Chloé", "Dara", "Emil", "Fatima", "Gus", "Hana", "Ivan", "Jade",
    "Kofi", "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tove",
    "Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zoe", "Aiko", "Bruno", "Carmen", "Dmitri",
    "Elif", "Finn", "Greta", "Hugo", "Inès", "Jonas", "Kira", "Luca", "Maya", "Noah",
)  # fmt: skip
LAST = (
    "Garcia", "Smith", "Nguyen", "Müller", "Rossi", "Kowalski", "Okafor", "Tanaka", "Silva",
    "Haddad", "Johansson", "Dubois", "Novak", "Petrov", "Kim", "Singh", "Cohen", "Moreau",
    "Jensen", "Fischer", "Lopez", "Brown", "Wilson", "Ahmed", "Santos", "Ivanova", "Berg",
    "Costa", "Murphy", "Schmidt", "Yilmaz", "Chen", "Mensah", "Larsen", "Popescu", "Varga",
    "Walsh", "Ortiz", "Hoffmann", "Ali", "Baker", "Lindqvist", "Romano", "Sato", "Park",
    "Mendes", "Novotny", "Keller", "Dunn", "Abebe",
)  # fmt: skip

LESSON = """## What this lesson covers

This lesson walks through *{topic}* with a worked example from the class data set.
Read it once, then try the steps yourself before you mark it complete.

1. Open the shared spreadsheet and find the sheet for this week.
2. Write down, in one sentence, what question the data could answer.
3. Compare your sentence with a classmate's and note one difference.

> Tip: keep your notes; the assignment at the end of the section builds on them.

```
total = sum(row.count for row in rows)
```

See the [course glossary](https://example.org/glossary) for the words in bold."""


def _lit(text: str) -> str:
    """A SQL string literal (standard_conforming_strings: only quotes need doubling)."""
    return "'" + text.replace("'", "''") + "'"


def _array(values) -> str:
    return "ARRAY[" + ", ".join(_lit(v) for v in values) + "]"


def _pick(values, index_sql: str) -> str:
    return f"({_array(values)})[1 + ({index_sql}) % {len(values)}]"


# The large course's block at id b (1..1000): section (b-1)/25, position (b-1)%25, its type and
# title. Also used by reset() to put edited titles back.
BLOCK_TYPE = _pick(TYPE_CYCLE, "b.id - 1")
BLOCK_TITLE = (
    f"initcap({BLOCK_TYPE}) || ' ' || ((b.id - 1) / {PER_SECTION} + 1) || '.' || "
    f"((b.id - 1) % {PER_SECTION} + 1) || ': ' || {_pick(TOPICS, 'b.id - 1')}"
)
# How far a large-course student got: 150..350 blocks done, 250 on average (500,000 in all).
PROGRESS = f"150 + ((st.sid - {STUDENT_FIRST}) * 7919) % 201"
# Seeded history ends a day before the seed, so anything later was written by a bench run.
AGO = "now() - interval '1 day'"


@dataclass
class Seed:
    version: int
    seeded_at: object  # datetime
    seconds: float


def _statements(pw_hash: str) -> list[str]:
    large = LARGE_COURSE
    return [
        f"""
INSERT INTO users (id, email, name, password_hash, role, is_active, activated_at,
                   session_epoch, created_at, last_login_at)
SELECT g,
       CASE WHEN g = {ADMIN_ID} THEN 'admin@bench.lectern.test'
            WHEN g < {STUDENT_FIRST} THEN 'teacher' || g || '@bench.lectern.test'
            ELSE 'student' || g || '@bench.lectern.test' END,
       {_pick(FIRST, "g")} || ' ' || {_pick(LAST, "g / 40")},
       {_lit(pw_hash)},
       CASE WHEN g = {ADMIN_ID} THEN 'admin' WHEN g < {STUDENT_FIRST} THEN 'teacher'
            ELSE 'student' END,
       true,
       {AGO} - ({USERS} - g) * interval '3 minutes' + interval '1 hour',
       0,
       {AGO} - ({USERS} - g) * interval '3 minutes',
       CASE WHEN g % 3 = 0 THEN NULL ELSE {AGO} - (g % 5000) * interval '1 minute' END
FROM generate_series(1, {USERS}) AS g""",
        f"""
INSERT INTO courses (id, title, description, user_id, is_published, created_at, updated_at)
SELECT c,
       CASE WHEN c = {large} THEN 'Data for everyone: the whole year'
            ELSE 'Course ' || c || ': ' || {_pick(TOPICS, "c")} END,
       'A course of the seeded school. Each section is one week; each week ends with work '
       || 'to hand in, graded by the teacher.',
       CASE WHEN c = {large} THEN {TEACHERS[0]} ELSE {TEACHERS[0]} + c % {len(TEACHERS)} END,
       true, {AGO} - interval '200 days', {AGO} - interval '100 days'
FROM generate_series(1, {SMALL_COURSES + 1}) AS c""",
        f"""
INSERT INTO sections (id, course_id, title, description, position)
SELECT s, {large}, 'Week ' || s || ': ' || {_pick(TOPICS, "s - 1")},
       'What we do in week ' || s || '.', s - 1
FROM generate_series(1, {SECTIONS}) AS s""",
        f"""
INSERT INTO sections (id, course_id, title, description, position)
SELECT {SECTIONS} + (c - 2) * 2 + p + 1, c, 'Part ' || (p + 1), '', p
FROM generate_series(2, {SMALL_COURSES + 1}) AS c, generate_series(0, 1) AS p""",
        f"""
INSERT INTO content_blocks (id, section_id, title, description, type, url, content, position)
SELECT b.id, (b.id - 1) / {PER_SECTION} + 1, {BLOCK_TITLE},
       CASE WHEN b.id % 3 = 0 THEN 'About ten minutes.' ELSE '' END,
       {BLOCK_TYPE},
       CASE {BLOCK_TYPE}
            WHEN 'video' THEN 'https://video.example.org/watch/' || b.id
            WHEN 'link' THEN 'https://reference.example.org/page/' || b.id END,
       CASE WHEN {BLOCK_TYPE} IN ('video', 'link') THEN ''
            WHEN {BLOCK_TYPE} = 'lesson' THEN replace({_lit(LESSON)}, '{{topic}}',
                                                      {_pick(TOPICS, "b.id - 1")})
            ELSE 'Hand in a link to your work: a document or a spreadsheet that shows '
                 || 'each step. Say in the remarks what you found hardest.' END,
       (b.id - 1) % {PER_SECTION}
FROM generate_series(1, {SECTIONS * PER_SECTION}) AS b(id)""",
        f"""
INSERT INTO content_blocks (id, section_id, title, description, type, url, content, position)
SELECT {SECTIONS * PER_SECTION} + (s - {SECTIONS} - 1) * 3 + p + 1, s,
       {_pick(("Read", "Watch", "Try"), "p")} || ': ' || {_pick(TOPICS, "s + p")}, '',
       {_pick(("lesson", "video", "quiz"), "p")},
       CASE WHEN p = 1 THEN 'https://video.example.org/short/' || s END,
       CASE WHEN p = 1 THEN '' ELSE 'A short text for part ' || (p + 1) || '.' END, p
FROM generate_series({SECTIONS + 1}, {SECTIONS + SMALL_COURSES * 2}) AS s,
     generate_series(0, 2) AS p""",
        # 2,000 students in the large course, each stopped at their last completed block.
        f"""
INSERT INTO student_courses (student_id, course_id, completed, enrolled_at, last_block_id)
SELECT st.sid, {large}, false, {AGO} - interval '90 days', {PROGRESS}
FROM generate_series({LARGE_STUDENTS.start}, {LARGE_STUDENTS.stop - 1}) AS st(sid)""",
        # Every student in one small course too (no completions there).
        f"""
INSERT INTO student_courses (student_id, course_id, completed, enrolled_at)
SELECT g, 2 + g % {SMALL_COURSES}, false, {AGO} - interval '60 days'
FROM generate_series({STUDENT_FIRST}, {USERS}) AS g""",
        # 500,000 completions: each student did the first 150..350 blocks, in order. Gradable
        # work older than the last WAITING_SPAN blocks is graded; the rest waits.
        f"""
INSERT INTO completed_content_blocks (student_id, content_block_id, url, feedback, grade,
                                      grader_comment, graded_at, graded_by_id, completed_at,
                                      updated_at)
SELECT st.sid, b.id,
       CASE WHEN b.type IN ('quiz', 'assignment')
            THEN 'https://work.example.org/' || st.sid || '/' || b.id END,
       CASE WHEN b.id % 7 = 0 THEN 'Done; the second step took me longest.' ELSE '' END,
       CASE WHEN g.graded THEN 40 + (st.sid + b.id) % 61 END,
       CASE WHEN g.graded AND b.id % 4 = 0 THEN 'Clear steps. Next time say why.' ELSE '' END,
       CASE WHEN g.graded THEN t.at + interval '20 hours' END,
       CASE WHEN g.graded THEN {TEACHERS[0]} END,
       t.at, t.at
FROM (SELECT sid, {PROGRESS} AS k
      FROM generate_series({LARGE_STUDENTS.start}, {LARGE_STUDENTS.stop - 1}) AS st(sid)) st
JOIN content_blocks b ON b.id <= st.k
CROSS JOIN LATERAL (SELECT b.type IN ('quiz', 'assignment') AND b.id <= st.k - {WAITING_SPAN}
                    AS graded) g
CROSS JOIN LATERAL (SELECT {AGO} - (st.k - b.id) * interval '1 hour'
                           - (st.sid % 600) * interval '1 minute' AS at) t""",
    ]


def _connect(dsn: str, **kw) -> psycopg.Connection:
    return psycopg.connect(dsn, connect_timeout=10, **kw)


def _exists(settings: Settings) -> bool:
    with _connect(settings.admin_dsn, autocommit=True) as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (settings.db_name,)
            ).fetchone()
        )


def _recreate(settings: Settings) -> None:
    name = settings.db_name
    with _connect(settings.admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def migrate(settings: Settings) -> None:
    """The app's own schema: flask db upgrade, with the bench's settings."""
    env = {**os.environ, **settings.app_env()}
    subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


def current(settings: Settings) -> Seed | None:
    """The seed recorded in the database, if it is this version's."""
    if not _exists(settings):
        return None
    with _connect(settings.dsn) as conn:
        has = conn.execute("SELECT to_regclass('bench_seed') IS NOT NULL").fetchone()[0]
        if not has:
            return None
        row = conn.execute(
            "SELECT version, seeded_at, facts FROM bench_seed ORDER BY seeded_at DESC LIMIT 1"
        ).fetchone()
    if row is None or row[0] != SEED_VERSION:
        return None
    return Seed(row[0], row[1], float(row[2].get("seconds", 0)))


def ensure(settings: Settings, log=print) -> Seed:
    """Reuse the seeded database, or make it (SEED=fresh forces a new one)."""
    seed = None if settings.fresh else current(settings)
    if seed is not None:
        try:
            migrate(settings)  # a newer checkout may bring a migration (an index)
        except subprocess.CalledProcessError as exc:
            log(f"  migrations failed on the seeded database ({exc.stderr.strip()[-200:]}),")
            log("  seeding again")
            seed = None
    if seed is not None:
        log(f"  reusing {settings.db_name} (seed version {seed.version}, {seed.seeded_at:%F %T})")
        return seed
    return create(settings, log)


def create(settings: Settings, log=print) -> Seed:
    started = time.perf_counter()
    log(f"  seeding {settings.db_name}: a new database, the app's migrations, bulk SQL")
    _recreate(settings)
    migrate(settings)
    pw_hash = generate_password_hash(PASSWORD, method="scrypt")  # once, for every user
    with _connect(settings.dsn) as conn, conn.transaction():
        # A bulk load of rows consistent by construction: skip the per-row FK triggers.
        conn.execute("SET LOCAL session_replication_role = replica")
        for sql in _statements(pw_hash):
            t0 = time.perf_counter()
            cur = conn.execute(sql)
            table = sql.split("INSERT INTO", 1)[1].split()[0]
            log(f"    {table:<26} {cur.rowcount:>8,} rows  {time.perf_counter() - t0:5.1f} s")
        for table in ("users", "courses", "sections", "content_blocks"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        conn.execute(
            "CREATE TABLE bench_seed (version int NOT NULL, seeded_at timestamptz NOT NULL, "
            "facts jsonb NOT NULL DEFAULT '{}')"
        )
    with _connect(settings.dsn, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        log(f"    VACUUM ANALYZE {time.perf_counter() - t0:.1f} s")
        seconds = time.perf_counter() - started
        conn.execute(
            "INSERT INTO bench_seed (version, seeded_at, facts) VALUES (%s, now(), %s)",
            (SEED_VERSION, json.dumps({"seconds": round(seconds, 1)})),
        )
    log(f"  seeded in {seconds:.0f} s")
    seed = current(settings)
    assert seed is not None
    return seed


def reset(settings: Settings, seed: Seed) -> dict[str, int]:
    """Take back what earlier runs wrote, so each run starts from the seeded state."""
    at = f"{_lit(seed.seeded_at.isoformat())}::timestamptz"
    large = LARGE_COURSE
    undo = {
        "completions": f"DELETE FROM completed_content_blocks WHERE completed_at > {at}",
        "grades": (
            "UPDATE completed_content_blocks SET grade = NULL, graded_at = NULL, "
            f"graded_by_id = NULL, grader_comment = '' WHERE graded_at > {at}"
        ),
        "course completions": (
            "UPDATE student_courses SET completed = false, completed_at = NULL WHERE completed"
        ),
        "resume points": (
            f"UPDATE student_courses sc SET last_block_id = {PROGRESS} "
            f"FROM (SELECT student_id AS sid FROM student_courses WHERE course_id = {large}) st "
            f"WHERE sc.student_id = st.sid AND sc.course_id = {large} "
            f"AND sc.last_block_id IS DISTINCT FROM {PROGRESS}"
        ),
        "titles": (
            f"UPDATE content_blocks b SET title = {BLOCK_TITLE} "
            f"WHERE b.id <= {SECTIONS * PER_SECTION} AND b.title <> {BLOCK_TITLE}"
        ),
        "emails": "DELETE FROM outbox",
    }
    counts = {}
    with _connect(settings.dsn) as conn:
        for what, sql in undo.items():
            counts[what] = conn.execute(sql).rowcount
    if counts["completions"] or counts["grades"]:
        with _connect(settings.dsn, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) completed_content_blocks, student_courses")
    return counts
