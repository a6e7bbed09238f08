// Live order status: a WebSocket when the session offers one, polling GET /orders/<id> every 2 s when it
// does not or when the socket drops. `onStatus({status, reason, updatedAt})` is called on every change
// (`updatedAt`: when the order took that status in DynamoDB, ISO 8601, or null when not told).
import { getOrder } from "./api.js";

export const POLL_MS = 2000;
// While the socket is open the status is also read every LIVE_CHECK_MS: a change the socket never
// carried (a notifier that gave up, a stream read from its end after a restart) still shows.
export const LIVE_CHECK_MS = 15000;
export const FINAL = new Set(["COMPLETED", "CANCELLED"]);

export function watchOrder(orderId, session, onStatus, onTransport = () => {}) {
  let stopped = false;
  let timer = null;
  let socket = null;
  let check = null;
  let last = null;

  const report = (status, reason, updatedAt) => {
    if (!status || (status === last && !reason)) return;
    last = status;
    onStatus({ status, reason: reason || null, updatedAt: updatedAt || null });
    if (FINAL.has(status)) stop();
  };

  const poll = async () => {
    if (stopped) return;
    try {
      const order = await getOrder(orderId);
      report(order.status, order.cancel_reason, order.updated_at);
    } catch (error) {
      if (error.status !== 404) onTransport("polling", error.message); // 404: not recorded yet
    }
    if (!stopped && !FINAL.has(last)) timer = setTimeout(poll, POLL_MS);
  };

  const startPolling = () => {
    if (stopped || timer !== null) return;
    onTransport("polling");
    poll();
  };

  if (session && session.websocketUrl && session.token && typeof WebSocket !== "undefined") {
    try {
      const separator = session.websocketUrl.includes("?") ? "&" : "?";
      socket = new WebSocket(`${session.websocketUrl}${separator}token=${encodeURIComponent(session.token)}`);
      socket.addEventListener("open", () => {
        onTransport("live");
        check = setInterval(
          () => getOrder(orderId).then((order) => report(order.status, order.cancel_reason, order.updated_at), () => {}),
          LIVE_CHECK_MS,
        );
      });
      socket.addEventListener("message", (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        if (message && message.orderId === orderId) report(message.status, message.reason, message.updatedAt);
      });
      socket.addEventListener("close", () => {
        socket = null;
        clearInterval(check);
        check = null;
        startPolling();
      });
      socket.addEventListener("error", () => startPolling());
      // The socket only pushes changes: read the status once now, so the page starts from it.
      getOrder(orderId).then((order) => report(order.status, null, order.updated_at), () => {});
    } catch {
      startPolling();
    }
  } else {
    startPolling();
  }

  function stop() {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (check !== null) clearInterval(check);
    check = null;
    if (socket) socket.close();
    socket = null;
  }
  return stop;
}
