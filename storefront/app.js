// The storefront's pages: catalogue, sign-in, cart, order status. Plain ES modules, hash routes
// (#/, #/signin, #/cart, #/orders/<id>), no build step, nothing downloaded at run time.
import * as api from "./api.js";
import { watchOrder } from "./status.js";

const main = document.getElementById("main");
const messages = document.getElementById("messages");
const account = document.getElementById("account");
const cartCount = document.getElementById("cart-count");
const STEPS = ["RECEIVED", "CONFIRMED", "COMPLETED"];

let session = null; // {customer, websocketUrl, token} or null
let catalog = null; // {currency, products}
let stopWatching = () => {};

const money = (value, currency = (catalog && catalog.currency) || "EUR") =>
  new Intl.NumberFormat("en-IE", { style: "currency", currency }).format(value);

// Build an element: el("p", {class: "x"}, "text", child, ...).
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : String(child));
  return node;
}

let saidAt = 0;
function say(text, kind = "info") {
  saidAt = Date.now();
  messages.replaceChildren(el("p", { class: `message ${kind}`, role: kind === "error" ? "alert" : null }, text));
}
const clearMessages = () => messages.replaceChildren();

// Each navigation gets a token; a page that finishes loading after the next navigation renders nothing.
let active = 0;

function show(token, title, ...content) {
  if (token !== active) return;
  document.title = `${title} - Loosely coupled tea shop`;
  main.replaceChildren(el("h1", {}, title), ...content);
  main.focus();
}

function renderAccount() {
  if (session) {
    account.replaceChildren(
      el("span", { id: "signed-in-as" }, `Signed in as ${session.customer} `),
      el("button", { type: "button", class: "link-button", id: "sign-out", onclick: signOut }, "Sign out"),
    );
  } else {
    account.replaceChildren(el("a", { href: "#/signin", "data-nav": "signin" }, "Sign in"));
  }
}

function renderCartCount(cart) {
  const units = cart ? cart.items.reduce((sum, item) => sum + item.quantity, 0) : 0;
  cartCount.textContent = String(units);
}

async function refreshSession() {
  session = await api.currentSession();
  renderAccount();
  if (session) renderCartCount(await api.getCart().catch(() => null));
  else renderCartCount(null);
}

async function signOut() {
  try {
    await api.logout();
  } finally {
    session = null;
    renderAccount();
    renderCartCount(null);
    say("You are signed out.");
    location.hash = "#/";
  }
}

// When the session ended (401), sign in again and come back here.
function needSignIn(error, back) {
  if (error.status !== 401) return false;
  session = null;
  renderAccount();
  // API Gateway's Cognito authorizer answers a stale token with a bare 401 "Unauthorized".
  const why = { "login required": "Please sign in first.", Unauthorized: "Your sign-in has expired, please sign in again." };
  say(why[error.message] || error.message, "error");
  location.hash = `#/signin?next=${encodeURIComponent(back)}`;
  return true;
}

// --- pages ---------------------------------------------------------------------------------------

async function catalogPage(token) {
  catalog = catalog || (await api.getCatalog());
  const cards = catalog.products.map((product) => {
    const quantityId = `qty-${product.sku}`;
    const form = el(
      "form",
      {
        class: "row",
        "aria-label": `Add ${product.name} to the cart`,
        onsubmit: async (event) => {
          event.preventDefault();
          const quantity = Number(form.elements.quantity.value);
          const button = form.querySelector("button");
          button.disabled = true;
          try {
            const cart = await api.addToCart(product.sku, quantity);
            renderCartCount(cart);
            say(`Added ${quantity} × ${product.name} to the cart.`);
          } catch (error) {
            if (!needSignIn(error, "#/")) say(error.message, "error");
          } finally {
            button.disabled = false;
          }
        },
      },
      el("div", {}, el("label", { for: quantityId }, "Quantity"),
        el("input", { id: quantityId, name: "quantity", type: "number", min: 1, max: 100, value: 1, required: true, inputmode: "numeric" })),
      el("button", { type: "submit", "data-sku": product.sku }, "Add to cart"),
    );
    return el(
      "li",
      { class: "product", "data-sku": product.sku },
      el("img", { src: product.image, alt: `Picture of the ${product.name.toLowerCase()}`, width: 320, height: 240 }),
      el("h2", {}, product.name),
      el("p", {}, product.description),
      el("p", { class: "price" }, money(product.unit_price, catalog.currency)),
      form,
    );
  });
  show(token, "Catalogue", el("ul", { class: "grid", id: "catalog" }, cards));
}

function signInPage(params, token) {
  const next = params.get("next") || "#/";
  const form = el(
    "form",
    {
      class: "signin",
      id: "signin-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const button = form.querySelector("button");
        button.disabled = true;
        try {
          await api.login(form.elements.username.value, form.elements.password.value);
          await refreshSession();
          say(`Welcome, ${session ? session.customer : form.elements.username.value}.`);
          location.hash = next;
        } catch (error) {
          form.elements.password.value = "";
          say(error.status === 401 ? error.message : `Sign-in failed: ${error.message}`, "error");
          form.elements.password.focus();
        } finally {
          button.disabled = false;
        }
      },
    },
    el("div", {}, el("label", { for: "username" }, "User name"),
      el("input", { id: "username", name: "username", autocomplete: "username", required: true })),
    el("div", {}, el("label", { for: "password" }, "Password"),
      el("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true })),
    el("button", { type: "submit" }, "Sign in"),
    el("p", { class: "hint" }, "Demo users: alice / Wonderland-2026!, bob / Builder-2026-x!"),
  );
  show(token, "Sign in", form);
  form.elements.username.focus();
}

// Set a line to `wanted` units: the web tier adds units and removes lines.
async function setQuantity(item, wanted) {
  if (wanted === item.quantity) return null;
  if (wanted > item.quantity) return api.addToCart(item.sku, wanted - item.quantity);
  await api.removeFromCart(item.sku);
  return api.addToCart(item.sku, wanted);
}

async function cartPage(token = active) {
  let cart;
  try {
    cart = await api.getCart();
  } catch (error) {
    if (needSignIn(error, "#/cart")) return;
    throw error;
  }
  renderCartCount(cart);
  if (!cart.items.length) {
    show(token, "Your cart", el("p", { id: "cart-empty" }, "Your cart is empty. ", el("a", { href: "#/" }, "Browse the catalogue.")));
    return;
  }
  const rows = cart.items.map((item) => {
    const id = `cart-qty-${item.sku}`;
    const update = async (event) => {
      event.preventDefault();
      const wanted = Number(row.querySelector("input").value);
      try {
        await setQuantity(item, wanted);
        say(`${item.name}: ${wanted} in the cart.`);
      } catch (error) {
        if (needSignIn(error, "#/cart")) return;
        say(error.message, "error");
      }
      await cartPage(active).catch(() => {});
    };
    const row = el(
      "tr",
      { "data-sku": item.sku },
      el("td", { "data-label": "Product" }, item.name),
      el("td", { "data-label": "Price", class: "num" }, money(item.unit_price, cart.currency)),
      el("td", {}, el("form", { class: "row", onsubmit: update },
        el("div", {}, el("label", { for: id }, `Quantity of ${item.name}`),
          el("input", { id, type: "number", min: 1, max: 100, value: item.quantity, required: true, inputmode: "numeric" })),
        el("button", { type: "submit", class: "secondary" }, "Update"))),
      el("td", { "data-label": "Line total", class: "num" }, money(item.line_total, cart.currency)),
      el("td", {}, el("button", {
        type: "button", class: "secondary", "aria-label": `Remove ${item.name}`,
        onclick: async () => {
          try {
            await api.removeFromCart(item.sku);
            say(`${item.name} removed from the cart.`);
          } catch (error) {
            if (needSignIn(error, "#/cart")) return;
            say(error.message, "error");
          }
          await cartPage(active);
        },
      }, "Remove")),
    );
    return row;
  });
  const placeButton = el("button", {
    type: "button", id: "place-order",
    onclick: async () => {
      placeButton.disabled = true;
      try {
        const accepted = await api.placeOrder();
        renderCartCount(null);
        say("Thank you: your order is placed.");
        location.hash = `#/orders/${accepted.order_id}`;
      } catch (error) {
        if (needSignIn(error, "#/cart")) return;
        say(error.message, "error");
        placeButton.disabled = false;
      }
    },
  }, "Place order");
  show(
    token,
    "Your cart",
    el("table", { id: "cart" },
      el("caption", { class: "hint" }, "At most 100 units of a product per order."),
      el("thead", {}, el("tr", {}, el("th", {}, "Product"), el("th", { class: "num" }, "Price"), el("th", {}, "Quantity"),
        el("th", { class: "num" }, "Line total"), el("th", {}, el("span", { class: "hint" }, "Actions")))),
      el("tbody", {}, rows)),
    el("p", { class: "total", id: "cart-total" }, `Total ${money(cart.total, cart.currency)}`),
    placeButton,
  );
}

// An order can be paid for until its checkout has started (the API's CHECKOUT_ALLOWED statuses).
const PAYABLE = new Set(["RECEIVED", "CONFIRMED"]);

// The Pay form: a card number (test cards: any is approved unless it ends in 0002), then the REST API's
// POST /me/orders/<id>/checkout with the shopper's ID token (through CloudFront, the page's own origin).
// The status line shows what the checkout does next.
function paymentForm(orderId) {
  const card = el("input", {
    id: "card-number", name: "card-number", inputmode: "numeric", autocomplete: "cc-number",
    required: true, value: "4242 4242 4242 4242", "aria-describedby": "card-hint",
  });
  const submit = el("button", { type: "submit" }, "Pay and check out");
  const form = el("form", {
    id: "pay-form", class: "pay", "aria-labelledby": "pay-heading",
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      try {
        if (!session || !session.token) throw new api.ApiError(401, "Please sign in first.", null);
        await api.checkOut(orderId, card.value.replace(/[\s-]/g, ""), session.token);
        form.dataset.sent = "yes";
        form.hidden = true;
        say("Payment sent: the checkout has started.");
      } catch (error) {
        if (needSignIn(error, `#/orders/${orderId}`)) return;
        say(error.message, "error");
        card.focus();
      } finally {
        submit.disabled = false;
      }
    },
  },
    el("h2", { id: "pay-heading" }, "Pay"),
    el("label", { for: "card-number" }, "Card number"),
    card,
    el("p", { class: "hint", id: "card-hint" },
      "A demo shop: every card number is approved except those ending in 0002, which the bank declines."),
    submit);
  return form;
}

function orderPage(orderId, token) {
  const statusLine = el("p", { class: "status-line" }, "Status: ", el("strong", { id: "order-status" }, "RECEIVED"));
  const reasonLine = el("p", { id: "order-reason", hidden: true });
  const changedLine = el("p", { id: "order-changed", class: "hint", hidden: true });
  const steps = el("ol", { class: "steps", "aria-label": "Order progress" }, STEPS.map((s) => el("li", { "data-step": s }, s)));
  const transport = el("p", { class: "transport", id: "order-transport" }, "");
  const live = el("div", { role: "status", "aria-live": "polite", class: "visually-hidden", id: "order-live" });
  const payment = paymentForm(orderId);
  // `recorded`: the status comes from the order record (not the page's own first guess), so the order
  // can be paid for: the API checks out recorded orders only.
  const paint = ({ status, reason, updatedAt, recorded = true }) => {
    statusLine.querySelector("strong").textContent = status;
    // When the order took this status (the time written with it in DynamoDB), in the shopper's time zone.
    const changed = updatedAt ? new Date(updatedAt) : null;
    changedLine.hidden = !changed || Number.isNaN(changed.getTime());
    changedLine.replaceChildren(...(changedLine.hidden ? [] : [
      "Last change at ", el("time", { datetime: updatedAt }, changed.toLocaleTimeString()),
    ]));
    live.textContent = `Order status: ${status}`;
    const reached = STEPS.indexOf(status);
    for (const li of steps.children) {
      const index = STEPS.indexOf(li.dataset.step);
      li.classList.toggle("done", reached >= 0 && index < reached);
      li.classList.remove("cancelled");
      if (index === reached) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    }
    payment.hidden = payment.dataset.sent === "yes" || !recorded || !PAYABLE.has(status);
    if (status === "CANCELLED") {
      steps.append(el("li", { class: "cancelled", "aria-current": "step" }, "CANCELLED"));
      reasonLine.hidden = !reason;
      reasonLine.textContent = reason ? `Reason: ${reason}` : "";
    }
  };
  show(token, `Order ${orderId.slice(0, 8)}`,
    el("p", {}, "Order number ", el("code", { id: "order-id" }, orderId)),
    statusLine, changedLine, steps, reasonLine, payment, transport, live,
    el("p", {}, el("a", { href: "#/" }, "Continue shopping")));
  paint({ status: "RECEIVED", recorded: false });
  stopWatching = watchOrder(orderId, session, paint, (mode, problem) => {
    transport.textContent = mode === "live"
      ? "Updates arrive live over a WebSocket."
      : `Updates by checking every 2 seconds${problem ? ` (${problem})` : ""}.`;
    transport.dataset.mode = mode;
  });
}

// --- routing -------------------------------------------------------------------------------------

async function route() {
  stopWatching();
  stopWatching = () => {};
  const token = ++active;
  const [path, query] = (location.hash.replace(/^#/, "") || "/").split("?");
  const params = new URLSearchParams(query || "");
  for (const link of document.querySelectorAll("[data-nav]")) link.removeAttribute("aria-current");
  const current = path === "/" ? "catalog" : path.split("/")[1];
  const link = document.querySelector(`[data-nav="${current}"]`);
  if (link) link.setAttribute("aria-current", "page");
  try {
    if (path === "/") await catalogPage(token);
    else if (path === "/signin") signInPage(params, token);
    else if (path === "/cart") await cartPage(token);
    else if (path.startsWith("/orders/")) orderPage(decodeURIComponent(path.slice("/orders/".length)), token);
    else show(token, "Not found", el("p", {}, "No such page. ", el("a", { href: "#/" }, "Back to the catalogue.")));
  } catch (error) {
    show(token, "Something went wrong", el("p", {}, error.message));
  }
}

window.addEventListener("hashchange", () => {
  if (Date.now() - saidAt > 1500) clearMessages(); // a message said just before this navigation stays
  route();
});
refreshSession()
  .catch(() => {})
  .finally(route);
