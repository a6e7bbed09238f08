"""activity.handlers.consumer: one counting execution per batch, each record settled by its event's
outcome. moto has no StartSyncExecution, so the machine is this test's stand-in for the repository
(`activity.repository.CountingMachine`, the one class that calls Step Functions) with the Express
machine's semantics: an event id is counted once, a repeat is `duplicate`."""

from __future__ import annotations

from typing import Any

from tests.unit.lambdas.activity.test_service import event, record


class CountsOnce:
    """What the Express machine does with an execution input (stacks/constructs/activity_counters.py)."""

    def __init__(self, fail: set[str] | None = None, status: str = "SUCCEEDED") -> None:
        self.counters: dict[tuple[str, str], int] = {}
        self.markers: set[str] = set()
        self.fail, self.status, self.executions = fail or set(), status, 0

    def count(self, machine_input: dict[str, Any]) -> tuple[str, Any]:
        self.executions += 1
        if self.status != "SUCCEEDED":
            return self.status, {"error": "States.Timeout", "cause": "execution timed out"}
        results = []
        for entry in machine_input["events"]:
            event_id = entry["event_id"]
            if event_id in self.fail:
                results.append({"event_id": event_id, "outcome": "failed"})
            elif entry["marker"]["pk"] in self.markers:
                results.append({"event_id": event_id, "outcome": "duplicate"})
            else:
                self.markers.add(entry["marker"]["pk"])
                key = (entry["counter"]["pk"], entry["counter"]["sk"])
                self.counters[key] = self.counters.get(key, 0) + 1
                results.append({"event_id": event_id, "outcome": "counted"})
        return "SUCCEEDED", {"events": results}


def consumer_with(load_handler, monkeypatch, machine: CountsOnce):
    module = load_handler("activity.handlers.consumer")
    monkeypatch.setattr(module, "machine", machine)
    return module


def test_a_batch_is_one_execution_and_only_the_poison_record_fails(aws, load_handler, monkeypatch, lambda_context):
    machine = CountsOnce()
    consumer = consumer_with(load_handler, monkeypatch, machine)
    records = [record(event(sku="SKU-TEA-001")) for _ in range(4)] + [record("{not json", "poison")]
    records.append(record(event("SearchPerformed", query="green tea")))

    answer = consumer.lambda_handler({"Records": records}, lambda_context)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    assert machine.executions == 1
    assert machine.counters == {
        ("ACTIVITY#PRODUCT#SKU-TEA-001", "ProductViewed"): 4,
        ("ACTIVITY#SEARCH#green tea", "SearchPerformed"): 1,
    }


def test_a_redelivered_batch_counts_nothing_twice_and_passes(aws, load_handler, monkeypatch, lambda_context):
    machine = CountsOnce()
    consumer = consumer_with(load_handler, monkeypatch, machine)
    batch = {"Records": [record(event("CartItemAdded", sku="SKU-MUG-002")) for _ in range(3)]}

    assert consumer.lambda_handler(batch, lambda_context) == {"batchItemFailures": []}
    assert consumer.lambda_handler(batch, lambda_context) == {"batchItemFailures": []}  # SQS delivered it again
    assert machine.counters == {("ACTIVITY#PRODUCT#SKU-MUG-002", "CartItemAdded"): 3}


def test_an_uncounted_event_goes_back_to_the_queue_alone(aws, load_handler, monkeypatch, lambda_context):
    stuck = event()
    machine = CountsOnce(fail={stuck["event_id"]})
    consumer = consumer_with(load_handler, monkeypatch, machine)
    batch = {"Records": [record(event(), "ok-1"), record(stuck, "stuck"), record(event(), "ok-2")]}

    assert consumer.lambda_handler(batch, lambda_context) == {"batchItemFailures": [{"itemIdentifier": "stuck"}]}


def test_a_failed_execution_sends_every_record_back(aws, load_handler, monkeypatch, lambda_context):
    consumer = consumer_with(load_handler, monkeypatch, CountsOnce(status="TIMED_OUT"))
    batch = {"Records": [record(event(), "a"), record(event(), "b")]}

    answer = consumer.lambda_handler(batch, lambda_context)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}


def test_a_batch_of_poison_only_starts_no_execution(aws, load_handler, monkeypatch, lambda_context):
    machine = CountsOnce()
    consumer = consumer_with(load_handler, monkeypatch, machine)

    answer = consumer.lambda_handler({"Records": [record("[]", "p1"), record("{}", "p2")]}, lambda_context)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "p1"}, {"itemIdentifier": "p2"}]}
    assert machine.executions == 0
