"""The messaging stack's decoupling properties: DLQs, long polling, visibility, filters, FIFO, delay."""

from aws_cdk.assertions import Match

from contracts.events import EVENT_TYPE_ATTRIBUTE, MESSAGE_ATTRIBUTES, SUBSCRIPTIONS
from stacks.constructs.queue_with_dlq import QueueWithDlq
from stacks.messaging_stack import CANCEL_WINDOW_RECEIVES, CONSUMER_TIMEOUT


def _queues(template):
    return template.find_resources("AWS::SQS::Queue")


def test_every_work_queue_has_a_dlq_long_polling_and_6x_visibility(sandbox):
    queues = _queues(sandbox.template("messaging"))
    work = {k: v for k, v in queues.items() if "RedrivePolicy" in v["Properties"]}
    dlqs = {k for k in queues if k not in work}
    assert (
        len(work) == 9
    )  # 3 fan-out + FIFO + delay + SNS delivery failures + partner inbound + delivery updates + activity
    assert len(dlqs) == len(work)
    for logical_id, queue in work.items():
        props = queue["Properties"]
        # 3 receives, except the cancel window's 8: its finaliser retries with backoff (not-yet-recorded orders).
        expected = CANCEL_WINDOW_RECEIVES if logical_id.startswith("OrderCancelWindowQueue") else 3
        assert props["RedrivePolicy"]["maxReceiveCount"] == expected, logical_id
        assert props["ReceiveMessageWaitTimeSeconds"] == 20, logical_id
        assert props["VisibilityTimeout"] == CONSUMER_TIMEOUT.to_seconds() * QueueWithDlq.VISIBILITY_FACTOR
        assert props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] in dlqs
        assert props["SqsManagedSseEnabled"] is True


def test_subscriptions_filter_on_the_contracts_event_types(sandbox):
    """Generated from contracts.events.SUBSCRIPTIONS: one subscription per subscriber, each filtering on
    the attribute every publisher sets, for exactly the event types the table gives it."""
    subs = sandbox.template("messaging").find_resources("AWS::SNS::Subscription")
    policies = sorted(sorted(s["Properties"]["FilterPolicy"][EVENT_TYPE_ATTRIBUTE]) for s in subs.values())
    assert policies == sorted(sorted(v) for v in SUBSCRIPTIONS.values())
    assert EVENT_TYPE_ATTRIBUTE in MESSAGE_ATTRIBUTES
    for sub in subs.values():
        assert sub["Properties"]["Protocol"] == "sqs"
        assert sub["Properties"]["RawMessageDelivery"] is True
        assert "RedrivePolicy" in sub["Properties"]  # failed SNS deliveries are kept, not dropped


def test_fifo_queue_and_its_dlq_are_fifo(sandbox):
    template = sandbox.template("messaging")
    fifo = template.find_resources("AWS::SQS::Queue", {"Properties": {"FifoQueue": True}})
    assert len(fifo) == 2
    work = [q for q in fifo.values() if "RedrivePolicy" in q["Properties"]]
    assert len(work) == 1 and work[0]["Properties"]["ContentBasedDeduplication"] is True


def test_delay_queue_holds_orders_for_the_cancel_grace_period(sandbox):
    template = sandbox.template("messaging")
    grace = sandbox.app.config.cancel_grace_seconds
    template.has_resource_properties("AWS::SQS::Queue", {"DelaySeconds": grace, "RedrivePolicy": Match.any_value()})


def test_the_cancel_window_starts_from_the_topic_not_from_a_second_send(sandbox):
    """No dual write: the delay queue is subscribed to OrderPlaced (raw), and no producer may send to it."""
    messaging = sandbox.app.stacks["messaging"]
    template = sandbox.template("messaging")
    delay_queue = messaging.get_logical_id(messaging.cancel_delay_queue.queue.node.default_child)
    (subscription,) = [
        s["Properties"]
        for s in template.find_resources("AWS::SNS::Subscription").values()
        if s["Properties"]["Endpoint"] == {"Fn::GetAtt": [delay_queue, "Arn"]}
    ]
    assert subscription["FilterPolicy"] == {EVENT_TYPE_ATTRIBUTE: ["OrderPlaced"]}
    assert subscription["RawMessageDelivery"] is True
    for key in ("api", "backend"):
        for policy in sandbox.template(key).find_resources("AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                assert "OrderCancelWindowQueue" not in str(statement["Resource"]), (key, statement)


def test_topic_is_encrypted_with_a_rotating_key_and_ssl_only(sandbox):
    template = sandbox.template("messaging")
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )


def _partner_queue(synthesized) -> tuple[str, dict]:
    """Logical id and resource of the partner inbound work queue (not its DLQ)."""
    queues = synthesized.template("messaging").find_resources("AWS::SQS::Queue")
    (found,) = [
        (key, q)
        for key, q in queues.items()
        if key.startswith("PartnerInboundQueue") and "RedrivePolicy" in q["Properties"]
    ]
    return found


def _partner_queue_policy(synthesized) -> list[dict]:
    """The statements of the partner inbound queue's policy."""
    logical_id, _ = _partner_queue(synthesized)
    template = synthesized.template("messaging")
    policies = [
        p
        for p in template.find_resources("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": logical_id}]
    ]
    assert len(policies) == 1
    return policies[0]["Properties"]["PolicyDocument"]["Statement"]


def test_the_partner_queue_has_a_dlq_and_no_other_account_may_use_it_by_default(sandbox):
    assert sandbox.app.config.partner_account_ids == []
    assert "deadLetterTargetArn" in _partner_queue(sandbox)[1]["Properties"]["RedrivePolicy"]
    statements = _partner_queue_policy(sandbox)
    # Only the construct's TLS-only guard: no Allow for anyone.
    assert [s["Effect"] for s in statements] == ["Deny"]
    assert statements[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_partner_accounts_may_only_send_and_only_over_tls(sandbox_with_extras):
    statements = _partner_queue_policy(sandbox_with_extras)
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allows) == 1
    allow = allows[0]
    principals = allow["Principal"]["AWS"]  # arn:<partition>:iam::<account>:root, one per account
    assert len(principals) == 2
    assert [next(a for a in ("111111111111", "222222222222") if a in str(p)) for p in principals] == [
        "111111111111",
        "222222222222",
    ]
    assert allow["Action"] == "sqs:SendMessage"  # not receive, delete or any queue attribute
    assert allow["Condition"] == {"Bool": {"aws:SecureTransport": "true"}}
    assert allow["Resource"] == {"Fn::GetAtt": [_partner_queue(sandbox_with_extras)[0], "Arn"]}
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert [d["Condition"] for d in denies] == [{"Bool": {"aws:SecureTransport": "false"}}]
    # The other queues stay unshared.
    partner = [{"Ref": _partner_queue(sandbox_with_extras)[0]}]
    for policy in sandbox_with_extras.template("messaging").find_resources("AWS::SQS::QueuePolicy").values():
        if policy["Properties"]["Queues"] != partner:
            assert "111111111111" not in str(policy), policy["Properties"]["Queues"]
