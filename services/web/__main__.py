"""`python -m services.web`: serve the web tier (SERVICE_HOST, SERVICE_PORT, DISCOVERY_PREFIX)."""

from services.common.server import run
from services.web.app import create_app

if __name__ == "__main__":
    run("web", create_app)
