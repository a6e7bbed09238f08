"""The catalogue: the products the storefront sells, defined once.

The web tier prices carts with it (services/web/catalog.py), the REST API publishes it (`GET /catalog`,
cached at the stage) and the pages show it (their pictures are `storefront/<image>`). A product is
changed here and deployed; nothing else holds a copy.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from contracts.limits import DEFAULT_CURRENCY
from contracts.types import Sku, UnitPrice


class Product(BaseModel):
    """One product as the API and the pages show it."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="Product")

    sku: Sku
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(max_length=300)
    unit_price: UnitPrice
    # Path of the product's picture, relative to the storefront's root (storefront/products/...).
    image: str = Field(pattern=r"^products/[A-Za-z0-9-]+\.svg$")


class Catalog(BaseModel):
    """Body of `GET /catalog`."""

    model_config = ConfigDict(frozen=True, title="Catalog")

    currency: str = DEFAULT_CURRENCY
    products: list[Product]


def _product(sku: str, name: str, description: str, price: str) -> Product:
    return Product.model_validate(
        {
            "sku": sku,
            "name": name,
            "description": description,
            "unit_price": Decimal(price),
            "image": f"products/{sku}.svg",
        }
    )


PRODUCTS: tuple[Product, ...] = (
    _product("SKU-TEA-001", "Sencha green tea, 100 g", "Steamed Japanese green tea, grassy and sweet.", "8.50"),
    _product("SKU-MUG-002", "Stoneware mug", "Hand-glazed, 350 ml, dishwasher safe.", "14.00"),
    _product("SKU-POT-003", "Cast-iron teapot", "Enamelled inside, 800 ml, with a steel infuser.", "49.90"),
    _product("SKU-KET-004", "Gooseneck kettle", "1 litre, precise pour, for every hob.", "89.00"),
)
BY_SKU: dict[str, Product] = {p.sku: p for p in PRODUCTS}
CATALOG = Catalog(products=list(PRODUCTS))
