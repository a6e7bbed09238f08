"""The web tier's Flask app: sign-in (Amazon Cognito), cart, order placement through the backend.

Stateless by design: everything that must survive a request (session, cart, checkout token) is in the
stage's session store, Redis or DynamoDB (services/web/store.py), so the ALB may send any request to
any instance and Auto Scaling may replace instances at will.

State-changing endpoints accept JSON only (Flask answers 415 otherwise). With the SameSite=Lax session
cookie that is the CSRF defence: a cross-site form cannot send JSON, and cross-site fetch with JSON
needs a CORS preflight that this app never grants.
"""

from __future__ import annotations

import logging
import re
import time
from decimal import Decimal
from typing import Any, cast

from flask import Flask, jsonify, request, session
from flask_session.base import ServerSideSession, ServerSideSessionInterface
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix

from contracts import limits
from contracts.activity import CART_ITEM_ADDED, PRODUCT_VIEWED, SEARCH_PERFORMED, normalise_query
from contracts.catalog import CATALOG as PUBLISHED_CATALOG
from contracts.orders import OrderItem, OrderRequest
from services.common.discovery import Discovery
from services.common.observability import install_request_hooks
from services.common.redis_client import RedisProvider
from services.common.settings import ServiceSettings
from services.web import cart, checkout
from services.web.activity import ActivityRecorder
from services.web.auth import CognitoSignIn, IdentityUnavailable, SignInRefused
from services.web.backend_client import BackendClient, BackendUnavailable
from services.web.catalog import CATALOG
from services.web.sessions import init_sessions
from services.web.store import RedisStore, SessionStore, open_store

logger = logging.getLogger("web")
CURRENCY = limits.DEFAULT_CURRENCY
_ORDER_ID = re.compile(r"^[0-9a-f-]{36}$")
# The prefix the storefront's CDN routes to this tier (stacks/storefront_stack.py); the routes answer
# with and without it.
API_PREFIX = "/api"
SESSION_EXPIRED = "session expired, sign in again"


def _error(http_status: int, message: str, **extra: Any):
    return jsonify({"error": message, **extra}), http_status


def _json_object() -> dict[str, Any]:
    """The request's JSON object body: 415 if not JSON (Flask), 400 if not an object."""
    body = request.get_json()
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01")))


def create_app(
    settings: ServiceSettings,
    *,
    discovery: Discovery | None = None,
    redis_provider: RedisProvider | None = None,
    store: SessionStore | None = None,
    sign_in: CognitoSignIn | None = None,
) -> Flask:
    """`store`: the session store (default: the one the `session-store` discovery parameter names);
    `redis_provider` alone means a Redis store on that provider. `sign_in`: Amazon Cognito, found
    through the `user-pool-id` and `user-pool-client-id` discovery parameters (services/web/auth.py)."""
    app = Flask("web")
    # One proxy hop (the ALB): trust its X-Forwarded-For/-Proto so request.is_secure reflects HTTPS.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]
    # Every route answers under /api too: CloudFront sends /api/* to this tier and everything else to the
    # pages in S3, so the pages and their calls are one origin (no CORS).
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {API_PREFIX: app.wsgi_app})  # type: ignore[method-assign]
    discovery = discovery or Discovery(settings.discovery_prefix, ttl_seconds=settings.discovery_ttl_seconds)
    if store is None:
        store = RedisStore(redis_provider) if redis_provider else open_store(discovery, redis_tls=settings.redis_tls)
    backend = BackendClient(discovery, settings.alb_gateway)
    activity = ActivityRecorder(discovery)
    sign_in = sign_in or CognitoSignIn(discovery, jwks_endpoint=settings.cognito_jwks_endpoint)
    init_sessions(app, store.session_interface)
    install_request_hooks(app, settings.served_by)

    def current_user() -> str | None:
        return session.get("user")

    def logged_in_user() -> str:
        """The user of a request past `_require_login`, which answers 401 without one."""
        user = current_user()
        assert user is not None
        return user

    def cart_view(customer_id: str) -> dict[str, Any]:
        items, total = [], Decimal(0)
        for sku, quantity in sorted(store.cart_lines(customer_id).items()):
            product = CATALOG.get(sku)
            if product is None:  # withdrawn from the catalogue since it was added
                continue
            line_total = product.unit_price * quantity
            total += line_total
            items.append(
                {
                    "sku": sku,
                    "name": product.name,
                    "quantity": quantity,
                    "unit_price": _money(product.unit_price),
                    "line_total": _money(line_total),
                }
            )
        return {"customer_id": customer_id, "items": items, "total": _money(total), "currency": CURRENCY}

    def _store_down(error: Exception):
        logger.error("session store unavailable", extra={"error": str(error), "store": store.name})
        return _error(503, "session store unavailable, try again shortly")

    for unavailable in store.unavailable:
        app.register_error_handler(unavailable, _store_down)

    @app.errorhandler(InternalServerError)
    def _internal_error(error: InternalServerError):
        # Opening the session happens before any view runs, so the store failing there arrives here.
        if isinstance(error.original_exception, store.unavailable):
            return _store_down(error.original_exception)
        return _error(500, "internal error")

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        return _error(error.code or 500, error.description or error.name)

    def websocket_url() -> str | None:
        """The live-status WebSocket API's URL (the LiveStatus stack's discovery parameters), None without one."""
        api_id, stage = discovery.optional("websocket-api-id"), discovery.optional("websocket-stage")
        if settings.execute_api_endpoint and api_id and stage:
            base = settings.execute_api_endpoint.rstrip("/").replace("https://", "wss://").replace("http://", "ws://")
            return f"{base}/_aws/execute-api/{api_id}/{stage}"
        return discovery.optional("websocket-url")

    @app.before_request
    def _require_login():
        if request.endpoint in {"health", "login", "logout", "catalog"} or request.endpoint is None:
            return None
        if current_user() is None:
            return _error(401, "login required")
        # The session lives as long as the Cognito ID token it was opened with: then sign in again.
        if int(session.get("token_expires_at", 0)) <= int(time.time()):
            session.clear()  # ends the stored session and expires the cookie
            return _error(401, SESSION_EXPIRED)
        return None

    @app.get("/health")
    def health():
        # 200 even when the session store is unreachable: an outage of the shared store must not make
        # the ALB/ASG health check replace every healthy instance; the body says what is wrong.
        store_ok = store.reachable()
        return jsonify(
            {
                "status": "ok" if store_ok else "degraded",
                "session_store": store.name,
                "store_reachable": store_ok,
                "service": "web",
            }
        )

    @app.get("/catalog")
    def catalog():
        # The contract's catalogue, the one GET /catalog of the REST API serves; public, like a shop window.
        response = jsonify(PUBLISHED_CATALOG.model_dump(mode="json"))
        response.cache_control.public = True
        response.cache_control.max_age = 60
        return response

    @app.post("/login")
    def login():
        body = _json_object()
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
            return _error(401, "unknown user or wrong password")
        try:
            signed_in = sign_in.sign_in(username, password)
        except SignInRefused:
            logger.info("sign-in refused")  # no name: failed sign-ins must not leak who tried
            return _error(401, "unknown user or wrong password")
        except IdentityUnavailable:
            return _error(503, "sign-in is unavailable, try again shortly")
        user = signed_in.identity.customer
        # New session id on login: a session id planted before login (fixation) becomes worthless.
        cast(ServerSideSessionInterface, app.session_interface).regenerate(session)  # set by init_sessions
        session.clear()
        session["user"] = user
        session["logged_in_at"] = int(time.time())
        session["id_token"] = signed_in.id_token
        session["token_expires_at"] = signed_in.identity.expires_at
        logger.info("login")
        return jsonify({"user": user})

    @app.get("/session")
    def get_session():
        """Who is signed in, and what the page needs to open the live-status socket (`?token=`)."""
        return jsonify({"customer": logged_in_user(), "websocketUrl": websocket_url(), "token": session["id_token"]})

    @app.post("/logout")
    def logout():
        session.clear()  # Flask-Session deletes the stored session and expires the cookie
        return jsonify({"logged_out": True})

    def product_view(sku: str) -> dict[str, Any]:
        product = CATALOG[sku]
        return {"sku": sku, "name": product.name, "unit_price": _money(product.unit_price), "currency": CURRENCY}

    # Storefront activity (services/web/activity.py): each of these sends one event, best effort.
    @app.get("/products/<sku>")
    def get_product(sku: str):
        if sku not in CATALOG:
            return _error(404, f"unknown sku {sku!r}")
        activity.record(PRODUCT_VIEWED, current_user(), sku=sku)
        return jsonify(product_view(sku))

    @app.get("/search")
    def search():
        term = normalise_query(request.args.get("q", ""))
        if term is None:
            return _error(400, "q must contain a letter or a digit")
        activity.record(SEARCH_PERFORMED, current_user(), query=term)
        words = term.split()
        found = [sku for sku, product in CATALOG.items() if all(w in product.name.lower() for w in words)]
        return jsonify({"query": term, "products": [product_view(sku) for sku in sorted(found)]})

    @app.get("/cart")
    def get_cart():
        return jsonify(cart_view(logged_in_user()))

    @app.post("/cart/items")
    def add_to_cart():
        body = _json_object()
        sku, quantity = body.get("sku"), body.get("quantity", 1)
        if not isinstance(sku, str) or sku not in CATALOG:
            return _error(404, f"unknown sku {sku!r}")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= cart.MAX_QUANTITY:
            return _error(400, f"quantity must be an integer from 1 to {cart.MAX_QUANTITY}")
        try:
            store.cart_add(logged_in_user(), sku, quantity)
        except cart.CartLimitExceeded as error:
            return _error(400, str(error))
        activity.record(CART_ITEM_ADDED, logged_in_user(), sku=sku)
        return jsonify(cart_view(logged_in_user())), 201

    @app.delete("/cart/items/<sku>")
    def remove_from_cart(sku: str):
        if not store.cart_remove(logged_in_user(), sku):
            return _error(404, f"{sku} is not in the cart")
        return jsonify(cart_view(logged_in_user()))

    @app.post("/orders")
    def place_order():
        customer_id = logged_in_user()
        session_id = cast(ServerSideSession, session).sid
        # The token before the cart (services/web/checkout.py says why).
        token = store.checkout_token(session_id)
        view = cart_view(customer_id)
        if not view["items"]:
            return _error(400, "the cart is empty")
        # The contract's OrderRequest: the backend takes exactly what the API takes.
        order = OrderRequest(
            customer_id=customer_id,
            currency=CURRENCY,
            items=[
                OrderItem(sku=i["sku"], quantity=i["quantity"], unit_price=Decimal(str(i["unit_price"])))
                for i in view["items"]
            ],
        )
        try:
            # Keyed: the backend places it once however often it arrives, so the client may retry it.
            answer = backend.request(
                "POST",
                "/orders",
                order.model_dump(mode="json", exclude={"total"}),
                idempotency_key=checkout.idempotency_key(customer_id, session_id, token),
            )
        except BackendUnavailable as error:
            logger.warning("order not placed, backend unavailable", extra={"error": str(error)})
            return _error(503, "the order service is unavailable; your cart is kept, please try again", cart=view)
        if answer.status != 202:
            return jsonify(answer.body), answer.status
        ordered = {item.sku: item.quantity for item in order.items}
        if not store.complete_checkout(session_id, token, customer_id, ordered):
            logger.info("order answered again", extra={"order_id": answer.body.get("order_id")})  # a double submit
            return jsonify(answer.body), 202
        logger.info("order placed", extra={"order_id": answer.body.get("order_id")})
        return jsonify(answer.body), 202

    @app.get("/orders/<order_id>")
    def get_order(order_id: str):
        if not _ORDER_ID.match(order_id):
            return _error(404, "no such order")
        try:
            answer = backend.request("GET", f"/orders/{order_id}")
        except BackendUnavailable:
            return _error(503, "the order service is unavailable, please try again")
        # Another customer's order is reported as absent, not as forbidden: ids are not to be probed.
        if answer.status == 200 and (answer.body or {}).get("customer_id") != current_user():
            return _error(404, "no such order")
        return jsonify(answer.body), answer.status

    return app
