"""The web tier's Idempotency-Key (services/web/checkout.py): stable for one checkout, different for
anything else, and never revealing the session id it is derived from."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from contracts import limits
from services.web.checkout import idempotency_key

SESSION = "s" * 43
TOKEN = "0123456789abcdef0123456789abcdef"


def test_the_same_checkout_always_gets_the_same_key():
    assert idempotency_key("alice", SESSION, TOKEN) == idempotency_key("alice", SESSION, TOKEN)


def test_the_key_fits_the_contract_and_hides_the_session_id():
    key = idempotency_key("alice", SESSION, TOKEN)
    assert re.fullmatch(r"web-[0-9a-f]{64}", key)
    assert len(key) <= limits.MAX_IDEMPOTENCY_KEY_LENGTH
    assert SESSION not in key and TOKEN not in key and "alice" not in key


def test_another_user_session_or_token_gets_another_key():
    key = idempotency_key("alice", SESSION, TOKEN)
    assert idempotency_key("bob", SESSION, TOKEN) != key  # another user, even with the same session id
    assert idempotency_key("alice", "t" * 43, TOKEN) != key  # another login (a new session id)
    assert idempotency_key("alice", SESSION, "f" * 32) != key  # the next order (a renewed token)


@example(("ab", "c", "t"), ("a", "bc", "t"))
@example(("a", "b,c", "t"), ("a,b", "c", "t"))
@given(st.tuples(st.text(), st.text(), st.text()), st.tuples(st.text(), st.text(), st.text()))
def test_different_inputs_never_collide_by_concatenation(a, b):
    """("ab", "c") and ("a", "bc") are different checkouts: the parts are encoded, not just joined."""
    if a != b:
        assert idempotency_key(*a) != idempotency_key(*b)
