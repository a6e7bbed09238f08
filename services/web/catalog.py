"""The catalogue the web tier prices carts with. A real storefront would use a catalogue service; the
point here is that the web tier holds no state of its own, so these are constants. Users are not here:
they live in the Amazon Cognito user pool (services/web/auth.py); the web tier stores no passwords.
"""

from __future__ import annotations

from contracts.catalog import BY_SKU, Product

# The catalogue is the contract's (contracts/catalog.py): the REST API's `GET /catalog` serves the same one.
CATALOG: dict[str, Product] = BY_SKU
