"""Draw the architecture from the synthesized app, so the picture cannot drift from the code.

Reads a cloud assembly (cdk.out: manifest.json + *.template.json), keeps the resources a reader
cares about (load balancers, Auto Scaling groups, queues, topics, tables, buckets, functions, ...),
folds the plumbing (IAM, log groups, permissions, listeners, launch templates, CDK internals) into
the edges it implies, groups nodes by stack (one stack = one tier) and draws them with the AWS icons
of the `diagrams` library on Graphviz `dot`: an overview and one picture per flow
(scripts/diagram_views.py), written to docs/diagrams/.

Edges come from what the templates say, across stacks too (Ref, Fn::GetAtt, Fn::ImportValue,
Fn::GetStackOutput): SNS subscriptions (with their filter), event source mappings, redrive
policies, IAM policy statements (principal -> resource, labelled with the verbs granted), API
methods, EventBridge targets, state-machine tasks, security-group rules between tiers, WAF
associations and alarm actions.

    python -m scripts.diagram                 # synthesizes the sandbox stage if needed
    python -m scripts.diagram --cdk-out DIR   # uses an existing cloud assembly
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DEFAULT_CDK_OUT = ROOT / ".build" / "diagram.cdk.out"
# Inputs of the synthesized app: a cloud assembly older than any of them is stale.
APP_INPUTS = ("app.py", "cdk.json", "contracts", "stacks", "lambdas", "services")

# Resource types drawn as nodes: (caption, Graphviz shape, fill colour).
MAIN_TYPES: dict[str, tuple[str, str, str]] = {
    "AWS::WAFv2::WebACL": ("WAF web ACL", "octagon", "#f4cccc"),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": ("Application Load Balancer", "box3d", "#d9d2e9"),
    "AWS::AutoScaling::AutoScalingGroup": ("EC2 Auto Scaling group", "box3d", "#fce5cd"),
    "AWS::ElastiCache::ReplicationGroup": ("ElastiCache Redis", "cylinder", "#f4cccc"),
    "AWS::ApiGateway::RestApi": ("API Gateway REST API", "component", "#d9d2e9"),
    "AWS::Lambda::Function": ("Lambda function", "box", "#fff2cc"),
    "AWS::StepFunctions::StateMachine": ("Step Functions state machine", "box", "#ead1dc"),
    "AWS::Events::Rule": ("EventBridge schedule", "cds", "#ead1dc"),
    "AWS::SNS::Topic": ("SNS topic", "hexagon", "#d0e0e3"),
    "AWS::SQS::Queue": ("SQS queue", "box", "#cfe2f3"),
    "AWS::DynamoDB::Table": ("DynamoDB table", "cylinder", "#d9ead3"),
    "AWS::S3::Bucket": ("S3 bucket", "folder", "#d9ead3"),
    "AWS::CloudWatch::Dashboard": ("CloudWatch dashboard", "note", "#eeeeee"),
    "AWS::EC2::VPC": ("VPC", "tab", "#eeeeee"),
}
# Drawn as one node per stack with a count: dozens of alarms would bury everything else.
AGGREGATED_TYPES = {"AWS::CloudWatch::Alarm": ("CloudWatch alarms", "note", "#eeeeee")}
# Resources that stand between a main resource and what uses it (role -> instance profile ->
# launch template -> ASG): walked through when looking for "who uses this".
PASS_THROUGH_TYPES = {
    "AWS::IAM::Role",
    "AWS::IAM::InstanceProfile",
    "AWS::EC2::LaunchTemplate",
    "AWS::AutoScaling::LaunchConfiguration",
}
# Types that act on other resources (their grants, rules and targets become edges from them). A
# dashboard refers to everything but uses nothing, so it is not one.
PRINCIPAL_TYPES = {
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::AutoScaling::AutoScalingGroup",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::ApiGateway::RestApi",
    "AWS::Lambda::Function",
    "AWS::StepFunctions::StateMachine",
    "AWS::Events::Rule",
}
# CDK's own helpers (custom-resource providers, auto-delete, log retention) are not the architecture;
# matched on the construct path or, when path metadata is off, on the logical id.
CDK_INTERNAL = re.compile(
    r"Custom::|CustomResourceProvider|AWS679f53fac002430cb0da5b7982bd2287|LogRetention|BucketNotificationsHandler"
    r"|CustomCDKBucketDeployment"
)
INTERNET = "internet"
# CDK appends an 8-character hash to logical ids.
LOGICAL_ID_HASH = re.compile(r"[0-9A-F]{8}$")
# Last path segments that say nothing alone: qualify them with their parent's name.
GENERIC_NAMES = {
    "Dlq",
    "Queue",
    "Function",
    "Resource",
    "Default",
    "Topic",
    "Table",
    "Bucket",
    "Handler",
    "Group",
    "StateMachine",
}

# IAM action -> verb shown on the edge; anything not listed (kms:*, xray:*, logs:*) is plumbing.
VERBS = [
    (re.compile(r"^sns:Publish$"), "publish"),
    (re.compile(r"^sqs:SendMessage"), "send"),
    (re.compile(r"^sqs:(ReceiveMessage|DeleteMessage|ChangeMessageVisibility)"), "consume"),
    (re.compile(r"^dynamodb:(Put|Update|Delete|BatchWrite)"), "write"),
    (re.compile(r"^dynamodb:(Get|Query|Scan|BatchGet|ConditionCheck)"), "read"),
    (re.compile(r"^s3:(Put|Abort)"), "put"),
    (re.compile(r"^s3:(Get|List)"), "read"),
    (re.compile(r"^s3:Delete"), "delete"),
    (re.compile(r"^states:StartExecution$"), "start"),
    (re.compile(r"^states:StartSyncExecution$"), "start (sync)"),
    (re.compile(r"^states:SendTask"), "callback"),
    (re.compile(r"^lambda:InvokeFunction$"), "invoke"),
    (re.compile(r"^elasticache:"), "connect"),
]


@dataclass(frozen=True)
class Ref:
    """A resource in the assembly: (stack artifact id, logical id)."""

    stack: str
    logical_id: str

    @property
    def key(self) -> str:
        return f"{self.stack}.{self.logical_id}"


@dataclass
class Node:
    key: str
    stack: str
    label: str
    caption: str
    resource_type: str
    shape: str
    colour: str
    count: int = 1  # aggregated nodes: how many resources they stand for


@dataclass
class Edge:
    source: str
    target: str
    labels: set[str] = field(default_factory=set)
    dashed: bool = False


@dataclass
class ArchitectureGraph:
    """The model the picture is drawn from (and the tests assert on)."""

    stacks: dict[str, str] = field(default_factory=dict)  # artifact id -> CloudFormation stack name
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[tuple[str, str], Edge] = field(default_factory=dict)

    def add_edge(self, source: str, target: str, label: str = "", *, dashed: bool = False) -> None:
        if source == target or source not in self.nodes or target not in self.nodes:
            return
        edge = self.edges.setdefault((source, target), Edge(source, target))
        if label:
            edge.labels.add(label)
        edge.dashed = edge.dashed or dashed

    def nodes_labelled(self, label: str, stack: str | None = None) -> list[Node]:
        return [n for n in self.nodes.values() if n.label == label and (stack is None or n.stack == stack)]

    def has_edge(self, source_label: str, target_label: str) -> bool:
        return any(self.nodes[s].label == source_label and self.nodes[t].label == target_label for s, t in self.edges)


class Assembly:
    """The templates of one cloud assembly, with cross-stack references resolved to resources."""

    def __init__(self, cdk_out: Path) -> None:
        manifest = json.loads((cdk_out / "manifest.json").read_text())
        self.templates: dict[str, dict] = {}
        self.stack_names: dict[str, str] = {}
        for artifact_id, artifact in manifest["artifacts"].items():
            if artifact.get("type") != "aws:cloudformation:stack":
                continue
            properties = artifact.get("properties", {})
            self.templates[artifact_id] = json.loads((cdk_out / properties["templateFile"]).read_text())
            self.stack_names[artifact_id] = properties.get("stackName", artifact_id)
        self.by_stack_name = {name: artifact for artifact, name in self.stack_names.items()}
        self.exports: dict[str, tuple[str, object]] = {}
        for artifact_id, template in self.templates.items():
            for output in template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if isinstance(export, str):
                    self.exports[export] = (artifact_id, output["Value"])

    def resources(self) -> Iterator[tuple[Ref, dict]]:
        for artifact_id, template in self.templates.items():
            for logical_id, resource in template.get("Resources", {}).items():
                yield Ref(artifact_id, logical_id), resource

    def resource(self, ref: Ref) -> dict:
        return self.templates[ref.stack].get("Resources", {}).get(ref.logical_id, {})

    def refs(self, value: object, stack: str) -> Iterator[Ref]:
        """Every resource that `value` (a template fragment of `stack`) refers to."""
        resources = self.templates[stack].get("Resources", {})
        if isinstance(value, list):
            for item in value:
                yield from self.refs(item, stack)
        elif isinstance(value, dict):
            if "Ref" in value and isinstance(value["Ref"], str):
                if value["Ref"] in resources:
                    yield Ref(stack, value["Ref"])
                return
            if "Fn::GetAtt" in value:
                target = value["Fn::GetAtt"]
                name = target[0] if isinstance(target, list) else str(target).split(".")[0]
                if name in resources:
                    yield Ref(stack, name)
                return
            if "Fn::ImportValue" in value and isinstance(value["Fn::ImportValue"], str):
                exported = self.exports.get(value["Fn::ImportValue"])
                if exported:
                    yield from self.refs(exported[1], exported[0])
                return
            if "Fn::GetStackOutput" in value:
                spec = value["Fn::GetStackOutput"]
                producer = self.by_stack_name.get(spec.get("StackName"))
                if producer is not None:
                    output = self.templates.get(producer, {}).get("Outputs", {}).get(spec.get("OutputName"))
                    if output:
                        yield from self.refs(output["Value"], producer)
                return
            if "Fn::Sub" in value:
                template = value["Fn::Sub"]
                text, variables = (template[0], template[1]) if isinstance(template, list) else (template, {})
                for name in re.findall(r"\$\{([^}!]+)\}", text):
                    name = name.split(".")[0]
                    if name in variables:
                        yield from self.refs(variables[name], stack)
                    elif name in resources:
                        yield Ref(stack, name)
                if isinstance(variables, dict):
                    yield from self.refs(list(variables.values()), stack)
                return
            for item in value.values():
                yield from self.refs(item, stack)


def _label(ref: Ref, resource: dict) -> str:
    """A short name: from the construct path when the template has path metadata
    (Processing/FulfilmentConsumer/Function/Resource -> FulfilmentConsumer), else from the logical id
    without its hash (FulfilmentConsumerFunctionBBD5468A -> FulfilmentConsumer)."""
    path = resource.get("Metadata", {}).get("aws:cdk:path", "")
    parts = [p for p in path.split("/")[1:] if p not in ("Resource", "Default")]
    if not parts:
        name = LOGICAL_ID_HASH.sub("", ref.logical_id) or ref.logical_id
        if name.endswith("Function") and len(name) > len("Function"):  # FooFunction: the Function of Foo
            name = name[: -len("Function")]
        parts = [name[:-3], "Dlq"] if name.endswith("Dlq") and len(name) > 3 else [name]
    while len(parts) > 1 and parts[-1] in GENERIC_NAMES and parts[-1] != "Dlq":
        parts.pop()
    if parts[-1] == "Dlq" and len(parts) > 1:
        return f"{parts[-2]} DLQ"
    return parts[-1]


def is_cdk_internal(ref: Ref, resource: dict) -> bool:
    """True for CDK's helper resources (custom-resource provider functions and the like)."""
    return bool(CDK_INTERNAL.search(resource.get("Metadata", {}).get("aws:cdk:path", "") or ref.logical_id))


def _verbs(actions: object) -> set[str]:
    verbs = set()
    for action in actions if isinstance(actions, list) else [actions]:
        for pattern, verb in VERBS:
            if isinstance(action, str) and pattern.match(action):
                verbs.add(verb)
    return verbs


class _Builder:
    def __init__(self, assembly: Assembly) -> None:
        self.assembly = assembly
        self.graph = ArchitectureGraph(stacks=dict(assembly.stack_names))
        self.users: dict[Ref, set[Ref]] = defaultdict(set)  # resource -> resources that refer to it

    def build(self) -> ArchitectureGraph:
        assembly, graph = self.assembly, self.graph
        for ref, resource in assembly.resources():
            for target in assembly.refs(resource.get("Properties", {}), ref.stack):
                self.users[target].add(ref)
            kind = resource.get("Type", "")
            if kind in MAIN_TYPES and not is_cdk_internal(ref, resource):
                caption, shape, colour = MAIN_TYPES[kind]
                graph.nodes[ref.key] = Node(ref.key, ref.stack, _label(ref, resource), caption, kind, shape, colour)
        for ref, resource in assembly.resources():
            self._relations(ref, resource)
        self._internet_entry_points()
        self._tidy()
        return graph

    def _internet_entry_points(self) -> None:
        """One `Internet` node in front of every internet-facing load balancer and public REST API."""
        entry_points = []
        for ref, resource in self.assembly.resources():
            kind, props = resource.get("Type"), resource.get("Properties", {})
            if ref.key not in self.graph.nodes:
                continue
            if (
                kind == "AWS::ElasticLoadBalancingV2::LoadBalancer"
                and props.get("Scheme") == "internet-facing"
                or kind == "AWS::ApiGateway::RestApi"
                and "PRIVATE" not in json.dumps(props.get("EndpointConfiguration", {}))
            ):
                entry_points.append(ref.key)
        if entry_points:
            self.graph.nodes[INTERNET] = Node(INTERNET, "", "Internet", "clients, browsers", "", "ellipse", "#ffffff")
            for key in entry_points:
                self.graph.add_edge(INTERNET, key, "HTTPS/HTTP")

    def _tidy(self) -> None:
        """Drop what an edge already says: a consumer's `consume` grant on the queue that triggers it,
        and the `send` grant behind a dead-letter edge."""
        edges = self.graph.edges
        for (source, target), edge in list(edges.items()):
            reverse = edges.get((target, source))
            if edge.labels == {"consume"} and reverse is not None and "triggers" in reverse.labels:
                del edges[(source, target)]
            elif edge.dashed:
                edge.labels -= {"send", "publish"}

    # --- node lookups ----------------------------------------------------------------------------

    def _main(self, refs: Iterator[Ref]) -> set[str]:
        return {r.key for r in refs if r.key in self.graph.nodes}

    def _targets(self, value: object, stack: str) -> set[str]:
        return self._main(self.assembly.refs(value, stack))

    def _principals(self, ref: Ref, seen: set[Ref] | None = None) -> set[str]:
        """Main resources that use `ref` directly or through roles, instance profiles, launch templates."""
        seen = seen or set()
        found = set()
        for user in self.users.get(ref, ()):
            if user in seen:
                continue
            seen.add(user)
            if user.key in self.graph.nodes:
                if self.graph.nodes[user.key].resource_type in PRINCIPAL_TYPES:
                    found.add(user.key)
            elif self.assembly.resource(user).get("Type") in PASS_THROUGH_TYPES:
                found |= self._principals(user, seen)
        return found

    def _aggregate(self, ref: Ref, kind: str) -> str:
        caption, shape, colour = AGGREGATED_TYPES[kind]
        key = f"{ref.stack}.{kind}"
        node = self.graph.nodes.get(key)
        if node is None:
            node = self.graph.nodes[key] = Node(key, ref.stack, caption, "", kind, shape, colour, count=0)
        node.count += 1
        node.caption = f"{node.count} alarms"
        return key

    # --- relations -------------------------------------------------------------------------------

    def _relations(self, ref: Ref, resource: dict) -> None:
        kind, props, stack, graph = resource.get("Type", ""), resource.get("Properties", {}), ref.stack, self.graph
        edge = graph.add_edge
        if kind == "AWS::SNS::Subscription":
            policy = props.get("FilterPolicy") or {}
            label = (
                "filter: "
                + ", ".join(
                    "|".join(v if isinstance(v, str) else json.dumps(v) for v in values)
                    if isinstance(values, list)
                    else key
                    for key, values in policy.items()
                )
                if policy
                else "subscription"
            )
            for topic in self._targets(props.get("TopicArn"), stack):
                for target in self._targets(props.get("Endpoint"), stack):
                    edge(topic, target, label)
                for dlq in self._targets(props.get("RedrivePolicy"), stack):
                    edge(topic, dlq, "failed deliveries", dashed=True)
        elif kind == "Custom::S3BucketNotifications":  # CDK writes a bucket's event notifications this way
            for bucket in self._targets(props.get("BucketName"), stack):
                for target in self._targets(props.get("NotificationConfiguration"), stack):
                    edge(bucket, target, "notifies")
        elif kind == "AWS::Lambda::EventSourceMapping":
            for source in self._targets(props.get("EventSourceArn"), stack):
                for function in self._targets(props.get("FunctionName"), stack):
                    edge(source, function, "triggers")
        elif kind == "AWS::SQS::Queue" and props.get("RedrivePolicy"):
            count = props["RedrivePolicy"].get("maxReceiveCount")
            for dlq in self._targets(props["RedrivePolicy"], stack):
                edge(ref.key, dlq, f"after {count} receives" if count else "dead letters", dashed=True)
        elif kind == "AWS::Lambda::Function" and props.get("DeadLetterConfig"):
            for dlq in self._targets(props["DeadLetterConfig"], stack):
                edge(ref.key, dlq, "async failures", dashed=True)
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::Role"):
            self._iam(ref, kind, props)
        elif kind == "AWS::ApiGateway::Method":
            for api in self._targets(props.get("RestApiId"), stack):
                for target in self._targets(props.get("Integration"), stack):
                    edge(api, target, "invokes")
        elif kind == "AWS::Events::Rule":
            for target in props.get("Targets", []):
                for key in self._targets(target.get("Arn"), stack):
                    edge(ref.key, key, "schedule" if props.get("ScheduleExpression") else "event")
                for dlq in self._targets(target.get("DeadLetterConfig"), stack):
                    edge(ref.key, dlq, "undeliverable", dashed=True)
        elif kind == "AWS::StepFunctions::StateMachine":
            for target in self._targets(props.get("DefinitionString"), stack):
                edge(ref.key, target, "task")
        elif kind in ("AWS::ElasticLoadBalancingV2::Listener", "AWS::ElasticLoadBalancingV2::ListenerRule"):
            balancers = self._targets(props.get("LoadBalancerArn"), stack)
            if not balancers:  # a listener rule names its listener, which names the load balancer
                for listener in self.assembly.refs(props.get("ListenerArn"), stack):
                    listener_props = self.assembly.resource(listener).get("Properties", {})
                    balancers |= self._targets(listener_props.get("LoadBalancerArn"), listener.stack)
            for group in self.assembly.refs(props.get("DefaultActions", props.get("Actions")), stack):
                for target in self._principals(group):
                    for balancer in balancers:
                        edge(balancer, target, "forwards")
        elif kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            self._security_group_rule(ref, kind, props)
        elif kind == "AWS::WAFv2::WebACLAssociation":
            for acl in self._targets(props.get("WebACLArn"), stack):
                for target in self._targets(props.get("ResourceArn"), stack):
                    edge(acl, target, "protects")
        elif kind in AGGREGATED_TYPES:
            aggregate = self._aggregate(ref, kind)
            for target in self._targets(props.get("AlarmActions"), stack):
                edge(aggregate, target, "notify")

    def _iam(self, ref: Ref, kind: str, props: dict) -> None:
        if kind == "AWS::IAM::Policy":
            documents = [props.get("PolicyDocument", {})]
            principals = set().union(
                *(self._principals(role) for role in self.assembly.refs(props.get("Roles"), ref.stack))
            )
        else:
            documents = [p.get("PolicyDocument", {}) for p in props.get("Policies", [])]
            principals = self._principals(ref)
        for document in documents:
            for statement in document.get("Statement", []):
                if statement.get("Effect") != "Allow":
                    continue
                verbs = _verbs(statement.get("Action"))
                if not verbs:
                    continue
                for target in self._targets(statement.get("Resource"), ref.stack):
                    for principal in principals:
                        for verb in verbs:
                            self.graph.add_edge(principal, target, verb)

    def _security_group_rule(self, ref: Ref, kind: str, props: dict) -> None:
        """An ingress rule `source SG -> group SG` on a port is a network path between their users."""
        ingress = kind.endswith("Ingress")
        own = self.assembly.refs(props.get("GroupId"), ref.stack)
        peer = self.assembly.refs(
            props.get("SourceSecurityGroupId" if ingress else "DestinationSecurityGroupId"), ref.stack
        )
        own_users = set().union(*(self._principals(g) for g in own))
        peer_users = set().union(*(self._principals(g) for g in peer))
        port = props.get("FromPort")
        label = f"tcp/{port}" if isinstance(port, int) else ""
        for source in peer_users if ingress else own_users:
            for target in own_users if ingress else peer_users:
                self.graph.add_edge(source, target, label)


def build_graph(cdk_out: Path) -> ArchitectureGraph:
    """The architecture graph of the cloud assembly in `cdk_out`."""
    return _Builder(Assembly(Path(cdk_out))).build()


# --- rendering -----------------------------------------------------------------------------------

# AWS service icons (the `diagrams` library; its icons ship inside its wheel, rendering needs Graphviz
# `dot` only): module and class per resource type.
ICONS: dict[str, tuple[str, str]] = {
    "AWS::WAFv2::WebACL": ("diagrams.aws.security", "WAF"),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": ("diagrams.aws.network", "ElbApplicationLoadBalancer"),
    "AWS::AutoScaling::AutoScalingGroup": ("diagrams.aws.compute", "EC2AutoScaling"),
    "AWS::ElastiCache::ReplicationGroup": ("diagrams.aws.database", "ElasticacheForRedis"),
    "AWS::ApiGateway::RestApi": ("diagrams.aws.network", "APIGateway"),
    "AWS::Lambda::Function": ("diagrams.aws.compute", "Lambda"),
    "AWS::StepFunctions::StateMachine": ("diagrams.aws.integration", "StepFunctions"),
    "AWS::Events::Rule": ("diagrams.aws.integration", "Eventbridge"),
    "AWS::SNS::Topic": ("diagrams.aws.integration", "SNS"),
    "AWS::SQS::Queue": ("diagrams.aws.integration", "SQS"),
    "AWS::DynamoDB::Table": ("diagrams.aws.database", "Dynamodb"),
    "AWS::S3::Bucket": ("diagrams.aws.storage", "S3"),
    "AWS::CloudWatch::Dashboard": ("diagrams.aws.management", "Cloudwatch"),
    "AWS::CloudWatch::Alarm": ("diagrams.aws.management", "CloudwatchAlarm"),
    "AWS::EC2::VPC": ("diagrams.aws.network", "VPC"),
    "": ("diagrams.onprem.client", "Users"),  # the Internet node
}
# Readable at README width (about 900 px): large type for the size the picture is scaled down to.
# Icons 0.9 in wide (diagrams draws 1.4 in) with 17 pt names: the text, not the icon, must survive the
# scaling down.
GRAPH_ATTR = {
    "fontsize": "26",
    "fontname": "Helvetica",
    "labelloc": "t",
    "pad": "0.3",
    "nodesep": "0.5",
    "ranksep": "0.9",
    "newrank": "true",
}
NODE_ATTR = {"fontsize": "17", "fontname": "Helvetica"}
EDGE_ATTR = {"fontsize": "15", "fontname": "Helvetica", "color": "#555555"}
ICON_INCHES = 0.9
# Names that say which resource only together with their stack (outside a stack's box).
GENERIC_LABELS = {"ASG", "LoadBalancer", "AccessLogs", "ScalingEvents", "AsyncInvokeFailures", "ReplicationGroup"}


def _icon(resource_type: str):
    import importlib

    module, name = ICONS.get(resource_type, ("diagrams.aws.general", "General"))
    return getattr(importlib.import_module(module), name)


def _wrap(text: str, width: int = 18) -> str:
    """Break a CamelCase name into lines of about `width` characters (icons are narrow)."""
    if text.endswith("Function") and text != "Function":  # every Lambda icon says it already
        text = text.removesuffix("Function")
    words = re.sub(r"(?<=[a-z])(?=[A-Z][a-z])", " ", text).split()  # DynamoDB stays whole
    lines, line = [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def render(
    graph: ArchitectureGraph, out_dir: Path, name: str, title: str, *, direction: str = "LR", clusters: bool = True
) -> Path:
    """`out_dir/<name>.png`: the graph with AWS icons, drawn by Graphviz `dot`; with `clusters`, one
    box per stack (without, each name says its stack)."""
    if shutil.which("dot") is None:
        raise SystemExit("Graphviz `dot` not found: `make diagram` installs it (Debian package graphviz)")
    from diagrams import Cluster, Diagram
    from diagrams import Edge as IconEdge

    out_dir.mkdir(parents=True, exist_ok=True)
    by_stack: dict[str, list[Node]] = defaultdict(list)
    for node in graph.nodes.values():
        by_stack[node.stack].append(node)
    drawn = {}
    with Diagram(
        title,
        filename=str(out_dir / name),
        direction=direction,
        outformat="png",
        show=False,
        curvestyle="curved",
        graph_attr=GRAPH_ATTR,
        node_attr=NODE_ATTR,
        edge_attr=EDGE_ATTR,
    ):

        def icon(node: Node, label: str):
            lines = label.count("\\n") + 1
            # The icon at the top of its box, the name below it.
            size = {
                "width": str(ICON_INCHES),
                "height": f"{ICON_INCHES + 0.1 + 0.42 * lines:.2f}",
                "imagepos": "tc",
                "imagescale": "true",
            }
            drawn[node.key] = _icon(node.resource_type if node.stack else "")(label, **size)

        for node in by_stack.pop("", []):
            icon(node, node.label)
        for stack in graph.stacks:
            nodes = sorted(by_stack.get(stack, []), key=lambda n: n.label)
            if not nodes:
                continue
            if not clusters:
                for node in nodes:
                    icon(node, _wrap(f"{stack} {node.label}" if node.label in GENERIC_LABELS else node.label))
                continue
            with Cluster(f"{stack}  ({graph.stacks[stack]})", graph_attr={"fontsize": "19", "bgcolor": "#f6f8fa"}):
                for node in nodes:
                    icon(node, _wrap(node.label))
        for edge in sorted(graph.edges.values(), key=lambda e: (e.source, e.target)):
            label = " / ".join(sorted(edge.labels))
            style = {"style": "dashed", "color": "#b45f06"} if edge.dashed else {}
            drawn[edge.source] >> IconEdge(label=_wrap(label, 28), **style) >> drawn[edge.target]
    return out_dir / f"{name}.png"


# --- synthesis -----------------------------------------------------------------------------------


def _newest_input() -> float:
    newest = 0.0
    for name in APP_INPUTS:
        path = ROOT / name
        files = (
            [path] if path.is_file() else (p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        )
        for file in files:
            newest = max(newest, file.stat().st_mtime)
    return newest


def ensure_synthesized(cdk_out: Path, stage: str) -> Path:
    """Synthesize into `cdk_out` unless it holds an assembly newer than every app input."""
    manifest = cdk_out / "manifest.json"
    if manifest.exists() and manifest.stat().st_mtime >= _newest_input():
        return cdk_out
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(
        [str(ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent), env.get("PATH", "")]
    )
    env.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
    print(f"synthesizing stage {stage} into {cdk_out} ...", file=sys.stderr)
    subprocess.run(["cdk", "synth", "-c", f"stage={stage}", "-q", "-o", str(cdk_out)], cwd=ROOT, env=env, check=True)
    manifest.touch()
    return cdk_out


def pictures(graph: ArchitectureGraph, out_dir: Path, source: str) -> list[Path]:
    """The overview and one picture per flow (scripts/diagram_views.py), each `out_dir/<name>.png`."""
    from scripts.diagram_views import FLOWS, flow_graph, overview

    bundled, _ = overview(graph)
    written = [
        render(
            bundled,
            out_dir,
            "overview",
            f"Loosely coupled storefront: {len(graph.nodes)} resources in {len(graph.stacks)} stacks, "
            f"bundled per stack and type (from {source})",
            direction="TB",
        )
    ]
    for flow in FLOWS:
        written.append(
            render(flow_graph(graph, flow), out_dir, flow.name, flow.title, direction=flow.direction, clusters=False)
        )
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdk-out", type=Path, help="an existing cloud assembly (default: synthesize one)")
    parser.add_argument("--stage", default="sandbox", help="stage to synthesize when --cdk-out is not given")
    parser.add_argument("--out-dir", type=Path, default=DOCS / "diagrams")
    args = parser.parse_args(argv)
    cdk_out = args.cdk_out or ensure_synthesized(DEFAULT_CDK_OUT / args.stage, args.stage)
    for path in pictures(build_graph(cdk_out), args.out_dir, cdk_out.name):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
