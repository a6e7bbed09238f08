"""Lambda packaging: one shared code asset, one dependency layer per stack built for the stage's
runtime and architecture without Docker, rebuilt only when its inputs change; and the defaults every
function gets from PowertoolsFunction."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_

from stacks.constructs import dependency_layer
from stacks.constructs.dependency_layer import DependencyLayer, DependencyLayerProps
from stacks.constructs.powertools_function import METRICS_NAMESPACE
from tests.infra.test_processing import logical_id, resources

SERVERLESS_STACKS = ("workflow", "api", "processing")


def _layer_asset(outdir: Path, source_dir: Path, runtime: lambda_.Runtime, architecture: lambda_.Architecture,
                 *, bundle: bool) -> str:
    """Synthesize a stack holding only a DependencyLayer; return the layer's asset hash."""
    context = {"aws:cdk:bundling-stacks": ["**"] if bundle else []}
    app = cdk.App(outdir=str(outdir), context=context)
    stack = cdk.Stack(app, "LayerProbe")
    DependencyLayer(stack, "Deps", props=DependencyLayerProps(runtime=runtime, architecture=architecture,
                                                              source_dir=source_dir))
    template = app.synth().get_stack_artifact("LayerProbe").template
    (layer,) = resources(template, "AWS::Lambda::LayerVersion").values()
    return layer["Properties"]["Content"]["S3Key"].removesuffix(".zip")


def test_layer_is_bundled_locally_for_the_target_platform_and_reused(tmp_path, monkeypatch):
    """The one test that really runs pip (PyPI): python 3.11 / x86_64, as the local stage uses."""
    outdir = tmp_path / "cdk.out"
    asset_hash = _layer_asset(outdir, dependency_layer.LAMBDAS_DIR, lambda_.Runtime.PYTHON_3_11,
                              lambda_.Architecture.X86_64, bundle=True)
    site = outdir / f"asset.{asset_hash}" / "python"
    assert (site / "aws_lambda_powertools").is_dir()
    assert (site / "pydantic_core").is_dir()
    # Compiled for Lambda, not for the build machine: a CPython 3.11 manylinux x86_64 extension.
    (extension,) = (site / "pydantic_core").glob("_pydantic_core*.so")
    assert "cpython-311-x86_64-linux-gnu" in extension.name
    assert not list(site.rglob("*.pyc"))  # --no-compile: no host-specific bytecode

    # A second synth into the same cdk.out must not run pip again: the hash is known before bundling.
    cdk.AssetStaging.clear_asset_hash_cache()

    def no_pip(*args, **kwargs):
        raise AssertionError(f"bundling ran again: {args}")

    monkeypatch.setattr(dependency_layer.subprocess, "run", no_pip)
    again = _layer_asset(outdir, dependency_layer.LAMBDAS_DIR, lambda_.Runtime.PYTHON_3_11,
                         lambda_.Architecture.X86_64, bundle=True)
    assert again == asset_hash


def test_layer_hash_follows_requirements_runtime_and_architecture_only(tmp_path):
    source = tmp_path / "lambdas"
    source.mkdir()
    (source / "requirements.txt").write_text("pydantic==2.14.3\n")
    (source / "handler.py").write_text("def lambda_handler(event, context): ...\n")

    def asset_hash(runtime=lambda_.Runtime.PYTHON_3_11, arch=lambda_.Architecture.X86_64) -> str:
        cdk.AssetStaging.clear_asset_hash_cache()
        return _layer_asset(tmp_path / "out", source, runtime, arch, bundle=False)

    base = asset_hash()
    assert asset_hash() == base  # stable across syntheses
    (source / "handler.py").write_text("def lambda_handler(event, context): return 1\n")
    assert asset_hash() == base  # code changes never rebuild the layer
    assert asset_hash(arch=lambda_.Architecture.ARM_64) != base
    assert asset_hash(runtime=lambda_.Runtime.PYTHON_3_14) != base
    (source / "requirements.txt").write_text("pydantic==2.14.2\n")
    assert asset_hash() != base


def test_bundler_fails_loudly_when_pip_fails(tmp_path, monkeypatch):
    """A pin pip cannot satisfy must fail the synth, not produce an empty or partial layer."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("this-package-does-not-exist-anywhere==0.0.0\n")
    original = dependency_layer.pip_install_command
    # --no-index: resolve against nothing, so the failure needs no network.
    monkeypatch.setattr(dependency_layer, "pip_install_command", lambda *a, **k: [*original(*a, **k), "--no-index"])
    bundler = dependency_layer.PipLocalBundler(requirements, platform="manylinux2014_x86_64", version="3.11")
    with pytest.raises(RuntimeError, match="pip could not build the dependency layer"):
        bundler.try_bundle(str(tmp_path / "out"), image=cdk.DockerImage.from_registry("unused"))
    assert not (tmp_path / "out" / "python").exists()


def _functions(synthesized) -> list[tuple[str, dict, dict]]:
    return [
        (key, props, synthesized.templates[key])
        for key in SERVERLESS_STACKS
        for props in (f["Properties"] for f in resources(synthesized.templates[key], "AWS::Lambda::Function").values())
    ]


def test_all_functions_share_one_code_asset_and_one_layer_per_stack(sandbox):
    functions = _functions(sandbox)
    assert len(functions) == 8 + 2 + 6  # workflow tasks, API handlers, consumers + hand-off ingest
    assert len({props["Code"]["S3Key"] for _, props, _ in functions}) == 1
    for key in SERVERLESS_STACKS:
        (layer_id,) = resources(sandbox.templates[key], "AWS::Lambda::LayerVersion")
        for stack_key, props, _ in functions:
            if stack_key == key:
                assert props["Layers"] == [{"Ref": layer_id}]
    layer_keys = {
        layer["Properties"]["Content"]["S3Key"]
        for key in SERVERLESS_STACKS
        for layer in resources(sandbox.templates[key], "AWS::Lambda::LayerVersion").values()
    }
    assert len(layer_keys) == 1  # one asset, bundled once per synth


def test_code_asset_leaves_out_requirements_tests_and_bytecode(sandbox):
    (code_key,) = {props["Code"]["S3Key"] for _, props, _ in _functions(sandbox)}
    staged = sandbox.outdir / f"asset.{code_key.removesuffix('.zip')}"
    assert staged.is_dir()
    names = {p.name for p in staged.rglob("*")}
    assert not {"requirements.txt", "__pycache__", "tests", "conftest.py"} & names


@pytest.mark.parametrize("stage, runtime, arch", [("sandbox", "python3.14", "arm64"), ("local", "python3.11", "x86_64")])
def test_runtime_and_architecture_per_stage(stage, runtime, arch, request):
    synthesized = request.getfixturevalue(stage)
    for key, props, template in _functions(synthesized):
        assert props["Runtime"] == runtime, (key, props["Handler"])
        assert props["Architectures"] == [arch], (key, props["Handler"])
        (layer,) = resources(template, "AWS::Lambda::LayerVersion").values()
        assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
        assert layer["Properties"]["CompatibleArchitectures"] == [arch]


def test_every_function_gets_the_powertools_defaults(sandbox):
    config = sandbox.app.config
    for key, props, template in _functions(sandbox):
        where = (key, props["Handler"])
        assert props["TracingConfig"] == {"Mode": "Active"}, where
        assert props["MemorySize"] == 256, where
        assert props["Timeout"] > 3, where
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE, where
        assert env["POWERTOOLS_SERVICE_NAME"] and env["POWERTOOLS_LOG_LEVEL"], where
        log_group = template["Resources"][logical_id(props["LoggingConfig"]["LogGroup"])]["Properties"]
        assert log_group["RetentionInDays"] == config.log_retention_days, where
        assert logical_id(props["DeadLetterConfig"]["TargetArn"]).startswith("LambdaPackagingAsyncInvokeFailures")
        role = template["Resources"][logical_id(props["Role"])]["Properties"]
        assert "ManagedPolicyArns" not in role, f"{where}: no AWS-managed policy (AWSLambdaBasicExecutionRole)"


def test_function_logs_only_to_its_own_log_group(sandbox):
    template = sandbox.templates["processing"]
    for policy in resources(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "logs:PutLogEvents" in json.dumps(statement["Action"]):
                assert logical_id(statement["Resource"]) in resources(template, "AWS::Logs::LogGroup")
