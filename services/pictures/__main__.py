"""`python -m services.pictures`: the picture worker (SERVICE_HOST, SERVICE_PORT, DISCOVERY_PREFIX).

Finds its queue and the assets bucket through the discovery parameters the media stack writes, reads
the queue's visibility timeout from the queue itself, answers `/health`, then polls until SIGTERM."""

from __future__ import annotations

import logging
import signal

import boto3

from services.common.discovery import Discovery
from services.common.observability import configure_logging
from services.common.settings import ServiceSettings
from services.pictures.health import serve_health
from services.pictures.worker import PictureWorker

QUEUE_PARAMETER = "picture-jobs-queue-url"
ASSETS_PARAMETER = "assets-bucket"


def main() -> None:
    settings = ServiceSettings.from_env("pictures")
    configure_logging("pictures")
    discovery = Discovery(settings.discovery_prefix, ttl_seconds=settings.discovery_ttl_seconds)
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    queue_url = discovery.get(QUEUE_PARAMETER)
    visibility = int(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])["Attributes"][
            "VisibilityTimeout"
        ]
    )
    worker = PictureWorker(
        sqs=sqs,
        s3=s3,
        queue_url=queue_url,
        assets_bucket=discovery.get(ASSETS_PARAMETER),
        visibility_seconds=visibility,
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.stopping.set())
    server = serve_health(settings.host, settings.port, worker.stats.snapshot)
    logging.getLogger("pictures").info(
        "polling", extra={"queue_url": queue_url, "port": settings.port, "served_by": settings.served_by}
    )
    try:
        worker.run()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
