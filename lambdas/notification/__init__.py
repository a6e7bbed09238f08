"""Notification: what a customer is told about an order event. Owns the `NOTIFICATION` item of an order."""
