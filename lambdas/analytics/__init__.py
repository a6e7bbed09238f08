"""Analytics: per-day counters of every event type. Owns the `ANALYTICS#<day>` partitions."""
