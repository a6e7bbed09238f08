"""The pictures drawn from one architecture graph (scripts/diagram.py): an overview that bundles
nodes and edges, and one picture per flow. Pure functions from graph to graph: what each picture
shows is testable without rendering anything.

- **overview**: one node per (stack, resource type), counting what it stands for ("6 Lambda
  functions"); the edges between them are bundled, so the twelve functions that use the orders table
  are one edge from their stack's bundle to the Data stack's tables, not twelve lines across the page.
- **flows**: the resources one path through the system touches, with every edge between them. A flow
  is a list of `Pick`s (stack, resource type, label pattern) matched against the graph, so a flow
  follows the synthesized app: a new consumer of the fan-out queues appears in the fan-out picture.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from scripts.diagram import ArchitectureGraph, Edge, Node

# Plural captions of the bundled overview nodes.
PLURAL = {
    "AWS::Lambda::Function": "Lambda functions",
    "AWS::SQS::Queue": "SQS queues",
    "AWS::DynamoDB::Table": "DynamoDB tables",
    "AWS::S3::Bucket": "S3 buckets",
    "AWS::SNS::Topic": "SNS topics",
}


@dataclass(frozen=True)
class Pick:
    """Nodes of `stack` (artifact id; "" for the Internet node) of `resource_type` whose label matches
    `label` (a regular expression, fully matched); `None` matches any."""

    stack: str | None = None
    resource_type: str | None = None
    label: str | None = None

    def matches(self, node: Node) -> bool:
        return (
            (self.stack is None or node.stack == self.stack)
            and (self.resource_type is None or node.resource_type == self.resource_type)
            and (self.label is None or re.fullmatch(self.label, node.label) is not None)
        )


@dataclass(frozen=True)
class Flow:
    name: str  # file name: docs/diagrams/<name>.png
    title: str
    picks: tuple[Pick, ...]
    direction: str = "LR"
    # Picks that must each match at least one node: the flow's reason to exist (tests check them).
    required: tuple[Pick, ...] = field(default=())
    # Edges left out (from a node of the first pick to one of the second): what another picture tells.
    drop: tuple[tuple[Pick, Pick], ...] = field(default=())


LAMBDA, QUEUE, TABLE, BUCKET, TOPIC = (
    "AWS::Lambda::Function",
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::SNS::Topic",
)
ALB, ASG = "AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::AutoScaling::AutoScalingGroup"
CACHE, API, MACHINE = (
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::ApiGateway::RestApi",
    "AWS::StepFunctions::StateMachine",
)
ACL, RULE = "AWS::WAFv2::WebACL", "AWS::Events::Rule"
ORDERS_TABLE = Pick("Data", TABLE, "OrdersTable")
IDEMPOTENCY_TABLE = Pick("Data", TABLE, "IdempotencyTable")
ORDER_EVENTS = Pick("Messaging", TOPIC, "OrderEventsTopic")
# The session store: the cache (sessionStore: redis) or the table (dynamodb).
SESSION_STORE = (Pick("Sessions", CACHE), Pick("Sessions", TABLE))
# The order events' queues and consumers: the partners' queues are fed by partners, not by the topic,
# and the storefront activity path (its own picture) is not part of the order fan-out or the checkout.
FANOUT_QUEUES = Pick("Messaging", QUEUE, "(?!DeliveryUpdates|PartnerInbound|Activity).*")
FANOUT_CONSUMERS = Pick("Processing", LAMBDA, "(?!DeliveryUpdates|Activity).*Consumer")
CHECKOUT_MACHINE = Pick("Workflow", MACHINE, "Checkout")
ACTIVITY_MACHINE = Pick("Workflow", MACHINE, "ActivityCounters.*")
ACTIVITY_CONSUMER = Pick("Processing", LAMBDA, "ActivityConsumer")

FLOWS: tuple[Flow, ...] = (
    Flow(
        "storefront",
        "Storefront request path: browser -> WAF -> web tier (sessions) -> backend tier -> events; API clients alike",
        (
            Pick("", label="Internet"),
            Pick("Edge", ACL),
            Pick("Web", ALB),
            Pick("Web", ASG),
            *SESSION_STORE,
            Pick("Backend", ALB),
            Pick("Backend", ASG),
            Pick("Api", API),
            Pick("Api", LAMBDA, "OrdersApi"),
            ORDER_EVENTS,
            ORDERS_TABLE,
            IDEMPOTENCY_TABLE,
            Pick("Data", BUCKET, "AssetsBucket"),
        ),
        required=(Pick("Web", ALB), Pick("Web", ASG), Pick("Backend", ASG), ORDER_EVENTS),
    ),
    Flow(
        "fanout",
        "Order fan-out: one OrderPlaced, filtered subscriptions, a queue and DLQ per consumer",
        (
            Pick("Backend", ASG),
            Pick("Api", LAMBDA, "OrdersApi"),
            Pick("Workflow", LAMBDA, "ShipOrder.*"),
            ORDER_EVENTS,
            FANOUT_QUEUES,
            FANOUT_CONSUMERS,
            ORDERS_TABLE,
            IDEMPOTENCY_TABLE,
        ),
        required=(ORDER_EVENTS, FANOUT_QUEUES, FANOUT_CONSUMERS),
        # The producers' own reads and writes are the request path's and the saga's story.
        drop=tuple((Pick(stack), Pick("Data")) for stack in ("Backend", "Api", "Workflow")),
    ),
    Flow(
        "checkout",
        "Checkout saga: Step Functions tasks with retries, compensation and a human approval",
        (
            Pick("Api", API),
            Pick("Api", LAMBDA, "OrdersApi|ApprovalsApi"),
            CHECKOUT_MACHINE,
            Pick("Workflow", LAMBDA),
            Pick("Messaging", QUEUE, "InventoryEventsQueue"),
            ORDER_EVENTS,
            ORDERS_TABLE,
            Pick("Data", TABLE, "InventoryTable"),
        ),
        required=(CHECKOUT_MACHINE, Pick("Workflow", LAMBDA)),
        drop=((Pick("Api"), Pick("Data")),),  # the API's own records: the request path's story
    ),
    Flow(
        "activity",
        "Storefront activity: web tier -> activity queue -> one synchronous Express execution per batch -> counters",
        (
            Pick("Web", ASG),
            Pick("Messaging", QUEUE, "ActivityQueue.*"),
            ACTIVITY_CONSUMER,
            ACTIVITY_MACHINE,
            ORDERS_TABLE,
        ),
        required=(Pick("Messaging", QUEUE, "ActivityQueue.*"), ACTIVITY_CONSUMER, ACTIVITY_MACHINE, ORDERS_TABLE),
        drop=((Pick("Web"), Pick("Data")),),
    ),
    Flow(
        "handoff",
        "S3 hand-off: producers only put under incoming/, a schedule runs the one consumer",
        (
            Pick("Backend", ASG),
            Pick("Data", BUCKET, "HandoffBucket"),
            Pick("Processing", RULE),
            Pick("Processing", LAMBDA, "HandoffIngest"),
            Pick("Processing", QUEUE),
            ORDERS_TABLE,
        ),
        required=(Pick("Data", BUCKET, "HandoffBucket"), Pick("Processing", LAMBDA, "HandoffIngest")),
        drop=((Pick("Backend"), Pick("Data", TABLE)),),  # the backend's order reads: the request path's
    ),
)


PICTURE_JOBS = Pick("Data", QUEUE, "PictureJobs.*")
FLOWS = (
    *FLOWS,
    Flow(
        "pictures",
        "Picture pipeline: an upload notifies a queue, a worker fleet scaled on its backlog renders the sizes",
        (
            Pick("Data", BUCKET, "MediaBucket"),
            PICTURE_JOBS,
            Pick("Media", ASG),
            Pick("Data", BUCKET, "AssetsBucket"),
        ),
        required=(Pick("Data", BUCKET, "MediaBucket"), PICTURE_JOBS, Pick("Media", ASG)),
        direction="TB",
    ),
)


def flow_graph(graph: ArchitectureGraph, flow: Flow) -> ArchitectureGraph:
    """The nodes `flow` picks and every edge of `graph` between two of them."""
    keys = {key for key, node in graph.nodes.items() if any(p.matches(node) for p in flow.picks)}
    picked = ArchitectureGraph(stacks=dict(graph.stacks), nodes={k: graph.nodes[k] for k in keys})
    for (source, target), edge in graph.edges.items():
        if any(a.matches(graph.nodes[source]) and b.matches(graph.nodes[target]) for a, b in flow.drop):
            continue
        if source in keys and target in keys:
            picked.edges[(source, target)] = Edge(source, target, set(edge.labels), edge.dashed)
    return picked


def _bundle_label(label: str) -> str:
    """Edge labels that say the same thing for each member say it once for the bundle."""
    if label.startswith("filter: "):
        return "filtered"
    if re.fullmatch(r"after \d+ receives", label):
        return "DLQ"
    return label


def overview(graph: ArchitectureGraph) -> tuple[ArchitectureGraph, dict[str, set[str]]]:
    """One node per (stack, resource type) and one edge per pair of bundles that any member edge
    joins (labels merged); with `members`: bundle key -> the graph's node keys it stands for."""
    members: dict[str, set[str]] = defaultdict(set)
    bundle_of: dict[str, str] = {}
    for key, node in graph.nodes.items():
        bundle = key if node.stack == "" else f"{node.stack}.{node.resource_type}"
        members[bundle].add(key)
        bundle_of[key] = bundle
    bundled = ArchitectureGraph(stacks=dict(graph.stacks))
    for bundle, keys in members.items():
        nodes = sorted((graph.nodes[k] for k in keys), key=lambda n: n.label)
        first = nodes[0]
        count = sum(n.count for n in nodes)
        if len(nodes) == 1:
            label = first.label if first.count == 1 else f"{first.count} {first.label}"
        else:
            label = f"{count} {PLURAL.get(first.resource_type, first.caption)}"
        bundled.nodes[bundle] = Node(
            bundle, first.stack, label, first.caption, first.resource_type, first.shape, first.colour, count
        )
    for (source, target), edge in graph.edges.items():
        a, b = bundle_of[source], bundle_of[target]
        if a == b:
            continue  # inside one bundle (a queue and its DLQ): the bundle's caption says it
        merged = bundled.edges.setdefault((a, b), Edge(a, b))
        merged.labels |= {_bundle_label(label) for label in edge.labels}
        merged.dashed = merged.dashed or edge.dashed
    return bundled, dict(members)
