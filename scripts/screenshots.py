"""`make screenshots`: the storefront's catalogue, a cart, an order page waiting for payment and the
same page once the checkout completed (followed live over the WebSocket), as headless Chromium shows
them, in docs/storefront-{catalog,cart,pay,order}.png. Needs the local cloud (`make local`).
"""

from __future__ import annotations

import sys
import time

from localcloud.identity import DEMO_USERS
from localcloud.scenario import stock_catalogue
from localcloud.settings import ROOT, Settings
from localcloud.storefront import Deployed, storefront_client
from tests.e2e import browser as chromium

DOCS = ROOT / "docs"
PICTURES_LOADED = "return [...document.querySelectorAll('#catalog img')].every((i) => i.naturalWidth > 0)"
SHOTS = {name: DOCS / f"storefront-{name}.png" for name in ("catalog", "cart", "pay", "order")}


def main() -> int:
    why = chromium.missing()
    if why:
        print(why, file=sys.stderr)
        return 1
    settings = Settings.from_env()
    client = storefront_client(settings)
    if client.post("/login", {"username": "bob", "password": DEMO_USERS["bob"]}).status != 200:
        print(f"the storefront at {settings.storefront_url} does not answer: run `make local` first", file=sys.stderr)
        return 1
    for item in client.get("/cart").body["items"]:
        client.delete(f"/cart/items/{item['sku']}")
    deployed = Deployed(settings, settings.cdk_out)
    stock_catalogue(settings, deployed, print)  # the checkout reserves stock (the scenario's warehouse step)
    driver = chromium.start(1280, 1000)
    started = time.monotonic()
    try:
        page = chromium.Page(driver, settings.storefront_url)
        page.open()
        page.find("#catalog")
        page.sign_in("bob", DEMO_USERS["bob"])
        page.text_of("#account", "Signed in as bob")
        page.go("/")
        page.wait.until(lambda _: driver.execute_script(PICTURES_LOADED))
        page.screenshot(SHOTS["catalog"])
        for sku, quantity in (("SKU-TEA-001", "3"), ("SKU-POT-003", "1")):
            page.set_field(page.find(f"#qty-{sku}"), quantity)
            page.button("Add to cart", page.find(f'li[data-sku="{sku}"]')).click()
            page.message("Added")
        page.go("/cart")
        page.find("#cart-total")
        page.screenshot(SHOTS["cart"])
        page.button("Place order").click()
        page.find("#pay-form")  # shown once the order is recorded
        page.text_of("#order-transport", "live over a WebSocket")
        page.screenshot(SHOTS["pay"])
        page.button("Pay and check out").click()
        page.text_of("#order-status", "COMPLETED", timeout=90)
        page.screenshot(SHOTS["order"])
    finally:
        driver.quit()
    for shot in SHOTS.values():
        print(f"wrote {shot.relative_to(ROOT)}")
    print(f"screenshots taken in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
