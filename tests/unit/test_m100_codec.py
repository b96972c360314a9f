"""M100/R200 codec against every vector of shared/reference/test-vectors.md, any chunking, and junk."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bingobox.protocol import ProtocolError, m100
from bingobox.protocol.checksums import crc16_genibus

H = bytes.fromhex

HOST_VECTORS = {
    "BB 00 22 00 00 22 7E": m100.Command(0x22, b""),
    "BB 00 27 00 03 22 27 10 83 7E": m100.Command(0x27, H("22 27 10")),
    "BB 00 27 00 03 22 FF FF 4A 7E": m100.Command(0x27, H("22 FF FF")),
    "BB 00 28 00 00 28 7E": m100.Command(0x28, b""),
    "BB 00 03 00 01 00 04 7E": m100.Command(0x03, b"\x00"),
}
READER_VECTORS = {
    "BB 01 28 00 01 00 2A 7E": m100.Response(0x28, b"\x00"),
    "BB 01 FF 00 01 15 16 7E": m100.ErrorFrame(0x15),
    "BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E": m100.TagNotice(
        0x22, -55, 0x3400, H("30751FEB705C5904E3D50D70"), 0x3A76),
    "BB 02 22 00 11 C4 30 00 E2 00 00 1D 73 15 01 65 21 40 8F C6 B8 3E C2 7E": m100.TagNotice(
        0x22, -60, 0x3000, H("E200001D7315016521408FC6"), 0xB83E),
    "BB 02 22 00 11 DC 30 00 E2 80 68 94 00 00 50 24 58 95 B5 EB D5 F9 6E 7E": m100.TagNotice(
        0x22, -36, 0x3000, H("E2806894000050245895B5EB"), 0xD5F9),
}
AA_VECTORS = {
    "AA 02 22 00 11 C7 30 00 E2 80 68 90 00 00 50 0E 88 C6 A4 A7 11 9B 29 DD": m100.TagNotice(
        0x22, -57, 0x3000, H("E280689000005 00E88C6A4A7".replace(" ", "")), 0x119B),
    "AA 00 22 00 00 22 DD": m100.Command(0x22, b""),
}
ALL = [(v, f, m100.BB) for v, f in {**HOST_VECTORS, **READER_VECTORS}.items()] + [
    (v, f, m100.AA) for v, f in AA_VECTORS.items()]


@pytest.mark.parametrize(("hexframe", "frame", "framing"), ALL)
def test_vector_decodes_and_reencodes(hexframe, frame, framing):
    raw = H(hexframe)
    decoded = m100.decode_one(raw, framing)
    assert decoded == frame
    if isinstance(decoded, m100.TagNotice):
        assert decoded.crc_ok
    assert m100.encode_frame(decoded, framing) == raw


@pytest.mark.parametrize(("hexframe", "frame", "framing"), ALL)
def test_vector_byte_at_a_time(hexframe, frame, framing):
    dec = m100.Decoder(framing, accept_types=(0, 1, 2))
    got = []
    for b in H(hexframe):
        got += dec.feed(bytes((b,)))
    assert got == [frame]
    assert dec.pending == 0


def test_builders_match_vectors():
    assert m100.single_inventory() == H("BB 00 22 00 00 22 7E")
    assert m100.multi_poll(10000) == H("BB 00 27 00 03 22 27 10 83 7E")
    assert m100.multi_poll(65535) == H("BB 00 27 00 03 22 FF FF 4A 7E")
    assert m100.stop_multi_poll() == H("BB 00 28 00 00 28 7E")
    assert m100.hw_version() == H("BB 00 03 00 01 00 04 7E")
    assert m100.single_inventory(m100.AA) == H("AA 00 22 00 00 22 DD")
    # the generated notice for the first capture's EPC (PC derived from the EPC length: 3000)
    notice = m100.tag_notice(H("30751FEB705C5904E3D50D70"), -55)
    assert notice == m100.encode_frame(m100.TagNotice(0x22, -55, 0x3000, H("30751FEB705C5904E3D50D70"),
                                                      crc16_genibus(H("3000 30751FEB705C5904E3D50D70"))))
    assert m100.decode_one(notice).crc_ok


def test_genibus_crc_of_all_captures():
    for pc_epc, crc in [("3400 30751FEB705C5904E3D50D70", 0x3A76), ("3000 E200001D7315016521408FC6", 0xB83E),
                        ("3000 E2806894000050245895B5EB", 0xD5F9), ("3000 E2806890000050 0E88C6A4A7", 0x119B)]:
        assert crc16_genibus(H(pc_epc)) == crc


def test_resync_after_garbage_and_bad_checksum():
    good = H("BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E")
    bad_cs = bytearray(good)
    bad_cs[-2] ^= 0x01
    stream = H("00 BB 7E 13 37") + bytes(bad_cs) + H("BB 01") + good + H("BB 01 FF 00 01 15 16 7E")
    dec = m100.Decoder()
    frames = dec.feed(stream)
    assert frames == [m100.decode_one(good), m100.ErrorFrame(0x15)]
    assert dec.stats["bad_checksum"] == 1
    assert dec.pending == 0


def test_7e_inside_epc_is_not_an_end():
    epc = H("7E7E7E7E7E7E7E7E7E7E7E7E")
    frame = m100.tag_notice(epc, -40)
    dec = m100.Decoder()
    assert [f.epc for f in dec.feed(frame[:9]) + dec.feed(frame[9:])] == [epc]


def test_impossible_length_is_rejected_not_awaited():
    dec = m100.Decoder(max_payload=64)
    frames = dec.feed(H("BB 01 22 FF FF") + m100.encode(1, 0x28, b"\x00"))
    assert frames == [m100.Response(0x28, b"\x00")]
    assert dec.stats["bad_length"] == 1


def test_long_epc_128_bit_uses_pc_length():
    epc = bytes(range(16))
    n = m100.decode_one(m100.tag_notice(epc, -70, cmd=0x27))
    assert n.epc == epc and n.pc >> 11 == 8 and n.crc_ok and n.cmd == 0x27


def test_corrupted_tag_crc_flagged():
    raw = bytearray(m100.tag_notice(bytes(12), -50))
    raw[-4] ^= 0xFF  # tag CRC byte, then fix the frame checksum so only the tag CRC is wrong
    raw[-2] = sum(raw[1:-2]) & 0xFF
    assert m100.decode_one(bytes(raw)).crc_ok is False


def test_encoder_rejects_bad_values():
    with pytest.raises(ProtocolError):
        m100.multi_poll(70000)
    with pytest.raises(ProtocolError):
        m100.tag_notice(b"\x01\x02\x03", -50)
    with pytest.raises(ProtocolError):
        m100.tag_notice(bytes(12), -200)
    with pytest.raises(ProtocolError):
        m100.decode_one(H("BB 00 22 00 00 23 7E"))


epcs = st.integers(1, 31).flatmap(lambda words: st.binary(min_size=words * 2, max_size=words * 2))


@settings(max_examples=300, deadline=None)
@given(epc=epcs, rssi=st.integers(-128, 127), framing=st.sampled_from([m100.BB, m100.AA]),
       cuts=st.lists(st.integers(0, 200), max_size=8))
def test_roundtrip_any_chunking(epc, rssi, framing, cuts):
    raw = m100.tag_notice(epc, rssi, framing=framing)
    dec = m100.Decoder(framing)
    frames, last = [], 0
    for c in [*sorted(set(min(c, len(raw)) for c in cuts)), len(raw)]:
        frames += dec.feed(raw[last:c])
        last = c
    assert len(frames) == 1
    assert (frames[0].epc, frames[0].rssi, frames[0].crc_ok) == (epc, rssi, True)


@settings(max_examples=300, deadline=None)
@given(junk=st.binary(max_size=3000), tail=epcs)
def test_arbitrary_junk_never_raises_and_stays_bounded(junk, tail):
    dec = m100.Decoder()
    dec.feed(junk)
    assert dec.pending <= 7 + dec.max_payload
    # whatever came before, a complete frame after enough junk is decoded
    frames = dec.feed(bytes(7 + dec.max_payload) + m100.tag_notice(tail, -60))
    assert frames and frames[-1].epc == tail
