"""A queue feeds an EC2 fleet, scaled on its backlog: 40 staff uploads to the media bucket's uploads/
raise S3 event notifications into the picture-jobs queue; the worker Auto Scaling group (real
`python -m services.pictures` processes, launched by the local cloud's Auto Scaling from the launch
template's user data) scales out on visible messages per in-service instance, renders every size
into the assets bucket, and scales back in once the queue is empty. Every picture is rendered
exactly once (each rendition has one version in the versioned assets bucket); a corrupt upload ends
in the DLQ and harms none of the others.

Nothing here calls a worker: the test acts as the staff (PutObject) and observes through the
emulator's APIs (Auto Scaling, SQS, S3), as an operator would.
"""

from __future__ import annotations

import io
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_plus

import pytest
from PIL import Image

from contracts.pictures import RENDITIONS, UPLOADS_PREFIX, rendition_key
from localcloud.storefront import wait_for
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

UPLOADS = 40  # one of them corrupt
SETTLE_SECONDS = 300  # an earlier run's fleet back at rest (15 low datapoints + cooldown)
RENDER_LIMIT_SECONDS = 300
SCALE_IN_LIMIT_SECONDS = 300


def photo(seed: int, width: int = 4000, height: int = 3000) -> bytes:
    """A camera-sized picture with real detail (noise), so that rendering it takes real work."""
    random.seed(seed)
    noise = Image.effect_noise((width // 4, height // 4), 40 + seed % 20).convert("RGB").resize((width, height))
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=90)
    return out.getvalue()


class Fleet:
    def __init__(self, store: Harness) -> None:
        self.store = store
        self.autoscaling = store.settings.client("autoscaling")
        self.name = store.deployed.physical_id("Media/Workers/Instances/ASG")
        self.queue = store.deployed.physical_id("Data/PictureJobs/Queue")
        self.dlq = store.deployed.physical_id("Data/PictureJobs/Dlq")
        self.media = store.deployed.physical_id("Data/MediaBucket")
        self.assets = store.deployed.physical_id("Data/AssetsBucket")

    def group(self) -> dict:
        return self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.name])["AutoScalingGroups"][0]

    def in_service(self) -> int:
        return sum(1 for i in self.group().get("Instances", []) if i["LifecycleState"] == "InService")

    def at_rest(self) -> bool:
        group = self.group()
        return (
            self.store.depth(self.queue) == 0
            and group["DesiredCapacity"] <= max(group["MinSize"], 1)
            and self.in_service() == group["DesiredCapacity"]
        )

    def versions(self, key: str) -> int:
        answer = self.store.s3.list_object_versions(Bucket=self.assets, Prefix=key)
        return sum(1 for v in answer.get("Versions", []) if v["Key"] == key)

    def rendered(self, prefix: str) -> set[str]:
        keys: set[str] = set()
        for page in self.store.s3.get_paginator("list_objects_v2").paginate(Bucket=self.assets, Prefix=prefix):
            keys |= {o["Key"] for o in page.get("Contents", [])}
        return keys


def test_40_uploads_scale_the_workers_out_and_back_in_each_rendered_once_and_a_corrupt_one_dead_lettered(
    store: Harness,
):
    fleet = Fleet(store)
    wait_for(fleet.at_rest, SETTLE_SECONDS, "the picture workers at rest with an empty queue", interval=2)
    group = fleet.group()
    minimum, maximum, resting = group["MinSize"], group["MaxSize"], group["DesiredCapacity"]
    assert resting < maximum
    dead_before = store.depth(fleet.dlq)

    run = f"e2e-{uuid.uuid4().hex[:8]}"
    keys = [f"{UPLOADS_PREFIX}{run}/picture-{n:02d}.jpg" for n in range(UPLOADS)]
    corrupt = keys[17]
    bodies = {key: photo(n) for n, key in enumerate(keys)}
    bodies[corrupt] = bodies[corrupt][: len(bodies[corrupt]) // 3]  # a broken upload: cut short
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: store.s3.put_object(Bucket=fleet.media, Key=key, Body=bodies[key]), keys))
    uploaded = time.monotonic() - started

    good = [k for k in keys if k != corrupt]
    expected = {rendition_key(k, size) for k in good for size in RENDITIONS}
    prefix = f"pictures/{run}/"
    most_in_service, most_desired, scaled_out_at = 0, resting, None
    deadline = time.monotonic() + RENDER_LIMIT_SECONDS
    while time.monotonic() < deadline:
        desired = fleet.group()["DesiredCapacity"]
        most_desired = max(most_desired, desired)
        most_in_service = max(most_in_service, fleet.in_service())
        if desired > resting and scaled_out_at is None:
            scaled_out_at = time.monotonic() - started
        done = fleet.rendered(prefix) >= expected
        if done and store.depth(fleet.queue) == 0 and store.depth(fleet.dlq) > dead_before:
            break
        time.sleep(1)
    rendered_in = time.monotonic() - started

    assert fleet.rendered(prefix) == expected, "every good upload in every size, and nothing of the corrupt one"
    assert scaled_out_at is not None, f"the fleet stayed at {resting} with {UPLOADS} jobs waiting"
    # How far out depends on how fast the first workers drain the backlog before the next evaluation:
    # beyond the resting size, never beyond the maximum.
    assert resting < most_desired <= maximum and most_in_service > max(resting, 1)
    # Exactly once: the assets bucket is versioned, so a second render would be a second version.
    twice = [key for key in sorted(expected) if fleet.versions(key) != 1]
    assert twice == []
    # The corrupt upload, and only it, is in the DLQ (after its receives ran out); the queue is empty.
    assert store.depth(fleet.queue) == 0
    assert store.depth(fleet.dlq) == dead_before + 1
    peeked = store.sqs.receive_message(QueueUrl=fleet.dlq, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert any(corrupt in unquote_plus(m["Body"]) for m in peeked.get("Messages", [])) or dead_before >= 10

    idle_since = time.monotonic()
    wait_for(
        lambda: fleet.group()["DesiredCapacity"] <= max(minimum, 1), SCALE_IN_LIMIT_SECONDS, "scale in", interval=2
    )
    scaled_in = time.monotonic() - idle_since
    wait_for(lambda: fleet.in_service() == fleet.group()["DesiredCapacity"], 60, "terminations", interval=1)
    print(
        f"pictures: {UPLOADS} uploads in {uploaded:.1f}s; scale out {resting} -> {most_desired} after "
        f"{scaled_out_at:.0f}s (at most {most_in_service} in service); {len(expected)} renditions of "
        f"{len(good)} pictures in {rendered_in:.0f}s, each written once; 1 corrupt upload in the DLQ; "
        f"back to {fleet.group()['DesiredCapacity']} after {scaled_in:.0f}s idle"
    )
