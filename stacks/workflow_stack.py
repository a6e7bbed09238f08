"""Checkout orchestration (docs/design.md flow 5): a Standard Step Functions state machine.

Reserve every item (Map) -> charge payment and quote shipping (Parallel) -> human approval for large
orders (callback with a task token and a timeout) -> wait -> ship -> mark COMPLETED. Any business
failure, rejection or timeout runs the compensation chain: refund (only if charged) -> release every
item -> mark CANCELLED -> Fail. Transient failures are retried with exponential backoff and full
jitter, so a flaky downstream slows a checkout down instead of cancelling it.

Data contract with `lambdas/checkout` and `lambdas/approvals` (what each task receives):
- execution input: the order (`order_id`, `customer_id`, `items` [{sku, quantity, unit_price}], `total`,
  `currency`, `payment_token`, ...); steps add `reservations`, `checkout.payment`,
  `checkout.shipping_quote`, `approval`, `shipment`, `refund` and, on failure, `error` {Error, Cause}.
- reserve_item / release_item: one item, `{order_id, sku, quantity}`.
- charge_payment, quote_shipping, ship_order, refund_payment: the whole state (refund sees `checkout.payment`;
  ship_order commits every item's reservation, so the units leave `reserved`, then publishes OrderShipped).
- mark_order: `{order_id, status: COMPLETED}` or `{order_id, status: CANCELLED, reason: <error name>}`.
- request_approval: `{task_token, order_id}`; the approvals API answers with SendTaskSuccess, or
  SendTaskFailure with error `ApprovalRejected`.
"""

from __future__ import annotations

from typing import Any, cast

from aws_cdk import CfnResource, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from contracts.errors import ApprovalRejected, OutOfStock, PaymentDeclined, PaymentGatewayUnavailable
from contracts.tables import ORDER_PREFIX
from stacks.config import StageConfig
from stacks.constructs.activity_counters import ActivityCounters, ActivityCountersProps
from stacks.constructs.implied_dependency import drop_implied_role_dependency
from stacks.constructs.powertools_function import PowertoolsFunction, PowertoolsFunctionProps
from stacks.grants import grant_items
from stacks.nag import acknowledge, acknowledge_topic_key_grant
from stacks.stage_defaults import log_encryption_key, log_retention, removal_policy, shared_function_props

# Orders whose total reaches this amount wait for a human approval before they ship.
APPROVAL_THRESHOLD = 1000
# Pause between approval and shipping (the warehouse pick window); short so the local cloud's
# end-to-end run stays fast.
SHIPPING_HANDOVER_WAIT = Duration.seconds(3)

# Lambda service hiccups: always worth a retry, never a reason to cancel an order.
LAMBDA_TRANSIENT_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# The error names the tasks raise are the contract's exception class names (Lambda reports the class
# name as errorType): renaming a class renames the rule, and tests/infra/test_workflow.py checks both.
PAYMENT_GATEWAY_UNAVAILABLE = PaymentGatewayUnavailable.__name__
PAYMENT_DECLINED = PaymentDeclined.__name__
OUT_OF_STOCK = OutOfStock.__name__
APPROVAL_REJECTED = ApprovalRejected.__name__

# What each step does to the items of the order's partition (its repository's calls).
ORDER_ITEM_ACTIONS: dict[str, tuple[str, ...]] = {
    "reserve_item": ("PutItem",),  # the reservation marker, in the stock transaction
    "release_item": ("DeleteItem",),  # the marker, in the stock transaction
    "ship_order": ("UpdateItem", "GetItem"),  # marks the marker shipped; reads it when that fails
    "charge_payment": ("GetItem", "UpdateItem"),  # attempt counter and charge
    "refund_payment": ("GetItem", "UpdateItem"),
    "mark_order": ("GetItem", "UpdateItem"),  # the order's status
    "request_approval": ("PutItem",),  # the approval's task token
}

CHECKOUT_TASKS = (
    "reserve_item",
    "release_item",
    "charge_payment",
    "refund_payment",
    "quote_shipping",
    "ship_order",
    "mark_order",
)


def transient_retry(*extra_errors: str, max_attempts: int = 4) -> dict[str, Any]:
    """`add_retry` arguments: exponential backoff (x2) with full jitter and a ceiling, so retries of
    many executions spread out instead of hitting a recovering dependency in lockstep."""
    return {
        "errors": [*extra_errors, *LAMBDA_TRANSIENT_ERRORS],
        "interval": Duration.seconds(1),
        "backoff_rate": 2,
        "max_attempts": max_attempts,
        "max_delay": Duration.seconds(20),
        "jitter_strategy": sfn.JitterType.FULL,
    }


class WorkflowStack(Stack):
    """`.state_machine` is the checkout saga (Standard); `.task_functions` maps handler name -> Lambda
    function; `.activity_counters` is the Express machine that counts storefront activity."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        orders_table: dynamodb.ITable,
        inventory_table: dynamodb.ITable,
        inventory_events_queue: sqs.IQueue,
        order_events_topic: sns.ITopic,
        log_key: kms.IKey | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.log_key = log_encryption_key(config, log_key)
        environment = {
            "ORDERS_TABLE": orders_table.table_name,
            "INVENTORY_TABLE": inventory_table.table_name,
            "INVENTORY_EVENTS_QUEUE_URL": inventory_events_queue.queue_url,
            "ORDER_EVENTS_TOPIC_ARN": order_events_topic.topic_arn,
        }

        def task_function(name: str, handler: str, description: str, env: dict[str, str]) -> lambda_.Function:
            construct = PowertoolsFunction(
                self,
                "".join(part.capitalize() for part in name.split("_")) + "Function",
                shared=shared_function_props(config, self.log_key),
                props=PowertoolsFunctionProps(
                    handler=handler,
                    service_name=f"checkout-{name.replace('_', '-')}",
                    description=description,
                    environment=env,
                ),
            )
            return construct.function

        self.task_functions: dict[str, lambda_.Function] = {
            name: task_function(name, f"checkout.handlers.tasks.{name}", f"Checkout step: {name}", environment)
            for name in CHECKOUT_TASKS
        }
        self.task_functions["request_approval"] = task_function(
            "request_approval",
            "checkout.handlers.approvals.request_approval",
            "Stores the approval task token; the approvals API completes the task",
            {"ORDERS_TABLE": orders_table.table_name},
        )

        # Least privilege: each step gets only the items and destinations its handler touches, all of them
        # in the order's own partition (ORDER#<id>: record, payment, approval, reservation markers).
        for name, actions in ORDER_ITEM_ACTIONS.items():
            grant_items(orders_table, self.task_functions[name], actions, key_prefixes=[ORDER_PREFIX])
        # Reserve, release and ship move units in one transaction with the marker: `on_hand`/`reserved`
        # conditional updates of the SKU's stock item, nothing else.
        for name in ("reserve_item", "release_item", "ship_order"):
            inventory_table.grant(self.task_functions[name], "dynamodb:UpdateItem")
        for name in ("reserve_item", "release_item", "charge_payment", "refund_payment", "ship_order"):
            inventory_events_queue.grant_send_messages(self.task_functions[name])  # ordered ledger events
        order_events_topic.grant_publish(self.task_functions["ship_order"])  # OrderShipped
        acknowledge_topic_key_grant(self.task_functions["ship_order"])

        self.state_machine = self._state_machine(config)
        self.activity_counters = ActivityCounters(
            self,
            "ActivityCounters",
            table=orders_table,
            props=ActivityCountersProps(
                log_group_name=f"/aws/vendedlogs/states/{config.stack_name('activity-counters')}",
                log_retention=log_retention(config.log_retention_days),
                removal_policy=removal_policy(config),
                log_key=self.log_key,
            ),
        ).state_machine

    # --- definition -----------------------------------------------------------------------------

    def _invoke(
        self, state_id: str, name: str, *, result_path: str, retry: dict[str, Any], payload: sfn.TaskInput | None = None
    ) -> tasks.LambdaInvoke:
        step = tasks.LambdaInvoke(
            self,
            state_id,
            lambda_function=self.task_functions[name],
            payload=payload,
            payload_response_only=True,  # the state's result is the handler's return value
            retry_on_service_exceptions=False,  # replaced by the explicit, jittered retry below
            result_path=result_path,
        )
        step.add_retry(**retry)
        return step

    def _each_item(self, state_id: str, *, result_path: str) -> sfn.Map:
        """A Map over the order's stock lines (one per SKU: its lines added up); each iteration gets
        {order_id, sku, quantity}."""
        return sfn.Map(
            self,
            state_id,
            items_path="$.stock",
            item_selector={
                "order_id": sfn.JsonPath.string_at("$.order_id"),
                "sku": sfn.JsonPath.string_at("$$.Map.Item.Value.sku"),
                "quantity": sfn.JsonPath.number_at("$$.Map.Item.Value.quantity"),
            },
            result_path=result_path,
        )

    def _state_machine(self, config: StageConfig) -> sfn.StateMachine:
        on_error = "$.error"  # catchers keep the input and add {Error, Cause} here

        # --- compensation: refund only what was charged, release everything, cancel, fail --------
        compensation_retry = transient_retry(PAYMENT_GATEWAY_UNAVAILABLE, max_attempts=8)
        refund = self._invoke("RefundPayment", "refund_payment", result_path="$.refund", retry=compensation_retry)
        release_each = self._each_item("ReleaseItems", result_path=sfn.JsonPath.DISCARD)
        release_each.item_processor(
            self._invoke("ReleaseItem", "release_item", result_path=sfn.JsonPath.DISCARD, retry=compensation_retry)
        )
        mark_cancelled = self._invoke(
            "MarkCancelled",
            "mark_order",
            result_path=sfn.JsonPath.DISCARD,
            retry=compensation_retry,
            payload=sfn.TaskInput.from_object(
                {
                    "order_id": sfn.JsonPath.string_at("$.order_id"),
                    "status": "CANCELLED",
                    "reason": sfn.JsonPath.string_at("$.error.Error"),
                }
            ),
        )
        cancelled = sfn.Fail(
            self,
            "CheckoutCancelled",
            error="CheckoutCancelled",
            cause="Checkout failed and was compensated: payment refunded if charged, items released, order CANCELLED",
        )
        release_each.next(mark_cancelled).next(cancelled)
        compensate = (
            sfn.Choice(self, "WasPaymentCharged")
            .when(sfn.Condition.is_present("$.checkout.payment"), refund.next(release_each))
            .otherwise(release_each)
        )
        # A failed Parallel drops the results of every branch: when the shipping quote fails after the
        # charge went through, `$.checkout.payment` is absent although the card was charged. Unless the
        # charge itself was declined, ask the refund task, which refunds the charge recorded in DynamoDB
        # (or answers NOT_CHARGED).
        compensate_after_charge_attempt = (
            sfn.Choice(self, "MayHaveCharged")
            .when(sfn.Condition.string_equals("$.error.Error", PAYMENT_DECLINED), release_each)
            .otherwise(refund)
        )

        def catch_all(
            state: sfn.TaskStateBase | sfn.Map | sfn.Parallel,
            *business_errors: str,
            handler: sfn.IChainable = compensate,
        ) -> None:
            if business_errors:
                state.add_catch(handler, errors=list(business_errors), result_path=on_error)
            state.add_catch(handler, errors=[sfn.Errors.ALL], result_path=on_error)

        # --- happy path ----------------------------------------------------------------------------
        reserve_each = self._each_item("ReserveItems", result_path="$.reservations")
        reserve_each.item_processor(
            self._invoke("ReserveItem", "reserve_item", result_path="$.reservation", retry=transient_retry())
        )
        catch_all(reserve_each, OUT_OF_STOCK)

        charge = self._invoke(
            "ChargePayment",
            "charge_payment",
            result_path="$.payment",
            retry=transient_retry(PAYMENT_GATEWAY_UNAVAILABLE, max_attempts=5),
        )
        quote = self._invoke("QuoteShipping", "quote_shipping", result_path="$.shipping_quote", retry=transient_retry())
        pay_and_quote = sfn.Parallel(
            self,
            "ChargeAndQuote",
            # Each branch returns the whole state; keep only what it added.
            result_selector={
                "payment": sfn.JsonPath.object_at("$[0].payment"),
                "shipping_quote": sfn.JsonPath.object_at("$[1].shipping_quote"),
            },
            result_path="$.checkout",
        )
        pay_and_quote.branch(charge).branch(quote)
        catch_all(pay_and_quote, PAYMENT_DECLINED, handler=compensate_after_charge_attempt)

        approval = tasks.LambdaInvoke(
            self,
            "AwaitApproval",
            lambda_function=self.task_functions["request_approval"],
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {"task_token": sfn.JsonPath.task_token, "order_id": sfn.JsonPath.string_at("$.order_id")}
            ),
            task_timeout=sfn.Timeout.duration(Duration.seconds(config.approval_timeout_seconds)),
            retry_on_service_exceptions=False,
            result_path="$.approval",
        )
        approval.add_retry(**transient_retry())
        catch_all(approval, sfn.Errors.TIMEOUT, APPROVAL_REJECTED)

        handover = sfn.Wait(self, "WarehouseHandover", time=sfn.WaitTime.duration(SHIPPING_HANDOVER_WAIT))
        ship = self._invoke("ShipOrder", "ship_order", result_path="$.shipment", retry=transient_retry())
        catch_all(ship)
        # Once shipped, an order is never compensated: marking it COMPLETED is retried, not caught.
        mark_completed = self._invoke(
            "MarkCompleted",
            "mark_order",
            result_path=sfn.JsonPath.DISCARD,
            retry=transient_retry(max_attempts=8),
            payload=sfn.TaskInput.from_object(
                {"order_id": sfn.JsonPath.string_at("$.order_id"), "status": "COMPLETED"}
            ),
        )
        handover.next(ship).next(mark_completed).next(sfn.Succeed(self, "CheckoutCompleted"))

        needs_approval = (
            sfn.Choice(self, "NeedsApproval")
            .when(sfn.Condition.number_greater_than_equals("$.total", APPROVAL_THRESHOLD), approval.next(handover))
            .otherwise(handover)
        )
        definition = reserve_each.next(pay_and_quote).next(needs_approval)

        log_group = logs.LogGroup(
            self,
            "CheckoutLogs",
            # The /aws/vendedlogs/ prefix keeps the log-delivery resource policy from growing per group.
            log_group_name=f"/aws/vendedlogs/states/{config.stack_name('checkout')}",
            retention=log_retention(config.log_retention_days),
            removal_policy=removal_policy(config),
            encryption_key=self.log_key,
        )
        state_machine = sfn.StateMachine(
            self,
            "Checkout",
            state_machine_type=sfn.StateMachineType.STANDARD,  # exactly-once steps, up to a year: human approval fits
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.seconds(config.approval_timeout_seconds + 15 * 60),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        drop_implied_role_dependency(cast(CfnResource, state_machine.node.default_child), state_machine.role)
        acknowledge(
            state_machine.role,
            "AwsSolutions-IAM5[Resource::*]",
            "CloudWatch Logs delivery (logs:CreateLogDelivery, ...) and X-Ray actions support no resource-level "
            "permissions; AWS documents Resource * for a state machine's logging and tracing.",
        )
        for name, function in self.task_functions.items():
            acknowledge(
                state_machine.role,
                f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(cast(CfnResource, function.node.default_child))}.Arn>:*]",
                f"CDK grants lambda:InvokeFunction on {name}'s versions and aliases (ARN:*), nothing else.",
            )
        return state_machine
