"""Snapshot of every synthesized template, normalised so that asset hashes and CDK version
metadata do not churn. A snapshot only shows *that* something changed; the other infra tests
assert *which* properties must hold. Update with `pytest tests/infra --snapshot-update`."""

from __future__ import annotations

import json
import re

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

HASH = re.compile(r"\b[0-9a-f]{64}\b")


def normalise(template: dict) -> dict:
    template = json.loads(HASH.sub("<asset-hash>", json.dumps(template)))
    resources = template.get("Resources", {})
    for logical_id in [k for k, v in resources.items() if v.get("Type") == "AWS::CDK::Metadata"]:
        del resources[logical_id]
    template.get("Parameters", {}).pop("BootstrapVersion", None)
    template.get("Rules", {}).pop("CheckBootstrapVersion", None)
    return template


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


def test_hash_normalisation_is_stable():
    first = normalise({"Resources": {"F": {"Type": "X", "Properties": {"S3Key": "a" * 64 + ".zip"}}}})
    second = normalise({"Resources": {"F": {"Type": "X", "Properties": {"S3Key": "b" * 64 + ".zip"}}}})
    assert first == second == {"Resources": {"F": {"Type": "X", "Properties": {"S3Key": "<asset-hash>.zip"}}}}


def test_sandbox_templates_match_snapshots(sandbox, snapshot_json):
    for key in sorted(sandbox.templates):
        assert normalise(sandbox.templates[key]) == snapshot_json(name=key)
