"""Checksums and CRCs used by the device protocols (checked against shared/reference/test-vectors.md)."""


def _table_reflected(poly: int) -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


def _table_msb(poly: int) -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return table


_MODBUS = _table_reflected(0xA001)
_CCITT = _table_msb(0x1021)


def sum8(data: bytes) -> int:
    """M100 checksum: the byte sum of type..params, modulo 256."""
    return sum(data) & 0xFF


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS: poly 0xA001 reflected, init 0xFFFF, no xorout. Sent low byte first."""
    crc = 0xFFFF
    table = _MODBUS
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


def crc16_genibus(data: bytes) -> int:
    """CRC-16/GENIBUS (the EPC Gen2 tag CRC): poly 0x1021, init 0xFFFF, no reflection, xorout 0xFFFF."""
    crc = 0xFFFF
    table = _CCITT
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ b) & 0xFF]
    return crc ^ 0xFFFF
