"""services.pictures.worker on moto in-process: an S3 event in, every rendition written, the message
deleted only afterwards; a redelivered job renders nothing twice; a corrupt upload ends in the DLQ;
a running job keeps its message invisible."""

from __future__ import annotations

import io
import json
import threading
import time

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from contracts.pictures import RENDITIONS, SOURCE_ETAG_METADATA, rendition_key
from services.pictures.worker import PictureWorker

REGION = "us-east-1"


def png(width: int = 1600, height: int = 1000) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 40)).save(out, "PNG")
    return out.getvalue()


class Cloud:
    def __init__(self, visibility: int = 30) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        for bucket in ("media", "assets"):
            self.s3.create_bucket(Bucket=bucket)
        self.s3.put_bucket_versioning(Bucket="assets", VersioningConfiguration={"Status": "Enabled"})
        self.dlq = self.sqs.create_queue(QueueName="jobs-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.queue = self.sqs.create_queue(
            QueueName="jobs",
            Attributes={
                "VisibilityTimeout": str(visibility),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
            },
        )["QueueUrl"]

    def upload(self, key: str, body: bytes) -> None:
        """What S3 does on a PutObject under uploads/: store it, then notify the queue."""
        etag = self.s3.put_object(Bucket="media", Key=key, Body=body)["ETag"].strip('"')
        record = {
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "media"}, "object": {"key": key, "eTag": etag, "size": len(body)}},
        }
        self.sqs.send_message(QueueUrl=self.queue, MessageBody=json.dumps({"Records": [record]}))

    def worker(self, **options) -> PictureWorker:
        options.setdefault("visibility_seconds", 30)
        return PictureWorker(
            sqs=self.sqs, s3=self.s3, queue_url=self.queue, assets_bucket="assets", wait_seconds=0, **options
        )

    def versions(self, key: str) -> int:
        return len(self.s3.list_object_versions(Bucket="assets", Prefix=key).get("Versions", []))

    def count(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def cloud():
    with mock_aws():
        yield Cloud()


def test_every_size_is_written_and_the_message_deleted_after_the_write(cloud):
    cloud.upload("uploads/SKU-1/front.png", png())
    worker = cloud.worker()
    assert worker.poll_once() == 1
    for size, edge in RENDITIONS.items():
        body = cloud.s3.get_object(Bucket="assets", Key=rendition_key("uploads/SKU-1/front.png", size))
        assert body["ContentType"] == "image/jpeg"
        with Image.open(io.BytesIO(body["Body"].read())) as image:
            assert max(image.size) == min(edge, 1600)
    assert cloud.count(cloud.queue) == 0
    assert worker.stats.snapshot()["jobs"] == 1 and worker.stats.snapshot()["renditions"] == len(RENDITIONS)


def test_a_failed_write_keeps_the_message(cloud):
    cloud.upload("uploads/SKU-1/front.png", png())
    cloud.s3.delete_bucket(Bucket="assets")  # nowhere to write
    worker = cloud.worker()
    worker.poll_once()
    assert cloud.count(cloud.queue) == 1, "deleted before the renditions were written"
    assert worker.stats.snapshot()["failures"] == 1


def test_a_redelivered_job_renders_nothing_twice(cloud):
    cloud.upload("uploads/SKU-1/front.png", png())
    body = cloud.sqs.receive_message(QueueUrl=cloud.queue, VisibilityTimeout=0)["Messages"][0]["Body"]
    cloud.sqs.send_message(QueueUrl=cloud.queue, MessageBody=body)  # the same event, delivered again
    worker = cloud.worker()
    for _ in range(3):
        worker.poll_once()
    assert cloud.count(cloud.queue) == 0
    for size in RENDITIONS:
        assert cloud.versions(rendition_key("uploads/SKU-1/front.png", size)) == 1, size
    assert worker.stats.snapshot()["skipped"] >= 1


def test_a_new_upload_of_the_same_name_is_rendered_again(cloud):
    cloud.upload("uploads/SKU-1/front.png", png(800, 800))
    cloud.worker().poll_once()
    cloud.upload("uploads/SKU-1/front.png", png(900, 600))
    cloud.worker().poll_once()
    key = rendition_key("uploads/SKU-1/front.png", "detail")
    assert cloud.versions(key) == 2
    head = cloud.s3.head_object(Bucket="assets", Key=key)
    etag = cloud.s3.head_object(Bucket="media", Key="uploads/SKU-1/front.png")["ETag"].strip('"')
    assert head["Metadata"][SOURCE_ETAG_METADATA] == etag


def test_a_corrupt_upload_ends_in_the_dlq_and_the_rest_is_rendered(cloud):
    cloud.upload("uploads/SKU-1/broken.png", b"\x89PNG\r\n\x1a\nnot really")
    cloud.upload("uploads/SKU-2/fine.png", png())
    worker = cloud.worker()
    # About 10 s alone; generous, since the loop ends when the queue is empty and the machine is shared.
    deadline = time.monotonic() + 120
    while cloud.count(cloud.queue) and time.monotonic() < deadline:
        worker.poll_once()
        # moto moves a message to the DLQ on the receive after its last one; retries wait 2 s, 4 s
        time.sleep(0.2)
    assert cloud.count(cloud.queue) == 0
    assert cloud.count(cloud.dlq) == 1
    dead = cloud.sqs.receive_message(QueueUrl=cloud.dlq)["Messages"][0]
    assert "uploads/SKU-1/broken.png" in dead["Body"]
    assert cloud.versions(rendition_key("uploads/SKU-2/fine.png", "card")) == 1
    assert cloud.versions(rendition_key("uploads/SKU-1/broken.png", "card")) == 0


def test_a_running_job_keeps_its_message_invisible_past_the_visibility_timeout():
    with mock_aws():
        cloud = Cloud(visibility=2)
        cloud.upload("uploads/SKU-1/slow.png", png())
        release = threading.Event()

        class SlowWorker(PictureWorker):
            def render_upload(self, upload):
                release.wait(10)  # a job that takes longer than the queue's visibility timeout
                super().render_upload(upload)

        worker = SlowWorker(
            sqs=cloud.sqs,
            s3=cloud.s3,
            queue_url=cloud.queue,
            assets_bucket="assets",
            visibility_seconds=2,
            heartbeat_seconds=0.5,
            wait_seconds=0,
        )
        job = threading.Thread(target=worker.poll_once)
        job.start()
        time.sleep(0.5)
        seen_by_another_worker = []
        for _ in range(8):  # 4 s: twice the visibility timeout
            seen_by_another_worker += cloud.sqs.receive_message(QueueUrl=cloud.queue).get("Messages", [])
            time.sleep(0.5)
        release.set()
        job.join(10)
        assert seen_by_another_worker == []
        assert cloud.count(cloud.queue) == 0
        assert cloud.versions(rendition_key("uploads/SKU-1/slow.png", "card")) == 1


def test_a_stopping_worker_hands_a_message_back_at_once(cloud):
    cloud.upload("uploads/SKU-1/front.png", png())
    worker = cloud.worker()
    worker.stopping.set()
    worker.poll_once()
    assert cloud.sqs.receive_message(QueueUrl=cloud.queue).get("Messages"), "the message stayed invisible"
    assert cloud.versions(rendition_key("uploads/SKU-1/front.png", "card")) == 0
