"""Backend tier: order intake behind the internal ALB (validate, publish `OrderPlaced`, answer 202)."""
