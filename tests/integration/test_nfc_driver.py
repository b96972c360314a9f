"""The PN532 card reader driver against the simulator's module over a real pty: taps, a card held, faults."""

from __future__ import annotations

import serial

from bingobox.config import CardReaderConfig
from bingobox.devices.nfc import CardReader
from bingobox.domain.cards import card_hash
from bingobox.protocol import pn532
from tests.helpers import SIM_TOML, Events, Sim, wait_until

NFC_SIM = SIM_TOML + '\n[[card_readers]]\nname = "entrance-nfc"\n'
UID = "04416D412B0289"


def reader(sim: Sim, events: Events) -> CardReader:
    cfg = CardReaderConfig(name="entrance-nfc", port=sim.pty("entrance-nfc"), door="entrance", poll_interval_s=0.05,
                           gone_after_s=0.3, answer_timeout_s=0.3)
    return CardReader(cfg, events)


def taps(events: Events) -> list[str]:
    return [e.data["card"] for e in events.items if e.kind == "card_tapped"]


def test_a_tap_is_one_event_named_by_the_card_s_hash_and_a_held_card_taps_once(tmp_path):
    sim, events = Sim(tmp_path, NFC_SIM), Events()
    r = reader(sim, events)
    r.start()
    try:
        wait_until(r.online, 5, "the module set up")
        assert r.status()["firmware"] == "PN532 v1.6"
        sim.act("card.tap", reader="entrance-nfc", uid=UID, hold_s=1.5)  # held for a while: one tap
        wait_until(lambda: taps(events), 3, "the tap")
        polls = r.stats["polls"]
        wait_until(lambda: r.stats["polls"] > polls + 10, 3, "more polls while the card is held")
        assert taps(events) == [card_hash(bytes.fromhex(UID))]
        assert UID not in repr(events.items) and UID.lower() not in repr(events.items)  # the UID stays here
        wait_until(lambda: r.status()["cards_in_field"] == 0, 4, "the card taken away")
        sim.act("card.tap", reader="entrance-nfc", uid="9EB36E66")
        wait_until(lambda: len(taps(events)) == 2, 3, "the next card")
        sim.act("card.tap", reader="entrance-nfc", uid=UID)  # the first card again, after it left: a new tap
        wait_until(lambda: len(taps(events)) == 3, 3, "the first card again")
    finally:
        r.stop()
        sim.stop()


def test_a_module_that_stops_answering_is_woken_and_set_up_again(tmp_path):
    sim, events = Sim(tmp_path, NFC_SIM), Events()
    r = reader(sim, events)
    r.start()
    try:
        wait_until(r.online, 5, "the module set up")
        sim.act("fault.silent", device="entrance-nfc")
        wait_until(lambda: not r.online(), 5, "the silence noticed")
        assert any(e.kind == "fault" for e in events.items)
        mark = events.mark()
        sim.act("fault.clear", device="entrance-nfc")
        wait_until(r.online, 5, "set up again")
        events.wait_for(lambda e: e.kind == "connected", 2, after=mark)  # (the store's problem clears)
        sim.act("fault.garbage", device="entrance-nfc", bytes=40)
        sim.act("fault.corrupt", device="entrance-nfc", count=3)
        # (held 3 s: each frame the noise spoils costs the driver a wake-up and a setup, up to its 0.5 s answer
        # timeout each; on a loaded box a 1 s hold could end before the module is set up again)
        sim.act("card.tap", reader="entrance-nfc", uid=UID, hold_s=3.0)
        wait_until(lambda: taps(events), 8, "a tap through the noise")
        assert r.stats["setups"] >= 2
        # unplugged and back: the module comes back asleep, and is woken again
        sim.act("fault.unplug", device="entrance-nfc")
        wait_until(lambda: not r.online(), 5, "unplugged")
        sim.act("fault.replug", device="entrance-nfc")
        wait_until(r.online, 10, "replugged and set up")
    finally:
        r.stop()
        sim.stop()


def test_the_simulated_module_answers_a_plain_pyserial_client_like_a_real_one(tmp_path):
    """Frame for frame, as the published captures: wake + SAMConfiguration, a listing with no card, one with a card."""
    sim = Sim(tmp_path, NFC_SIM)
    try:
        with serial.Serial(sim.pty("entrance-nfc"), 115200, timeout=0.5) as s:
            s.write(bytes.fromhex("55 55 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 FF 03 FD D4 14 01 17 00"))
            assert s.read(15) == bytes.fromhex("00 00 FF 00 FF 00 00 00 FF 02 FE D5 15 16 00")
            s.write(bytes.fromhex("00 00 FF 04 FC D4 4A 01 00 E1 00"))
            assert pn532.Decoder().feed(s.read(16)) == [pn532.Ack(), pn532.Frame(0xD5, 0x4B, b"\x00")]
            sim.act("card.tap", reader="entrance-nfc", uid="9EB36E66", hold_s=2)
            s.write(bytes.fromhex("00 00 FF 04 FC D4 4A 01 00 E1 00"))
            assert s.read(25) == bytes.fromhex("00 00 FF 00 FF 00 "  # ACK, then the capture of a MIFARE 1K
                                               "00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 9E B3 6E 66 A9 00")
            s.write(bytes.fromhex("00 00 FF 02 FE D4 99 93 00"))  # a command it does not know: the error frame
            assert s.read(14) == pn532.ACK + pn532.ERROR
    finally:
        sim.stop()
