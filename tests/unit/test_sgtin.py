"""SGTIN-96 (GS1 Tag Data Standard): GS1's published example, every partition against a third-party implementation
(epcpy), and what does not decode (another scheme, a partition of 7, a prefix too large for its digits)."""

import pytest
from epcpy import hex_to_tag_encodable
from hypothesis import given
from hypothesis import strategies as st

from bingobox.domain import sgtin


def test_gs1_s_example_decodes_and_encodes_back():
    """TDS §14.6.1 / Appendix E: urn:epc:tag:sgtin-96:3.0614141.812345.6789 ↔ 3074257BF7194E4000001A85, GTIN
    80614141123458."""
    s = sgtin.decode("3074257BF7194E4000001A85")
    assert s == sgtin.Sgtin(3, "0614141", "812345", 6789)
    assert s.uri == "urn:epc:tag:sgtin-96:3.0614141.812345.6789"
    assert s.gtin == "80614141123458" and sgtin.valid_gtin(s.gtin)
    assert sgtin.encode("80614141123458", 7, 6789, 3) == "3074257BF7194E4000001A85"
    assert sgtin.decode("3074257bf7194e4000001a85") == s  # (readers send either case)


@given(prefix_digits=st.integers(6, 12), data=st.data(), serial=st.integers(0, (1 << 38) - 1),
       filter_value=st.integers(0, 7))
def test_every_partition_agrees_with_epcpy(prefix_digits, data, serial, filter_value):
    body = data.draw(st.text("0123456789", min_size=13, max_size=13))
    gtin = body + sgtin.check_digit(body)
    epc = sgtin.encode(gtin, prefix_digits, serial, filter_value)
    ours = sgtin.decode(epc)
    theirs = hex_to_tag_encodable(epc)
    assert ours is not None and ours.gtin == theirs.gtin() == gtin
    assert theirs.epc_uri == f"urn:epc:id:sgtin:{ours.company_prefix}.{ours.item_ref}.{serial}"


@pytest.mark.parametrize("epc", [
    "E2806894000050240001000A",  # a TID-style EPC of another scheme
    "3074257BF7194E4000001A8",  # 23 digits
    "3074257BF7194E4000001A8G",  # not hex
    "301C000000000000000000FF",  # partition 7
    "3003FFFFFFFFFC0000000001",  # partition 0: a 12-digit company prefix of 2**40 − 1 (> 999 999 999 999)
])
def test_what_is_not_an_sgtin_96_does_not_decode(epc):
    assert sgtin.decode(epc) is None


def test_a_gtin_is_checked_before_it_is_encoded():
    with pytest.raises(ValueError, match="check digit"):
        sgtin.encode("80614141123459", 7, 1)
    with pytest.raises(ValueError, match="6 to 12"):
        sgtin.encode("80614141123458", 5, 1)
    with pytest.raises(ValueError, match="out of range"):
        sgtin.encode("80614141123458", 7, 1 << 38)
