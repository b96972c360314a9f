"""PN532 HSU codec against frames captured from real modules (as published with libnfc's examples, Waveshare's and
Elechouse's module guides and several open drivers), any chunking, and junk."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bingobox.protocol import ProtocolError, pn532

H = bytes.fromhex

HOST_FRAMES = {  # what the host sends, byte for byte as the manual and the common libraries write them
    "00 00 FF 02 FE D4 02 2A 00": pn532.get_firmware_version(),
    "00 00 FF 05 FB D4 14 01 14 01 02 00": pn532.sam_configuration_normal(),
    "00 00 FF 04 FC D4 4A 01 00 E1 00": pn532.in_list_passive_target(1),
    "00 00 FF 03 FD D4 14 01 17 00": pn532.command(pn532.CMD_SAM_CONFIGURATION, b"\x01"),  # the short form
}
DEVICE_FRAMES = {
    "00 00 FF 06 FA D5 03 32 01 06 07 E8 00": pn532.Frame(0xD5, 0x03, H("32 01 06 07")),  # PN532 v1.6
    "00 00 FF 02 FE D5 15 16 00": pn532.Frame(0xD5, 0x15, b""),  # SAMConfiguration done
    # a MIFARE Classic 1K (SENS_RES 0004, SEL_RES 08) and a 4K (0002, 18), 4-byte UIDs
    "00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 9E B3 6E 66 A9 00":
        pn532.Frame(0xD5, 0x4B, H("01 01 00 04 08 04 9E B3 6E 66")),
    "00 00 FF 0C F4 D5 4B 01 01 00 02 18 04 8A 4C B5 12 23 00":
        pn532.Frame(0xD5, 0x4B, H("01 01 00 02 18 04 8A 4C B5 12")),
    # an Ultralight/NTAG (0044, 00): a 7-byte UID
    "00 00 FF 0F F1 D5 4B 01 01 00 44 00 07 04 41 6D 41 2B 02 89 EA 00":
        pn532.Frame(0xD5, 0x4B, H("01 01 00 44 00 07 04 41 6D 41 2B 02 89")),
}


@pytest.mark.parametrize("wire,built", HOST_FRAMES.items())
def test_host_frames_match_the_manual(wire, built):
    assert built == H(wire)


@pytest.mark.parametrize("wire,want", DEVICE_FRAMES.items())
def test_device_frames_decode(wire, want):
    d = pn532.Decoder()
    assert d.feed(H(wire)) == [want]
    assert d.stats["bad_checksum"] == 0 and d.stats["garbage_bytes"] == 0


def test_ack_nack_and_error_frames():
    d = pn532.Decoder()
    assert d.feed(pn532.ACK + pn532.NACK + pn532.ERROR) == [pn532.Ack(), pn532.Nack(), pn532.ErrorFrame()]


def test_built_frames_have_the_manual_s_checksums():
    # (no capture at hand: LEN + LCS and TFI + data + DCS are 0 mod 256, UM0701-02 §6.2.1)
    for f in (pn532.max_retries(2), pn532.in_release(0), pn532.response(0x4A, b"\x00")):
        assert f[:3] == b"\x00\x00\xff" and (f[3] + f[4]) & 0xFF == 0 and sum(f[5:-1]) & 0xFF == 0 and f[-1] == 0
    assert pn532.Decoder().feed(pn532.response(0x4A, b"\x00")) == [pn532.Frame(0xD5, 0x4B, b"\x00")]
    # a capture with a stray byte before the preamble (a driver's comment in an open STM32 library)
    assert pn532.Decoder().feed(H("01 00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 5C BB E5 D5 FD 00")) == [
        pn532.Frame(0xD5, 0x4B, H("01 01 00 04 08 04 5C BB E5 D5"))]


def test_targets_of_each_uid_size_and_an_ats():
    t = pn532.parse_targets(H("01 01 00 04 08 04 9E B3 6E 66"))
    assert t == [pn532.Target(1, 0x0004, 0x08, H("9E B3 6E 66"))] and t[0].uid_hex == "9EB36E66"
    ntag = pn532.parse_targets(H("01 01 00 44 00 07 04 41 6D 41 2B 02 89"))  # 7-byte UID
    assert ntag[0].uid == H("04 41 6D 41 2B 02 89")
    # a DESFire (SEL_RES 20: ISO 14443-4) answers with its ATS after the UID
    desfire = pn532.parse_targets(H("01 01 03 44 20 07 04 11 22 33 44 55 66 06 75 77 81 02 80"))
    assert desfire[0].ats == H("06 75 77 81 02 80")
    assert pn532.parse_targets(b"\x00") == []
    both = pn532.target_answer([H("01020304"), H("04A1B2C3D4E580")])
    assert [t.uid for t in pn532.parse_targets(both)] == [H("01020304"), H("04A1B2C3D4E580")]


@pytest.mark.parametrize("bad", ["", "03", "01 01 00 04 08 05 92 2E 58 32 11", "01 01 00 04 08 04 92 2E",
                                 "01 01 00 04 08 04 92 2E 58 32 FF", "01 01 00 44 20 04 01 02 03 04 09 00"])
def test_target_lists_that_do_not_add_up_are_refused(bad):
    with pytest.raises(ProtocolError):
        pn532.parse_targets(H(bad))


def test_a_broken_frame_is_skipped_and_the_next_one_read():
    good = pn532.response(pn532.CMD_IN_LIST_PASSIVE_TARGET, pn532.target_answer([H("01020304")]))
    bad_dcs = bytearray(good)
    bad_dcs[-2] ^= 0x01
    bad_lcs = bytearray(good)
    bad_lcs[4] ^= 0x01
    d = pn532.Decoder()
    assert d.feed(b"\x13\x37" + bytes(bad_dcs) + bytes(bad_lcs) + good) == [pn532.Frame(0xD5, 0x4B, good[7:-2])]
    assert d.stats["bad_checksum"] == 2 and d.stats["garbage_bytes"] >= 2


def test_extended_frames_are_recognised_and_skipped():
    data = bytes([0xD5, 0x41]) + bytes(300)
    n = len(data)
    ext = b"\x00\x00\xff\xff\xff" + n.to_bytes(2, "big") + bytes([(-(n >> 8) - (n & 0xFF)) & 0xFF])
    ext += data + bytes([(-sum(data)) & 0xFF, 0])
    d = pn532.Decoder()
    assert d.feed(ext + pn532.ACK) == [pn532.Ack()] and d.stats["extended_skipped"] == 1


def test_the_module_side_reads_host_frames_only():
    d = pn532.Decoder(expect=pn532.HOST)
    assert d.feed(pn532.WAKEUP + pn532.get_firmware_version()) == [pn532.Frame(0xD4, 0x02, b"")]
    assert d.feed(pn532.response(0x02, b"\x32\x01\x06\x07")) == [] and d.stats["wrong_direction"] == 1


def test_a_frame_too_long_for_a_normal_frame_is_refused():
    with pytest.raises(ProtocolError):
        pn532.command(0x40, bytes(253))
    with pytest.raises(ProtocolError):
        pn532.in_list_passive_target(3)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(DEVICE_FRAMES)), min_size=1, max_size=6), st.data())
def test_any_chunking_gives_the_same_frames(frames, data):
    wire = b"".join(H(f) for f in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    d, got, last = pn532.Decoder(), [], 0
    for c in [*cuts, len(wire)]:
        got += d.feed(wire[last:c])
        last = c
    assert got == [DEVICE_FRAMES[f] for f in frames]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_noise_never_raises_and_the_buffer_stays_bounded(noise):
    d = pn532.Decoder(max_buffer=256)
    for i in range(0, len(noise), 37):
        for f in d.feed(noise[i:i + 37]):
            assert isinstance(f, (pn532.Ack, pn532.Nack, pn532.ErrorFrame, pn532.Frame))
    assert len(d._buf) <= 256
    # and a good frame after the noise still comes through
    tail = d.feed(b"\x00" * 10 + H("00 00 FF 06 FA D5 03 32 01 06 07 E8 00"))
    assert pn532.Frame(0xD5, 0x03, H("32 01 06 07")) in tail
