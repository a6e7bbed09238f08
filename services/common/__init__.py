"""Code both tiers share: settings from the environment, SSM service discovery, the Redis connection,
structured logging with a correlation id, and the production WSGI server."""
