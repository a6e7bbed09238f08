"""S3 hand-off: producers drop JSON objects under `incoming/`; the ingester records and deletes them.
Owns the `HANDOFF#<key>` items."""
