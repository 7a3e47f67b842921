"""Command-line tools: flask create-admin, seed-demo, outbox."""

from __future__ import annotations

import click
from flask import current_app
from sqlalchemy import func, select

from .extensions import db
from .models import BlockType, ContentBlock, Course, Role, Section, User, utcnow
from .services import Invalid, accounts, unit_of_work

DEMO_PASSWORD = "lectern-demo-2026"  # noqa: S105 - development demo accounts only
DEMO_USERS = [
    ("admin@example.com", "Ada Admin", Role.ADMIN),
    ("teacher@example.com", "Tess Teacher", Role.TEACHER),
    ("teacher2@example.com", "Theo Tutor", Role.TEACHER),
    ("student@example.com", "Sam Student", Role.STUDENT),
    ("student2@example.com", "Sasha Scholar", Role.STUDENT),
    ("student3@example.com", "Robin Reader", Role.STUDENT),
]

DEMO_COURSES = [
    (
        "Introduction to Python",
        "Learn the basics of Python programming: values, functions and your first program.",
        [
            (
                "Getting started",
                [
                    (
                        "Welcome",
                        BlockType.LESSON,
                        None,
                        "# Welcome\n\nThis course teaches **Python** from zero.",
                    ),
                    (
                        "Installing Python",
                        BlockType.VIDEO,
                        "https://www.python.org/about/gettingstarted/",
                        "",
                    ),
                    (
                        "The Python tutorial",
                        BlockType.LINK,
                        "https://docs.python.org/3/tutorial/",
                        "",
                    ),
                ],
            ),
            (
                "Values and functions",
                [
                    (
                        "Numbers and strings",
                        BlockType.LESSON,
                        None,
                        "Numbers: `1 + 2`.\n\nStrings: `'hi' * 3`.",
                    ),
                    (
                        "Check yourself",
                        BlockType.QUIZ,
                        None,
                        "Answer the questions in the linked form and paste its URL.",
                    ),
                    (
                        "Your first program",
                        BlockType.ASSIGNMENT,
                        None,
                        "Write a program that prints a greeting. Submit a link to it.",
                    ),
                ],
            ),
        ],
    ),
    (
        "Writing for the web",
        "Clear, short, useful pages: how to write them and how to check them.",
        [
            (
                "Principles",
                [
                    (
                        "Know your reader",
                        BlockType.LESSON,
                        None,
                        "Write for *one* reader with one task.",
                    ),
                    (
                        "Plain language guide",
                        BlockType.LINK,
                        "https://www.plainlanguage.gov/guidelines/",
                        "",
                    ),
                ],
            ),
            (
                "Practice",
                [
                    (
                        "Rewrite a page",
                        BlockType.ASSIGNMENT,
                        None,
                        "Rewrite a page you know. Submit a link.",
                    ),
                ],
            ),
        ],
    ),
]


def register(app) -> None:
    @app.cli.command("create-admin")
    @click.argument("email")
    @click.option("--name", default="Administrator", show_default=True)
    @click.password_option("--password", help="Prompted for if not given.")
    def create_admin(email: str, name: str, password: str) -> None:
        """Create an active admin account (or promote and activate an existing one)."""
        try:
            email = accounts.check_email(email)
        except Invalid as exc:
            raise click.BadParameter(exc.message, param_hint="EMAIL") from exc
        problems = accounts.password_problems(password, email)
        if problems:
            raise click.BadParameter(problems[0], param_hint="--password")
        with unit_of_work():
            user = accounts.find_by_email(email)
            if user is None:
                user = accounts.create_user(email, name, password, Role.ADMIN, active=True)
            else:
                user.role = Role.ADMIN
                user.password_hash = accounts.hash_password(password)
                accounts.end_all_sessions(user)
                user.is_active = True
                # Activated now if it was pending: a pending account is one a sign-up may take.
                user.activated_at = user.activated_at or utcnow()
        click.echo(f"Admin {user.email} is ready.")

    @app.cli.command("seed-demo")
    def seed_demo() -> None:
        """Demo accounts and courses, once (development only)."""
        if current_app.config["LECTERN_ENV"] == "production":
            raise click.ClickException("seed-demo is for development only")
        if db.session.scalar(select(func.count()).select_from(User)):
            click.echo("Demo data already present; nothing to do.")
            _print_accounts()
            return
        seed(DEMO_PASSWORD)
        click.echo("Demo data created.")
        _print_accounts()

    @app.cli.group("outbox")
    def outbox() -> None:
        """The email outbox."""

    @outbox.command("run")
    @click.option("--once", is_flag=True, help="Deliver what is due and exit.")
    @click.option("--interval", default=5.0, show_default=True)
    def outbox_run(once: bool, interval: float) -> None:
        """Deliver queued email, retrying failures with backoff; survives database and SMTP
        outages (it waits and polls again). SIGTERM or Ctrl-C: it finishes the message in hand,
        then exits 0."""
        import signal
        import threading

        from .mail import work

        stop = threading.Event()

        def _stop(signum, frame):
            # Set from a thread of its own: the Event's lock may be held by the very code
            # the handler interrupted (a wait on it), and the handler runs in that thread.
            threading.Thread(target=stop.set).start()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        for sent, failed in work(interval, once=once, stop=stop):
            if sent or failed:
                click.echo(f"outbox: {sent} sent, {failed} failed")


def _print_accounts() -> None:
    click.echo(f"Demo accounts (password for all: {DEMO_PASSWORD}):")
    for email, name, role in DEMO_USERS:
        click.echo(f"  {role:8} {email:24} {name}")


@unit_of_work()
def seed(password: str) -> dict[str, User]:
    """Create the demo users and courses, in one transaction; returns the users by email."""
    users = {
        email: accounts.create_user(email, name, password, role, active=True)
        for email, name, role in DEMO_USERS
    }
    db.session.flush()
    owners = [users["teacher@example.com"], users["teacher2@example.com"]]
    for owner, (title, description, sections) in zip(owners, DEMO_COURSES, strict=True):
        course = Course(title=title, description=description, owner=owner, is_published=True)
        db.session.add(course)
        for s_pos, (s_title, blocks) in enumerate(sections):
            section = Section(course=course, title=s_title, description="", position=s_pos)
            db.session.add(section)
            for b_pos, (b_title, b_type, url, content) in enumerate(blocks):
                db.session.add(
                    ContentBlock(
                        section=section,
                        title=b_title,
                        description="",
                        type=str(b_type),
                        url=url,
                        content=content,
                        position=b_pos,
                    )
                )
    db.session.flush()
    _seed_progress(users)
    return users


# Who has done what in the first demo course, so every page has something to show: a student
# part-way through with a quiz waiting for a grade, another with an assignment to grade.
DEMO_PROGRESS = {
    "student@example.com": [
        ("Welcome", None),
        ("Installing Python", None),
        ("Check yourself", "https://example.org/sam/quiz"),
    ],
    "student2@example.com": [
        ("Welcome", None),
        ("Your first program", "https://example.org/sasha/hello.py"),
    ],
}


def _seed_progress(users: dict[str, User]) -> None:
    """Enrol two demo students in the first course and record some completions."""
    from .services import learning

    course = db.session.scalar(select(Course).order_by(Course.id).limit(1))
    blocks = {
        b.title: b
        for b in db.session.scalars(
            select(ContentBlock).join(Section).where(Section.course_id == course.id)
        )
    }
    for email, done in DEMO_PROGRESS.items():
        student = users[email]
        learning.enrol(course.id, student)
        for title, url in done:
            learning.complete_block(course.id, blocks[title].id, student, url=url)
