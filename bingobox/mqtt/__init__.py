"""The store on the chain's MQTT broker: telemetry, events and signed commands (``link``); payloads (``messages``);
the durable event queue (``outbox``)."""
