"""docs/openapi.json is the published contract: generated from the routes and the contract's models,
committed, and never out of date. Besides the drift check, the properties a client relies on."""

from __future__ import annotations

import json

import pytest

from contracts.api import API_KEY_HEADER, ERROR_STATUSES, IDEMPOTENCY_HEADER
from contracts.orders import OrderRequest
from scripts import openapi

COMMITTED = json.loads(openapi.DOCUMENT.read_text())
OPERATIONS = [(path, method, op) for path, ops in COMMITTED["paths"].items() for method, op in ops.items()]


def test_the_committed_document_is_what_the_code_generates():
    assert openapi.render() == openapi.DOCUMENT.read_text(), "docs/openapi.json is out of date: run `make openapi`"


def test_every_route_of_both_resolvers_is_documented():
    assert sorted((path, method) for path, method, _ in OPERATIONS) == [
        ("/approvals", "get"),
        ("/approvals/{order_id}", "post"),
        ("/catalog", "get"),
        ("/me/orders/{order_id}", "delete"),
        ("/me/orders/{order_id}", "get"),
        ("/me/orders/{order_id}/checkout", "post"),
        ("/orders", "post"),
        ("/orders/{order_id}", "delete"),
        ("/orders/{order_id}", "get"),
        ("/orders/{order_id}/checkout", "post"),
    ]


def test_partner_operations_need_the_api_key_and_staff_ones_a_sigv4_signature():
    schemes = COMMITTED["components"]["securitySchemes"]
    assert schemes["apiKey"] == {
        "type": "apiKey",
        "name": API_KEY_HEADER,
        "in": "header",
        "description": "API Gateway API key",
    }
    # API Gateway's own notation for SigV4 (what an import into API Gateway turns into AWS_IAM).
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert (schemes["sigv4"]["name"], schemes["sigv4"]["in"]) == ("Authorization", "header")
    assert schemes["cognito"]["x-amazon-apigateway-authtype"] == "cognito_user_pools"
    assert (schemes["cognito"]["name"], schemes["cognito"]["in"]) == ("Authorization", "header")
    assert set(schemes) == {"apiKey", "sigv4", "cognito"}
    assert COMMITTED["security"] == [{"apiKey": []}]
    assert all("security" not in op or op["security"] for _, _, op in OPERATIONS)  # nothing opts out
    staff = sorted(f"{m.upper()} {p}" for p, m, op in OPERATIONS if op.get("security") == [{"sigv4": []}])
    assert staff == ["GET /approvals", "POST /approvals/{order_id}"]
    customer = sorted(f"{m.upper()} {p}" for p, m, op in OPERATIONS if op.get("security") == [{"cognito": []}])
    assert customer == [
        "DELETE /me/orders/{order_id}",
        "GET /me/orders/{order_id}",
        "POST /me/orders/{order_id}/checkout",
    ]


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m, _ in OPERATIONS])
def test_every_operation_lists_the_statuses_it_and_the_gateway_answer(path, method, op):
    statuses = {int(code) for code in op["responses"]}
    assert {400, 403, 429, 503} <= statuses  # validation, API key, throttling, dependencies
    assert statuses <= {200, 202, *ERROR_STATUSES}
    assert len(statuses & {200, 202}) == 1
    # 401 is the Cognito authorizer's answer (no, expired or forged token): the customer routes' alone.
    assert (401 in statuses) == (op.get("security") == [{"cognito": []}])
    if "{order_id}" in path:
        (parameter,) = [p for p in op["parameters"] if p["in"] == "path"]
        assert parameter["name"] == "order_id" and parameter["required"] is True
    for code, answer in op["responses"].items():
        assert "$ref" in answer["content"]["application/json"]["schema"], (code, answer)


def test_placing_an_order_needs_the_idempotency_key_and_the_contracts_order_request():
    op = COMMITTED["paths"]["/orders"]["post"]
    (header,) = [p for p in op["parameters"] if p["in"] == "header"]
    assert header["name"].lower() == IDEMPOTENCY_HEADER.lower() and header["required"] is True
    assert header["schema"]["maxLength"] == 128
    assert op["requestBody"]["required"] is True
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderRequest"}
    published = COMMITTED["components"]["schemas"]["OrderRequest"]
    generated = OrderRequest.model_json_schema(mode="validation", ref_template="#/components/schemas/{model}")
    generated.pop("$defs", None)
    assert published == generated
    assert {int(code) for code in op["responses"]} >= {202, 409, 422}
