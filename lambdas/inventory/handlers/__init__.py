"""Lambda entry points: each wires Powertools around the service functions of this context."""
