"""What a picture-jobs message asks for: the uploads named by the S3 event notification it carries."""

from __future__ import annotations

import json
from dataclasses import dataclass

from contracts.pictures import UPLOADS_PREFIX, object_key_of_event


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    etag: str
    version_id: str | None = None


class NotAnS3Event(ValueError):
    """A message that is no S3 event notification (someone else wrote to the queue): poison."""


def uploads_of(body: str) -> list[Upload]:
    """The created objects under `uploads/` an S3 event message names; [] for S3's `s3:TestEvent`
    (sent once when the notification is configured) and for events of other keys."""
    try:
        event = json.loads(body)
        if isinstance(event, dict) and event.get("Event") == "s3:TestEvent":
            return []
        records = event["Records"]
        found = []
        for record in records:
            if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
                continue
            s3 = record["s3"]
            key = object_key_of_event(s3["object"]["key"])
            if key.startswith(UPLOADS_PREFIX):
                found.append(
                    Upload(
                        s3["bucket"]["name"],
                        key,
                        str(s3["object"].get("eTag", "")).strip('"'),
                        s3["object"].get("versionId"),
                    )
                )
        return found
    except (ValueError, KeyError, TypeError) as error:
        raise NotAnS3Event(f"not an S3 event notification: {error}") from error
