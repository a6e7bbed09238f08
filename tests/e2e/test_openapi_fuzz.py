"""Property-based fuzzing of the deployed REST API against its OpenAPI document (docs/openapi.json).

schemathesis draws requests for every operation from the document, schema-valid ones (positive) and
schema-violating ones (negative), sends them with the API key (schemathesis' auth for the document's `ApiKey`
scheme, so a negative case negates the data, not the credentials) and checks each answer with its own checks:

- `not_a_server_error`: no 5xx;
- `status_code_conformance`: only documented statuses;
- `content_type_conformance`, `response_schema_conformance`: the body is the documented JSON of its status;
- `positive_data_acceptance` (positive only): a schema-valid request is never refused with 400. Accepted:
  2xx, 401, 403, 404, 409, 422 (an Idempotency-Key reused with another body, which the document allows),
  429 and 5xx (5xx is `not_a_server_error`'s to report);
- `ignored_auth` (positive only): a request that succeeds with the key fails without it and with a wrong one.
  Not for the staff routes (SigV4, the back-office role): MiniStack accepts any Authorization header unless
  started with AUTH=true, so "a wrong signature fails" cannot be shown locally (README: honest gaps).

The staff operations (the document's `sigv4` scheme) are sent signed (botocore's SigV4Auth over the exact
prepared request, as the back-office role) instead of with the key.
The customer operations (`/me/...`, the `cognito` scheme) carry a demo customer's Cognito ID token (from the
web tier's `GET /session` after sign-in) instead of the key, and ids of that customer's real orders.

`test_every_operation_refuses_requests_without_credentials` sends schema-valid requests of each operation
without the key and with an unknown one: 403 (401 accepted), whatever the operation would answer otherwise.

Path ids are drawn, and for the order operations also taken from real orders (a recorded one, one to cancel,
one whose checkout waits for an approval), so 200/202/409 answers are checked and not only 404s.

Findings are collected rather than raised at the first one, so one run reports each distinct finding
(operation, check, status, the answer's message with values masked) with one reproducing curl; any
finding fails the test. FUZZ_MAX_EXAMPLES (default 50) bounds the examples per operation and mode.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from contracts.api import API_KEY_HEADER
from localcloud.identity import DEMO_USERS
from localcloud.settings import ROOT
from localcloud.storefront import SignedHttpClient, wait_for
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

DOCUMENT = ROOT / "docs" / "openapi.json"
API_KEY_SCHEME = "apiKey"  # the document's security schemes (lambdas/plumbing/http.py)
SIGV4_SCHEME = "sigv4"
CUSTOMER_SCHEME = "cognito"  # the customer routes (/me/...): the signed-in customer's ID token
CUSTOMER = "bob"  # a demo user (localcloud/identity.py) whose token the customer operations carry
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "50"))

POSITIVE_DATA_ACCEPTED = ["2xx", "401", "403", "404", "409", "422", "429", "5xx"]


def load_schema(base_url: str | None = None, api_key: str | None = None, id_token: str | None = None):
    """The document as schemathesis reads it; with the deployed API's address, key and a customer's ID token
    when given (through schemathesis' auth for the `apiKey` and `cognito` schemes, so negative cases keep
    the credentials and negate the data)."""
    config: dict = {"checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE_DATA_ACCEPTED}}}
    if base_url:
        config["base-url"] = base_url
    schemes = {API_KEY_SCHEME: api_key, CUSTOMER_SCHEME: id_token}
    if any(schemes.values()):
        config["auth"] = {"openapi": {name: {"api_key": value} for name, value in schemes.items() if value}}
    schema = schemathesis.openapi.from_path(DOCUMENT, config=schemathesis.Config.from_dict(config))
    operations = {}
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself is broken: say how, not that `Err` has no `ok`
        operation = result.ok()
        operations[operation.label] = operation
    return operations


OPERATIONS = load_schema()  # labels for parametrize; no address, no key

COMMON_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CHECKS = {
    GenerationMode.POSITIVE: [*COMMON_CHECKS, positive_data_acceptance, ignored_auth],
    GenerationMode.NEGATIVE: COMMON_CHECKS,
}
STAFF_CHECKS = {
    GenerationMode.POSITIVE: [*COMMON_CHECKS, positive_data_acceptance],
    GenerationMode.NEGATIVE: COMMON_CHECKS,
}


def is_staff(operation) -> bool:
    """Operations signed with SigV4 (the back office) rather than called with the API key."""
    return operation.definition.raw.get("security") == [{SIGV4_SCHEME: []}]


class SignedAsBackOffice(requests.auth.AuthBase):
    """requests' hook: signs the prepared request (final URL, headers and body bytes) with SigV4."""

    def __init__(self, client: SignedHttpClient) -> None:
        self.client = client

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        assert prepared.method is not None and prepared.url is not None
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        assert body is None or isinstance(body, bytes)  # schemathesis sends JSON bodies, never streams
        headers = {k: v if isinstance(v, str) else v.decode() for k, v in prepared.headers.items()}
        signed = self.client.sign(prepared.method, prepared.url, body, headers)
        prepared.headers.update(signed)
        return prepared


# operation -> the fixture whose real order id is used as {order_id} besides drawn ones
KNOWN_IDS = {
    "GET /orders/{order_id}": "recorded_order",
    "DELETE /orders/{order_id}": "order_to_cancel",
    "POST /orders/{order_id}/checkout": "recorded_order",
    "POST /approvals/{order_id}": "order_awaiting_approval",
    "GET /me/orders/{order_id}": "customers_order",
    "DELETE /me/orders/{order_id}": "customers_order_to_cancel",
    "POST /me/orders/{order_id}/checkout": "customers_order",
}
HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=False,
    print_blob=False,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
_MASKS = (
    (re.compile(r'"(?:[^"\\]|\\.)*"'), '"…"'),  # quoted values, in validator messages and the like
    (re.compile(r"\border \S+"), "order …"),  # "order <id> not found"
    (re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"), "N"),
)


@dataclass
class Finding:
    check: str
    status: int
    message: str
    curl: str
    response: str
    count: int = 1


@dataclass
class Run:
    operation: str
    mode: str
    cases: int = 0
    statuses: Counter = field(default_factory=Counter)
    findings: dict[tuple, Finding] = field(default_factory=dict)

    def record(self, failure: Exception, case, response) -> None:
        check = _check_name(failure)
        message = _answer_message(response)
        # One finding per kind of answer: values masked, a validator's list of messages taken as a set.
        key = (check, response.status_code, _signature(message))
        if key in self.findings:
            self.findings[key].count += 1
            return
        curl = case.as_curl_command()
        self.findings[key] = Finding(
            check, response.status_code, f"{getattr(failure, 'title', failure)}: {message}", curl, response.text[:300]
        )

    def report(self) -> str:
        statuses = ", ".join(f"{status} x{n}" for status, n in sorted(self.statuses.items()))
        lines = [
            f"{self.operation} ({self.mode}): {self.cases} cases ({statuses}), {len(self.findings)} distinct findings"
        ]
        for finding in sorted(self.findings.values(), key=lambda f: (f.check, f.status)):
            lines += [
                f"- [{finding.check}] {finding.status} x{finding.count}: {finding.message[:300]}",
                f"    {finding.curl[:600]}",
                f"    -> {finding.response}",
            ]
        return "\n".join(lines)


def _check_name(failure: Exception) -> str:
    checks = getattr(type(failure), "checks", ()) or ()
    return checks[0] if checks else type(failure).__name__


def _answer_message(response) -> str:
    try:
        body = json.loads(response.text)
    except ValueError:
        return response.text[:200]
    return str(body.get("message", body)) if isinstance(body, dict) else response.text[:200]


def _signature(message: str) -> frozenset[str]:
    """What kind of answer a message is: its values masked, its parts (a validator's list of messages, pydantic's
    `field: problem; ...`) taken as a set, so one problem on one field or on five is one finding."""
    for pattern, replacement in _MASKS:
        message = pattern.sub(replacement, message)
    return frozenset(part.strip() for part in re.split(r"[\[\];,]|:\s", message) if part.strip())


# --- the API and real ids --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_url(cloud: Harness) -> str:
    return cloud.api.base_url


@pytest.fixture(scope="module")
def customer_token(cloud: Harness) -> str:
    """A signed-in customer's Cognito ID token, as the web tier hands it to the storefront's pages."""
    browser = cloud.browser()
    assert browser.post("/login", {"username": CUSTOMER, "password": DEMO_USERS[CUSTOMER]}).status == 200
    return browser.get("/session").body["token"]


@pytest.fixture(scope="module")
def operations(cloud: Harness, base_url: str, customer_token: str) -> dict:
    """The operations, bound to the deployed API, its key and a customer's token."""
    return load_schema(base_url, cloud.api.headers[API_KEY_HEADER], customer_token)


def _order_lines(sku: str, quantity: int, unit_price: float) -> list[dict]:
    return [{"sku": sku, "quantity": quantity, "unit_price": unit_price}]


@pytest.fixture(scope="module")
def recorded_order(cloud: Harness) -> str:
    return cloud.recorded_order(_order_lines("SKU-FUZZ-1", 1, 5), customer_id="fuzz")


@pytest.fixture
def order_to_cancel(cloud: Harness):
    """A recorded order still RECEIVED: the finaliser, which confirms it after the 2 s grace period, is
    offline meanwhile (its message waits in the queue)."""
    with cloud.consumers_offline("order_finaliser"):
        yield cloud.recorded_order(_order_lines("SKU-FUZZ-2", 1, 5), customer_id="fuzz")


@pytest.fixture(scope="module")
def customers_order(cloud: Harness) -> str:
    """A recorded order of the customer whose token the customer operations carry."""
    return cloud.recorded_order(_order_lines("SKU-FUZZ-3", 1, 5), customer_id=CUSTOMER)


@pytest.fixture
def customers_order_to_cancel(cloud: Harness):
    with cloud.consumers_offline("order_finaliser"):
        yield cloud.recorded_order(_order_lines("SKU-FUZZ-4", 1, 5), customer_id=CUSTOMER)


@pytest.fixture
def order_awaiting_approval(cloud: Harness) -> str:
    """An order whose checkout waits for a human (total >= 1000); made right before its test, since the
    approval times out after 20 s locally."""
    sku = f"SKU-FUZZ-{uuid.uuid4().hex[:8].upper()}"
    cloud.stock(sku, 100)
    order_id = cloud.recorded_order(_order_lines(sku, 12, 89), customer_id="fuzz")
    cloud.checkout(order_id)
    wait_for(
        lambda: any(a["order_id"] == order_id for a in cloud.back_office.get("/approvals").body["approvals"]),
        60,
        f"an approval request for {order_id}",
    )
    return order_id


def _strategy(request, operations: dict, label: str, mode: GenerationMode, known: str | None = None):
    """Cases of one operation; positive ones also with the real order of `known` (a fixture name, by
    default the operation's KNOWN_IDS entry) as {order_id}."""
    operation = operations[label]
    drawn = operation.as_strategy(generation_mode=mode)
    known = known or KNOWN_IDS.get(label)
    if known is None or mode is GenerationMode.NEGATIVE or not operation.path_parameters:
        return drawn
    order_id = request.getfixturevalue(known)
    return st.one_of(drawn, operation.as_strategy(generation_mode=mode, path_parameters={"order_id": order_id}))


# --- tests -----------------------------------------------------------------------------------------


def test_the_document_describes_every_route_of_the_api():
    assert sorted(OPERATIONS) == sorted(
        [
            "GET /catalog",
            "POST /orders",
            "GET /orders/{order_id}",
            "DELETE /orders/{order_id}",
            "POST /orders/{order_id}/checkout",
            "GET /approvals",
            "POST /approvals/{order_id}",
            "GET /me/orders/{order_id}",
            "DELETE /me/orders/{order_id}",
            "POST /me/orders/{order_id}/checkout",
        ]
    )
    document = json.loads(DOCUMENT.read_text())
    assert document["security"] == [{API_KEY_SCHEME: []}]  # every operation but the staff and customer ones
    assert sorted(label for label, op in OPERATIONS.items() if is_staff(op)) == [
        "GET /approvals",
        "POST /approvals/{order_id}",
    ]
    assert all(op.definition.raw.get("security", document["security"]) for op in OPERATIONS.values())


def _can_be_negated(operation) -> bool:
    """Something in the request besides the credentials can be made schema-invalid (GET /approvals has
    nothing: no path, query or body), so negative mode has cases to draw."""
    return bool(len(operation.path_parameters) or operation.body)


FUZZ_RUNS = [
    pytest.param(label, mode, id=f"{label}-{mode.value}")
    for label in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or _can_be_negated(OPERATIONS[label])
]


@pytest.mark.parametrize(("label", "mode"), FUZZ_RUNS)
def test_operation_answers_as_documented(request, cloud, operations, label, mode):
    run = Run(label, mode.value)
    started = time.monotonic()
    staff = is_staff(operations[label])
    signing = {"auth": SignedAsBackOffice(cloud.back_office)} if staff else {}

    @HYPOTHESIS
    @given(case=_strategy(request, operations, label, mode))
    def fuzz(case):
        run.cases += 1
        response = case.call(timeout=30, **signing)
        run.statuses[response.status_code] += 1
        try:
            checks = (STAFF_CHECKS if staff else CHECKS)[mode]
            case.validate_response(response, checks=checks, transport_kwargs={"timeout": 30})
        except FailureGroup as group:
            for failure in group.exceptions:
                run.record(failure, case, response)

    fuzz()
    report = run.report()
    print(f"[fuzz] {report.splitlines()[0]} in {time.monotonic() - started:.1f}s", flush=True)
    assert run.cases > 0
    if run.findings:
        pytest.fail(report, pytrace=False)


@pytest.mark.parametrize("label", list(OPERATIONS))
def test_every_operation_refuses_requests_without_credentials(request, base_url, label):
    """Schema-valid requests (ids of real orders too) without the key or a signature, and with a key nobody
    issued."""
    answers: dict[str, set[int]] = {"no key": set(), "unknown key": set()}

    @settings(HYPOTHESIS, max_examples=5)
    @given(case=_strategy(request, OPERATIONS, label, GenerationMode.POSITIVE, known="recorded_order"))
    def probe(case):
        # No credential of either kind: no key, and no signature (schemathesis draws a value for the
        # staff operations' Authorization header, which MiniStack would take for a signature).
        credentials = {API_KEY_HEADER.lower(), "authorization"}
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in credentials}
        case.headers = headers
        answers["no key"].add(case.call(base_url=base_url, timeout=30).status_code)
        unknown = {API_KEY_HEADER: f"unknown-{uuid.uuid4().hex}"}
        answers["unknown key"].add(case.call(base_url=base_url, headers=unknown, timeout=30).status_code)

    probe()
    assert all(statuses and statuses <= {401, 403} for statuses in answers.values()), answers
