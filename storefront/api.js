// The web tier's JSON paths, on this page's own origin: CloudFront sends /api/* to the web ALB, and
// /me/* to the REST API's customer routes (Cognito-authorized: the request carries the ID token).
export const API = "/api";
export const CUSTOMER_API = "";

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// One JSON request; resolves to the body, rejects with ApiError carrying the tier's {"error": ...} text
// (API Gateway's {"message": ...}). `token`: sent as the Authorization header (the customer routes).
export async function call(method, path, body, { base = API, token = null } = {}) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (token) init.headers.Authorization = token;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(base + path, init);
  } catch (networkError) {
    throw new ApiError(0, "The shop cannot be reached right now; please try again.", null);
  }
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const message = (parsed && (parsed.error || parsed.message)) || `The shop answered ${response.status}.`;
    throw new ApiError(response.status, message, parsed);
  }
  return parsed;
}

export const getCatalog = () => call("GET", "/catalog");
export const getCart = () => call("GET", "/cart");
export const addToCart = (sku, quantity) => call("POST", "/cart/items", { sku, quantity });
export const removeFromCart = (sku) => call("DELETE", `/cart/items/${encodeURIComponent(sku)}`);
export const placeOrder = () => call("POST", "/orders");
export const getOrder = (orderId) => call("GET", `/orders/${encodeURIComponent(orderId)}`);
// The Pay button: the REST API's customer checkout, with the shopper's ID token (GET /api/session).
export const checkOut = (orderId, cardNumber, token) =>
  call("POST", `/me/orders/${encodeURIComponent(orderId)}/checkout`, { card_number: cardNumber }, {
    base: CUSTOMER_API, token,
  });
export const login = (username, password) => call("POST", "/login", { username, password });
export const logout = () => call("POST", "/logout");

// Who is signed in: GET /session (customer, and the live-status socket's address and token) where the
// web tier offers it; otherwise the cart tells (200: signed in, 401: not). null when signed out.
export async function currentSession() {
  try {
    const session = await call("GET", "/session");
    return { customer: session.customer, websocketUrl: session.websocketUrl || null, token: session.token || null };
  } catch (error) {
    if (error.status === 401) return null;
    if (error.status !== 404) throw error;
  }
  try {
    const cart = await getCart();
    return { customer: cart.customer_id, websocketUrl: null, token: null };
  } catch (error) {
    if (error.status === 401) return null;
    throw error;
  }
}
