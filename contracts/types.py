"""Field types shared by every model of the contract, each with the JSON schema it publishes.

Inputs are checked the way the published schema says: a quantity is a JSON integer (not `true`, not
`"3"`; `3.0` is the integer 3, as JSON Schema counts it), a price a JSON number (not a string). Records read back from DynamoDB hold `Decimal` numbers;
those are accepted too, so one model serves the API, the events and the tables. Money is `Decimal`
(exact) inside and a JSON number outside.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, StringConstraints, ValidationError, WithJsonSchema

from contracts import limits


def _whole_number(value: Any) -> Any:
    # pydantic's lax mode would take `true` as 1 and "3" as 3; neither is a count in JSON. It takes 3.0 as
    # 3 and refuses 2.5, as JSON Schema's "integer" does.
    if isinstance(value, (bool, str)):
        raise ValueError("must be a whole number (a JSON integer)")
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)  # DynamoDB hands numbers back as Decimal('2')
    return value


def _number(value: Any) -> Any:
    if isinstance(value, (bool, str)):
        raise ValueError("must be a JSON number")
    return value


def _money_json(value: Decimal) -> float:
    # Cents survive the round trip: float('19.99') prints as 19.99 and parses back to Decimal('19.99').
    return float(value)


def _money(minimum: dict[str, Any]) -> Any:
    """A cent-exact amount; `minimum` is its lower bound in JSON-schema words."""
    return WithJsonSchema({"type": "number", **minimum, "multipleOf": float(limits.CENT)})


Money = Annotated[
    Decimal,
    BeforeValidator(_number),
    Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(_money_json, return_type=float, when_used="json"),
    _money({"minimum": 0}),
]
UnitPrice = Annotated[
    Decimal,
    BeforeValidator(_number),
    Field(gt=0, le=limits.MAX_UNIT_PRICE, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(_money_json, return_type=float, when_used="json"),
    _money({"exclusiveMinimum": 0, "maximum": float(limits.MAX_UNIT_PRICE)}),
]
Quantity = Annotated[int, Field(ge=1, le=limits.MAX_QUANTITY), BeforeValidator(_whole_number)]
# A count of units beyond one line (a SKU's lines added up, a ledger movement).
Units = Annotated[int, Field(ge=1), BeforeValidator(_whole_number)]
Sku = Annotated[str, StringConstraints(pattern=limits.SKU_PATTERN)]
CustomerId = Annotated[str, StringConstraints(pattern=limits.CUSTOMER_ID_PATTERN)]
OrderId = Annotated[str, StringConstraints(pattern=limits.ORDER_ID_PATTERN)]
Currency = Annotated[str, StringConstraints(pattern=limits.CURRENCY_PATTERN)]
Reason = Annotated[str, StringConstraints(max_length=limits.MAX_REASON_LENGTH)]


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming the field path (`items.0.quantity: ...`), for a 400 answer or a
    log line. The offending input is not echoed back."""
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in detail["loc"]) or "body"
        problems.append(f"{field}: {detail['msg']}")
    return "; ".join(problems)
