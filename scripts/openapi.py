"""Write docs/openapi.json, the API's published contract, from the routes and models that serve it.

The orders API and the approvals API are two Powertools resolvers (two Lambda functions behind one REST
API); each generates its own OpenAPI document from its routes and the contract's pydantic models, and
Powertools' OpenAPIMerge joins them. `--check` fails when the committed document differs (make lint and
tests/unit/test_openapi.py run it), so the document never drifts from the code.

    python -m scripts.openapi            # write docs/openapi.json
    python -m scripts.openapi --check    # exit 1 if docs/openapi.json is out of date
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "docs" / "openapi.json"
TITLE = "Loosely coupled storefront API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Orders and approvals API of the storefront reference architecture. The order operations need an API key "
    "(header x-api-key); POST /orders also an Idempotency-Key. The approvals (back office) are signed with "
    'AWS Signature Version 4 as the back-office role instead. Errors answer {"message": ...}.'
)
# API Gateway's invoke URL of the stage (the local cloud's is path-style: the `make local` report shows it).
SERVER = {
    "url": "https://{api_id}.execute-api.{region}.amazonaws.com/v1",
    "variables": {"api_id": {"default": "example"}, "region": {"default": "us-east-1"}},
}
# The handler modules read these at import; generating the document touches no AWS resource.
_IMPORT_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "ORDERS_TABLE": "orders",
    "IDEMPOTENCY_TABLE": "idempotency",
    "ORDER_EVENTS_TOPIC_ARN": "arn:aws:sns:us-east-1:000000000000:order-events",
    "CHECKOUT_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:000000000000:stateMachine:checkout",
    "RECOMMENDATIONS_FUNCTION_NAME": "recommendations",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def document() -> dict[str, Any]:
    for name, value in _IMPORT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if str(ROOT / "lambdas") not in sys.path:
        sys.path.insert(0, str(ROOT / "lambdas"))
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

    from checkout.handlers import approvals
    from orders.handlers import api
    from plumbing.http import SECURITY, SECURITY_SCHEMES

    merged = OpenAPIMerge(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        security_schemes=SECURITY_SCHEMES,
        security=SECURITY,
        on_conflict="error",
    )
    for resolver in (api.app, approvals.app):
        # add_schema is typed for a dict but takes the OpenAPI model too (it dumps the model itself).
        merged.add_schema(
            resolver.get_openapi_schema(title=TITLE, version=VERSION, security_schemes=SECURITY_SCHEMES)  # type: ignore[arg-type]
        )
    schema: dict[str, Any] = json.loads(merged.get_openapi_json_schema())
    schema["servers"] = [SERVER]
    return _without_unused_components(schema)


def _without_unused_components(schema: dict[str, Any]) -> dict[str, Any]:
    """Powertools documents a 422 with its own validation-error model on every validated route; this API
    answers validation failures with 400 and ErrorBody (plumbing.http), so those 422s are dropped (a
    route that does answer 422 declares it with ErrorBody), and then every model nothing refers to."""
    powertools_422 = {"$ref": "#/components/schemas/HTTPValidationError"}
    for operations in schema["paths"].values():
        for operation in operations.values():
            answer = operation["responses"].get("422", {})
            if answer.get("content", {}).get("application/json", {}).get("schema") == powertools_422:
                del operation["responses"]["422"]
    components = schema["components"]["schemas"]
    used: set[str] = set()
    pending = [schema["paths"]]
    while pending:
        text = json.dumps(pending.pop())
        for name in components:
            if f'"#/components/schemas/{name}"' in text and name not in used:
                used.add(name)
                pending.append(components[name])
    schema["components"]["schemas"] = {name: model for name, model in components.items() if name in used}
    return schema


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when docs/openapi.json is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != text:
            print(f"{DOCUMENT.relative_to(ROOT)} is out of date: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.write_text(text)
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
