"""Courses, sections and content blocks: the authoring aggregate."""

from __future__ import annotations

from ..extensions import db
from ..models import Course, User
from . import NotFound


def course_for_owner(course_id: int, user: User) -> Course:
    """The course if ``user`` owns it; NotFound otherwise (not yours looks like missing)."""
    course = db.session.get(Course, course_id)
    if course is None or user is None or course.user_id != user.id:
        raise NotFound("No such course.")
    return course


def course_for_manager(course_id: int, user: User) -> Course:
    """The course if ``user`` owns it or is an admin (view and delete)."""
    course = db.session.get(Course, course_id)
    if course is None or user is None or not (course.user_id == user.id or user.is_admin):
        raise NotFound("No such course.")
    return course


def course_for_viewer(course_id: int, user: User | None) -> Course:
    """A published course for anyone; a draft only for its owner and admins."""
    course = db.session.get(Course, course_id)
    if course is None:
        raise NotFound("No such course.")
    if course.is_published:
        return course
    signed_in = user is not None and getattr(user, "is_authenticated", False)
    if signed_in and (course.user_id == user.id or user.is_admin):
        return course
    raise NotFound("No such course.")
