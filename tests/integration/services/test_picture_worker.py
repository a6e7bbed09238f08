"""The picture worker as real `python -m services.pictures` processes on moto in server mode: the
media bucket notifies the queue (moto's S3 event notifications), two workers share the queue, every
upload is rendered once in every size, a corrupt one ends in the DLQ, SIGTERM ends a worker cleanly."""

from __future__ import annotations

import io
import json
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import pytest
from PIL import Image

from contracts.pictures import RENDITIONS, UPLOADS_PREFIX, rendition_key
from tests.integration.services.conftest import ServiceProcess, free_port, service_env, wait_until


@dataclass
class Pictures:
    s3: Any
    sqs: Any
    media: str
    assets: str
    queue: str
    dlq: str
    workers: list[ServiceProcess]

    def count(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def versions(self, key: str) -> int:
        answer = self.s3.list_object_versions(Bucket=self.assets, Prefix=key)
        return sum(1 for v in answer.get("Versions", []) if v["Key"] == key)


@pytest.fixture(scope="module")
def pictures(aws, aws_env, tmp_path_factory) -> Iterator[Pictures]:
    s3, sqs, ssm = aws("s3"), aws("sqs"), aws("ssm")
    run = uuid.uuid4().hex[:8]
    media, assets = f"media-{run}", f"assets-{run}"
    for bucket in (media, assets):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=assets, VersioningConfiguration={"Status": "Enabled"})
    dlq = sqs.create_queue(QueueName=f"jobs-dlq-{run}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=f"jobs-{run}",
        Attributes={
            "VisibilityTimeout": "6",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=media,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": UPLOADS_PREFIX}]}},
                }
            ]
        },
    )
    prefix = f"/test-{run}/discovery"
    ssm.put_parameter(Name=f"{prefix}/picture-jobs-queue-url", Value=queue, Type="String")
    ssm.put_parameter(Name=f"{prefix}/assets-bucket", Value=assets, Type="String")
    logs = tmp_path_factory.mktemp("picture-logs")
    workers = []
    for index in (1, 2):
        port = free_port()
        workers.append(ServiceProcess("pictures", port, service_env(aws_env, prefix, port), logs / f"w{index}.log"))
    try:
        for worker in workers:
            worker.spawn()
        for worker in workers:
            worker.wait_healthy()
        yield Pictures(s3, sqs, media, assets, queue, dlq, workers)
    finally:
        for worker in workers:
            worker.stop()


def jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((1400, 900), 30 + seed).convert("RGB").save(out, "JPEG")
    return out.getvalue()


def test_two_workers_render_every_upload_once_and_dead_letter_the_corrupt_one(pictures):
    keys = [f"{UPLOADS_PREFIX}SKU-{n}/front.jpg" for n in range(10)]
    corrupt = f"{UPLOADS_PREFIX}SKU-X/broken.jpg"
    for n, key in enumerate(keys):
        pictures.s3.put_object(Bucket=pictures.media, Key=key, Body=jpeg(n))
    pictures.s3.put_object(Bucket=pictures.media, Key=corrupt, Body=jpeg(99)[:3000])
    expected = [rendition_key(key, size) for key in keys for size in RENDITIONS]
    wait_until(
        lambda: all(pictures.versions(k) for k in expected) and pictures.count(pictures.dlq) == 1,
        60,
        "every rendition and the corrupt upload in the DLQ",
        interval=0.5,
    )
    assert pictures.count(pictures.queue) == 0
    assert [k for k in expected if pictures.versions(k) != 1] == []
    assert [size for size in RENDITIONS if pictures.versions(rendition_key(corrupt, size))] == []
    dead = pictures.sqs.receive_message(QueueUrl=pictures.dlq)["Messages"]
    assert corrupt in unquote_plus(dead[0]["Body"])  # S3 URL-encodes the key in the event
    for worker in pictures.workers:  # both took part, each says so on /health
        assert worker.healthy()


def test_sigterm_ends_a_worker_cleanly(pictures):
    worker = pictures.workers[0]
    assert worker.process is not None
    worker.process.send_signal(signal.SIGTERM)
    # Polling stops after the current long poll (20 s at most); the process exits on its own.
    assert worker.process.wait(timeout=30) == 0
