"""The storefront scenario `make local` runs after the deploy, through the public entry points only:
the internet-facing web ALB (log in, fill the cart, place the order) and the REST API (orders with
an API key and an Idempotency-Key, checkout, approvals). Progress is observed through the same API
(`GET /orders/{id}`), never by reading the database.

The one step that is not an entry point of the storefront is the warehouse's: the inventory table is
stocked for the catalogue's SKUs (only those not stocked yet), as a stock feed would on AWS.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from localcloud.identity import DEMO_USERS
from localcloud.settings import Settings
from localcloud.storefront import (
    Deployed,
    HttpClient,
    api_client,
    back_office_client,
    idempotency_key,
    wait_for,
    web_client,
)

API_ORDERS = 20
CLIENTS = 4
INITIAL_STOCK = 1000
DEMO_USER = ("alice", DEMO_USERS["alice"])  # localcloud/identity.py (the Cognito user pool)
DECLINED_CARD = "4000000000000002"  # docs/design.md: a card ending in 0002 is declined
SETTLED = {"RECEIVED", "CONFIRMED", "COMPLETED", "CANCELLED"}  # recorded by the fulfilment consumer
FINAL = {"CONFIRMED", "COMPLETED", "CANCELLED"}  # past the cancel window (order finaliser) or checked out


@dataclass
class Outcome:
    web_orders: list[str] = field(default_factory=list)
    api_orders: list[str] = field(default_factory=list)
    duplicates_suppressed: int = 0
    statuses: dict[str, str] = field(default_factory=dict)  # order id -> status
    checkouts: dict[str, str] = field(default_factory=dict)  # what was tried -> final order status
    approvals: int = 0
    api_url: str = ""
    api_key: str = ""

    def report_lines(self) -> list[str]:
        placed = len(self.web_orders) + len(self.api_orders)
        processed = sum(status in SETTLED for status in self.statuses.values())
        by_status: dict[str, int] = {}
        for status in self.statuses.values():
            by_status[status] = by_status.get(status, 0) + 1
        return [
            f"  orders:      {placed} placed ({len(self.web_orders)} through the web ALB, {len(self.api_orders)} "
            f"through the API; {self.duplicates_suppressed} repeated Idempotency-Key answered with the same order)",
            f"               {processed}/{placed} processed (recorded by the consumers); status now: "
            + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())),
            "  checkout:    "
            + ", ".join(f"{what} -> {status}" for what, status in self.checkouts.items())
            + f"; {self.approvals} human approval",
        ]


def stock_catalogue(settings: Settings, deployed: Deployed, say) -> None:
    from services.web.catalog import CATALOG

    table = settings.client("dynamodb")
    name = deployed.physical_id("Data/InventoryTable")
    stocked = 0
    for sku in CATALOG:
        try:
            table.put_item(
                TableName=name,
                Item={"sku": {"S": sku}, "on_hand": {"N": str(INITIAL_STOCK)}, "reserved": {"N": "0"}},
                ConditionExpression="attribute_not_exists(sku)",
            )
            stocked += 1
        except table.exceptions.ConditionalCheckFailedException:
            pass
    say(
        f"warehouse: {stocked} of {len(CATALOG)} catalogue SKUs stocked with {INITIAL_STOCK} units "
        f"({len(CATALOG) - stocked} already stocked)"
    )


def shop_on_the_web(settings: Settings, web_alb: str, say) -> str:
    browser = web_client(settings, web_alb)
    user, password = DEMO_USER
    _expect(browser.post("/login", {"username": user, "password": password}), 200, "login")
    _expect(browser.post("/cart/items", {"sku": "SKU-TEA-001", "quantity": 2}), 201, "add to cart")
    cart = _expect(browser.post("/cart/items", {"sku": "SKU-MUG-002", "quantity": 1}), 201, "add to cart")
    placed = _expect(browser.post("/orders"), 202, "place the cart's order")
    say(
        f"web: {user} logged in, cart of {sum(i['quantity'] for i in cart['items'])} items "
        f"({cart['total']:.2f} {cart['currency']}), order {placed['order_id']} placed"
    )
    return placed["order_id"]


def order_body(n: int) -> dict:
    return {
        "customer_id": f"api-client-{n % 5}",
        "currency": "EUR",
        "items": [
            {"sku": "SKU-TEA-001", "quantity": 1 + n % 3, "unit_price": 8.5},
            {"sku": "SKU-POT-003", "quantity": 1, "unit_price": 49.9},
        ],
    }


def place_through_the_api(api: HttpClient, say) -> tuple[list[str], int]:
    def place(n: int) -> str:
        return _expect(
            api.post("/orders", order_body(n), headers={"Idempotency-Key": f"scenario-{run}-{n}"}), 202, "POST /orders"
        )["order_id"]

    run = idempotency_key()[:8]
    with ThreadPoolExecutor(CLIENTS) as pool:
        order_ids = list(pool.map(place, range(API_ORDERS)))
    # A client that did not see the answer retries with the same key: same order, nothing published twice.
    repeat = place(0)
    duplicates = 1 if repeat == order_ids[0] else 0
    say(
        f"api: {API_ORDERS} orders placed by {CLIENTS} concurrent clients; a retried request returned the "
        f"{'same' if duplicates else 'a different'} order"
    )
    return order_ids, duplicates


def wait_until_processed(api: HttpClient, order_ids: list[str], say, timeout: float = 180) -> dict[str, str]:
    """Poll GET /orders/{id} until the fulfilment consumer has recorded every order; return the statuses."""
    statuses: dict[str, str] = {}

    def all_settled() -> bool:
        for order_id in order_ids:
            if statuses.get(order_id) in FINAL:
                continue
            answer = api.get(f"/orders/{order_id}")
            if answer.status == 200:
                statuses[order_id] = answer.body["status"]
        return all(statuses.get(o) in SETTLED for o in order_ids)

    started = time.monotonic()
    wait_for(all_settled, timeout, f"{len(order_ids)} orders recorded", interval=1.0)
    say(
        f"consumers: {len(order_ids)} order{'s' if len(order_ids) > 1 else ''} recorded "
        f"after {time.monotonic() - started:.1f}s"
    )
    return statuses


def checkout(
    api: HttpClient, order_id: str, say, *, approve: bool = False, back_office: HttpClient | None = None, **payment
) -> str:
    """`back_office`: the SigV4-signing client the staff routes (approvals) need; required with `approve`."""
    _expect(api.post(f"/orders/{order_id}/checkout", payment), 202, "checkout")
    if approve:
        assert back_office is not None, "an approval is a staff action: it needs the back-office client"
        staff = back_office
        wait_for(
            lambda: any(a["order_id"] == order_id for a in staff.get("/approvals").body["approvals"]),
            60,
            f"the approval request of {order_id}",
        )
        say(
            f"checkout {order_id}: waiting for approval (total >= 1000): approving through POST /approvals "
            "(SigV4, back-office role)"
        )
        decided = staff.post(f"/approvals/{order_id}", {"decision": "approve", "reason": "scenario"})
        _expect(decided, 200, "approve")
    final = wait_for(
        lambda: (s := api.get(f"/orders/{order_id}").body.get("status")) in ("COMPLETED", "CANCELLED") and s,
        120,
        f"checkout of {order_id}",
        interval=1.0,
    )
    return final


def run(settings: Settings, result, say) -> Outcome:
    deployed = Deployed(settings, settings.cdk_out)
    api = api_client(settings, deployed)
    back_office = back_office_client(settings, deployed)
    outcome = Outcome(api_url=api.base_url, api_key=api.headers["x-api-key"])
    stock_catalogue(settings, deployed, say)
    web = result.tiers.get("web")
    if web is not None:
        outcome.web_orders.append(shop_on_the_web(settings, web.load_balancer_name, say))
    outcome.api_orders, outcome.duplicates_suppressed = place_through_the_api(api, say)
    outcome.statuses = wait_until_processed(api, outcome.web_orders + outcome.api_orders, say)

    large = _expect(
        api.post(
            "/orders",
            {
                "customer_id": "api-client-vip",
                "currency": "EUR",
                "items": [{"sku": "SKU-KET-004", "quantity": 12, "unit_price": 89.0}],
            },
            headers={"Idempotency-Key": idempotency_key()},
        ),
        202,
        "POST /orders",
    )["order_id"]
    outcome.api_orders.append(large)
    outcome.statuses.update(wait_until_processed(api, [large], say))
    plans = {
        "small order": (outcome.api_orders[0], {}, False),
        "declined card": (outcome.api_orders[1], {"card_number": DECLINED_CARD}, False),
        "flaky gateway": (outcome.api_orders[2], {"payment_token": "flaky-1"}, False),
        "large order": (large, {}, True),
    }
    for what, (order_id, payment, approve) in plans.items():
        status = checkout(api, order_id, say, approve=approve, back_office=back_office, **payment)
        outcome.checkouts[what] = status
        outcome.statuses[order_id] = status
        outcome.approvals += int(approve and status == "COMPLETED")
        say(f"checkout {what}: order {order_id} {status}")
    # Where every order stands now. An order whose cancel-window message reached the finaliser before
    # fulfilment had recorded it is confirmed on the message's redelivery (visibility timeout: 180 s).
    for order_id, status in list(outcome.statuses.items()):
        if status not in FINAL:
            answer = api.get(f"/orders/{order_id}")
            if answer.status == 200:
                outcome.statuses[order_id] = answer.body["status"]
    return outcome


def _expect(response, status: int, what: str) -> dict:
    if response.status != status:
        raise RuntimeError(f"{what}: expected HTTP {status}, got {response.status}: {response.body}")
    return response.body
