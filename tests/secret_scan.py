"""Finds secret-looking values in text: synthesized templates, tracked files, the local cloud's logs.

Two kinds of finding: a value that *looks* like a credential wherever it appears (AWS access keys,
private keys), and a value that *is* one of the deployment's secrets (the Redis AUTH token, an API
key value), given by the caller, which only a running deployment knows. Shared by
tests/infra/test_secrets.py and tests/e2e/test_secrets_in_logs.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# High-signal patterns only: each match is a real leak or a deliberate fake that should not be there.
PATTERNS: dict[str, re.Pattern[str]] = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(
        r"(?i)aws_?secret_?access_?key[\"'\s]*[:=]\s*[\"']?(?![\"'\s])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
    ),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
}
# A secret shorter than this is not searched for: too many innocent matches, and none of ours is.
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True)
class Finding:
    where: str
    kind: str
    excerpt: str  # the match with its middle masked, so a report does not leak it again

    def __str__(self) -> str:
        return f"{self.where}: {self.kind} ({self.excerpt})"


def _masked(value: str) -> str:
    return value[:4] + "..." + value[-2:] if len(value) > 8 else "..."


def scan(text: str, where: str, secrets: Iterable[tuple[str, str]] = ()) -> list[Finding]:
    """Findings in `text`; `secrets` are (name, value) pairs of known secret values to look for."""
    findings = [
        Finding(where, kind, _masked(match.group(0)))
        for kind, pattern in PATTERNS.items()
        for match in pattern.finditer(text)
    ]
    for name, value in secrets:
        if len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"{name}: too short to search for safely ({len(value)} characters)")
        if value in text:
            findings.append(Finding(where, name, _masked(value)))
    return findings
