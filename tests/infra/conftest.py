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

from stacks.app_builder import StorefrontApp, build_app, context_of
from stacks.nag import apply_rule_packs

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Synthesized:
    app: StorefrontApp
    outdir: Path
    templates: dict[str, dict]  # stack key (e.g. "network") -> template JSON

    def template(self, key: str) -> Template:
        return Template.from_json(self.templates[key])

    def validation_report(self) -> dict:
        path = self.outdir / "validation-report.json"
        return json.loads(path.read_text()) if path.exists() else {}


def synthesize(stage: str, **overrides) -> Synthesized:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context.update({"stage": stage, "aws:cdk:bundling-stacks": [], **overrides})
    outdir = Path(tempfile.mkdtemp(prefix=f"cdk.out.{stage}."))
    app = cdk.App(outdir=str(outdir), context=context)
    built = build_app(app)
    apply_rule_packs(app)
    assembly = app.synth()
    templates = {key: assembly.get_stack_artifact(stack.artifact_id).template for key, stack in built.stacks.items()}
    return Synthesized(app=built, outdir=outdir, templates=templates)


_cache: dict[str, Synthesized] = {}


def synthesized_stage(stage: str) -> Synthesized:
    if stage not in _cache:
        _cache[stage] = synthesize(stage)
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
