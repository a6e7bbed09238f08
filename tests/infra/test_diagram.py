"""The architecture pictures are drawn from the synthesized sandbox app: every stack's main resources
are nodes of the graph and stand in the overview's bundles, the connections that make the system
loosely coupled are edges, each flow picture shows its path, and all of them render with the AWS
icons the `diagrams` wheel ships (no download) on the machine's Graphviz."""

from __future__ import annotations

import importlib
import os

import pytest

from scripts.diagram import ICONS, MAIN_TYPES, Assembly, build_graph, is_cdk_internal, pictures
from scripts.diagram_views import FLOWS, flow_graph, overview

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


def test_the_overview_bundles_every_main_resource_per_stack_and_type(assembly, graph):
    bundled, members = overview(graph)
    main = {
        ref.key
        for ref, resource in assembly.resources()
        if resource["Type"] in MUST_DRAW and not is_cdk_internal(ref, resource)
    }
    covered = [key for keys in members.values() for key in keys]
    assert sorted(covered) == sorted(graph.nodes)  # each node in exactly one bundle
    assert main <= set(covered)
    for bundle, keys in members.items():
        assert len({(graph.nodes[k].stack, graph.nodes[k].resource_type) for k in keys}) == 1, bundle
        assert bundled.nodes[bundle].count == sum(graph.nodes[k].count for k in keys)
    assert len(bundled.nodes) < len(graph.nodes) / 1.5
    assert len(bundled.edges) < len(graph.edges) / 2


def test_edges_to_the_shared_tables_are_bundled_into_one_per_stack(sandbox, graph):
    bundled, members = overview(graph)
    data, processing = _artifact(sandbox, "data"), _artifact(sandbox, "processing")
    tables, functions = f"{data}.AWS::DynamoDB::Table", f"{processing}.AWS::Lambda::Function"
    into_tables = [(s, t) for s, t in graph.edges if t in members[tables] and s in members[functions]]
    assert len(into_tables) >= 6  # every consumer uses a shared table ...
    assert {"read", "write"} <= bundled.edges[(functions, tables)].labels  # ... one edge says it
    assert {t for s, t in bundled.edges if s == functions}.isdisjoint(members[functions])


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_each_flow_shows_its_path_and_only_edges_between_its_nodes(flow, graph):
    picked = flow_graph(graph, flow)
    for pick in flow.required:
        assert [n for n in picked.nodes.values() if pick.matches(n)], f"{flow.name}: nothing matches {pick}"
    assert picked.edges
    assert all(s in picked.nodes and t in picked.nodes for s, t in picked.edges)
    for source, target in picked.edges:
        assert not any(a.matches(graph.nodes[source]) and b.matches(graph.nodes[target]) for a, b in flow.drop)
    assert len(picked.nodes) <= 25, "a flow that shows everything is the overview"


def test_the_fanout_flow_carries_every_filtered_subscription_and_consumer(sandbox, graph):
    [fanout] = [f for f in FLOWS if f.name == "fanout"]
    picked = flow_graph(graph, fanout)
    [topic] = _node_key(sandbox, "messaging", "AWS::SNS::Topic")
    filtered = [
        e for (s, _), e in picked.edges.items() if s == topic and any(x.startswith("filter: ") for x in e.labels)
    ]
    assert len(filtered) == len(sandbox.app.stacks["messaging"].fanout) + 1  # + the cancel window
    triggered = {t for (_, t), e in picked.edges.items() if "triggers" in e.labels}
    assert len(triggered) == len(filtered) + 1  # + the FIFO inventory ledger


def test_the_activity_flow_is_web_to_queue_to_consumer_to_express_machine_to_counters(graph):
    [activity] = [f for f in FLOWS if f.name == "activity"]
    picked = flow_graph(graph, activity)
    kinds = {
        (picked.nodes[a].resource_type.split("::")[1], picked.nodes[b].resource_type.split("::")[1]): e.labels
        for (a, b), e in picked.edges.items()
    }
    assert "send" in kinds[("AutoScaling", "SQS")]
    assert "start (sync)" in kinds[("Lambda", "StepFunctions")]
    assert "write" in kinds[("StepFunctions", "DynamoDB")]
    # The checkout picture and the fan-out picture leave the activity path out.
    for name in ("checkout", "fanout"):
        [flow] = [f for f in FLOWS if f.name == name]
        assert not [n for n in flow_graph(graph, flow).nodes.values() if n.label.startswith("Activity")], name


def test_every_icon_ships_inside_the_diagrams_wheel():
    for resource_type, (module, name) in ICONS.items():
        node_class = getattr(importlib.import_module(module), name)
        package = importlib.import_module("diagrams").__file__
        assert package is not None
        root = os.path.dirname(os.path.dirname(package))
        path = os.path.join(root, node_class._icon_dir, node_class._icon)
        assert os.path.isfile(path), f"{resource_type}: {path}"
    assert set(MAIN_TYPES) <= set(ICONS)


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


def _png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_renders_the_overview_and_one_picture_per_flow_at_a_readable_size(graph, tmp_path):
    written = pictures(graph, tmp_path, "test")
    assert [p.name for p in written] == ["overview.png", *(f"{flow.name}.png" for flow in FLOWS)]
    for path in written:
        width, height = _png_size(path)
        # README width is about 900 px: a flow at most about twice that, so its 17 pt names stay legible.
        # The overview sets 15 stacks side by side: the README links it at full size.
        limit = (4400, 3000) if path.name == "overview.png" else (2200, 2400)
        assert width <= limit[0] and height <= limit[1], f"{path.name}: {width}x{height}"


def test_the_picture_flow_shows_the_upload_notifying_the_queue_the_workers_consume(graph):
    [flow] = [f for f in FLOWS if f.name == "pictures"]
    picked = flow_graph(graph, flow)
    labels = {(graph.nodes[s].label, graph.nodes[t].label): e.labels for (s, t), e in picked.edges.items()}
    assert "notifies" in labels[("MediaBucket", "PictureJobsQueue")]
    assert "consume" in labels[("WorkersInstancesASG", "PictureJobsQueue")]
