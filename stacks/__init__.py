"""CDK stacks of the loosely coupled storefront, split by lifecycle (see stacks/app_builder.py)."""
