"""`localcloud up` skips the synth only when the assembly was made from exactly these sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcloud import deploy
from localcloud.settings import Settings


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in deploy.SYNTH_INPUT_FILES:
        (tmp_path / name).write_text(f"{name}\n")
    for tree in deploy.SYNTH_INPUT_TREES:
        (tmp_path / tree / "pkg").mkdir(parents=True)
        (tmp_path / tree / "pkg" / "module.py").write_text("VALUE = 1\n")
    return tmp_path


def test_the_fingerprint_follows_every_input_and_ignores_caches(project: Path):
    base = deploy.synth_inputs_fingerprint(project)
    assert deploy.synth_inputs_fingerprint(project) == base
    (project / "stacks" / "pkg" / "__pycache__").mkdir()
    (project / "stacks" / "pkg" / "__pycache__" / "module.cpython-311.pyc").write_bytes(b"\x00")
    assert deploy.synth_inputs_fingerprint(project) == base  # bytecode is not an input
    (project / "lambdas" / "pkg" / "module.py").write_text("VALUE = 2\n")
    changed = deploy.synth_inputs_fingerprint(project)
    assert changed != base
    (project / "contracts" / "pkg" / "new.py").write_text("")
    assert deploy.synth_inputs_fingerprint(project) not in (base, changed)  # a new file counts too
    (project / "cdk.json").write_text("{}\n")
    assert deploy.synth_inputs_fingerprint(project) not in (base, changed)


def test_every_tree_an_asset_is_made_from_is_a_synth_input():
    """A page or diagram edited is a changed assembly: the storefront's pages once were not inputs, and a
    second `make local` served the old ones."""
    from stacks import storefront_stack
    from stacks.constructs import dependency_layer, service_bundle, source_tree

    asset_trees = [
        storefront_stack.PAGES,
        storefront_stack.DIAGRAMS,
        dependency_layer.LAMBDAS_DIR,
        service_bundle.SERVICES_DIR,
        source_tree.CONTRACTS_DIR,
    ]
    inputs = [deploy.ROOT / tree for tree in deploy.SYNTH_INPUT_TREES]
    for tree in asset_trees:
        assert any(tree.is_relative_to(root) for root in inputs), f"{tree} is not a synth input"


def test_synth_runs_unless_the_assembly_matches_the_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    settings = Settings(state_dir=tmp_path)
    synths: list[list[str]] = []

    def fake_cli(args: list[str], *_: object) -> None:
        synths.append(args)
        settings.cdk_out.mkdir(exist_ok=True)
        (settings.cdk_out / "manifest.json").write_text("{}")

    fingerprint = ["one"]
    monkeypatch.setattr(deploy, "run_cli", fake_cli)
    monkeypatch.setattr(deploy, "synth_inputs_fingerprint", lambda root=None: fingerprint[0])
    monkeypatch.setattr(deploy, "ROOT", tmp_path)
    said: list[str] = []

    deploy.synthesize(settings, said.append)
    deploy.synthesize(settings, said.append)  # nothing changed: skipped
    fingerprint[0] = "two"
    deploy.synthesize(settings, said.append)  # a source changed: synthesized again

    assert len(synths) == 2
    assert sum("synth skipped" in line for line in said) == 1
    (settings.cdk_out / "manifest.json").unlink()
    deploy.synthesize(settings, said.append)  # the assembly is gone: synthesized again
    assert len(synths) == 3
