"""Code shared by every Lambda function of the storefront (asset root `lambdas/`, imported as `shared.*`).

Domain rules live here as plain functions and pydantic models so that they can be tested without AWS;
the handler modules only wire Powertools (logging, tracing, metrics, parsing, idempotency, batching).
"""
