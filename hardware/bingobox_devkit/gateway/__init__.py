"""The mock wallet gateway: a real HTTP service (accounts, entry codes, charges with idempotency, refunds)."""
