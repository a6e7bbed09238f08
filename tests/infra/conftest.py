"""Synthesize the whole app once per stage per test session and hand out its templates.

Bundling is skipped here (`aws:cdk:bundling-stacks: []`): these tests read templates, and the
Lambda dependency layer's bundling has its own test. cdk-nag runs as in `cdk synth`.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.app_builder import StorefrontApp, build_app
from stacks.nag import apply_rule_packs

ROOT = Path(__file__).resolve().parents[2]
# A certificate of a made-up account (no real account id in the repo). Production refuses to
# synthesize without one, as `cdk synth -c stage=production` does without `-c certificateArn`.
TEST_CERTIFICATE_ARN = "arn:aws:acm:us-east-1:111111111111:certificate/00000000-0000-0000-0000-000000000000"
# What each stage's session synth adds to cdk.json, as `-c` would.
STAGE_OVERRIDES: dict[str, dict[str, str]] = {"production": {"certificateArn": TEST_CERTIFICATE_ARN}}


@dataclass
class Synthesized:
    app: StorefrontApp
    outdir: Path
    templates: dict[str, dict]  # stack key (e.g. "network") -> template JSON
    nag_report: dict  # CDK policy-validation report written by the cdk-nag plugins

    def template(self, key: str) -> Template:
        return Template.from_json(self.templates[key])

    def nag_violations(self) -> list[str]:
        """One line per unacknowledged cdk-nag finding (any severity)."""
        lines = []
        for plugin in self.nag_report.get("pluginReports", []):
            for violation in plugin.get("violations", []):
                for construct in violation.get("violatingConstructs", []):
                    lines.append(f"{violation['severity']} {violation['ruleName']} at {construct['constructPath']}")
        return lines


def _app(stage: str, outdir: Path, overrides: dict) -> tuple[cdk.App, StorefrontApp]:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context.update({"stage": stage, "aws:cdk:bundling-stacks": [], **overrides})
    app = cdk.App(outdir=str(outdir), context=context)
    return app, build_app(app)


def synthesize(stage: str, **overrides) -> Synthesized:
    """Synthesize with the cdk-nag plugins. A failed validation is recorded (test_nag reports it)
    and the app is synthesized again without the plugins so that the other tests still run."""
    outdir = Path(tempfile.mkdtemp(prefix=f"cdk.out.{stage}."))
    app, built = _app(stage, outdir, overrides)
    apply_rule_packs(app)
    try:
        assembly = app.synth()
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
        report = json.loads((outdir / "validation-report.json").read_text())
        outdir = Path(tempfile.mkdtemp(prefix=f"cdk.out.{stage}.unchecked."))
        app, built = _app(stage, outdir, overrides)
        assembly = app.synth()
    else:
        path = outdir / "validation-report.json"
        report = json.loads(path.read_text()) if path.exists() else {}
    templates = {key: assembly.get_stack_artifact(stack.artifact_id).template for key, stack in built.stacks.items()}
    return Synthesized(app=built, outdir=outdir, templates=templates, nag_report=report)


_cache: dict[str, Synthesized] = {}


def synthesized_stage(stage: str) -> Synthesized:
    if stage not in _cache:
        _cache[stage] = synthesize(stage, **STAGE_OVERRIDES.get(stage, {}))
    return _cache[stage]


@pytest.fixture(scope="session")
def sandbox() -> Synthesized:
    return synthesized_stage("sandbox")


@pytest.fixture(scope="session")
def production() -> Synthesized:
    return synthesized_stage("production")


@pytest.fixture(scope="session")
def local() -> Synthesized:
    return synthesized_stage("local")


# The optional settings that add resources only when set (Route 53 in front, a queue shared with partners),
# given as `-c` strings. Made-up accounts and zone: no real id in the repo.
EXTRAS_OVERRIDES = {
    "domainName": "shop.example.com",
    "hostedZoneId": "Z0123456789ABCDEFGHIJ",
    "partnerAccountIds": "111111111111,222222222222",
}


@pytest.fixture(scope="session")
def sandbox_with_extras() -> Synthesized:
    """The sandbox with a domain and partner accounts (one synth shared by the tests of both)."""
    if "sandbox+extras" not in _cache:
        _cache["sandbox+extras"] = synthesize("sandbox", **EXTRAS_OVERRIDES)
    return _cache["sandbox+extras"]
