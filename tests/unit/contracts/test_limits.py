"""contracts.limits and contracts.tables: the limits are what the published JSON schemas say, and the key
design every context shares."""

from __future__ import annotations

import re

import pytest

from contracts import limits, tables
from contracts.api import CheckoutRequest
from contracts.handoff import MAX_HANDOFF_RECORDS, HandoffDocument
from contracts.orders import OrderRequest


def test_the_published_order_schema_states_the_limits():
    """The JSON schema (OpenAPI, API Gateway request models, web tier) is generated from the models, and
    carries exactly these values."""
    schema = OrderRequest.model_json_schema(mode="validation")
    line = schema["$defs"]["OrderItem"]

    assert schema["additionalProperties"] is False and line["additionalProperties"] is False
    assert schema["properties"]["customer_id"]["pattern"] == limits.CUSTOMER_ID_PATTERN
    assert schema["properties"]["currency"] == {
        "default": limits.DEFAULT_CURRENCY,
        "pattern": limits.CURRENCY_PATTERN,
        "title": "Currency",
        "type": "string",
    }
    assert (schema["properties"]["items"]["minItems"], schema["properties"]["items"]["maxItems"]) == (
        1,
        limits.MAX_ITEMS,
    )
    assert line["properties"]["sku"]["pattern"] == limits.SKU_PATTERN
    assert line["properties"]["quantity"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": limits.MAX_QUANTITY,
        "title": "Quantity",
    }
    assert line["properties"]["unit_price"] == {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": float(limits.MAX_UNIT_PRICE),
        "multipleOf": float(limits.CENT),
        "title": "Unit Price",
    }
    assert set(schema["required"]) == {"items", "customer_id"} and set(line["required"]) == {
        "sku",
        "quantity",
        "unit_price",
    }
    assert "total" not in schema["properties"]  # computed: in answers, never accepted


def test_the_published_checkout_schema_refuses_unknown_fields():
    assert CheckoutRequest.model_json_schema()["additionalProperties"] is False


@pytest.mark.parametrize(
    ("pattern", "valid", "invalid"),
    [
        (limits.SKU_PATTERN, ["SKU-TEA-001", "ABC", "9-9"], ["AB", "sku-1", "-AB", "SKU_1", "A" * 65]),
        (limits.CUSTOMER_ID_PATTERN, ["c", "jane.doe@example.com", "a_b-c"], ["", "-a", " a", "a b", "a" * 65]),
        (limits.ORDER_ID_PATTERN, ["order-1", "0d9b8f5e-3c1a-4f7e-9b2d-6a4e8c1f2d30"], ["", "a.b", "a_b", "a" * 65]),
        (limits.CURRENCY_PATTERN, ["EUR", "USD"], ["eur", "EURO", "E"]),
    ],
)
def test_patterns(pattern, valid, invalid):
    assert all(re.fullmatch(pattern, value) for value in valid)
    assert not any(re.fullmatch(pattern, value) for value in invalid)


def test_order_keys_and_prefixes():
    assert tables.order_key("o-1") == {"pk": "ORDER#o-1", "sk": "META"}
    assert tables.order_key("o-1", "PAYMENT") == {"pk": "ORDER#o-1", "sk": "PAYMENT"}
    prefixes = [tables.ORDER_PREFIX, tables.ANALYTICS_PREFIX, tables.LEDGER_PREFIX, tables.HANDOFF_PREFIX]
    # IAM grants are `dynamodb:LeadingKeys` prefixes: none may be a prefix of another context's.
    assert not [(a, b) for a in prefixes for b in prefixes if a != b and b.startswith(a)]


def test_a_handoff_document_is_a_bounded_list_of_objects():
    assert HandoffDocument.model_validate({"records": [{"a": 1}]}).records == [{"a": 1}]
    for records in ([1, 2], {"a": 1}, [{"a": 1}] * (MAX_HANDOFF_RECORDS + 1)):
        with pytest.raises(ValueError):
            HandoffDocument.model_validate({"records": records})
