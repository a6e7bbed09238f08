"""The stages users deploy are the stages proven: `sandbox` and `production` go to the local cloud with
the fewest overrides the emulator needs, and every stack is complete with every resource its template
declares. Then they are destroyed again, so the local stage's tests and `make local` see what they saw.

The overrides, each with its reason:
- account and region: not overrides; they come from the CLI's environment (the emulated account and
  region), exactly as a real `cdk deploy` takes them from the profile.
- `amiId`: the stages look the latest Amazon Linux 2023 AMI up in its public SSM parameter
  (`/aws/service/ami-amazon-linux-latest/...`), which the emulator's SSM does not hold.
- `certificateArn` (production): production serves HTTPS only and refuses to synthesize without a
  certificate; the emulator's ACM issues one, as ACM would for the storefront's domain.
Everything else (VPC endpoints, NAT gateways, python3.14 on ARM_64, retention, capacities) is the
stage as cdk.json defines it. The functions are deployed, not run: the emulator's workers are Python 3.11.
"""

from __future__ import annotations

import pytest

from localcloud import deploy
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

LOCAL_AMI = "ami-0123456789abcdef0"  # the same placeholder image the local stage uses (cdk.json)


def _overrides(cloud: Harness, stage: str) -> list[str]:
    overrides = [f"amiId={LOCAL_AMI}"]
    if stage == "production":
        acm = cloud.settings.client("acm")
        arn = acm.request_certificate(DomainName="shop.example.com", ValidationMethod="DNS")["CertificateArn"]
        overrides.append(f"certificateArn={arn}")
    return overrides


@pytest.mark.parametrize("stage", ["sandbox", "production"])
def test_the_stage_deploys_completely_to_the_local_cloud(cloud: Harness, stage: str):
    settings = cloud.settings
    assembly = settings.state_dir / f"cdk.out.{stage}"
    context = [arg for override in _overrides(cloud, stage) for arg in ("-c", override)]
    say = print
    deploy.run_cli(
        ["cdk", "synth", "--quiet", "-c", f"stage={stage}", *context, "--output", str(assembly)], settings, say, 900
    )
    app = ["--app", str(assembly)]
    try:
        deploy.run_cli(
            ["cdk", "deploy", "--all", *app, "--require-approval", "never", "--concurrency", "3", "--method", "direct"],
            settings,
            say,
            settings.deploy_timeout,
        )
        reports = deploy.verify(settings, assembly)
        assert len(reports) == len(deploy.stack_templates(assembly)) >= 11
        assert all(report.name.startswith(f"lc-{stage}-") for report in reports)
        incomplete = {r.name: (r.status, r.missing) for r in reports if r.status not in deploy.DONE or r.missing}
        assert incomplete == {}
        assert all(r.deployed_resources >= r.template_resources for r in reports)
        print(f"\n{stage}: {len(reports)} stacks, {sum(r.template_resources for r in reports)} resources, all complete")
    finally:
        deploy.run_cli(["cdk", "destroy", "--all", *app, "--force"], settings, say, settings.deploy_timeout)
    cfn = settings.client("cloudformation")
    left = [
        summary["StackName"]
        for page in cfn.get_paginator("list_stacks").paginate(StackStatusFilter=list(deploy.DONE))
        for summary in page["StackSummaries"]
        if summary["StackName"].startswith(f"lc-{stage}-")
    ]
    assert left == []
