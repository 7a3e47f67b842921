"""The OpenAPI document is generated from the code and kept in step with it: it validates as
OpenAPI 3.1, names exactly the blueprint's routes and methods, and says which need a token."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

PUBLIC = {
    ("post", "/api/v1/auth/signup"),
    ("post", "/api/v1/auth/activate"),
    ("post", "/api/v1/auth/activate/resend"),
    ("post", "/api/v1/auth/password/forgot"),
    ("post", "/api/v1/auth/password/reset"),
    ("post", "/api/v1/auth/token"),
    ("post", "/api/v1/auth/revoke"),
}


@pytest.fixture
def document(client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200 and resp.is_json
    return resp.get_json()


def _operations(document):
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, op


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_the_document_names_every_route_of_the_blueprint_and_nothing_else(app, document):
    in_code = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            in_code |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(m, p) for m, p, _ in _operations(document)}
    assert in_code == documented
    assert len(documented) >= 30


def test_every_operation_but_the_public_ones_needs_a_bearer_token(document):
    assert "bearerAuth" in document["components"]["securitySchemes"]
    for method, path, op in _operations(document):
        needs = op.get("security") == [{"bearerAuth": []}]
        assert needs == ((method, path) not in PUBLIC), (method, path)


def test_every_operation_documents_the_problem_shape_for_errors(document):
    default = document["components"]["responses"]["DEFAULT_ERROR"]
    assert list(default["content"]) == ["application/problem+json"]
    for _, _, op in _operations(document):
        assert op["responses"]["default"] == {"$ref": "#/components/responses/DEFAULT_ERROR"}


def test_protected_operations_answer_401_without_a_token(client, document):
    for method, path, _ in _operations(document):
        if (method, path) in PUBLIC:
            continue
        url = re.sub(r"\{[a-z_]+\}", "1", path)
        resp = client.open(url, method=method.upper(), json={})
        assert resp.status_code == 401, (method, path)
        assert resp.headers["Content-Type"] == "application/problem+json"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_request_bodies_are_validated_on_the_way_in(client, teacher):
    from tests.api.conftest import auth, tokens_for

    pair = tokens_for(client, teacher)
    resp = client.post("/api/v1/courses", headers=auth(pair), json={"title": 5, "extra": 1})
    assert resp.status_code == 422
    body = resp.get_json()
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert body["status"] == 422 and body["title"] == "Unprocessable Entity"
    assert set(body["errors"]) == {"title", "extra"}
