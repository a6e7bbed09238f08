#!/usr/bin/env python3
"""CDK entry point: `cdk synth -c stage=sandbox|production|local`."""

import aws_cdk as cdk

from stacks.app_builder import build_app
from stacks.nag import apply_rule_packs

app = cdk.App()
build_app(app)
apply_rule_packs(app)  # security by default: cdk-nag findings fail the synth
app.synth()
