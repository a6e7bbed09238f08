"""cfn-lint over every synthesized template of every stage: zero errors and zero warnings."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cfn_lint_is_clean_for_every_stage(sandbox, production, local):
    templates = sorted(str(p) for s in (sandbox, production, local) for p in Path(s.outdir).glob("*.template.json"))
    assert len(templates) >= 3 * len(sandbox.templates)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--config-file",
            str(ROOT / ".cfnlintrc.yaml"),
            "--",
            *templates,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
