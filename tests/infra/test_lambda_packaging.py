"""Lambda packaging: one shared code asset (the contexts plus `contracts/`), one dependency layer per
stack built for the stage's runtime and architecture without Docker, each rebuilt only when its inputs
change; the tier service bundle's layout and hash; and the defaults every function gets from
PowertoolsFunction."""

from __future__ import annotations

import fnmatch
import json
import subprocess
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_

from stacks.constructs import dependency_layer, platform_pip, source_tree
from stacks.constructs.dependency_layer import DependencyLayer, DependencyLayerProps
from stacks.constructs.lambda_packaging import LambdaPackaging, LambdaPackagingProps, code_trees
from stacks.constructs.powertools_function import METRICS_NAMESPACE
from stacks.constructs.service_bundle import ServiceBundle, ServiceBundleProps
from stacks.constructs.shipping import CODE_EXCLUDES
from stacks.constructs.source_tree import REPO_ROOT, SourceTreeBundler, copy_trees, docker_copy_command
from tests.infra.test_processing import logical_id, resources

SERVERLESS_STACKS = ("workflow", "api", "processing")


def _layer_asset(
    outdir: Path, source_dir: Path, runtime: lambda_.Runtime, architecture: lambda_.Architecture, *, bundle: bool
) -> str:
    """Synthesize a stack holding only a DependencyLayer; return the layer's asset hash."""
    context = {"aws:cdk:bundling-stacks": ["**"] if bundle else []}
    app = cdk.App(outdir=str(outdir), context=context)
    stack = cdk.Stack(app, "LayerProbe")
    DependencyLayer(
        stack, "Deps", props=DependencyLayerProps(runtime=runtime, architecture=architecture, source_dir=source_dir)
    )
    template = app.synth().get_stack_artifact("LayerProbe").template
    (layer,) = resources(template, "AWS::Lambda::LayerVersion").values()
    return layer["Properties"]["Content"]["S3Key"].removesuffix(".zip")


@pytest.fixture(autouse=True)
def own_pip_cache(tmp_path, monkeypatch):
    """Every test gets an empty pip-result cache: stand-in pips must never fill the machine's real one."""
    cache = tmp_path / "pip-cache"
    monkeypatch.setattr(platform_pip, "CACHE_DIR", cache)
    return cache


def test_a_pip_result_is_reused_from_the_cache_by_a_fresh_cdk_out(tmp_path, fake_pip, own_pip_cache):
    """A fresh clone or cdk.out on the same machine does not run pip again for the same requirements,
    platform and version; another pin, another platform or a failed run is not served from the cache."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pydantic==2.14.3\n")

    def bundle(into: str, platform: str = "manylinux2014_x86_64") -> None:
        bundler = dependency_layer.PipLocalBundler(requirements, platform=platform, version="3.11")
        bundler.try_bundle(str(tmp_path / into), image=cdk.DockerImage.from_registry("unused"))

    bundle("first")
    bundle("second")  # a fresh cdk.out: copied from the cache
    assert len(fake_pip) == 1
    assert (
        sorted(_files(tmp_path / "second"))
        == sorted(_files(tmp_path / "first"))
        == ["python/fake-1.0-py3-none-any.whl"]
    )
    bundle("arm", platform="manylinux2014_aarch64")
    requirements.write_text("pydantic==2.14.2\n")
    bundle("other-pin")
    assert len(fake_pip) == 3
    assert len([entry for entry in own_pip_cache.iterdir() if not entry.name.startswith(".")]) == 3
    assert not [entry for entry in own_pip_cache.iterdir() if entry.name.startswith(".")]  # no scratch left


def test_layer_is_bundled_locally_for_the_target_platform_and_reused(tmp_path, monkeypatch):
    """The one test that really runs pip (PyPI): python 3.11 / x86_64, as the local stage uses."""
    outdir = tmp_path / "cdk.out"
    asset_hash = _layer_asset(
        outdir, dependency_layer.LAMBDAS_DIR, lambda_.Runtime.PYTHON_3_11, lambda_.Architecture.X86_64, bundle=True
    )
    site = outdir / f"asset.{asset_hash}" / "python"
    assert (site / "aws_lambda_powertools").is_dir()
    assert (site / "pydantic_core").is_dir()
    # Compiled for Lambda, not for the build machine: a CPython 3.11 manylinux x86_64 extension.
    (extension,) = (site / "pydantic_core").glob("_pydantic_core*.so")
    assert "cpython-311-x86_64-linux-gnu" in extension.name
    # What the Lambda runtime ships is left out (botocore was 30 of 45 MB); Powertools stays.
    assert not [d for d in site.iterdir() if d.name.split("-")[0] in {"boto3", "botocore", "urllib3", "dateutil"}]
    # cryptography (RS256 for the WebSocket authorizer's PyJWT) adds about 6 MB to the 29 MB before it.
    assert sum(f.stat().st_size for f in site.rglob("*") if f.is_file()) < 38 * 1024 * 1024
    assert (site / "jwt").is_dir() and list((site / "cryptography" / "hazmat" / "bindings").glob("_rust*.so"))
    # Bytecode for the runtime's Python, valid whatever mtimes unzipping gives the sources.
    (pyc,) = (site / "aws_lambda_powertools" / "__pycache__").glob("__init__.cpython-311.pyc")
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, unchecked (PEP 552)

    # A second synth into the same cdk.out must not run pip again: the hash is known before bundling.
    cdk.AssetStaging.clear_asset_hash_cache()

    def no_pip(*args, **kwargs):
        raise AssertionError(f"bundling ran again: {args}")

    monkeypatch.setattr(platform_pip.subprocess, "run", no_pip)
    again = _layer_asset(
        outdir, dependency_layer.LAMBDAS_DIR, lambda_.Runtime.PYTHON_3_11, lambda_.Architecture.X86_64, bundle=True
    )
    assert again == asset_hash


def test_the_layer_drops_what_the_runtime_ships_by_its_record_and_compiles_for_its_own_python(tmp_path):
    """Only the distributions the Lambda runtime provides go, file by file from their RECORD; a package
    whose name merely starts like one stays. Bytecode is written only by the target's interpreter."""
    site = tmp_path / "python"

    def install(name: str, module: str) -> None:
        (site / module).mkdir(parents=True)
        (site / module / "__init__.py").write_text("VALUE = 1\n")
        info = site / f"{name.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "RECORD").write_text(f"{module}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")

    install("botocore", "botocore")
    install("python-dateutil", "dateutil")
    install("botocore-stubs-lookalike", "botocore_lookalike")
    install("aws-lambda-powertools", "aws_lambda_powertools")

    removed = dependency_layer.drop_runtime_provided(site)

    assert removed == ["botocore==1.0", "python-dateutil==1.0"]
    assert sorted(p.name for p in site.iterdir()) == [
        "aws_lambda_powertools",
        "aws_lambda_powertools-1.0.dist-info",
        "botocore_lookalike",
        "botocore_stubs_lookalike-1.0.dist-info",
    ]
    assert not dependency_layer.compile_for(site, "3.14")  # another Python: no bytecode at all
    assert not list(site.rglob("*.pyc"))
    assert dependency_layer.compile_for(site, "3.11")
    assert len(list(site.rglob("*.cpython-311.pyc"))) == 2


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
    original = platform_pip.pip_install_command
    # --no-index: resolve against nothing, so the failure needs no network.
    monkeypatch.setattr(platform_pip, "pip_install_command", lambda *a, **k: [*original(*a, **k), "--no-index"])
    bundler = dependency_layer.PipLocalBundler(requirements, platform="manylinux2014_x86_64", version="3.11")
    with pytest.raises(RuntimeError, match="pip could not build the dependency layer"):
        bundler.try_bundle(str(tmp_path / "out"), image=cdk.DockerImage.from_registry("unused"))
    assert not (tmp_path / "out" / "python").exists()
    assert not list(platform_pip.CACHE_DIR.iterdir())  # a failed run caches nothing


def _functions(synthesized) -> list[tuple[str, dict, dict]]:
    return [
        (key, props, synthesized.templates[key])
        for key in SERVERLESS_STACKS
        for props in (f["Properties"] for f in resources(synthesized.templates[key], "AWS::Lambda::Function").values())
    ]


def test_all_functions_share_one_code_asset_and_one_layer_per_stack(sandbox):
    functions = _functions(sandbox)
    assert len(functions) == 8 + 3 + 8  # workflow tasks, API handlers + side call, consumers + hand-off ingest
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


@pytest.mark.parametrize(
    "stage, runtime, arch", [("sandbox", "python3.14", "arm64"), ("local", "python3.11", "x86_64")]
)
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


# --- the code asset and the service bundle: layout and hash ---------------------------------------

IGNORED = cdk.DockerImage.from_registry("unused")


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _contracts(tmp_path: Path) -> Path:
    """A stand-in for the shared `contracts` package, with the build-machine files it must not ship."""
    return _tree(
        tmp_path / "contracts",
        {
            "__init__.py": "",
            "orders.py": "ORDER_PLACED = 'OrderPlaced'\n",
            "__pycache__/orders.cpython-311.pyc": "bytecode",
            "tests/test_orders.py": "def test_it(): ...\n",
        },
    )


@pytest.fixture
def fake_pip(monkeypatch):
    """Stands in for pip (no PyPI): records each command and leaves a file where pip would write."""
    commands: list[list[str]] = []

    def run_pip(command: list[str], *, what: str) -> None:
        commands.append(command)
        flag = "--target" if "--target" in command else "--dest"
        out = Path(command[command.index(flag) + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "fake-1.0-py3-none-any.whl").write_text("")

    monkeypatch.setattr(platform_pip, "run_pip", run_pip)
    return commands


def _bundled_app(outdir: Path, *, bundle: bool = True) -> tuple[cdk.App, cdk.Stack]:
    app = cdk.App(outdir=str(outdir), context={"aws:cdk:bundling-stacks": ["**"] if bundle else []})
    return app, cdk.Stack(app, "Probe")


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _packaging_props(contracts: Path, code_dir: Path = dependency_layer.LAMBDAS_DIR) -> LambdaPackagingProps:
    return LambdaPackagingProps(
        runtime=lambda_.Runtime.PYTHON_3_11,
        architecture=lambda_.Architecture.X86_64,
        code_dir=code_dir,
        shared_packages=(contracts,),
    )


def test_the_app_ships_the_repository_contracts_package_in_both_assets():
    """The one contract travels with the code: the Lambda code asset and the EC2 service bundle both
    carry the repository's contracts/ package by default."""
    assert source_tree.CONTRACTS_DIR == REPO_ROOT / "contracts" and source_tree.CONTRACTS_DIR.is_dir()
    props = LambdaPackagingProps(runtime=lambda_.Runtime.PYTHON_3_11, architecture=lambda_.Architecture.X86_64)
    assert props.shared_packages == (source_tree.CONTRACTS_DIR,)
    assert ServiceBundleProps(architecture=ec2.InstanceArchitecture.ARM_64).shared_packages == (
        source_tree.CONTRACTS_DIR,
    )


def test_code_asset_ships_the_contexts_and_contracts_without_tests_or_caches(tmp_path, fake_pip):
    """Bundled into a temporary cdk.out from the real lambdas/ and a stand-in contracts/; no PyPI."""
    app, stack = _bundled_app(tmp_path / "cdk.out")
    packaging = LambdaPackaging(stack, "Packaging", props=_packaging_props(_contracts(tmp_path)))
    lambda_.Function(
        stack, "Probe", runtime=packaging.runtime, code=packaging.code, handler="orders.handlers.api.lambda_handler"
    )
    template = app.synth().get_stack_artifact("Probe").template
    (function,) = resources(template, "AWS::Lambda::Function").values()
    staged = tmp_path / "cdk.out" / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    shipped = _files(staged)
    contexts = {
        p.name
        for p in dependency_layer.LAMBDAS_DIR.iterdir()
        if p.is_dir() and not any(fnmatch.fnmatch(p.name, pattern) for pattern in CODE_EXCLUDES)
    }
    assert {"orders", "checkout", "inventory", "notification", "analytics", "handoff", "plumbing"} <= contexts
    assert contexts <= {name.split("/")[0] for name in shipped}
    # Handler paths are relative to the asset root, and `contracts` is a top-level package beside them.
    assert "orders/handlers/api.py" in shipped
    assert {"contracts/__init__.py", "contracts/orders.py"} <= shipped
    parts = {part for name in shipped for part in name.split("/")}
    assert not {"requirements.txt", "__pycache__", "tests", "conftest.py", ".pytest_cache"} & parts
    assert not [name for name in shipped if name.endswith(".pyc")]


def test_service_bundle_ships_services_contracts_and_wheels(tmp_path, fake_pip):
    app, stack = _bundled_app(tmp_path / "cdk.out")
    bundle = ServiceBundle(
        stack,
        "Bundle",
        props=ServiceBundleProps(architecture=ec2.InstanceArchitecture.ARM_64, shared_packages=(_contracts(tmp_path),)),
    )
    app.synth()
    shipped = _files(tmp_path / "cdk.out" / f"asset.{bundle.asset.asset_hash}")
    assert {name.split("/")[0] for name in shipped} == {"services", "contracts", "wheels"}
    assert {"services/web/__main__.py", "services/requirements.txt", "contracts/orders.py"} <= shipped
    assert not {"__pycache__", "tests"} & {part for name in shipped for part in name.split("/")}
    (command,) = fake_pip
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--platform manylinux2014_aarch64 --implementation cp --python-version 3.11" in " ".join(command)


def test_code_asset_hash_changes_with_a_shipped_file_only(tmp_path):
    lambdas = _tree(tmp_path / "lambdas", {"requirements.txt": "pydantic==2.14.3\n", "orders/handler.py": "x = 1\n"})
    contracts = _contracts(tmp_path)

    def asset_hash() -> str:
        app, stack = _bundled_app(tmp_path / "out", bundle=False)
        packaging = LambdaPackaging(stack, "Packaging", props=_packaging_props(contracts, code_dir=lambdas))
        lambda_.Function(stack, "Probe", runtime=packaging.runtime, code=packaging.code, handler="orders.handler.h")
        (function,) = resources(app.synth().get_stack_artifact("Probe").template, "AWS::Lambda::Function").values()
        return function["Properties"]["Code"]["S3Key"]

    base = asset_hash()
    assert asset_hash() == base  # stable across syntheses
    (contracts / "__pycache__" / "orders.cpython-314.pyc").write_text("other bytecode")
    (contracts / "tests" / "test_more.py").write_text("")
    (lambdas / "orders" / "__pycache__").mkdir()
    (lambdas / "orders" / "__pycache__" / "handler.cpython-311.pyc").write_text("")
    assert asset_hash() == base  # tests and caches are not shipped, so they do not count
    (lambdas / "requirements.txt").write_text("pydantic==2.14.2\n")
    assert asset_hash() == base  # the requirements belong to the layer
    (contracts / "orders.py").write_text("ORDER_PLACED = 'OrderPlaced'\nORDER_SHIPPED = 'OrderShipped'\n")
    changed = asset_hash()
    assert changed != base
    (lambdas / "orders" / "handler.py").write_text("x = 2\n")
    assert asset_hash() not in (base, changed)


def test_service_bundle_hash_changes_with_sources_platform_only(tmp_path):
    services = _tree(tmp_path / "services", {"requirements.txt": "flask==3.1.3\n", "web/__main__.py": ""})
    contracts = _contracts(tmp_path)

    def asset_hash(architecture=ec2.InstanceArchitecture.ARM_64) -> str:
        _, stack = _bundled_app(tmp_path / "out", bundle=False)
        props = ServiceBundleProps(architecture=architecture, source_dir=services, shared_packages=(contracts,))
        return ServiceBundle(stack, "Bundle", props=props).asset.asset_hash

    base = asset_hash()
    (contracts / "__pycache__" / "orders.cpython-311.pyc").write_text("other bytecode")
    assert asset_hash() == base
    assert asset_hash(ec2.InstanceArchitecture.X86_64) != base
    (contracts / "orders.py").write_text("ORDER_PLACED = 'Placed'\n")
    changed = asset_hash()
    assert changed != base
    (services / "requirements.txt").write_text("flask==3.1.2\n")  # shipped: the wheels follow it
    assert asset_hash() not in (base, changed)


def test_docker_fallback_builds_the_same_layout_as_the_local_bundler(tmp_path):
    lambdas = _tree(
        tmp_path / "src" / "lambdas",
        {
            "requirements.txt": "",
            "orders/handler.py": "",
            "orders/tests/test_handler.py": "",
            "conftest.py": "",
        },
    )
    trees = code_trees(lambdas, [_contracts(tmp_path / "src")])
    local, docker = tmp_path / "local", tmp_path / "docker"
    copy_trees(trees, local, CODE_EXCLUDES)
    # The fallback's shell, run against the same mount points as directories on this machine.
    script = docker_copy_command(trees, CODE_EXCLUDES)
    script = script.replace("/asset-input", str(tmp_path / "src")).replace("/asset-output", str(docker))
    subprocess.run(["bash", "-c", script], check=True)
    assert _files(docker) == _files(local) == {"orders/handler.py", "contracts/__init__.py", "contracts/orders.py"}


def test_a_shared_package_that_is_named_must_exist(tmp_path):
    """The handlers import `contracts`: an asset without it must fail the synth, not the first invocation."""
    missing = tmp_path / "contracts"
    _, stack = _bundled_app(tmp_path / "out", bundle=False)
    with pytest.raises(FileNotFoundError, match="contracts"):
        LambdaPackaging(stack, "Packaging", props=_packaging_props(missing))
    trees = code_trees(dependency_layer.LAMBDAS_DIR, [missing])
    with pytest.raises(FileNotFoundError, match="contracts"):
        SourceTreeBundler(trees, CODE_EXCLUDES).try_bundle(str(tmp_path / "bundle"), image=IGNORED)


def test_a_stack_has_one_packaging(tmp_path):
    _, stack = _bundled_app(tmp_path / "out", bundle=False)
    props = _packaging_props(_contracts(tmp_path))
    assert LambdaPackaging.of(stack, props) is LambdaPackaging.of(stack, props)
    other = LambdaPackagingProps(runtime=lambda_.Runtime.PYTHON_3_12, architecture=lambda_.Architecture.X86_64)
    with pytest.raises(ValueError, match="shares one LambdaPackaging"):
        LambdaPackaging.of(stack, other)
