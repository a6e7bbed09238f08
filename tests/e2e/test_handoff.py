"""S3 hand-off (seed 003, design flow 6): a producer drops JSON objects under `incoming/` in the
hand-off bucket; the consumer (`handoff_ingest`), started by its EventBridge schedule and by nothing
else, ingests each valid object into DynamoDB (`HANDOFF#<key>` / `INGESTED`) and then deletes it. An
object it cannot ingest stays where it is, logged, and is not ingested: nothing is lost silently.
Producer and consumer never call each other: the producer (this test) only calls s3:PutObject.

MiniStack runs scheduled rules itself: a background thread sweeps the enabled rules every 10 s and
fires a `rate(1 minute)` rule once 60 s have passed since its last run, invoking the rule's Lambda
target asynchronously with a "Scheduled Event". So the test only writes the objects and waits for the
next scheduled run (at most ~70 s; bounded at TIMEOUT). It never invokes the function. The schedule
is fixed (HANDOFF_SCHEDULE in stacks/processing_stack.py), not a stage setting.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime
from decimal import Decimal

import pytest

from localcloud.storefront import wait_for
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

VALID = 10  # hand-off objects in the format HandoffDocument expects
RECORDS = 50  # records per object
TIMEOUT = 150  # one schedule period (60 s) + the emulator's 10 s tick + the run, with room to spare
SCHEDULE = "rate(1 minute)"
INGEST_LOG = "Processing/HandoffIngest/LogGroup"
COUNTS = ("listed", "ingested", "already_ingested", "rejected", "deferred")  # IngestReport.counts()
REPORT = re.compile(r"^REPORT RequestId: (\S+)\s+Duration: ([\d.]+) ms")


def _document(run: str, n: int) -> bytes:
    """A producer's sales report: a JSON list of records (numbers with decimals, strings, booleans)."""
    return json.dumps(
        [
            {
                "report": f"{run}-{n}",
                "line": i,
                "sku": f"SKU-HANDOFF-{i % 7}",
                "units": 1 + i % 5,
                "revenue": round((1 + i % 5) * 4.35, 2),
                "region": ("eu-west", "us-east")[i % 2],
                "promo": i % 3 == 0,
            }
            for i in range(RECORDS)
        ]
    ).encode()


def _keys(cloud: Harness, bucket: str, prefix: str) -> set[str]:
    return {
        entry["Key"]
        for page in cloud.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for entry in page.get("Contents", [])
    }


def _runs(events: list[dict]) -> dict[str, dict]:
    """The consumer's runs in the log, by request id: counts, objects left in place, duration, end."""
    runs: dict[str, dict] = {}
    for event in events:
        message = event["message"]
        if report := REPORT.match(message):
            run = runs.setdefault(report[1], {"left_in_place": []})
            run["duration_ms"] = float(report[2])
            run["ended"] = event["timestamp"] / 1000
            continue
        try:
            line = json.loads(message)
        except ValueError:
            continue
        if not isinstance(line, dict) or "function_request_id" not in line:
            continue
        run = runs.setdefault(line["function_request_id"], {"left_in_place": []})
        if line.get("message") == "hand-off run finished":
            run.update({name: line[name] for name in COUNTS}, cold_start=line.get("cold_start", False))
        elif line.get("message") == "hand-off object left in place":
            run["left_in_place"].append((line["key"], line["reason"]))
    return runs


@pytest.fixture(scope="module")
def handoff(cloud: Harness):
    """Produce VALID objects and one invalid object, wait for the scheduled run that takes them."""
    bucket = cloud.handoff_bucket()
    run = uuid.uuid4().hex[:12]
    prefix = f"incoming/e2e-{run}/"
    bodies = {f"{prefix}sales-{n:02d}.json": _document(run, n) for n in range(VALID)}
    # A producer that wrapped its list in an object: JSON, but not a hand-off document.
    invalid_key = f"{prefix}wrapped-in-an-object.json"
    invalid_body = json.dumps({"records": json.loads(_document(run, VALID))}).encode()

    def settled() -> dict | None:
        """Every valid object gone from incoming/ and a run after the puts has left the invalid one in place."""
        if _keys(cloud, bucket, prefix) & bodies.keys():
            return None
        runs = _runs(cloud.log_events(INGEST_LOG, wall_start))
        seen = any(key == invalid_key for r in runs.values() for key, _ in r["left_in_place"])
        return runs if seen else None

    wall_start = time.time()
    started = time.monotonic()
    try:
        etags = {
            key: cloud.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")["ETag"]
            for key, body in bodies.items()
        }
        cloud.s3.put_object(Bucket=bucket, Key=invalid_key, Body=invalid_body, ContentType="application/json")
        produced = time.monotonic() - started
        wall_produced = time.time()
        runs = wait_for(settled, TIMEOUT, f"the scheduled hand-off run to ingest {VALID} objects", interval=0.5)
        consumed = time.monotonic() - started
        yield {
            "bucket": bucket,
            "prefix": prefix,
            "bodies": bodies,
            "etags": etags,
            "invalid_key": invalid_key,
            "invalid_body": invalid_body,
            "runs": runs,
            "produced": produced,
            "consumed": consumed,
            "wall_start": wall_start,
            "wall_produced": wall_produced,
            "wall_settled": time.time(),
        }
    finally:
        for key in _keys(cloud, bucket, prefix):  # the invalid object (and anything a failure left)
            cloud.s3.delete_object(Bucket=bucket, Key=key)
        table = cloud.table("Orders")
        for key in [*bodies, invalid_key]:
            table.delete_item(Key={"pk": f"HANDOFF#{key}", "sk": "INGESTED"})


def test_only_the_schedule_invokes_the_consumer_and_a_write_triggers_nothing(cloud: Harness):
    bucket = cloud.handoff_bucket()
    function = cloud.deployed.physical_id("Processing/HandoffIngest/Function")
    rule = cloud.deployed.physical_id("Processing/HandoffSchedule")
    events = cloud.settings.client("events")

    # The producer's PutObject notifies nobody: no S3 event notification of any kind on the bucket.
    notifications = cloud.s3.get_bucket_notification_configuration(Bucket=bucket)
    notifications.pop("ResponseMetadata", None)
    assert not any(
        notifications.get(kind)
        for kind in (
            "LambdaFunctionConfigurations",
            "QueueConfigurations",
            "TopicConfigurations",
            "EventBridgeConfiguration",
        )
    )
    # The consumer polls no queue or stream ...
    assert cloud.lambda_.list_event_source_mappings(FunctionName=function)["EventSourceMappings"] == []
    # ... and only EventBridge, for this one rule, may invoke it.
    statements = json.loads(cloud.lambda_.get_policy(FunctionName=function)["Policy"])["Statement"]
    described = events.describe_rule(Name=rule)
    assert [(s["Principal"], s["Action"], s["Condition"]["ArnLike"]["AWS:SourceArn"]) for s in statements] == [
        ({"Service": "events.amazonaws.com"}, "lambda:InvokeFunction", described["Arn"])
    ]
    assert (described["ScheduleExpression"], described["State"]) == (SCHEDULE, "ENABLED")
    targets = events.list_targets_by_rule(Rule=rule)["Targets"]
    assert [t["Arn"].rsplit(":", 1)[-1] for t in targets] == [function]


def test_every_valid_object_is_ingested_exactly_as_written_and_deleted(cloud: Harness, handoff):
    table = cloud.table("Orders")
    for key, body in handoff["bodies"].items():
        item = table.get_item(Key={"pk": f"HANDOFF#{key}", "sk": "INGESTED"}, ConsistentRead=True).get("Item")
        assert item is not None, f"{key} not ingested"
        ingested_at = datetime.fromisoformat(item.pop("ingested_at")).timestamp()
        assert handoff["wall_start"] - 1 <= ingested_at <= handoff["wall_settled"] + 1
        assert item == {
            "pk": f"HANDOFF#{key}",
            "sk": "INGESTED",
            "etag": handoff["etags"][key].strip('"'),
            "record_count": RECORDS,
            "records": json.loads(body, parse_float=Decimal),
        }
    assert _keys(cloud, handoff["bucket"], handoff["prefix"]) == {handoff["invalid_key"]}
    # The runs since the puts ingested them all, once, and left none of them in place.
    runs = handoff["runs"].values()
    assert sum(r.get("ingested", 0) for r in runs) >= VALID
    assert not {key for r in runs for key, _ in r["left_in_place"]} & handoff["bodies"].keys()


def test_an_invalid_object_stays_in_place_logged_and_not_ingested(cloud: Harness, handoff):
    key = handoff["invalid_key"]
    stored = cloud.s3.get_object(Bucket=handoff["bucket"], Key=key)["Body"].read()
    assert stored == handoff["invalid_body"]  # untouched, not moved
    assert (
        cloud.table("Orders").get_item(Key={"pk": f"HANDOFF#{key}", "sk": "INGESTED"}, ConsistentRead=True).get("Item")
        is None
    )
    reasons = [reason for r in handoff["runs"].values() for k, reason in r["left_in_place"] if k == key]
    assert reasons and all("valid list" in reason for reason in reasons), reasons
    # What eventually removes it: the bucket's lifecycle rule on incoming/ (the consumer may not
    # delete what it could not ingest). Checked on the deployed template: MiniStack 1.5.33 creates the
    # bucket without its LifecycleConfiguration (GetBucketLifecycleConfiguration answers
    # NoSuchLifecycleConfiguration) and expires nothing, so locally the object stays until removed.
    rules = cloud.declared("Data/HandoffBucket")["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {"Prefix": "incoming/", "ExpirationInDays": 7, "Status": "Enabled"} in [dict(rule) for rule in rules]


def test_each_object_is_ingested_by_exactly_one_run_and_throughput_is_reported(cloud: Harness, handoff):
    """The counts are asserted; the timings are printed, not limited (the schedule dominates them)."""
    ingesting = [r for r in handoff["runs"].values() if r.get("ingested") and "duration_ms" in r]
    assert ingesting
    objects = sum(r["ingested"] for r in ingesting)
    assert objects == VALID  # every valid object once: none skipped, none ingested by two runs
    run_seconds = sum(r["duration_ms"] for r in ingesting) / 1000
    picked_up = min(r["ended"] for r in ingesting) - handoff["wall_produced"]
    ends = sorted(
        r["ended"] for r in _runs(cloud.log_events(INGEST_LOG, handoff["wall_start"] - 200)).values() if "ended" in r
    )
    gaps = [later - earlier for earlier, later in zip(ends, ends[1:], strict=False)]
    cadence = f"runs {sum(gaps) / len(gaps):.1f}s apart on average" if gaps else "the first run seen"
    cold = sum(bool(r.get("cold_start")) for r in ingesting)
    print(
        f"\nhand-off: {VALID} objects x {RECORDS} records + 1 invalid put in {handoff['produced']:.2f}s; "
        f"the scheduled run ({SCHEDULE}; {cadence}) ended {picked_up:.1f}s after the last put; "
        f"{len(ingesting)} run(s) ({cold} cold start) ingested {objects} objects in {run_seconds * 1000:.0f} ms "
        f"({objects / run_seconds:.0f} objects/s, {objects * RECORDS / run_seconds:.0f} records/s inside the "
        f"function); end to end {VALID} objects in {handoff['consumed']:.1f}s "
        f"({VALID / handoff['consumed']:.2f} objects/s, dominated by the wait for the schedule)"
    )
