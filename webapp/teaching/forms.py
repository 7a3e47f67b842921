"""Forms of the teaching pages."""

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

GRADE_RANGE = NumberRange(min=0, max=100, message="A grade is a whole number from 0 to 100.")


class EnrolForm(FlaskForm):
    emails = TextAreaField(
        "Email addresses",
        validators=[DataRequired("Paste at least one address."), Length(max=30000)],
    )


class GradeForm(FlaskForm):
    grade = IntegerField(
        "Grade (0–100)",
        validators=[InputRequired("Enter a grade from 0 to 100."), GRADE_RANGE],
        render_kw={"min": 0, "max": 100, "step": 1, "inputmode": "numeric"},
    )
    comment = TextAreaField("Comment for the student", validators=[Optional(), Length(max=5000)])
    version = HiddenField(validators=[DataRequired()])


class CellForm(FlaskForm):
    grade = IntegerField(
        "Grade",
        validators=[InputRequired("Enter a grade from 0 to 100."), GRADE_RANGE],
        render_kw={"min": 0, "max": 100, "step": 1, "inputmode": "numeric"},
    )
    version = HiddenField(validators=[DataRequired()])


class AverageRuleForm(FlaskForm):
    """The course's choice for its gradebook averages (services/progress.py, AVERAGE_RULES)."""

    rule = RadioField(
        "How averages count work not handed in",
        choices=[
            SelectChoice("graded", "Average of graded work: work not handed in is left out"),
            SelectChoice("zero", "Missing work counts as 0"),
        ],
        validators=[DataRequired("Choose how averages count missing work.")],
    )
