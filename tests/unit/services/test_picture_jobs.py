"""services.pictures.jobs: the uploads an S3 event notification names."""

from __future__ import annotations

import json

import pytest

from services.pictures.jobs import NotAnS3Event, Upload, uploads_of


def s3_event(*keys: str, event: str = "ObjectCreated:Put") -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "eventName": event,
                    "s3": {
                        "bucket": {"name": "media"},
                        "object": {"key": key, "eTag": "abc123", "versionId": "v1", "size": 10},
                    },
                }
                for key in keys
            ]
        }
    )


def test_each_created_upload_is_a_job():
    assert uploads_of(s3_event("uploads/SKU-1/a+b.png", "uploads/SKU-2/c.jpg")) == [
        Upload("media", "uploads/SKU-1/a b.png", "abc123", "v1"),
        Upload("media", "uploads/SKU-2/c.jpg", "abc123", "v1"),
    ]


def test_the_test_event_and_other_keys_or_events_ask_for_nothing():
    assert uploads_of(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "media"})) == []
    assert uploads_of(s3_event("pictures/SKU-1/a/card.jpg")) == []
    assert uploads_of(s3_event("uploads/SKU-1/a.png", event="ObjectRemoved:Delete")) == []


@pytest.mark.parametrize("body", ["not json", "[]", '{"Records": [{"eventName": "ObjectCreated:Put"}]}', "{}"])
def test_a_message_that_is_no_s3_event_is_poison(body):
    with pytest.raises(NotAnS3Event):
        uploads_of(body)
