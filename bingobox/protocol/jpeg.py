"""The size a JPEG says it is, read from its frame header (SOFn) without decoding it: an MJPEG camera's frames are
kept as they arrive and decoded only when something looks at them, and a frame that claims to be huge is refused
before any decoder allocates for it. Pure parsing, bounded by the buffer (each step moves forward)."""

from __future__ import annotations

SOI = b"\xff\xd8"
# start-of-frame markers (baseline, extended, progressive, lossless, arithmetic); not DHT (C4), JPG (C8), DAC (CC)
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: no length field


def size(buf: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """(width, height) of a JPEG, or None if ``buf`` is not one, is cut short before its frame header, or says
    0 pixels (a height of 0 means "given later", which no camera frame does)."""
    b = memoryview(buf).cast("B") if not isinstance(buf, (bytes, bytearray)) else buf
    n = len(b)
    if n < 4 or b[0] != 0xFF or b[1] != 0xD8:
        return None
    i = 2
    while i + 4 <= n:
        if b[i] != 0xFF:
            return None  # markers follow each other; anything else before the frame header is not a JPEG
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in (0xD8, 0xD9, 0xDA):  # a second SOI, the end, or scan data before any frame header
            return None
        length = (b[i + 2] << 8) | b[i + 3]
        if length < 2:
            return None
        if marker in _SOF:
            if length < 8 or i + 9 > n:
                return None
            height, width = (b[i + 5] << 8) | b[i + 6], (b[i + 7] << 8) | b[i + 8]
            return (width, height) if width and height else None
        i += 2 + length
    return None
