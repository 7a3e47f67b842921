"""Forms of the accounts pages. The password policy itself lives in services.accounts."""

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from ..services import Invalid, accounts


def _valid_email(form, field):
    try:
        field.data = accounts.check_email(field.data or "")
    except Invalid as exc:
        raise ValidationError(exc.message) from exc


def _policy(email_field: str | None = None):
    def check(form, field):
        email = getattr(form, email_field).data if email_field else getattr(form, "_email", "")
        problems = accounts.password_problems(field.data or "", email or "")
        if problems:
            raise ValidationError(problems[0])

    return check


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    remember = BooleanField("Keep me signed in")


class SignupForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired("Enter your name."), Length(max=120)],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )
    email = EmailField("Email", validators=[DataRequired("Enter your email."), _valid_email])
    password = PasswordField(
        "Password", validators=[DataRequired("Choose a password."), _policy("email")]
    )
    confirm = PasswordField(
        "Confirm password",
        validators=[
            DataRequired("Type the password again."),
            EqualTo("password", "The two passwords do not match."),
        ],
    )
    role = RadioField(
        "I am",
        choices=[
            SelectChoice("student", "I am a student"),
            SelectChoice("teacher", "I am a teacher"),
        ],
        default="student",
        validators=[DataRequired("Choose student or teacher.")],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        mode = current_app.config["TEACHER_SIGNUP"]  # config.TEACHER_SIGNUP
        if mode == "closed":
            self.role.choices = [SelectChoice("student", "I am a student")]
        elif mode == "approval":
            self.role.choices = [
                SelectChoice("student", "I am a student"),
                SelectChoice("teacher", "I am a teacher (teacher accounts are approved first: "
                             "until then you can learn as a student)"),
            ]  # fmt: skip


class ConfirmForm(FlaskForm):
    """A button that confirms what an emailed link is for: only the CSRF token."""


class EmailOnlyForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email."), Length(max=254)])


class NewPasswordForm(FlaskForm):
    """Reset and invitation: a new password twice. ``_email`` is set by the view."""

    password = PasswordField(
        "New password", validators=[DataRequired("Choose a password."), _policy()]
    )
    confirm = PasswordField(
        "Confirm new password",
        validators=[
            DataRequired("Type the password again."),
            EqualTo("password", "The two passwords do not match."),
        ],
    )


class NameForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired("Enter your name."), Length(max=120)],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password.")]
    )
    new_password = PasswordField(
        "New password", validators=[DataRequired("Choose a new password."), _policy()]
    )
    confirm = PasswordField(
        "Confirm new password",
        validators=[
            DataRequired("Type the new password again."),
            EqualTo("new_password", "The two passwords do not match."),
        ],
    )


class ChangeEmailForm(FlaskForm):
    email = EmailField("New email", validators=[DataRequired("Enter the new address.")])
    password = PasswordField("Your password", validators=[DataRequired("Enter your password.")])


class DeleteAccountForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired("Enter your password.")])
