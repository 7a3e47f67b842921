"""Forms of the course editor. The service checks every value again."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from ..models import BlockType
from ..services.courses import CONTENT_MAX, DESCRIPTION_MAX, TITLE_MAX, URL_MAX, is_web_url

BLOCK_TYPES = [
    SelectChoice(str(BlockType.LESSON), "Lesson"),
    SelectChoice(str(BlockType.VIDEO), "Video"),
    SelectChoice(str(BlockType.LINK), "Link"),
    SelectChoice(str(BlockType.QUIZ), "Quiz"),
    SelectChoice(str(BlockType.ASSIGNMENT), "Assignment"),
]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _rstrip(value):
    return value.rstrip() if isinstance(value, str) else value


def _web_url(form, field):
    if field.data and not is_web_url(field.data):
        raise ValidationError("Use an http:// or https:// address.")


def title_field(label: str = "Title"):
    return StringField(
        label,
        filters=[_strip],
        validators=[DataRequired("Give it a title."), Length(max=TITLE_MAX)],
    )


def description_field(label: str = "Description"):
    return TextAreaField(label, filters=[_rstrip], validators=[Length(max=DESCRIPTION_MAX)])


class CourseForm(FlaskForm):
    title = title_field()
    description = description_field()


class CourseTitleForm(FlaskForm):
    title = title_field("Course title")


class CourseDescriptionForm(FlaskForm):
    description = description_field("Course description")


class SectionForm(FlaskForm):
    title = title_field("Section title")


class SectionTitleForm(FlaskForm):
    title = title_field("Section title")


class SectionDescriptionForm(FlaskForm):
    description = description_field("Section description")


class NewBlockForm(FlaskForm):
    title = title_field("New block title")
    type = SelectField("Type", choices=BLOCK_TYPES, default=str(BlockType.LESSON))
    url = StringField("URL", filters=[_strip], validators=[Length(max=URL_MAX), _web_url])

    def validate_url(self, field):
        if self.type.data in (BlockType.VIDEO, BlockType.LINK) and not field.data:
            raise ValidationError("A URL is required for videos and links.")


class BlockForm(FlaskForm):
    title = title_field()
    type = SelectField("Type", choices=BLOCK_TYPES)
    description = description_field()
    url = StringField(
        "URL",
        filters=[_strip],
        validators=[Length(max=URL_MAX), _web_url],
    )
    content = TextAreaField("Content", filters=[_rstrip], validators=[Length(max=CONTENT_MAX)])

    def validate_url(self, field):
        if self.type.data in (BlockType.VIDEO, BlockType.LINK) and not field.data:
            raise ValidationError("A URL is required for videos and links.")
