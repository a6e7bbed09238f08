"""cdk-nag (AwsSolutions + Serverless packs) reports nothing unacknowledged, in every stage."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stage", ["sandbox", "production", "local"])
def test_no_unacknowledged_nag_findings(stage, request):
    synthesized = request.getfixturevalue(stage)
    assert synthesized.nag_report, "no validation report: the rule packs did not run"
    violations = synthesized.nag_violations()
    assert violations == [], "unacknowledged cdk-nag findings:\n" + "\n".join(violations)


@pytest.mark.parametrize("stage", ["sandbox", "production", "local"])
def test_every_acknowledged_finding_carries_a_reason(stage, request):
    report = request.getfixturevalue(stage).nag_report
    acknowledged = [v for p in report.get("pluginReports", []) for v in p.get("suppressedViolations", [])]
    assert acknowledged, "expected the DLQ redrive acknowledgements at least"
    for finding in acknowledged:
        assert len(finding.get("reason", "").strip()) >= 20, finding["ruleName"]


def test_rule_packs_fire_on_a_bad_resource(tmp_path):
    """Canary: the same plugins the app uses reject an unlogged, SSL-optional bucket."""
    import json

    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from stacks.nag import apply_rule_packs

    app = cdk.App(outdir=str(tmp_path))
    s3.Bucket(cdk.Stack(app, "Canary"), "Bucket")
    apply_rule_packs(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_every_acknowledgement_goes_through_the_reasoned_helper():
    """stacks/nag.acknowledge refuses empty reasons; nobody may bypass it."""
    offenders = []
    for path in (ROOT / "stacks").rglob("*.py"):
        if path.name == "nag.py":
            continue
        if re.search(r"Validations\.of\([^)]*\)\.acknowledge|NagSuppressions", path.read_text()):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_acknowledge_refuses_a_reasonless_acknowledgement():
    import aws_cdk as cdk

    from stacks.nag import acknowledge

    stack = cdk.Stack(cdk.App(), "Probe")
    with pytest.raises(ValueError, match="real reason"):
        acknowledge(stack, "AwsSolutions-IAM4", "because")
