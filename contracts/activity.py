"""Storefront activity: what shoppers do before they order (a product viewed, a search, an item added to
the cart). High volume, best effort, never part of an order: the web tier sends one event per action to
the activity queue, and an Express state machine counts them per product (docs/design.md flow 7).

Each event is counted once, by its `event_id`, however often SQS delivers it: the counter's ADD and a
marker item of the event id are one DynamoDB transaction, conditional on the marker being absent.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from contracts.types import CustomerId, Sku

ActivityKind = Literal["ProductViewed", "SearchPerformed", "CartItemAdded"]
PRODUCT_VIEWED, SEARCH_PERFORMED, CART_ITEM_ADDED = get_args(ActivityKind)
# The kinds about one product (`sku`); a search is about its normalised term (`query`).
PRODUCT_KINDS: tuple[ActivityKind, ...] = (PRODUCT_VIEWED, CART_ITEM_ADDED)

MAX_QUERY_LENGTH = 64
QUERY_PATTERN = rf"^[a-z0-9][a-z0-9 -]{{0,{MAX_QUERY_LENGTH - 1}}}$"
EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{8,64}$")]
SearchTerm = Annotated[str, StringConstraints(pattern=QUERY_PATTERN)]


def normalise_query(text: str) -> str | None:
    """The term a search is counted under: lower case, letters, digits, spaces and dashes only, runs of
    spaces folded, at most 64 characters. None when nothing countable is left."""
    term = re.sub(r"[^a-z0-9 -]+", " ", text.lower())
    term = re.sub(r"\s+", " ", term).strip(" -")[:MAX_QUERY_LENGTH].strip(" -")
    return term or None


class ActivityEvent(BaseModel):
    """Body of one message of the activity queue (the web tier sends it, the activity consumer reads it).
    Consumers ignore fields they do not know."""

    model_config = ConfigDict(extra="ignore", title="ActivityEvent")

    event_id: EventId
    kind: ActivityKind
    sku: Sku | None = None
    query: SearchTerm | None = None
    customer_id: CustomerId | None = None
    occurred_at: datetime

    @model_validator(mode="after")
    def _has_subject(self) -> ActivityEvent:
        if self.kind in PRODUCT_KINDS and self.sku is None:
            raise ValueError(f"{self.kind} needs sku")
        if self.kind == SEARCH_PERFORMED and self.query is None:
            raise ValueError(f"{self.kind} needs query")
        return self

    @property
    def subject(self) -> str:
        """What the event is counted under: `PRODUCT#<sku>` or `SEARCH#<term>` (contracts.tables)."""
        if self.kind == SEARCH_PERFORMED:
            return f"SEARCH#{self.query}"
        return f"PRODUCT#{self.sku}"
