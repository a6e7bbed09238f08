// node --test: storefront/status.js with a stand-in WebSocket and fetch (tests/unit/test_storefront_js.py runs it).
import { test } from "node:test";
import assert from "node:assert/strict";

const sockets = [];
class FakeSocket {
  constructor(url) {
    this.url = url;
    this.listeners = {};
    sockets.push(this);
  }
  addEventListener(type, fn) {
    (this.listeners[type] ||= []).push(fn);
  }
  emit(type, event = {}) {
    for (const fn of this.listeners[type] || []) fn(event);
  }
  close() {
    this.closed = true;
  }
}
globalThis.WebSocket = FakeSocket;

let answers = [];
const fetched = [];
globalThis.fetch = async (url) => {
  fetched.push(url);
  const status = answers.length ? answers.shift() : "RECEIVED";
  return { ok: true, status: 200, text: async () => JSON.stringify({ order_id: "o-1", status, updated_at: `at ${status}` }) };
};

const { watchOrder, POLL_MS, LIVE_CHECK_MS } = await import("../../../storefront/status.js");
const tick = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("the socket carries the status live, with the token, and ignores other orders", async () => {
  sockets.length = 0;
  fetched.length = 0;
  const seen = [];
  const modes = [];
  const session = { websocketUrl: "ws://127.0.0.1:4566/_aws/execute-api/abc/live", token: "t k" };
  const stop = watchOrder("o-1", session, (s) => seen.push(s), (m) => modes.push(m));
  const [socket] = sockets;
  assert.equal(socket.url, "ws://127.0.0.1:4566/_aws/execute-api/abc/live?token=t%20k");
  socket.emit("open");
  await tick(10); // the one read that gives the starting status
  socket.emit("message", { data: JSON.stringify({ orderId: "o-2", status: "COMPLETED" }) });
  socket.emit("message", { data: JSON.stringify({ orderId: "o-1", status: "CONFIRMED", updatedAt: "2026-12-01T10:00:02Z" }) });
  socket.emit("message", { data: "not json" });
  socket.emit("message", { data: JSON.stringify({ orderId: "o-1", status: "CANCELLED", reason: "card declined" }) });
  assert.deepEqual(modes, ["live"]);
  assert.deepEqual(seen, [
    { status: "RECEIVED", reason: null, updatedAt: "at RECEIVED" }, // the first read's updated_at
    { status: "CONFIRMED", reason: null, updatedAt: "2026-12-01T10:00:02Z" }, // when DynamoDB took it
    { status: "CANCELLED", reason: "card declined", updatedAt: null },
  ]);
  assert.equal(socket.closed, true); // a final status ends the watch
  assert.equal(fetched.length, 1);
  stop();
});

test("without a socket the page polls GET /api/orders/<id>, and a dropped socket falls back to it", async () => {
  sockets.length = 0;
  fetched.length = 0;
  answers = ["RECEIVED", "COMPLETED"];
  const seen = [];
  const modes = [];
  watchOrder("o-1", { websocketUrl: null, token: null }, (s) => seen.push(`${s.status} ${s.updatedAt}`), (m) => modes.push(m));
  assert.equal(sockets.length, 0);
  await tick(POLL_MS + 200);
  assert.deepEqual(seen, ["RECEIVED at RECEIVED", "COMPLETED at COMPLETED"]); // the order's updated_at
  assert.deepEqual(modes, ["polling"]);
  assert.deepEqual(fetched, ["/api/orders/o-1", "/api/orders/o-1"]);

  fetched.length = 0;
  answers = ["RECEIVED", "COMPLETED"];
  const dropped = [];
  const dropModes = [];
  watchOrder("o-1", { websocketUrl: "ws://x/live", token: "t" }, (s) => dropped.push(s.status), (m) => dropModes.push(m));
  sockets[0].emit("open");
  sockets[0].emit("close");
  await tick(POLL_MS + 200);
  assert.deepEqual(dropModes, ["live", "polling"]);
  assert.ok(dropped.includes("COMPLETED"));
});

test("a silent socket: the status is still read every LIVE_CHECK_MS, so a change it missed shows", async (t) => {
  sockets.length = 0;
  fetched.length = 0;
  answers = ["RECEIVED", "COMPLETED"];
  t.mock.timers.enable({ apis: ["setInterval"] });
  const seen = [];
  watchOrder("o-1", { websocketUrl: "ws://x/live", token: "t" }, (s) => seen.push(s.status));
  sockets[0].emit("open");
  await tick(10); // the one read that gives the starting status
  assert.deepEqual(seen, ["RECEIVED"]);
  t.mock.timers.tick(LIVE_CHECK_MS - 1);
  await tick(10);
  assert.deepEqual(seen, ["RECEIVED"]); // nothing before the interval
  t.mock.timers.tick(1);
  await tick(10);
  assert.deepEqual(seen, ["RECEIVED", "COMPLETED"]);
  assert.equal(sockets[0].closed, true); // the final status ends the watch, the check with it
  assert.deepEqual(fetched, ["/api/orders/o-1", "/api/orders/o-1"]);
});
