"""The Lambda table of docs/design.md is the contract with the stacks: every handler path it names
exists, every handler module is in it, and each handler module imports with no environment variable
beyond the ones listed for it (and reads no other one in its own code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stacks.workflow_stack import CHECKOUT_TASKS
from tests.unit.lambdas.helpers import HANDLER_MODULES

ROOT = Path(__file__).resolve().parents[3]
DESIGN = ROOT / "docs" / "design.md"
LAMBDAS = ROOT / "lambdas"
STOREFRONT_VARIABLES = {
    "ORDER_EVENTS_TOPIC_ARN",
    "ORDERS_TABLE",
    "IDEMPOTENCY_TABLE",
    "CHECKOUT_STATE_MACHINE_ARN",
    "INVENTORY_TABLE",
    "INVENTORY_EVENTS_QUEUE_URL",
    "HANDOFF_BUCKET",
    "CANCEL_WINDOW_QUEUE_URL",
    "RECOMMENDATIONS_FUNCTION_NAME",
    "ACTIVITY_STATE_MACHINE_ARN",
    "CONNECTIONS_TABLE",
    "USER_POOL_ID",
    "USER_POOL_CLIENT_ID",
    "WEBSOCKET_CALLBACK_URL",
}
# `env("NAME")` / `aws.env("NAME")` (plumbing.aws.env: a required variable).
ENV_READ = re.compile(r"\benv\(\s*\"([A-Z_]+)\"\s*\)")


def design_functions() -> list[tuple[str, list[str], set[str]]]:
    """(module, [handler functions], {env vars}) for each row of the Lambda functions table."""
    section = DESIGN.read_text().split("## Lambda functions", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        # A `|` inside backticks (`"approve"|"reject"`) is not a column separator.
        line = re.sub(r"`[^`]*`", lambda code: code.group(0).replace("|", "/"), line)
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("`"):
            continue
        paths = re.findall(r"`([^`]+)`", cells[1])
        module, _, first = paths[0].rpartition(".")
        handlers = [first] + [path.lstrip(".") for path in paths[1:]]
        rows.append((module, handlers, set(re.findall(r"`([A-Z_]+)`", cells[3]))))
    return rows


def module_source(module: str) -> str:
    return (LAMBDAS / Path(*module.split("."))).with_suffix(".py").read_text()


FUNCTIONS = design_functions()


def test_the_design_table_was_read():
    assert len(FUNCTIONS) == 16
    assert (
        "checkout.handlers.tasks",
        list(CHECKOUT_TASKS),
    ) in [(m, h) for m, h, _ in FUNCTIONS]


def test_every_handler_module_is_in_the_design_table():
    assert {module for module, _, _ in FUNCTIONS} == set(HANDLER_MODULES)


def test_the_design_table_names_only_storefront_variables():
    assert set().union(*(variables for _, _, variables in FUNCTIONS)) == STOREFRONT_VARIABLES


def test_the_lambda_code_reads_exactly_the_storefront_variables():
    """No stale variable lingers on either side (CANCEL_QUEUE_URL went with the dual write)."""
    read = {name for path in LAMBDAS.rglob("*.py") for name in ENV_READ.findall(path.read_text())}
    assert read == STOREFRONT_VARIABLES


@pytest.mark.parametrize(("module", "handlers", "variables"), FUNCTIONS, ids=[f"{m}:{h[0]}" for m, h, _ in FUNCTIONS])
def test_handler_exists_and_needs_only_its_documented_variables(
    aws, load_handler, monkeypatch, module, handlers, variables
):
    for name in STOREFRONT_VARIABLES - variables:
        monkeypatch.delenv(name, raising=False)

    loaded = load_handler(module)

    for handler in handlers:
        assert callable(getattr(loaded, handler)), f"{module}.{handler}"
    # Variables read at call time (not at import) are documented too.
    assert set(ENV_READ.findall(module_source(module))) <= variables, module
