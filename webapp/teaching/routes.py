"""Teaching: roster, grading, gradebook."""

from . import bp  # noqa: F401
