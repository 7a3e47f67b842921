"""Forms of the learning pages. They bind only the fields they declare."""

from urllib.parse import urlsplit

from flask_wtf import FlaskForm
from wtforms import TextAreaField, URLField
from wtforms.validators import DataRequired, Length, Optional, ValidationError


def http_url(form, field):
    parts = urlsplit((field.data or "").strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError("Give an address starting with http:// or https://.")


class CompleteForm(FlaskForm):
    """Mark a lesson, video or link complete: nothing to fill in."""


class WorkForm(FlaskForm):
    """Submit (or edit) the work of an assignment or quiz."""

    url = URLField(
        "Address of your work",
        validators=[DataRequired("Give the address of your work."), Length(max=2000), http_url],
    )
    remarks = TextAreaField("Remarks (optional)", validators=[Optional(), Length(max=5000)])
