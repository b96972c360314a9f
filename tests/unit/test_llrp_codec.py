"""The LLRP codec (bytes only) checked byte for byte and against sllurp, a third-party implementation: what our
simulated reader sends, sllurp decodes; what sllurp's client sends, we parse. And the antenna placement rule."""

from __future__ import annotations

import pytest
from sllurp.llrp import LLRPClient, LLRPMessage, LLRPReaderConfig

from bingobox.devices.llrp import Placement
from bingobox_devkit.sim import llrp_codec as L

EPC = "E28068940000502400010001"


def test_message_header_known_bytes_and_framing_across_chunks():
    ka = L.encode(L.KEEPALIVE, 5)
    assert ka == bytes.fromhex("043E0000000A00000005")  # ver 1, type 62, length 10, id 5
    stream = ka + L.encode(L.RO_ACCESS_REPORT, 6, L.tag_report(L.TagRead(EPC, 1, -55)))
    framer, got = L.Framer(), []
    for i in range(len(stream)):  # one byte at a time, as TCP may deliver it
        got += framer.feed(stream[i:i + 1])
    assert [(m.type, m.id) for m in got] == [(L.KEEPALIVE, 5), (L.RO_ACCESS_REPORT, 6)]
    assert L.tag_reads(got[1].body) == [L.TagRead(EPC, 1, -55)]


@pytest.mark.parametrize("bad, why", [(bytes.fromhex("0C3E0000000A00000005"), "version 3"),
                                      (bytes.fromhex("043E0000000400000005"), "length 4"),
                                      (bytes.fromhex("043E7FFFFFFF00000005"), "out of range")])
def test_a_stream_that_is_not_llrp_is_refused(bad, why):
    with pytest.raises(L.LlrpError, match=why):
        L.Framer().feed(bad)


def test_a_parameter_running_past_its_container_is_refused():
    with pytest.raises(L.LlrpError, match="runs past"):
        list(L.params(bytes.fromhex("00F00010") + b"\x00" * 4))
    with pytest.raises(L.LlrpError, match="cut short"):
        list(L.params(bytes([0x80 | L.TV_EPC96]) + b"\x00" * 5))


def test_sllurp_decodes_our_tag_reports_connection_event_and_status():
    report = L.tag_report(L.TagRead(EPC, 3, -61, 4, 10, 20, 7)) + L.tag_report(L.TagRead(EPC + "ABCD", 2, -70))
    msg = LLRPMessage(msgbytes=L.encode(L.RO_ACCESS_REPORT, 1, report))
    a, b = msg.msgdict["RO_ACCESS_REPORT"]["TagReportData"]
    assert (a["EPC"].decode().upper(), a["AntennaID"], a["PeakRSSI"], a["TagSeenCount"], a["ROSpecID"],
            a["FirstSeenTimestampUTC"], a["LastSeenTimestampUTC"]) == (EPC, 3, -61, 4, 7, 10, 20)
    assert b["EPC"].decode().upper() == EPC + "ABCD"  # 112 bits: EPCData, not EPC-96
    assert L.tag_reads(report)[1] == L.TagRead(EPC + "ABCD", 2, -70)
    ev = LLRPMessage(msgbytes=L.encode(L.READER_EVENT_NOTIFICATION, 0, L.connection_event(123)))
    assert ev.isSuccess()
    refused = LLRPMessage(msgbytes=L.encode(L.READER_EVENT_NOTIFICATION, 0,
                                            L.connection_event(1, L.CONNECTION_CLIENT_ALREADY)))
    assert not refused.isSuccess()
    err = LLRPMessage(msgbytes=L.encode(L.ADD_ROSPEC_RESPONSE, 9, L.status(L.M_FIELD_ERROR, "no such antenna")))
    assert not err.isSuccess()
    assert L.status_of(L.status(L.M_FIELD_ERROR, "no such antenna")) == (L.M_FIELD_ERROR, "no such antenna")


def test_sllurps_client_accepts_our_capabilities():
    caps = LLRPMessage(msgbytes=L.encode(L.GET_READER_CAPABILITIES_RESPONSE, 2, L.capabilities(L.Capabilities(4))))
    d = caps.msgdict["GET_READER_CAPABILITIES_RESPONSE"]
    assert caps.isSuccess() and "DecodeError" not in d
    client = LLRPClient(LLRPReaderConfig({"antennas": [1, 2, 3, 4], "tx_power_dbm": 27.0}))
    client.parseCapabilities(d)  # (raises on what it does not like)
    assert client.max_ant == 4 and client.tx_power_table[1] == 10.0 and 27.0 in client.tx_power_table


def test_we_parse_what_sllurps_client_sends():
    sent: list[bytes] = []
    client = LLRPClient(LLRPReaderConfig({"antennas": [1, 3], "keepalive_interval": 500}),
                        transport_tx_write=sent.append)
    client.send_SET_READER_CONFIG(onCompletion=None)
    client.send_ADD_ROSPEC(client.getROSpec(), onCompletion=None)
    client.send_ENABLE_ROSPEC(None, client.getROSpec(), onCompletion=None)
    msgs = L.Framer().feed(b"".join(sent))
    assert [m.type for m in msgs] == [L.SET_READER_CONFIG, L.ADD_ROSPEC, L.ENABLE_ROSPEC]
    assert L.keepalive_ms(msgs[0].body) == 500
    spec = L.rospec_of(msgs[1].body)
    assert spec.id == 1 and spec.antennas == (1, 3) and spec.start_trigger == L.START_TRIGGER_IMMEDIATE
    assert L.rospec_id_of(msgs[2].body) == 1


def test_placement_never_on_one_read_and_with_hysteresis():
    p = Placement(margin_db=6, reads=2, stale_s=0.5)
    assert p.place(EPC, 1, -55, 0.0) is None  # one read places nothing
    assert p.place(EPC, 1, -55, 0.1) == 1
    for t in range(20):  # a neighbour's bleed, 15 dB weaker, never moves it (nor counts)
        assert p.place(EPC, 2, -70, 0.2 + t * 0.01) is None
        assert p.place(EPC, 1, -55, 0.2 + t * 0.01) == 1
    assert p.place(EPC, 3, -45, 0.5) is None  # one strong read elsewhere: not yet
    assert p.place(EPC, 1, -55, 0.5) == 1  # (and a read at home resets the challenge)
    assert p.place(EPC, 3, -40, 0.51) is None
    assert p.place(EPC, 3, -40, 0.52) == 3  # twice in a row, 6 dB stronger: moved
    assert p.moves == 1
    assert p.place(EPC, 1, -55, 0.6) is None  # back home only on the same terms
    assert p.place(EPC, 2, -40, 0.61) is None  # antenna 2 read it weakly for long: one strong read does not erase
    assert p.place(EPC, 2, -40, 0.62) is None  # that (its RSSI is smoothed), so it is not yet the strongest
    q = Placement(margin_db=6, reads=2, stale_s=0.5)
    q.place(EPC, 1, -55, 0.0)
    q.place(EPC, 1, -55, 0.1)
    assert q.place(EPC, 4, -60, 1.0) is None  # home not read for 0.9 s (carried away): a weaker antenna may take it
    assert q.place(EPC, 4, -60, 1.1) == 4
