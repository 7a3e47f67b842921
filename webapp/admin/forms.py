"""Forms of the administration pages."""

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, SearchField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length

from ..services.user_actions import BULK_ACTIONS
from ..services.users import ROLES, STATUSES

ROLE_CHOICES = [SelectChoice(r, r.title()) for r in ROLES]
STATUS_LABELS = {
    "active": "Active",
    "pending": "Pending activation",
    "deactivated": "Deactivated",
    "requested": "Asks to be a teacher",
}


class UserSearchForm(FlaskForm):
    """The filters of the users table (GET, so no CSRF token)."""

    class Meta:
        csrf = False

    q = SearchField("Search by email or name", validators=[Length(max=100)])
    role = SelectField(
        "Role",
        choices=[SelectChoice("", "Any role"), *ROLE_CHOICES],
        validate_choice=False,
        id="filter-role",
    )
    status = SelectField(
        "Status",
        choices=[
            SelectChoice("", "Any status"),
            *[SelectChoice(s, STATUS_LABELS[s]) for s in STATUSES],
        ],
        validate_choice=False,
        id="filter-status",  # not "status": that id is the page's live region
    )
    sort = HiddenField()
    dir = HiddenField()


class AuditSearchForm(FlaskForm):
    class Meta:
        csrf = False

    q = SearchField("Search by action, email or IP", validators=[Length(max=100)])
    action = SelectField("Action", choices=[SelectChoice("", "Any action")], validate_choice=False)


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class NewUserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES)


class BulkForm(FlaskForm):
    action = SelectField(
        "With the selected users",
        choices=[SelectChoice("", "Choose an action")]
        + [SelectChoice(k, v) for k, v in BULK_ACTIONS.items()],
    )
    confirm = HiddenField()


class TransferForm(FlaskForm):
    to_email = EmailField(
        "Email of the teacher who takes the courses",
        validators=[DataRequired(), Email(), Length(max=254)],
    )


class CourseSearchForm(FlaskForm):
    """The filters of the courses table (GET, so no CSRF token)."""

    class Meta:
        csrf = False

    q = SearchField("Search by title, owner's name or email", validators=[Length(max=100)])
    status = SelectField(
        "Status",
        choices=[
            SelectChoice("", "Published and drafts"),
            SelectChoice("published", "Published"),
            SelectChoice("draft", "Drafts"),
        ],
        validate_choice=False,
        id="filter-course-status",
    )


class CourseTransferForm(FlaskForm):
    to_email = EmailField(
        "Email of the teacher who takes the course",
        validators=[DataRequired(), Email(), Length(max=254)],
    )


class ConfirmForm(FlaskForm):
    """A destructive action's form: its CSRF token and nothing else."""
