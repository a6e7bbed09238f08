"""A queue feeds an EC2 fleet: an Auto Scaling group of workers that long-poll one SQS queue, scaled
on the backlog each instance carries (AWS's documented pattern for SQS-driven EC2 Auto Scaling).

No load balancer: nothing calls a worker, so nothing needs its address. The fleet's size follows one
target-tracking policy on a metric-math expression,

    backlog per instance = ApproximateNumberOfMessagesVisible(queue) / GroupInServiceInstances(group)

kept at the acceptable backlog per instance (the latency a job may wait / the time one job takes):
more messages than the fleet can work off in time adds instances, an idle queue removes them, between
min and max. The instances are hardened like the tiers' (stacks/constructs/service_instances.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.service_instances import HardenedLaunchTemplateProps, hardened_launch_template

BACKLOG_EXPRESSION = "visible / in_service"


@dataclass(frozen=True)
class QueueWorkerFleetProps:
    vpc: ec2.IVpc
    instance_subnets: ec2.SubnetSelection  # private subnets in 2+ AZs
    security_group: ec2.ISecurityGroup  # owned elsewhere (the network stack); no ingress
    instance_type: ec2.InstanceType
    machine_image: ec2.IMachineImage
    user_data: ec2.UserData
    queue: sqs.IQueue  # the work queue the workers consume
    min_capacity: int  # 0 (rest at zero) or more
    max_capacity: int
    backlog_per_instance: int  # the target value: acceptable visible messages per in-service instance
    # Time a new worker needs before its metrics count (boot, install, first poll).
    instance_warmup: Duration = Duration.minutes(5)
    root_volume_gib: int = 8


class QueueWorkerFleet(Construct):
    """`.auto_scaling_group`, `.role` (may consume `queue`), `.scaling_policy` (the L1 target-tracking
    policy on backlog per instance), `.scaling_events_topic`."""

    def __init__(self, scope: Construct, construct_id: str, *, props: QueueWorkerFleetProps) -> None:
        super().__init__(scope, construct_id)
        if not 0 <= props.min_capacity <= props.max_capacity:
            raise ValueError(f"capacity {props.min_capacity}..{props.max_capacity}: need 0 <= min <= max")
        if props.backlog_per_instance < 1:
            raise ValueError("the acceptable backlog per instance is at least one message")
        instance_group = ec2.SecurityGroup.from_security_group_id(
            self, "InstanceGroup", props.security_group.security_group_id, mutable=False, allow_all_outbound=False
        )
        self.role, launch_template = hardened_launch_template(
            self,
            props=HardenedLaunchTemplateProps(
                instance_type=props.instance_type,
                machine_image=props.machine_image,
                security_group=instance_group,
                user_data=props.user_data,
                root_volume_gib=props.root_volume_gib,
                role_description="Queue worker instance: Session Manager plus the worker's own grants",
            ),
        )
        # Receive, extend visibility, delete (and read the queue's attributes): a consumer, never a producer.
        props.queue.grant_consume_messages(self.role)

        self.scaling_events_topic = sns.Topic(
            self,
            "ScalingEvents",
            master_key=kms.Alias.from_alias_name(self, "SnsManagedKey", "alias/aws/sns"),
            enforce_ssl=True,
        )
        self.auto_scaling_group = autoscaling.AutoScalingGroup(
            self,
            "Instances",
            vpc=props.vpc,
            vpc_subnets=props.instance_subnets,
            launch_template=launch_template,
            min_capacity=props.min_capacity,
            max_capacity=props.max_capacity,
            # No load balancer: an instance is healthy while EC2 reports it running; a worker that
            # dies mid-job loses nothing (its message becomes visible again), so EC2 checks suffice.
            health_checks=autoscaling.HealthChecks.ec2(grace_period=props.instance_warmup),
            notifications=[
                autoscaling.NotificationConfiguration(
                    topic=self.scaling_events_topic, scaling_events=autoscaling.ScalingEvents.ALL
                )
            ],
            # GroupInServiceInstances is the policy's denominator: group metrics must be collected.
            group_metrics=[autoscaling.GroupMetrics.all()],
        )

        asg_name = self.auto_scaling_group.auto_scaling_group_name
        metric = autoscaling.CfnScalingPolicy.MetricProperty
        dimension = autoscaling.CfnScalingPolicy.MetricDimensionProperty
        query = autoscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty
        stat = autoscaling.CfnScalingPolicy.TargetTrackingMetricStatProperty
        # L1: CDK's target-tracking L2 takes a single metric only, not metric math.
        self.scaling_policy = autoscaling.CfnScalingPolicy(
            self,
            "BacklogPerInstance",
            auto_scaling_group_name=asg_name,
            policy_type="TargetTrackingScaling",
            estimated_instance_warmup=int(props.instance_warmup.to_seconds()),
            target_tracking_configuration=autoscaling.CfnScalingPolicy.TargetTrackingConfigurationProperty(
                target_value=props.backlog_per_instance,
                customized_metric_specification=autoscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                    metrics=[
                        query(
                            id="visible",
                            label="Messages waiting in the queue",
                            return_data=False,
                            metric_stat=stat(
                                metric=metric(
                                    namespace="AWS/SQS",
                                    metric_name="ApproximateNumberOfMessagesVisible",
                                    dimensions=[dimension(name="QueueName", value=props.queue.queue_name)],
                                ),
                                stat="Sum",
                            ),
                        ),
                        query(
                            id="in_service",
                            label="Workers in service",
                            return_data=False,
                            metric_stat=stat(
                                metric=metric(
                                    namespace="AWS/AutoScaling",
                                    metric_name="GroupInServiceInstances",
                                    dimensions=[dimension(name="AutoScalingGroupName", value=asg_name)],
                                ),
                                stat="Average",
                            ),
                        ),
                        query(
                            id="backlog_per_instance",
                            expression=BACKLOG_EXPRESSION,
                            label="Backlog per instance",
                            return_data=True,
                        ),
                    ]
                ),
            ),
        )
