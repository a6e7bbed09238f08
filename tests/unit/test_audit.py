"""scripts/audit.py's verdicts, on canned pip-audit and npm audit documents (no network)."""

import datetime as dt

import pytest

from scripts.audit import AuditUnavailable, load_exceptions, parse_npm_audit, parse_pip_audit, problems_of

TODAY = dt.date(2026, 12, 1)
PIP_REPORT = {
    "dependencies": [
        {"name": "flask", "version": "3.1.3", "vulns": []},
        {
            "name": "jinja2",
            "version": "3.1.4",
            "vulns": [{"id": "GHSA-q2x7-8rv6-6q7h", "fix_versions": ["3.1.5"], "aliases": ["CVE-2024-56326"]}],
        },
        {"name": "loosely-coupled-aws", "skip_reason": "Dependency not found on PyPI and could not be audited"},
    ],
    "fixes": [],
}


def exceptions(body: str):
    return load_exceptions(body, TODAY)


def test_a_vulnerability_fails_the_audit():
    findings, unaudited = parse_pip_audit(PIP_REPORT, ".venv")
    assert [f.package for f in findings] == ["jinja2"] and unaudited == []
    [problem] = problems_of(findings, {".venv": unaudited}, [])
    assert problem.startswith("vulnerable: .venv: jinja2 3.1.4: CVE-2024-56326, GHSA-q2x7-8rv6-6q7h (fixed in: 3.1.5)")


def test_a_recorded_exception_lets_it_pass_by_id_or_alias():
    findings, _ = parse_pip_audit(PIP_REPORT, ".venv")
    for advisory in ("GHSA-q2x7-8rv6-6q7h", "CVE-2024-56326"):
        valid, problems = exceptions(
            f'[[exception]]\nid = "{advisory}"\npackage = "Jinja2"\nreason = "Only the sandboxed renderer is affected; unused."\nexpires = 2027-01-31\n'
        )
        assert problems == [] and problems_of(findings, {}, valid) == []
    # An exception for another package does not cover it.
    valid, _ = exceptions(
        '[[exception]]\nid = "CVE-2024-56326"\npackage = "flask"\nreason = "' + "x" * 30 + '"\nexpires = 2027-01-31\n'
    )
    assert len(problems_of(findings, {}, valid)) == 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('id = "X"\npackage = "p"\nreason = "' + "r" * 30 + '"\nexpires = 2026-11-30', "expired on 2026-11-30"),
        ('id = "X"\npackage = "p"\nreason = "because"\nexpires = 2027-01-01', "give a real reason"),
        ('id = "X"\npackage = "p"\nreason = "' + "r" * 30 + '"\nexpires = "soon"', "expires must be a TOML date"),
        ('id = "X"\nreason = "' + "r" * 30 + '"', "missing package, expires"),
    ],
)
def test_an_expired_or_unreasoned_exception_fails_the_audit(entry, message):
    valid, problems = exceptions(f"[[exception]]\n{entry}\n")
    assert valid == [] and len(problems) == 1 and message in problems[0]


def test_a_package_that_could_not_be_audited_fails_the_audit_but_the_project_itself_does_not():
    report = {
        "dependencies": [
            {"name": "loosely-coupled-aws", "skip_reason": "not on PyPI"},
            {
                "name": "pydantic",
                "version": "2.14.3",
                "skip_reason": "Dependency not found on PyPI and could not be audited",
            },
        ]
    }
    findings, unaudited = parse_pip_audit(report, ".venv-cloud")
    assert findings == [] and len(unaudited) == 1
    [problem] = problems_of(findings, {".venv-cloud": unaudited}, [])
    assert (
        problem.startswith(".venv-cloud: 1 package(s) could not be audited")
        and "pydantic: Dependency not found" in problem
    )


def test_npm_findings_and_an_unreachable_npm_audit():
    report = {
        "auditReportVersion": 2,
        "vulnerabilities": {
            "tar": {
                "severity": "high",
                "range": "<6.2.1",
                "via": [{"source": 1097493, "url": "https://github.com/advisories/GHSA-f5x3-32g6-xq36"}],
            },
            "aws-cdk": {"severity": "high", "range": "*", "via": ["tar"]},  # only through tar
        },
    }
    [finding] = parse_npm_audit(report)
    assert finding.package == "tar" and finding.ids == frozenset({"GHSA-f5x3-32g6-xq36"})
    refused = {
        "message": "405 Method Not Allowed - POST https://registry.example/-/npm/v1/security/advisories/bulk",
        "statusCode": 405,
        "error": {},
    }
    with pytest.raises(AuditUnavailable, match="405 Method Not Allowed"):
        parse_npm_audit(refused)


def test_the_repositorys_exceptions_file_is_valid():
    from scripts.audit import EXCEPTIONS_FILE

    _, problems = load_exceptions(EXCEPTIONS_FILE.read_text(), dt.date.today())
    assert problems == []
