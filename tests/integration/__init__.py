"""Integration tests: real redis-server, a moto server and tier processes on 127.0.0.1 (no local cloud)."""
