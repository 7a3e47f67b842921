"""Getting in through the API: sign-up and activation, the OAuth2 token endpoint (password
and refresh grants), revocation, log-out, the signed-in user, and the forgotten password.
Each calls the same service as the page; the token logic is services/api_auth.py."""

from __future__ import annotations

import time

from flask import g, jsonify, request
from marshmallow import EXCLUDE, Schema, fields, validate

from .. import limits, tokens
from ..extensions import client_ip
from ..services import Invalid, accounts, api_auth, profile
from . import bp
from .problems import OAuthErrorSchema, answer
from .schemas import MessageSchema, UserSchema, text
from .security import authenticated, current, me

TAGS = ["auth"]
CHECK_INBOX = "If the address can sign up or log in, an email is on its way to it."


class SignupSchema(Schema):
    name = text(120, required=True, min_len=1)
    email = text(254, required=True, min_len=1)
    password = text(256, required=True, min_len=1)
    role = fields.String(load_default="student", validate=validate.OneOf(["student", "teacher"]))


class EmailSchema(Schema):
    email = text(254, required=True, min_len=1)


class LinkTokenSchema(Schema):
    token = text(1000, required=True, min_len=1)


class ResetSchema(LinkTokenSchema):
    password = text(256, required=True, min_len=1)


class TokenRequestSchema(Schema):
    """RFC 6749 sections 4.3 and 6; unknown parameters are ignored, as the RFC asks."""

    class Meta:
        unknown = EXCLUDE

    grant_type = fields.String(required=True, metadata={"enum": ["password", "refresh_token"]})
    username = fields.String(metadata={"description": "The account's email (password grant)"})
    password = fields.String()
    refresh_token = fields.String()
    scope = fields.String()


class TokenSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"enum": ["bearer"]})
    expires_in = fields.Integer(required=True)
    refresh_token = fields.String(required=True)


class RevokeSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    token = fields.String(required=True)
    token_type_hint = fields.String()


def _agent() -> str:
    return request.user_agent.string or "API client"


def _link_error(exc: tokens.TokenError):
    status = 400 if exc.reason == "invalid" else 410
    return answer(status, f"The link is {exc.reason}. Ask for a new one.")


@bp.route("/auth/signup", methods=["POST"], tags=TAGS)
@limits.email_ip
@limits.email_address
@bp.arguments(SignupSchema)
@bp.response(201, MessageSchema)
def signup(args):
    """Sign up as a student or teacher; the account is activated by the emailed link.

    The answer is the same for a registered address (nothing tells who has an account).
    """
    started = time.monotonic()
    accounts.sign_up(args["name"], args["email"], args["password"], args["role"], client_ip())
    limits.even_out(started)
    return {"detail": CHECK_INBOX}, 201, {"Location": "/api/v1/me"}


@bp.route("/auth/activate", methods=["POST"], tags=TAGS)
@bp.arguments(LinkTokenSchema)
@bp.response(204)
def activate(args):
    """Activate an account with the token of its activation link (the part after /activate/)."""
    try:
        accounts.activate(args["token"], client_ip())
    except tokens.TokenError as exc:
        return _link_error(exc)
    return "", 204


def _mail_by_address(service, args) -> tuple[dict, int]:
    started = time.monotonic()
    service(args["email"])
    limits.even_out(started)
    return {"detail": CHECK_INBOX}, 202


@bp.route("/auth/activate/resend", methods=["POST"], tags=TAGS)
@limits.email_ip
@limits.email_address
@bp.arguments(EmailSchema)
@bp.response(202, MessageSchema)
def resend_activation(args):
    """Send a new activation link to a pending account (the same answer for any address)."""
    return _mail_by_address(accounts.resend_activation, args)


@bp.route("/auth/password/forgot", methods=["POST"], tags=TAGS)
@limits.email_ip
@limits.email_address
@bp.arguments(EmailSchema)
@bp.response(202, MessageSchema)
def forgot_password(args):
    """Email a password-reset link (the same answer for any address)."""
    return _mail_by_address(lambda e: accounts.request_password_reset(e, client_ip()), args)


@bp.route("/auth/password/reset", methods=["POST"], tags=TAGS)
@bp.arguments(ResetSchema)
@bp.response(204)
def reset_password(args):
    """Set a new password with a reset link's token; every session and token of the user ends."""
    try:
        accounts.reset_password(args["token"], args["password"], client_ip())
    except tokens.TokenError as exc:
        return _link_error(exc)
    return "", 204


@bp.route("/auth/token", methods=["POST"], tags=TAGS)
@limits.login_ip
@limits.login_account
@bp.arguments(TokenRequestSchema, location="form")
@bp.response(200, TokenSchema)
@bp.alt_response(400, schema=OAuthErrorSchema, description="An OAuth2 error (RFC 6749 5.2)")
def token(args):
    """The OAuth2 token endpoint (RFC 6749).

    ``grant_type=password`` (``username`` is the email) or ``grant_type=refresh_token``
    (rotation: the refresh token presented stops working)."""
    grant = args["grant_type"]
    try:
        if grant == "password":
            if not args.get("username") or not args.get("password"):
                return _oauth("invalid_request", "Send username (your email) and password.")
            pair = api_auth.password_grant(
                args["username"], args["password"], client_ip(), _agent()
            )
        elif grant == "refresh_token":
            if not args.get("refresh_token"):
                return _oauth("invalid_request", "Send the refresh_token.")
            pair = api_auth.refresh_grant(args["refresh_token"], client_ip(), _agent())
        else:
            return _oauth("unsupported_grant_type", "Use password or refresh_token.")
    except api_auth.GrantError as exc:
        g.login_failed = grant == "password"  # counted by the log-in limits
        return _oauth(exc.error, exc.description)
    body = {
        "access_token": pair.access_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
        "refresh_token": pair.refresh_token,
    }
    return body, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth(error: str, description: str):
    resp = jsonify(error=error, error_description=description)
    resp.status_code = 400
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/auth/revoke", methods=["POST"], tags=TAGS)
@bp.arguments(RevokeSchema, location="form")
@bp.response(200)
def revoke(args):
    """Revoke a token with its family: access and refresh together (RFC 7009).

    Answers 200 for a token that is unknown, invalid or already revoked as well."""
    api_auth.revoke(args["token"])
    return "", 200


@bp.route("/auth/logout", methods=["POST"], tags=TAGS)
@authenticated()
@bp.response(204)
def logout():
    """End this client's tokens: the access token sent and its refresh token."""
    api_auth.log_out(current())
    return "", 204


@bp.route("/me", methods=["GET"], tags=TAGS)
@authenticated()
@bp.response(200, UserSchema)
def get_me():
    """The signed-in user."""
    return me()


class NameSchema(Schema):
    name = text(120, required=True, min_len=1)


class PasswordChangeSchema(Schema):
    current_password = text(256, required=True, min_len=1)
    new_password = text(256, required=True, min_len=1)


@bp.route("/me", methods=["PATCH"], tags=TAGS)
@authenticated()
@bp.arguments(NameSchema)
@bp.response(200, UserSchema)
def update_me(args):
    """Change your name."""
    profile.change_name(me(), args["name"])
    return me()


@bp.route("/me/password", methods=["POST"], tags=TAGS)
@limits.password_check
@authenticated()
@bp.arguments(PasswordChangeSchema)
@bp.response(200, TokenSchema)
def change_password(args):
    """Change your password (the current one is needed; wrong ones are throttled).

    Every other session and token of yours ends; this client gets a new pair."""
    try:
        profile.change_password(
            me(), args["current_password"], args["new_password"], current().claims["sid"],
            client_ip(),
        )  # fmt: skip
    except Invalid as exc:
        limits.count_wrong_password(exc)
        raise
    pair = api_auth.reissue(current(), client_ip(), _agent())
    body = {
        "access_token": pair.access_token, "token_type": pair.token_type,
        "expires_in": pair.expires_in, "refresh_token": pair.refresh_token,
    }  # fmt: skip
    return body, 200, {"Cache-Control": "no-store"}
