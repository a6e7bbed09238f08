"""cfn-lint over every synthesized template of every stage: zero errors and zero warnings.

cfn-lint is single-threaded; the templates are split across one process per core, so the check takes
half the time on the two-core machines this runs on."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cfn_lint_is_clean_for_every_stage(sandbox, production, local):
    templates = sorted(str(p) for s in (sandbox, production, local) for p in Path(s.outdir).glob("*.template.json"))
    assert len(templates) >= 3 * len(sandbox.templates)
    command = [str(Path(sys.executable).parent / "cfn-lint"), "--config-file", str(ROOT / ".cfnlintrc.yaml"), "--"]
    shares = [templates[i :: max(1, os.cpu_count() or 1)] for i in range(max(1, os.cpu_count() or 1))]
    runs = [
        subprocess.Popen([*command, *share], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for share in shares
        if share
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0] * len(runs), "\n".join(outputs)
