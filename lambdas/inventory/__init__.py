"""Inventory: stock per SKU with reservations held by checkouts, and the FIFO ledger of stock and payment
movements. Owns the inventory table, the `RESERVATION#<sku>` markers and the `LEDGER#` partitions."""
