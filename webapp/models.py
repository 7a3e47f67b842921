"""Typed SQLAlchemy models. No commits, no request, no url_for here."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    DDL,
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    false,
    func,
    literal_column,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps on PostgreSQL and SQLite alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            value = value.astimezone(dt.UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


class Role(enum.StrEnum):
    STUDENT = "student"
    TEACHER = "teacher"
    ADMIN = "admin"


class Theme(enum.StrEnum):
    """A person's colour theme: the system's (``prefers-color-scheme``), light or dark."""

    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


class BlockType(enum.StrEnum):
    LESSON = "lesson"
    QUIZ = "quiz"
    ASSIGNMENT = "assignment"
    VIDEO = "video"
    LINK = "link"


GRADABLE_TYPES = (BlockType.QUIZ, BlockType.ASSIGNMENT)
GRADABLE = tuple(str(t) for t in GRADABLE_TYPES)  # as stored in content_blocks.type
URL_TYPES = (BlockType.VIDEO, BlockType.LINK)


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


def _title(column: str = "title", limit: int = 200) -> CheckConstraint:
    return CheckConstraint(
        f"length(trim({column})) > 0 AND length({column}) <= {limit}", name=f"{column}_text"
    )


# Ids are never reused: PostgreSQL's sequences never go back, and on SQLite AUTOINCREMENT keeps
# the highest id ever given (without it a deleted newest row's id goes to the next insert, so an
# old link would open another course). Migrations 0004 and 0006.
NEVER_REUSE = {"sqlite_autoincrement": True}


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_normalised"),
        CheckConstraint(_in("role", Role), name="role_known"),
        CheckConstraint("length(trim(name)) > 0 AND length(name) <= 120", name="name_text"),
        CheckConstraint(_in("theme", Theme), name="theme_known"),
        # Admin search and sorting at 100,000 users (migration 0002); trigram GIN on PostgreSQL.
        Index(
            "ix_users_email_trgm",
            "email",
            postgresql_using="gin",
            postgresql_ops={"email": "gin_trgm_ops"},
        ),
        Index(
            "ix_users_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index("ix_users_name", "name"),
        Index("ix_users_created", "created_at"),
        Index("ix_users_last_login", "last_login_at"),
        Index(
            "ix_users_teacher_requests",
            "teacher_requested_at",
            postgresql_where=text("teacher_requested_at IS NOT NULL"),
            sqlite_where=text("teacher_requested_at IS NOT NULL"),
        ),
        NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.STUDENT, server_default="student")
    is_active: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Signed up as a teacher under TEACHER_SIGNUP=approval: a student until an admin decides.
    teacher_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    theme: Mapped[str] = mapped_column(String(8), default=Theme.SYSTEM, server_default="system")

    # Flask-Login's interface; get_id is never stored, sessions carry their own token.
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_teacher(self) -> bool:
        return self.role == Role.TEACHER

    @property
    def is_student(self) -> bool:
        return self.role == Role.STUDENT

    @property
    def status(self) -> str:
        if self.is_active:
            return "active"
        return "pending" if self.activated_at is None else "deactivated"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"


# The trigram indexes above need pg_trgm (the migration creates it too; this serves create_all).
event.listen(
    User.__table__,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)


class AverageRule(enum.StrEnum):
    """How a gradebook average treats gradable work a student has not handed in."""

    GRADED = "graded"  # the average of the graded work only
    ZERO = "zero"  # missing work counts as 0


class Course(db.Model):
    __tablename__ = "courses"
    __table_args__ = (
        _title(),
        CheckConstraint("length(description) <= 5000", name="description_len"),
        CheckConstraint(_in("average_rule", AverageRule), name="average_rule_known"),
        NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    is_published: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The teacher's choice for the gradebook's averages (services/progress.py: grade_average).
    average_rule: Mapped[str] = mapped_column(
        String(16), default=AverageRule.GRADED, server_default=AverageRule.GRADED.value
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    owner: Mapped[User] = relationship(lazy="joined", innerjoin=True)
    sections: Mapped[list[Section]] = relationship(
        back_populates="course",
        order_by="Section.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Section(db.Model):
    __tablename__ = "sections"
    __table_args__ = (
        _title(),
        CheckConstraint("length(description) <= 5000", name="description_len"),
        Index("ix_sections_course_position", "course_id", "position"),
        NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer)

    course: Mapped[Course] = relationship(back_populates="sections")
    blocks: Mapped[list[ContentBlock]] = relationship(
        back_populates="section",
        order_by="ContentBlock.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class ContentBlock(db.Model):
    __tablename__ = "content_blocks"
    __table_args__ = (
        _title(),
        CheckConstraint(_in("type", BlockType), name="type_known"),
        CheckConstraint("url IS NULL OR length(url) <= 2000", name="url_len"),
        CheckConstraint("length(description) <= 5000", name="description_len"),
        CheckConstraint("length(content) <= 100000", name="content_len"),
        Index("ix_content_blocks_section_position", "section_id", "position"),
        NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(ForeignKey("sections.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(16), default=BlockType.LESSON)
    url: Mapped[str | None] = mapped_column(String(2000))
    content: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer)

    section: Mapped[Section] = relationship(back_populates="blocks")

    @property
    def is_gradable(self) -> bool:
        return self.type in GRADABLE_TYPES


class StudentCourse(db.Model):
    """An enrolment."""

    __tablename__ = "student_courses"
    __table_args__ = (
        UniqueConstraint("student_id", "course_id", name="uq_student_courses_student_course"),
        Index("ix_student_courses_course", "course_id"),
        NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    completed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    enrolled_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    last_block_id: Mapped[int | None] = mapped_column(
        ForeignKey("content_blocks.id", ondelete="SET NULL")
    )

    student: Mapped[User] = relationship()
    course: Mapped[Course] = relationship()


# Work waiting for a grade: never graded, or changed by the student since (the grading queue's
# rule, and the predicate of its partial index; services/grading.py spells it the same way).
WAITING = "grade IS NULL OR graded_at IS NULL OR updated_at > graded_at"


class CompletedContentBlock(db.Model):
    __tablename__ = "completed_content_blocks"
    __table_args__ = (
        UniqueConstraint(
            "student_id", "content_block_id", name="uq_completed_content_blocks_student_block"
        ),
        CheckConstraint("grade IS NULL OR (grade >= 0 AND grade <= 100)", name="grade_range"),
        CheckConstraint("url IS NULL OR length(url) <= 2000", name="url_len"),
        CheckConstraint("length(feedback) <= 5000", name="feedback_len"),
        CheckConstraint("length(grader_comment) <= 5000", name="grader_comment_len"),
        Index("ix_completed_content_blocks_block", "content_block_id"),
        # The grading queue (migration 0005): per block, the work waiting for a grade in
        # (updated_at, id) order, with the student for the enrolment check (index-only).
        Index(
            "ix_completed_content_blocks_waiting",
            "content_block_id",
            "updated_at",
            "id",
            "student_id",
            postgresql_where=text(WAITING),
            sqlite_where=text(WAITING),
        ),
        # Ids are never reused (SQLite would reuse the highest after a delete), so a grader's
        # version token can never match a new completion that took an undone one's id.
        NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    content_block_id: Mapped[int] = mapped_column(
        ForeignKey("content_blocks.id", ondelete="CASCADE")
    )
    url: Mapped[str | None] = mapped_column(String(2000))
    feedback: Mapped[str] = mapped_column(Text, default="")
    grade: Mapped[int | None] = mapped_column(Integer)
    grader_comment: Mapped[str] = mapped_column(Text, default="")
    graded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    graded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    completed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bumped by every UPDATE of the row, the ORM's and bulk ones alike (a student's edit, a
    # grade): the grader's form carries it, and a grade saves only if it is unchanged.
    version: Mapped[int] = mapped_column(
        Integer, default=1, server_default=text("1"), onupdate=literal_column("version") + 1
    )

    student: Mapped[User] = relationship(foreign_keys=[student_id])
    block: Mapped[ContentBlock] = relationship()

    @hybrid_property
    def changed_since_graded(self) -> bool:
        """The student changed the work after it was graded (in SQL: NULL while never graded)."""
        return self.graded_at is not None and self.updated_at > self.graded_at

    @changed_since_graded.inplace.expression
    @classmethod
    def _changed_since_graded(cls):
        return cls.updated_at > cls.graded_at


class CollapsedSection(db.Model):
    """A section a user folded away in the editor; kept on the server per user."""

    __tablename__ = "collapsed_sections"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    section_id: Mapped[int] = mapped_column(
        ForeignKey("sections.id", ondelete="CASCADE"), primary_key=True
    )


class LiveSession(db.Model):
    """The SQL store of live sessions, used when no REDIS_URL is configured."""

    __tablename__ = "live_sessions"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


_UNSENT = "sent_at IS NULL"
_WAITING = "sent_at IS NULL AND next_attempt_at < '9999-01-01 00:00:00+00'"  # not mail.GAVE_UP


class OutboxMessage(db.Model):
    """An email queued in the caller's transaction, delivered after commit."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "sent_at", "next_attempt_at"),
        # The admin's outbox page (services/outbox.py): unsent rows only, in the orders it pages
        # by (pending by next attempt, given up by id), and the pending ones by age.
        Index("ix_outbox_unsent", "next_attempt_at", "id", postgresql_where=text(_UNSENT),
              sqlite_where=text(_UNSENT)),
        Index("ix_outbox_waiting_since", "created_at", postgresql_where=text(_WAITING),
              sqlite_where=text(_WAITING)),
        NEVER_REUSE,
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(String(500), default="")


class AuditEvent(db.Model):
    """Append-only record of admin actions and security events. Never a password or token."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_created", "created_at"),
        Index("ix_audit_events_target", "target_user_id", "created_at"),
        NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(64), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    target_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ip: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    target: Mapped[User | None] = relationship(foreign_keys=[target_user_id])
