"""Activity: storefront activity counters (views, searches, cart adds), counted by an Express state
machine. Owns the `ACTIVITY#` partitions."""
