"""Device drivers: wire traffic → domain events, commands → frames. Each has ``status()``."""
