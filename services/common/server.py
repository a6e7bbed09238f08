"""Serve a Flask app with waitress: a production WSGI server (multi-threaded, no fork), pure Python,
the same on a laptop and on EC2. `python -m services.<tier>` ends up here."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask
from waitress import serve

from services.common.observability import configure_logging
from services.common.settings import ServiceSettings

# Worker threads per process: requests mostly wait on Redis/HTTP/AWS, so threads are cheap concurrency.
THREADS = 16


def run(service: str, create_app: Callable[[ServiceSettings], Flask]) -> None:
    settings = ServiceSettings.from_env(service)
    configure_logging(service)
    app = create_app(settings)
    logging.getLogger(service).info(
        "listening", extra={"host": settings.host, "port": settings.port, "served_by": settings.served_by}
    )
    # ident=None: no `Server: waitress` header advertising the stack.
    serve(app, host=settings.host, port=settings.port, threads=THREADS, ident=None, _quiet=True)
