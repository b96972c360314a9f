"""SGTIN-96, the GS1 Tag Data Standard's EPC for a serialised trade item (TDS 2.x §14.6.1): an EPC of 24 hex
digits → its GTIN-14 and serial. Pure; cross-checked in the tests against GS1's published example and epcpy.

Layout: header 0x30 (8 bits), filter (3), partition (3), company prefix + item reference (44 bits, split by the
partition), serial (38 bits)."""

from __future__ import annotations

from dataclasses import dataclass

HEADER = 0x30
# partition → (company prefix bits, digits, item reference bits, digits) (TDS table 14-2)
PARTITIONS = ((40, 12, 4, 1), (37, 11, 7, 2), (34, 10, 10, 3), (30, 9, 14, 4), (27, 8, 17, 5), (24, 7, 20, 6),
              (20, 6, 24, 7))
SERIAL_BITS = 38


@dataclass(frozen=True, slots=True)
class Sgtin:
    filter: int
    company_prefix: str  # 6 to 12 digits
    item_ref: str  # the indicator digit, then the item reference (13 − prefix digits in all)
    serial: int

    @property
    def gtin(self) -> str:
        """The GTIN-14: indicator, company prefix, item reference, check digit."""
        body = self.item_ref[0] + self.company_prefix + self.item_ref[1:]
        return body + check_digit(body)

    @property
    def uri(self) -> str:
        return f"urn:epc:tag:sgtin-96:{self.filter}.{self.company_prefix}.{self.item_ref}.{self.serial}"


def check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit of ``digits`` (weights 3, 1, 3… from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str(-total % 10)


def valid_gtin(gtin: str) -> bool:
    """14 digits whose last is the check digit of the others."""
    return len(gtin) == 14 and gtin.isdigit() and check_digit(gtin[:13]) == gtin[13]


def decode(epc: str) -> Sgtin | None:
    """The SGTIN of a 96-bit EPC in hex, or None when it is not a valid SGTIN-96 (another scheme, a partition of
    7, a prefix or reference too large for its digits — TDS says such a tag does not decode)."""
    if len(epc) != 24:
        return None
    try:
        v = int(epc, 16)
    except ValueError:
        return None
    if v >> 88 != HEADER:
        return None
    filt, part = (v >> 85) & 0x7, (v >> 82) & 0x7
    if part >= len(PARTITIONS):
        return None
    cp_bits, cp_digits, ir_bits, ir_digits = PARTITIONS[part]
    cp, ir = (v >> (SERIAL_BITS + ir_bits)) & ((1 << cp_bits) - 1), (v >> SERIAL_BITS) & ((1 << ir_bits) - 1)
    if cp >= 10 ** cp_digits or ir >= 10 ** ir_digits:
        return None
    return Sgtin(filt, str(cp).zfill(cp_digits), str(ir).zfill(ir_digits), v & ((1 << SERIAL_BITS) - 1))


def encode(gtin: str, prefix_digits: int, serial: int, filter_value: int = 1) -> str:
    """The SGTIN-96 EPC (hex, upper case) of ``gtin`` whose company prefix has ``prefix_digits`` digits."""
    if not valid_gtin(gtin):
        raise ValueError(f"{gtin!r} is not a GTIN-14 with its check digit")
    part = next((i for i, p in enumerate(PARTITIONS) if p[1] == prefix_digits), None)
    if part is None:
        raise ValueError(f"a company prefix has 6 to 12 digits, not {prefix_digits}")
    if not 0 <= serial < 1 << SERIAL_BITS or not 0 <= filter_value <= 7:
        raise ValueError("serial or filter out of range")
    ir_bits = PARTITIONS[part][2]
    cp, ir = int(gtin[1:1 + prefix_digits]), int(gtin[0] + gtin[1 + prefix_digits:13])
    v = (HEADER << 88 | filter_value << 85 | part << 82 | cp << (SERIAL_BITS + ir_bits) | ir << SERIAL_BITS
         | serial)
    return f"{v:024X}"
