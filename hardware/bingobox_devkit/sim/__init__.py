"""The hardware simulator: virtual door boards, M100 readers and MJPEG cameras over real ptys, TCP and HTTP."""
