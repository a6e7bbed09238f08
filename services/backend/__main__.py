"""`python -m services.backend`: serve the backend tier (SERVICE_HOST, SERVICE_PORT, DISCOVERY_PREFIX)."""

from services.backend.app import create_app
from services.common.server import run

if __name__ == "__main__":
    run("backend", create_app)
