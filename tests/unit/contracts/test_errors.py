"""contracts.errors: exception class names are the Step Functions error names."""

from __future__ import annotations

from contracts import errors


def test_error_class_names_are_the_state_machine_error_names():
    # Lambda reports `errorType` = the class name; the state machine's Retry/Catch match these strings.
    assert [
        cls.__name__
        for cls in (
            errors.PaymentDeclined,
            errors.OutOfStock,
            errors.PaymentGatewayUnavailable,
            errors.ApprovalRejected,
            errors.ReservationNotHeld,
        )
    ] == ["PaymentDeclined", "OutOfStock", "PaymentGatewayUnavailable", "ApprovalRejected", "ReservationNotHeld"]


def test_business_errors_are_compensated_and_transient_errors_retried_never_both():
    assert (errors.PaymentDeclined, errors.OutOfStock) == errors.BUSINESS_ERRORS
    assert (errors.PaymentGatewayUnavailable,) == errors.TRANSIENT_ERRORS
    assert not set(errors.BUSINESS_ERRORS) & set(errors.TRANSIENT_ERRORS)


def test_every_named_error_is_a_storefront_error():
    named = [value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, Exception)]
    assert len(named) == 10 and all(issubclass(cls, errors.StorefrontError) for cls in named)


def test_errors_say_what_happened():
    assert str(errors.OrderNotFound("o-1")) == "order o-1 not found"
    transition = errors.InvalidStatusTransition("o-1", "COMPLETED", "CANCELLED")
    assert str(transition) == "order o-1 is COMPLETED; it cannot become CANCELLED"
    assert (transition.order_id, transition.current, transition.target) == ("o-1", "COMPLETED", "CANCELLED")
    started = errors.InvalidStatusTransition("o-1", "RECEIVED", "CANCELLED", why=" and its checkout has started")
    assert "RECEIVED and its checkout has started" in str(started)
