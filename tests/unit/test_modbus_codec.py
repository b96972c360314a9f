"""Modbus RTU codec against every vector of shared/reference/test-vectors.md, any chunking, and junk."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bingobox.protocol import ProtocolError
from bingobox.protocol import modbus as mb

H = bytes.fromhex

REQUESTS = {
    "01 05 00 00 FF 00 8C 3A": mb.WriteCoil(1, 0, 0xFF00),
    "01 05 00 00 00 00 CD CA": mb.WriteCoil(1, 0, 0x0000),
    "01 02 00 00 00 08 79 CC": mb.ReadBits(1, 2, 0, 8),
    "01 01 00 00 00 08 3D CC": mb.ReadBits(1, 1, 0, 8),
    "01 05 02 00 00 07 8D B0": mb.WriteCoil(1, 0x0200, 0x0007),  # vendor "flash" (meaning unverified)
    "01 06 00 01 00 03 98 0B": mb.WriteRegister(1, 1, 3),  # FC06: the Modbus spec's own example frame
}
RESPONSES = {
    "01 05 00 00 FF 00 8C 3A": mb.WriteCoil(1, 0, 0xFF00),
    "01 05 00 00 00 00 CD CA": mb.WriteCoil(1, 0, 0x0000),
    "01 02 01 01 60 48": mb.BitsResponse(1, 2, (True,) + (False,) * 7),
    "01 02 01 00 A1 88": mb.BitsResponse(1, 2, (False,) * 8),
    "01 85 02 C3 51": mb.ExceptionResponse(1, 5, 2),
    "01 06 00 01 00 03 98 0B": mb.WriteRegister(1, 1, 3),  # FC06's answer echoes the request
}


@pytest.mark.parametrize(("hexframe", "req"), REQUESTS.items())
def test_request_vectors(hexframe, req):
    assert mb.encode_request(req) == H(hexframe)
    dec = mb.RequestDecoder()
    got = []
    for b in H(hexframe):
        got += dec.feed(bytes((b,)))
    assert got == [req]


@pytest.mark.parametrize(("hexframe", "resp"), RESPONSES.items())
def test_response_vectors(hexframe, resp):
    assert mb.encode_response(resp) == H(hexframe)
    dec = mb.ResponseDecoder()
    assert dec.feed(H(hexframe)) == [resp]
    dec2 = mb.ResponseDecoder()
    got = []
    for b in H(hexframe):
        got += dec2.feed(bytes((b,)))
    assert got == [resp]


def test_fc0f_roundtrip():
    req = mb.WriteCoils(1, 3, (True, False, True, True, False, False, False, False, True))
    raw = mb.encode_request(req)
    assert mb.RequestDecoder().feed(raw) == [req]
    resp = mb.WriteCoilsResponse(1, 3, 9)
    assert mb.ResponseDecoder().feed(mb.encode_response(resp)) == [resp]


def test_bad_crc_dropped_then_resync():
    bad = bytearray(H("01 02 01 01 60 48"))
    bad[-1] ^= 0xFF
    dec = mb.ResponseDecoder(units=frozenset({1}), max_byte_count=4)
    assert dec.feed(H("FF 00 13") + bytes(bad) + H("01 02 01 00 A1 88")) == [mb.BitsResponse(1, 2, (False,) * 8)]
    assert dec.stats["bad_crc"] >= 1


def test_unknown_function_request_is_framed_for_an_exception_answer():
    raw = mb.with_crc(H("01 2B 0E 01 00 00"))
    assert mb.RequestDecoder().feed(raw) == [mb.OtherRequest(1, 0x2B, H("0E 01 00 00"))]


def test_encoder_rejects_out_of_range():
    with pytest.raises(ProtocolError):
        mb.encode_request(mb.ReadBits(1, 2, 0, 0))
    with pytest.raises(ProtocolError):
        mb.encode_request(mb.ReadBits(300, 2, 0, 8))
    with pytest.raises(ProtocolError):
        mb.encode_request(mb.WriteCoil(1, 0, 0x1FFFF))
    with pytest.raises(ProtocolError):
        mb.encode_request(mb.WriteRegister(1, 0, 0x10000))


bits = st.lists(st.booleans(), min_size=1, max_size=64)


@settings(max_examples=300, deadline=None)
@given(unit=st.integers(1, 247), values=bits, addr=st.integers(0, 0xFFFF - 64), fc=st.sampled_from([1, 2]),
       cuts=st.lists(st.integers(0, 80), max_size=6))
def test_roundtrip_any_chunking(unit, values, addr, fc, cuts):
    reqs = [mb.ReadBits(unit, fc, addr, len(values)), mb.WriteCoils(unit, addr, tuple(values)),
            mb.WriteCoil(unit, addr, 0xFF00 if values[0] else 0)]
    raw = b"".join(mb.encode_request(r) for r in reqs)
    dec = mb.RequestDecoder()
    got, last = [], 0
    for c in [*sorted({min(c, len(raw)) for c in cuts}), len(raw)]:
        got += dec.feed(raw[last:c])
        last = c
    assert got == reqs
    resp = mb.BitsResponse(unit, fc, tuple(values) + (False,) * (-len(values) % 8))
    assert mb.ResponseDecoder().feed(mb.encode_response(resp)) == [resp]


@settings(max_examples=300, deadline=None)
@given(junk=st.binary(max_size=3000))
def test_arbitrary_junk_never_raises_and_stays_bounded(junk):
    for dec in (mb.RequestDecoder(), mb.ResponseDecoder()):
        dec.feed(junk)
        assert dec.pending <= mb._Decoder.MAX_FRAME
        good = H("01 02 01 00 A1 88") if isinstance(dec, mb.ResponseDecoder) else H("01 02 00 00 00 08 79 CC")
        # zero bytes are never a frame start, so whatever false start the junk left is skipped over
        frames = dec.feed(bytes(300) + good)
        assert frames[-1:] == dec.__class__().feed(good)
        dec.reset()  # what the transport does after the line went silent
        assert dec.pending == 0 and dec.feed(good) == dec.__class__().feed(good)


@pytest.mark.parametrize("hexframe,req", [
    ("11 04 00 08 00 01 B2 98", mb.ReadRegisters(0x11, 4, 8, 1)),  # the classic FC04 example (simplymodbus.ca)
    ("11 03 00 6B 00 03 76 87", mb.ReadRegisters(0x11, 3, 0x6B, 3)),  # and FC03
])
def test_register_reads_match_the_published_examples(hexframe, req):
    raw = bytes.fromhex(hexframe)
    assert mb.encode_request(req) == raw and mb.RequestDecoder().feed(raw) == [req]


def test_register_responses_decode_and_an_odd_byte_count_is_not_registers():
    raw = bytes.fromhex("11 04 02 00 0A F8 F4")  # its answer: one register, 10
    assert mb.ResponseDecoder().feed(raw) == [mb.RegistersResponse(0x11, 4, (10,))]
    assert mb.encode_response(mb.RegistersResponse(0x11, 4, (10,))) == raw
    odd = mb.with_crc(bytes.fromhex("0A 04 03 00 28 02"))
    assert mb.ResponseDecoder().feed(odd) == [mb.ExceptionResponse(0x0A, 4, mb.ILLEGAL_DATA_VALUE)]
    with pytest.raises(ProtocolError):
        mb.encode_request(mb.ReadRegisters(1, 4, 0, 126))
