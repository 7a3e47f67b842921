"""Schemathesis against the app served by gunicorn: every operation of the OpenAPI document,
with a teacher's, a student's and an admin's token (a fresh one for each request, since the
fuzzer calls log-out and revoke too). No 5xx, and every response as the document says: status,
content type, headers, body. Marked ``schemathesis`` (CI runs it; under a minute here)."""

from __future__ import annotations

import os

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import PASSWORD, make_course, make_user
from webapp.extensions import db
from webapp.models import BlockType, Role
from webapp.services import learning

pytestmark = pytest.mark.schemathesis

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "6"))
# Operations that end or change what the others need run last, in this order.
LAST = ("DELETE", "PATCH /api/v1/users/{user_id}")


def _order(operation) -> tuple[int, str]:
    label = f"{operation.method.upper()} {operation.path}"
    late = next((i + 1 for i, key in enumerate(LAST) if label.startswith(key)), 0)
    return late, label


def test_schemathesis_finds_no_server_error_and_no_schema_violation(app, server):
    teacher = make_user(Role.TEACHER)
    student = make_user(Role.STUDENT)
    admin = make_user(Role.ADMIN)
    victim = make_user(Role.STUDENT)  # the one account the admin's PATCH may change
    course = make_course(teacher, types=(BlockType.LESSON, BlockType.ASSIGNMENT))
    learning.enrol(course.id, student)
    block = course.sections[0].blocks[1]
    learning.complete_block(course.id, block.id, student, url="https://example.com/w")
    make_course(teacher, title="A draft", published=False)
    people = [db.session.merge(p).email for p in (teacher, student, admin)]
    victim_id = victim.id

    http = requests.Session()

    def fresh_token(email: str) -> str:
        resp = http.post(
            server + "/api/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": PASSWORD},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    schema = schemathesis.openapi.from_url(server + "/api/v1/openapi.json")
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=_order)
    assert len(operations) >= 30

    def fuzz(operation, email: str) -> None:
        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            if "user_id" in (case.path_parameters or {}) and case.method == "PATCH":
                case.path_parameters["user_id"] = victim_id
            headers = {"Authorization": f"Bearer {fresh_token(email)}"}
            case.call_and_validate(
                base_url=server, session=http, headers=headers, checks=CHECKS, timeout=30
            )

        run()

    for operation in operations:
        for email in people:
            fuzz(operation, email)
