"""cdk-nag (AwsSolutions + Serverless packs) reports nothing unacknowledged, in every stage."""

import re
from pathlib import Path

import pytest

from stacks.nag import RULE_PACKS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stage", ["sandbox", "production", "local"])
def test_no_unacknowledged_nag_findings(stage, request):
    synthesized = request.getfixturevalue(stage)
    assert synthesized.nag_report, "no validation report: the rule packs did not run"
    violations = synthesized.nag_violations()
    assert violations == [], "unacknowledged cdk-nag findings:\n" + "\n".join(violations)


@pytest.mark.parametrize("stage", ["sandbox", "production", "local"])
def test_every_acknowledged_finding_carries_a_reason(stage, request):
    """Both packs' acknowledgements are in the report, each with its reason. (An acknowledgement id
    without its pack prefix silences the finding but drops it from the report: stacks/nag.py qualifies
    every id, and this test fails if a pack's acknowledgements disappear from view again.)"""
    report = request.getfixturevalue(stage).nag_report
    by_pack = {p["pluginName"]: p.get("suppressedViolations", []) for p in report.get("pluginReports", [])}
    assert set(by_pack) == set(RULE_PACKS)
    # AwsSolutions: IAM5 wildcards, the log buckets' S1, SMG4, AEC5, APIG3/4, COG4, ...; Serverless: DLQs.
    assert len(by_pack["AwsSolutions"]) >= 30 and len(by_pack["Serverless"]) >= 10, {
        k: len(v) for k, v in by_pack.items()
    }
    rules = {v["ruleName"].split("[")[0] for v in by_pack["AwsSolutions"]}
    assert {"AwsSolutions-IAM5", "AwsSolutions-S1", "AwsSolutions-SMG4", "AwsSolutions-APIG4"} <= rules
    for pack, acknowledged in by_pack.items():
        for finding in acknowledged:
            assert finding["acknowledgedId"].startswith(f"{pack}::"), finding["acknowledgedId"]
            assert len(finding.get("reason", "").strip()) >= 20, finding["ruleName"]


def test_acknowledgement_ids_are_qualified_with_their_pack():
    from stacks.nag import acknowledgement_id

    assert acknowledgement_id("AwsSolutions-IAM4") == "AwsSolutions::AwsSolutions-IAM4"
    assert acknowledgement_id("AwsSolutions-IAM5[Resource::*]") == "AwsSolutions::AwsSolutions-IAM5[Resource::*]"
    assert acknowledgement_id("Serverless::Serverless-LambdaDLQ") == "Serverless::Serverless-LambdaDLQ"
    with pytest.raises(ValueError, match="not a rule of"):
        acknowledgement_id("HIPAA-Something")


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
