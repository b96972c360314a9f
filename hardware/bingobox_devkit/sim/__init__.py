"""The hardware simulator: virtual door boards, M100 readers and MJPEG cameras over real ptys, TCP and HTTP."""

SHUTDOWN_POLL_S = 0.05
"""How often the simulator's HTTP servers look for a shutdown (the standard library's default, 0.5 s, kept every
stopped simulator waiting up to that long per server: a second a test)."""
