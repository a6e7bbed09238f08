"""Web tier: the storefront behind the internet-facing ALB (sessions and carts in Redis)."""
