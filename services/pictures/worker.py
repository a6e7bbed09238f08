"""The job loop: long-poll one message, keep it invisible while the job runs, write, then delete.

- A message is deleted only after every rendition is written, so a worker that dies mid-job loses
  nothing: the message becomes visible again and another worker takes it.
- While a job runs, a heartbeat extends the message's visibility timeout (ChangeMessageVisibility),
  so a slow job is not handed to a second worker; the queue's own timeout only has to cover a
  heartbeat, not the longest job.
- Renditions carry the upload's key and ETag as metadata; a redelivered job skips each size already
  rendered from that very upload, so every picture is rendered exactly once (at-least-once delivery,
  idempotent effect).
- A job that fails comes back after a short, growing delay; after the queue's maxReceiveCount the
  redrive policy moves it to the DLQ (a corrupt file), and the rest of the queue is unharmed.
- SIGTERM (scale-in) stops polling; the job in hand is finished first.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from contracts.pictures import (
    RENDERED_CONTENT_TYPE,
    RENDITIONS,
    SOURCE_ETAG_METADATA,
    SOURCE_KEY_METADATA,
    rendition_key,
)
from services.pictures.jobs import Upload, uploads_of
from services.pictures.render import render

logger = logging.getLogger("pictures")

LONG_POLL_SECONDS = 20
# A failed job is retried after RETRY_SECONDS x its receive count (2 s, 4 s, ...), at most the ceiling.
RETRY_SECONDS = 2
RETRY_CEILING_SECONDS = 60


@dataclass
class Stats:
    jobs: int = 0
    renditions: int = 0
    skipped: int = 0
    failures: int = 0
    busy: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {k: getattr(self, k) for k in ("jobs", "renditions", "skipped", "failures", "busy")}


class PictureWorker:
    def __init__(
        self,
        *,
        sqs: Any,
        s3: Any,
        queue_url: str,
        assets_bucket: str,
        visibility_seconds: int,
        heartbeat_seconds: float | None = None,
        wait_seconds: int = LONG_POLL_SECONDS,
    ) -> None:
        self.sqs, self.s3 = sqs, s3
        self.queue_url, self.assets_bucket = queue_url, assets_bucket
        self.visibility_seconds = visibility_seconds
        # Extend well before the timeout runs out: a third of it, so two heartbeats may be late.
        self.heartbeat_seconds = heartbeat_seconds or max(1.0, visibility_seconds / 3)
        self.wait_seconds = wait_seconds
        self.stopping = threading.Event()
        self.stats = Stats()

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # an unreachable endpoint must not end the instance's service
                logger.exception("poll failed")
                self.stopping.wait(2)

    def poll_once(self) -> int:
        """Receive at most one message and handle it; returns how many were handled."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["ApproximateReceiveCount"],
        )
        messages = answer.get("Messages", [])
        for message in messages:
            if self.stopping.is_set():  # taken while shutting down: hand it straight back
                self._retry_after(message, 0)
                continue
            self.handle(message)
        return len(messages)

    def handle(self, message: dict) -> bool:
        """Process one message; True when it was deleted."""
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        with self.stats.lock:
            self.stats.busy = True
        try:
            with self._heartbeat(message):
                uploads = uploads_of(message["Body"])
                for upload in uploads:
                    self.render_upload(upload)
        except Exception as error:
            with self.stats.lock:
                self.stats.failures += 1
            delay = min(RETRY_SECONDS * receives, RETRY_CEILING_SECONDS)
            logger.warning(
                "job failed; it comes back later and goes to the DLQ after the last receive",
                extra={"message_id": message.get("MessageId"), "receives": receives, "error": str(error)},
            )
            self._retry_after(message, delay)
            return False
        finally:
            with self.stats.lock:
                self.stats.busy = False
        # After the write, never before: a crash above leaves the message to be redelivered.
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        with self.stats.lock:
            self.stats.jobs += 1
        return True

    # --- one upload ------------------------------------------------------------------------------

    def render_upload(self, upload: Upload) -> None:
        missing = [size for size in RENDITIONS if not self._rendered_from(upload, size)]
        if not missing:
            with self.stats.lock:
                self.stats.skipped += 1
            logger.info("already rendered", extra={"key": upload.key})
            return
        get: dict[str, Any] = {"Bucket": upload.bucket, "Key": upload.key}
        if upload.version_id:
            get["VersionId"] = upload.version_id
        original = self.s3.get_object(**get)["Body"].read()
        rendered = render(original, {size: RENDITIONS[size] for size in missing})
        for size, body in rendered.items():
            self.s3.put_object(
                Bucket=self.assets_bucket,
                Key=rendition_key(upload.key, size),
                Body=body,
                ContentType=RENDERED_CONTENT_TYPE,
                Metadata={SOURCE_KEY_METADATA: upload.key, SOURCE_ETAG_METADATA: upload.etag},
            )
        with self.stats.lock:
            self.stats.renditions += len(rendered)
        logger.info("rendered", extra={"key": upload.key, "sizes": sorted(rendered)})

    def _rendered_from(self, upload: Upload, size: str) -> bool:
        try:
            head = self.s3.head_object(Bucket=self.assets_bucket, Key=rendition_key(upload.key, size))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        metadata = head.get("Metadata", {})
        return metadata.get(SOURCE_KEY_METADATA) == upload.key and metadata.get(SOURCE_ETAG_METADATA) == upload.etag

    # --- visibility ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _heartbeat(self, message: dict) -> Iterator[None]:
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.heartbeat_seconds):
                try:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=self.visibility_seconds,
                    )
                    logger.info("visibility extended", extra={"message_id": message.get("MessageId")})
                except Exception as error:  # the next beat tries again; the job itself carries on
                    logger.warning("visibility not extended", extra={"error": str(error)})

        thread = threading.Thread(target=beat, name="visibility-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(self.heartbeat_seconds + 5)

    def _retry_after(self, message: dict, seconds: int) -> None:
        with contextlib.suppress(Exception):  # if this fails, the visibility timeout brings it back anyway
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=seconds
            )
