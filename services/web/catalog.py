"""The storefront's products. A real storefront would use a catalogue service; the point here is that
the web tier holds no state of its own, so these are constants. Users are not here: they live in the
Amazon Cognito user pool (services/web/auth.py); the web tier stores no passwords.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple


class Product(NamedTuple):
    sku: str
    name: str
    unit_price: Decimal


CATALOG: dict[str, Product] = {
    p.sku: p
    for p in (
        Product("SKU-TEA-001", "Sencha green tea, 100 g", Decimal("8.50")),
        Product("SKU-MUG-002", "Stoneware mug", Decimal("14.00")),
        Product("SKU-POT-003", "Cast-iron teapot", Decimal("49.90")),
        Product("SKU-KET-004", "Gooseneck kettle", Decimal("89.00")),
    )
}
