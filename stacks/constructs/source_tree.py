"""Python source trees shipped in an asset: which files, under which directory, and the hash that
says when the asset changed.

An asset that combines several source directories (the Lambda code plus the shared `contracts`
package; the tier services plus `contracts`) is bundled locally by copying each tree to its place.
Its hash is computed here, before bundling, from exactly the files that are shipped - the same
exclusions apply to the copy and to the hash - so the asset changes when one of its sources changes
and only then, and a synth whose cdk.out already holds that asset skips bundling.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import jsii

REPO_ROOT = Path(__file__).resolve().parents[2]
# The shared order/event models: shipped beside the code in the Lambda code asset and the service bundle.
CONTRACTS_DIR = REPO_ROOT / "contracts"


def app_shared_packages() -> tuple[Path, ...]:
    """The shared top-level packages this app ships beside its code: `contracts/`, the one contract
    (the default of the constructs' `shared_packages`; every package named must exist)."""
    return (CONTRACTS_DIR,)


@dataclass(frozen=True)
class SourceTree:
    """`source` is copied to `target` inside the asset ("." is the asset root)."""

    source: Path
    target: str = "."


def _require(tree: SourceTree) -> None:
    if not tree.source.is_dir():
        raise FileNotFoundError(f"{tree.source}: missing, but the asset ships it as {tree.target}/")


def _excluded(name: str, excluded: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in excluded)


def shipped_files(tree: SourceTree, excluded: Sequence[str]) -> Iterator[Path]:
    """The files of `tree` that go into the asset, in a stable order. A pattern matches a file or
    directory name at any depth (as `shutil.ignore_patterns` does); an excluded directory is pruned."""
    for directory, subdirs, files in os.walk(tree.source, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if not _excluded(d, excluded))
        for name in sorted(files):
            if not _excluded(name, excluded):
                yield Path(directory) / name


def content_hash(trees: Sequence[SourceTree], excluded: Sequence[str], *inputs: str) -> str:
    """sha256 over every shipped file's path and bytes, tree by tree, plus `inputs` (e.g. the target
    platform and Python version of bundled wheels)."""
    digest = hashlib.sha256()
    for tree in trees:
        _require(tree)
        digest.update(f"tree\0{tree.target}\0".encode())
        for path in shipped_files(tree, excluded):
            digest.update(f"file\0{path.relative_to(tree.source).as_posix()}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    for value in inputs:
        digest.update(f"input\0{value}\0".encode())
    return digest.hexdigest()


def copy_trees(trees: Sequence[SourceTree], output: Path, excluded: Sequence[str]) -> None:
    for tree in trees:
        _require(tree)
        shutil.copytree(tree.source, output / tree.target, ignore=shutil.ignore_patterns(*excluded), dirs_exist_ok=True)


def common_root(trees: Sequence[SourceTree]) -> Path:
    """The directory the asset is declared on (and Docker mounts as /asset-input): the trees' common parent."""
    return Path(os.path.commonpath([tree.source for tree in trees]))


def docker_copy_command(trees: Sequence[SourceTree], excluded: Sequence[str]) -> str:
    """Shell for the Docker fallback, producing the same layout as `copy_trees` from the mounted
    common root: each tree copied to its target, then every excluded name pruned."""
    root = common_root(trees)
    steps = []
    for tree in trees:
        source = f"/asset-input/{tree.source.relative_to(root).as_posix()}"
        target = "/asset-output" if tree.target == "." else f"/asset-output/{tree.target}"
        steps.append(f"mkdir -p {target} && cp -r {source}/. {target}/")
    prune = " -o ".join(f"-name '{pattern}'" for pattern in excluded)
    steps.append(f"find /asset-output \\( {prune} \\) -prune -exec rm -rf {{}} +")
    return " && ".join(steps)


@jsii.implements(cdk.ILocalBundling)
class SourceTreeBundler:
    """CDK local bundler: copies the trees into the output, then runs `then(output)` (e.g. pip)."""

    def __init__(
        self, trees: Sequence[SourceTree], excluded: Sequence[str], then: Callable[[Path], None] | None = None
    ) -> None:
        self.trees, self.excluded, self.then = tuple(trees), tuple(excluded), then

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_options: object) -> bool:
        output = Path(output_dir)
        copy_trees(self.trees, output, self.excluded)
        if self.then is not None:
            self.then(output)
        return True
