"""Charging the shopper's wallet: request signing, the HTTP client, and the durable outbox."""
