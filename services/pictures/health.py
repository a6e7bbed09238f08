"""The worker's only listener: `GET /health` on SERVICE_PORT (200 with the job counters). It serves no
traffic (there is no load balancer); it tells an operator, or the local cloud's Auto Scaling, that the
instance's service is up."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def serve_health(host: str, port: int, status: Callable[[], dict[str, Any]]) -> ThreadingHTTPServer:
    """Start the endpoint on a daemon thread; returns the server (`.shutdown()` stops it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/health":
                self.send_error(404)
                return
            body = json.dumps({"status": "ok", **status()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # probes would drown the job lines
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
