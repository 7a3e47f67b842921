"""Ids are never reused (issue 16, item 11): a deleted course's old links never open another.

Runs on whichever database the suite uses (SQLite by default, PostgreSQL with
TEST_DATABASE_URL); the migration test upgrades a filled SQLite database through 0006.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import DATABASE_URL, base_config, make_course, make_user
from webapp import create_app
from webapp.extensions import db
from webapp.models import ContentBlock, Role
from webapp.services import courses


def test_deleting_the_newest_course_does_not_free_its_id(app, teacher):
    make_course(teacher, "Older")
    newest = courses.create_course(teacher, "Newest")
    gone = newest.id
    courses.delete_course(newest, teacher)
    again = courses.create_course(teacher, "Created after the delete")
    assert again.id > gone


def test_deleting_the_newest_block_and_user_does_not_free_their_ids(app, teacher):
    course = make_course(teacher, sections=1, blocks=2)
    block = course.sections[0].blocks[-1]
    block_id, section_id = block.id, block.section_id
    db.session.delete(block)
    user = make_user(Role.STUDENT)
    user_id = user.id
    db.session.delete(user)
    db.session.commit()
    new_block = ContentBlock(section_id=section_id, title="New", type="lesson", position=5)
    db.session.add(new_block)
    db.session.commit()
    assert new_block.id > block_id
    assert make_user(Role.STUDENT).id > user_id


@pytest.mark.skipif(DATABASE_URL.startswith("postgresql"), reason="SQLite's own migration")
def test_migration_0006_keeps_the_rows_and_stops_reusing_ids(tmp_path):
    from flask_migrate import downgrade, upgrade

    app = create_app(base_config(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'm.sqlite'}"))
    with app.app_context():
        upgrade(revision="0005")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO users (id, email, name, role, is_active) VALUES"
                " (1, 't@example.com', 'T', 'teacher', 1), (2, 's@example.com', 'S', 'student', 1)"
            ))  # fmt: skip
            conn.execute(text(
                "INSERT INTO courses (id, title, description, user_id) VALUES"
                " (1, 'One', '', 1), (2, 'Two', '', 1)"
            ))  # fmt: skip
            conn.execute(text(
                "INSERT INTO sections (id, course_id, title, description, position)"
                " VALUES (1, 2, 'S', '', 0)"
            ))  # fmt: skip
            conn.execute(text("INSERT INTO student_courses (student_id, course_id) VALUES (2, 2)"))
        # Each run on its own, as an existing database is upgraded: every rebuild of a table
        # others reference (0006, 0007, 0008) leaves the rows that reference it.
        for revision in ("0006", "0007", "head"):
            upgrade(revision=revision)
            with db.engine.begin() as conn:
                counts = [
                    conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                    for t in ("users", "courses", "sections", "student_courses")
                ]
                assert counts == [2, 2, 1, 1], revision  # nothing cascaded away
                assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert not _without_autoincrement()  # 0006, and no later migration undid it
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM courses WHERE id = 2"))
            assert conn.execute(text("SELECT count(*) FROM sections")).scalar() == 0  # cascade
            conn.execute(
                text("INSERT INTO courses (title, description, user_id) VALUES ('Three', '', 1)")
            )
            assert conn.execute(text("SELECT max(id) FROM courses")).scalar() == 3
        downgrade(revision="0006")
        assert not _without_autoincrement()
        downgrade(revision="0005")
        with db.engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 2
        db.engine.dispose()


def _without_autoincrement() -> list[str]:
    """The tables with an integer id whose SQLite definition lacks AUTOINCREMENT."""
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        return [
            name
            for name, sql in rows
            if name in {t.name for t in db.metadata.sorted_tables if "id" in t.c}
            and "AUTOINCREMENT" not in sql.upper()
        ]
