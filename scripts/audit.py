"""Dependency audit for `make lint`: pip-audit over both venvs, npm audit over the toolchain's lock file.

A known vulnerability fails the audit unless `audit-exceptions.toml` records it (its id or one of its
aliases, the package, a reason, an expiry date); an expired exception fails it as well, so every
exception is looked at again. A dependency that could not be audited fails it too: an audit service
that answers nothing must not read as "no known vulnerabilities" (pip-audit itself exits 0 when it
skips every package it could not look up).

    python -m scripts.audit [--exceptions audit-exceptions.toml] [--venv .venv --venv .venv-cloud]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENVS = (".venv", ".venv-cloud")
EXCEPTIONS_FILE = ROOT / "audit-exceptions.toml"
# Installed from this checkout, not from PyPI: nothing to look up.
OWN_PROJECTS = frozenset({"loosely-coupled-aws"})
MIN_REASON = 20


class AuditUnavailable(RuntimeError):
    """The audit could not be done (service unreachable, tool missing): the audit fails, it does not pass."""


@dataclass(frozen=True)
class Finding:
    source: str  # ".venv", ".venv-cloud" or "npm"
    package: str
    version: str
    ids: frozenset[str]  # the advisory id and its aliases (PYSEC-..., GHSA-..., CVE-...)
    summary: str = ""

    def __str__(self) -> str:
        return f"{self.source}: {self.package} {self.version}: {', '.join(sorted(self.ids))} {self.summary}".rstrip()


@dataclass(frozen=True)
class AuditException:
    id: str
    package: str
    reason: str
    expires: dt.date

    def covers(self, finding: Finding) -> bool:
        return self.id in finding.ids and self.package.lower() == finding.package.lower()


def load_exceptions(text: str, today: dt.date) -> tuple[list[AuditException], list[str]]:
    """The recorded exceptions still in force, and one problem line per invalid or expired entry."""
    exceptions, problems = [], []
    for number, entry in enumerate(tomllib.loads(text).get("exception", []), start=1):
        where = f"audit-exceptions.toml exception #{number} ({entry.get('id', '?')})"
        missing = [key for key in ("id", "package", "reason", "expires") if key not in entry]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        if not isinstance(entry["expires"], dt.date) or isinstance(entry["expires"], dt.datetime):
            problems.append(f"{where}: expires must be a TOML date (2027-01-31)")
            continue
        if len(str(entry["reason"]).strip()) < MIN_REASON:
            problems.append(f"{where}: give a real reason (why it does not apply, or what is waited for)")
            continue
        if entry["expires"] < today:
            problems.append(f"{where}: expired on {entry['expires']}: fix it or look at it again and extend it")
            continue
        exceptions.append(AuditException(entry["id"], entry["package"], str(entry["reason"]), entry["expires"]))
    return exceptions, problems


def parse_pip_audit(document: dict, source: str) -> tuple[list[Finding], list[str]]:
    """pip-audit's JSON (`--format json`): the vulnerabilities, and the packages it could not audit."""
    findings, unaudited = [], []
    for dependency in document.get("dependencies", []):
        name, version = dependency["name"], dependency.get("version", "?")
        if "skip_reason" in dependency:
            if name.lower() not in OWN_PROJECTS:
                unaudited.append(f"{name}: {dependency['skip_reason']}")
            continue
        for vuln in dependency.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions", [])) or "none"
            findings.append(
                Finding(
                    source, name, version, frozenset([vuln["id"], *vuln.get("aliases", [])]), f"(fixed in: {fixes})"
                )
            )
    return findings, unaudited


def parse_npm_audit(document: dict) -> list[Finding]:
    """`npm audit --json` (report version 2); an error document (registry refused the audit) raises."""
    if "error" in document or "auditReportVersion" not in document:
        raise AuditUnavailable(f"npm audit: {document.get('message') or document.get('error') or 'no report'}")
    findings = []
    for name, vulnerability in document.get("vulnerabilities", {}).items():
        advisories = [via for via in vulnerability.get("via", []) if isinstance(via, dict)]
        if not advisories:
            continue  # vulnerable only through another package, which is reported itself
        ids = frozenset(str(via.get("url", "")).rsplit("/", 1)[-1] or str(via.get("source")) for via in advisories)
        findings.append(
            Finding("npm", name, vulnerability.get("range", "?"), ids, f"({vulnerability.get('severity', '?')})")
        )
    return findings


def problems_of(
    findings: Iterable[Finding], unaudited: dict[str, list[str]], exceptions: Sequence[AuditException]
) -> list[str]:
    """Everything that fails the audit, one line each."""
    problems = []
    for finding in findings:
        if not any(exception.covers(finding) for exception in exceptions):
            problems.append(f"vulnerable: {finding}")
    for source, packages in unaudited.items():
        if packages:
            problems.append(
                f"{source}: {len(packages)} package(s) could not be audited (is the vulnerability service "
                f"reachable from here?), e.g. {packages[0]}"
            )
    return problems


def site_packages(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        raise AuditUnavailable(f"{venv.name}: no such venv (run make setup)")
    path = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(path)


def run_pip_audit(venv: Path) -> dict:
    """pip-audit (from .venv, pinned in pyproject's dev extras; `PIP_AUDIT` names another) over the
    venv's installed packages."""
    pip_audit = Path(os.environ.get("PIP_AUDIT", ROOT / ".venv" / "bin" / "pip-audit"))
    if not pip_audit.exists():
        raise AuditUnavailable("pip-audit is not installed in .venv: run make toolchain (it is a dev extra)")
    result = subprocess.run(
        [str(pip_audit), "--path", str(site_packages(venv)), "--format", "json", "--progress-spinner", "off"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    try:
        return json.loads(result.stdout)
    except ValueError:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise AuditUnavailable(f"pip-audit over {venv.name} failed (exit {result.returncode}): {last}") from None


def run_npm_audit() -> dict:
    result = subprocess.run(
        ["npm", "audit", "--package-lock-only", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise AuditUnavailable(f"npm audit failed (exit {result.returncode}): {result.stderr.strip()[-300:]}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exceptions", type=Path, default=EXCEPTIONS_FILE)
    parser.add_argument("--venv", action="append", help="venv to audit (default: .venv and .venv-cloud)")
    args = parser.parse_args(argv)
    exceptions, problems = load_exceptions(
        args.exceptions.read_text() if args.exceptions.exists() else "", dt.date.today()
    )
    findings: list[Finding] = []
    unaudited: dict[str, list[str]] = {}
    for name in args.venv or VENVS:
        try:
            found, skipped = parse_pip_audit(run_pip_audit(ROOT / name), name)
        except AuditUnavailable as error:
            problems.append(str(error))
            continue
        findings += found
        unaudited[name] = skipped
    try:
        findings += parse_npm_audit(run_npm_audit())
    except AuditUnavailable as error:
        problems.append(str(error))
    problems += problems_of(findings, unaudited, exceptions)
    for exception in exceptions:
        if any(exception.covers(f) for f in findings):
            print(f"excepted until {exception.expires}: {exception.package} {exception.id}: {exception.reason}")
    if problems:
        print("dependency audit FAILED:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"dependency audit: no known vulnerability outside audit-exceptions.toml ({len(findings)} excepted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
