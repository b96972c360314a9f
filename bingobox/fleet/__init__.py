"""The fleet service: every store of a chain on one page, from MQTT."""
