"""The S3 hand-off format: what a producer drops under `incoming/` for the ingester to record."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

INCOMING_PREFIX = "incoming/"  # producers write here; the ingester lists it
MAX_HANDOFF_RECORDS = 500


class HandoffDocument(BaseModel):
    """A hand-off object: a JSON list of records (e.g. a sales report), each a JSON object."""

    records: Annotated[list[dict[str, Any]], Field(max_length=MAX_HANDOFF_RECORDS)]
