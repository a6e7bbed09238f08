"""Orders: place, read, cancel and check out (REST API), record placed orders (fulfilment consumer) and
confirm them when the cancel window closes (finaliser). Owns the order record (`ORDER#<id>` / `META`)."""
