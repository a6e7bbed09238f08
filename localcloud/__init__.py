"""The embedded local cloud: MiniStack + redis-server + the tier services as local processes.

`python -m localcloud up|down|status` (what `make local` / `make local-down` run). No AWS account
and no Docker: MiniStack emulates the AWS APIs on 127.0.0.1, the CDK CLI deploys the real app to it
with `-c stage=local`, and the storefront scenario runs through the public entry points only.
"""
