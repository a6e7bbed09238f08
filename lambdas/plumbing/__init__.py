"""What every handler shares and no bounded context owns: boto3 clients, the orders table's key design,
the Powertools wiring of REST resolvers, SQS batches and idempotency."""
