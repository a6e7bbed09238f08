"""Demo users, and the catalogue the web tier prices carts with. A real storefront would use an identity
provider; the point here is that the web tier holds no state of its own, so these are constants.

Demo credentials: alice / wonderland, bob / builder. Only salted scrypt hashes
are kept (werkzeug.security), never the passwords.
"""

from __future__ import annotations

from werkzeug.security import check_password_hash

from contracts.catalog import BY_SKU, Product

DEMO_USERS: dict[str, str] = {
    "alice": "scrypt:32768:8:1$QZ5v5EKQs0nZ9Kbd$7cdc9bbcb720b5b2d177fc1ef00d2178771365ad6d532412d2fcc188191f5eeb67417fb21da5ea93c02b319a2dd05317eafebb9caf58ec8d3624c238fe1b3c07",
    "bob": "scrypt:32768:8:1$mWEZvPtzUEEk0NCT$b84ad571ec499a29c511d7d08b6d585b57d6f3019b985f01f7dc2e96bd8b15b328c3aaf42c8de498d82751a19767fdc48755ffe406c19ce9ba977eb0d2e3a41d",
}
# Checked when the user does not exist, so an unknown name costs as long as a wrong password
# (response time must not reveal which user names exist).
_DUMMY_HASH = DEMO_USERS["bob"]


def authenticate(username: object, password: object) -> str | None:
    """The user name if the credentials are right, else None."""
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    stored = DEMO_USERS.get(username)
    if stored is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return username if check_password_hash(stored, password) else None


# The catalogue is the contract's (contracts/catalog.py): the REST API's `GET /catalog` serves the same one.
CATALOG: dict[str, Product] = BY_SKU
