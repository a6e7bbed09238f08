"""The architecture diagram is drawn from the synthesized sandbox app: every stack's main resources
are nodes, and the connections that make the system loosely coupled are edges."""

from __future__ import annotations

import pytest

from scripts.diagram import MAIN_TYPES, Assembly, build_graph, is_cdk_internal, to_dot

# What must be on the picture, per resource type (the reader's view of each tier).
MUST_DRAW = {
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::AutoScaling::AutoScalingGroup",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::StepFunctions::StateMachine",
    "AWS::ApiGateway::RestApi",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::Lambda::Function",
}


@pytest.fixture(scope="module")
def assembly(sandbox) -> Assembly:
    return Assembly(sandbox.outdir)


@pytest.fixture(scope="module")
def graph(sandbox):
    return build_graph(sandbox.outdir)


def _artifact(sandbox, key: str) -> str:
    return sandbox.app.stacks[key].artifact_id


def _node_key(sandbox, key: str, resource_type: str, predicate=lambda props: True) -> list[str]:
    artifact = _artifact(sandbox, key)
    return [
        f"{artifact}.{logical_id}"
        for logical_id, resource in sandbox.templates[key]["Resources"].items()
        if resource["Type"] == resource_type and predicate(resource.get("Properties", {}))
    ]


def test_every_main_resource_of_every_stack_is_a_node(assembly, graph):
    expected = {
        ref.key
        for ref, resource in assembly.resources()
        if resource["Type"] in MUST_DRAW and not is_cdk_internal(ref, resource)
    }
    assert expected, "the sandbox app has no main resources?"
    missing = sorted(expected - set(graph.nodes))
    assert missing == []
    assert set(MAIN_TYPES) >= MUST_DRAW


def test_plumbing_is_folded_away(graph):
    drawn = {node.resource_type for node in graph.nodes.values()}
    for noise in (
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::Logs::LogGroup",
        "AWS::Lambda::Permission",
        "AWS::CDK::Metadata",
        "AWS::Lambda::EventSourceMapping",
        "AWS::SNS::Subscription",
    ):
        assert noise not in drawn
    internal = [n.label for n in graph.nodes.values() if "CustomResourceProvider" in n.key]
    assert internal == []


def test_nodes_are_grouped_by_stack(sandbox, graph):
    artifacts = {stack.artifact_id for stack in sandbox.app.stacks.values()}
    assert {node.stack for node in graph.nodes.values()} - {""} <= artifacts
    dot = to_dot(graph)
    for artifact in {node.stack for node in graph.nodes.values() if node.stack}:
        assert f'label="{artifact}  (' in dot


def test_topic_fans_out_to_each_filtered_queue(sandbox, graph):
    [topic] = _node_key(sandbox, "messaging", "AWS::SNS::Topic")
    subscriptions = [
        r["Properties"]
        for r in sandbox.templates["messaging"]["Resources"].values()
        if r["Type"] == "AWS::SNS::Subscription"
    ]
    assert len(subscriptions) >= 3
    for pair in sandbox.app.stacks["messaging"].fanout.values():
        queue = f"{_artifact(sandbox, 'messaging')}.{sandbox.app.stacks['messaging'].get_logical_id(pair.queue.node.default_child)}"
        edge = graph.edges.get((topic, queue))
        assert edge is not None, f"no edge topic -> {queue}"
        assert any(label.startswith("filter: ") and "OrderPlaced" in label for label in edge.labels)


def test_each_queue_points_to_its_consumer_across_stacks(sandbox, graph):
    """The event source mapping lives in the processing stack, the queue in messaging: the edge
    only exists if the cross-stack reference (Fn::GetStackOutput / Fn::ImportValue) was resolved."""
    messaging, processing = sandbox.app.stacks["messaging"], sandbox.app.stacks["processing"]
    expected = {
        messaging.fanout["fulfilment"].queue: processing.consumers["fulfilment"],
        messaging.fanout["notification"].queue: processing.consumers["notification"],
        messaging.fanout["analytics"].queue: processing.consumers["analytics"],
        messaging.cancel_delay_queue.queue: processing.consumers["order_finaliser"],
        messaging.inventory_fifo.queue: processing.consumers["inventory_ledger"],
    }
    for queue, function in expected.items():
        source = f"{messaging.artifact_id}.{messaging.get_logical_id(queue.node.default_child)}"
        target = f"{processing.artifact_id}.{processing.get_logical_id(function.node.default_child)}"
        assert "triggers" in graph.edges[(source, target)].labels
        assert (target, source) not in graph.edges, "the consumer's own grant on its queue is folded into the trigger"


def test_dead_letter_queues_and_grants_are_edges(sandbox, graph):
    messaging = sandbox.app.stacks["messaging"]
    pair = messaging.fanout["fulfilment"]
    queue = f"{messaging.artifact_id}.{messaging.get_logical_id(pair.queue.node.default_child)}"
    dlq = f"{messaging.artifact_id}.{messaging.get_logical_id(pair.dlq.node.default_child)}"
    assert graph.edges[(queue, dlq)].dashed
    api = sandbox.app.stacks["api"]
    orders_api = f"{api.artifact_id}.{api.get_logical_id(api.orders_function.node.default_child)}"
    [topic] = _node_key(sandbox, "messaging", "AWS::SNS::Topic")
    assert "publish" in graph.edges[(orders_api, topic)].labels


def test_tiers_are_connected_through_load_balancers_and_security_groups(sandbox, graph):
    web, backend = sandbox.app.stacks["web"], sandbox.app.stacks["backend"]

    def key(stack, construct):
        return f"{stack.artifact_id}.{stack.get_logical_id(construct.node.default_child)}"

    web_alb, web_asg = key(web, web.load_balancer), key(web, web.auto_scaling_group)
    backend_alb, backend_asg = key(backend, backend.load_balancer), key(backend, backend.auto_scaling_group)
    assert "forwards" in graph.edges[(web_alb, web_asg)].labels
    assert "forwards" in graph.edges[(backend_alb, backend_asg)].labels
    assert (web_asg, backend_alb) in graph.edges, "web instances call the internal ALB"
    assert ("internet", web_alb) in graph.edges
    assert ("internet", backend_alb) not in graph.edges, "the backend ALB is internal"


def test_renders_svg_and_png(graph, tmp_path):
    from scripts.diagram import render

    svg, png = render(to_dot(graph, "test"), tmp_path)
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
