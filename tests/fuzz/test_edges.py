"""Property-based fuzzing of every parser that takes bytes or JSON from outside the process: the wire codecs
(Modbus RTU, M100, LLRP, PN532), entry codes, the gateway's card lists, the gateway's signed requests and bodies,
MQTT payloads at the fleet and at the store, and config files. Each property: any input gives a result or the
parser's own clear error — never an exception of another kind, never a hang (pytest-timeout bounds each test).

A short run in CI (the ``ci`` profile); ``make fuzz`` runs the ``fuzz`` profile (far more examples per test) and
prints Hypothesis's statistics."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bingobox.protocol import m100, modbus, pn532
from bingobox.protocol.checksums import crc16_modbus
from bingobox_devkit.sim import llrp_codec as llrp

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=10), kids, max_size=5),
                    max_leaves=30)
chunks = st.lists(st.binary(max_size=300), max_size=20)


# the wire codecs ------------------------------------------------------------------------------------------
@given(chunks)
def test_m100_decoders_take_any_bytes(data):
    for framing in (m100.BB, m100.AA):
        dec = m100.Decoder(framing, accept_types=(m100.TYPE_COMMAND, m100.TYPE_RESPONSE, m100.TYPE_NOTICE),
                           max_payload=0xFFFF)
        for chunk in data:
            dec.feed(chunk)
        assert dec.pending <= 0xFFFF + 7
        try:
            m100.decode_one(b"".join(data), framing)
        except m100.ProtocolError:
            pass


def _modbus_frames(draw_bytes: bytes) -> bytes:
    """Random bytes with a valid CRC now and then (so the parsers behind the CRC check are reached)."""
    return draw_bytes + crc16_modbus(draw_bytes).to_bytes(2, "little")


@given(chunks, st.lists(st.binary(min_size=2, max_size=40), max_size=5))
def test_modbus_decoders_take_any_bytes(data, framed):
    stream = [*data, *[_modbus_frames(f) for f in framed]]
    for dec in (modbus.RequestDecoder(), modbus.ResponseDecoder()):
        for chunk in stream:
            dec.feed(chunk)
        assert dec.pending <= dec.MAX_FRAME + 300


@given(chunks)
def test_llrp_framer_takes_any_bytes(data):
    f = llrp.Framer()
    try:
        for chunk in data:
            f.feed(chunk)
    except llrp.LlrpError:
        pass
    assert len(f.buf) <= llrp.MAX_MESSAGE + 300


@given(chunks, st.lists(st.binary(max_size=60), max_size=5))
def test_pn532_decoder_and_target_lists_take_any_bytes(data, bodies):
    """Noise, and frames whose checksums pass around any body (so the parsers behind them are reached)."""
    framed = [b"\x00\x00\xff" + bytes([len(b) & 0xFF, (-len(b)) & 0xFF]) + b + bytes([(-sum(b)) & 0xFF, 0])
              for b in bodies]
    for expect in (pn532.DEVICE, pn532.HOST):
        dec = pn532.Decoder(expect=expect, max_buffer=512)
        for chunk in [*data, *framed]:
            for f in dec.feed(chunk):
                if isinstance(f, pn532.Frame):
                    try:
                        pn532.parse_targets(f.data)
                    except pn532.ProtocolError:
                        pass
        assert len(dec._buf) <= 512
    for b in bodies:
        try:
            pn532.parse_targets(b)
        except pn532.ProtocolError:
            pass


params = st.recursive(st.binary(max_size=30), lambda kids: st.builds(
    lambda t, subs, tv_: llrp.tlv(t, b"", *subs) if not tv_ else bytes([0x80 | (t & 0x7F)]) + b"".join(subs),
    st.sampled_from([llrp.P_TAG_REPORT_DATA, llrp.P_EPC_DATA, llrp.P_ROSPEC, llrp.P_AISPEC, llrp.P_LLRP_STATUS,
                     llrp.P_KEEPALIVE_SPEC, llrp.P_RO_BOUNDARY_SPEC, llrp.P_ROSPEC_START_TRIGGER,
                     llrp.TV_EPC96, llrp.TV_ANTENNA_ID, llrp.TV_PEAK_RSSI, 0, 1023]),
    st.lists(kids, max_size=4), st.booleans()), max_leaves=12)


@given(st.lists(params, max_size=5).map(b"".join) | st.binary(max_size=200))
def test_llrp_bodies_give_a_result_or_llrp_error(body):
    for parse in (lambda b: list(llrp.params(b)), llrp.tag_reads, llrp.rospec_of, llrp.rospec_id_of,
                  llrp.keepalive_ms, llrp.status_of):
        try:
            parse(body)
        except llrp.LlrpError:
            pass


# entry codes ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def signing():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    return key, {"k1": key.public_key()}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=600) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_text_shown_as_a_code_is_refused_clearly(signing, text):
    from bingobox.domain import tokens

    try:
        tokens.verify(text, signing[1], "s1", "entrance", time.time())
    except tokens.CodeRejected:
        pass


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.dictionaries(st.sampled_from(["alg", "typ", "kid", "x"]), JSON, max_size=4),
       payload=st.dictionaries(st.sampled_from(["v", "sub", "sto", "door", "iat", "exp", "jti", "fc", "x"]),
                               JSON | st.integers(-(2**70), 2**70), max_size=9))
def test_a_validly_signed_code_with_any_claims_is_taken_or_refused_clearly(signing, header, payload):
    """The signature passes (signed with the real key), so every claim check is reached with odd values."""
    from bingobox.domain import tokens

    h = {"alg": "EdDSA", "typ": "bbx-entry", "kid": "k1", **header}
    body = f"{tokens.b64e(json.dumps(h).encode())}.{tokens.b64e(json.dumps(payload).encode())}"
    code = f"{body}.{tokens.b64e(signing[0].sign(body.encode()))}"
    try:
        tokens.verify(code, signing[1], "s1", "entrance", time.time())
    except tokens.CodeRejected:
        pass


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.dictionaries(st.sampled_from(["alg", "typ", "kid", "x"]), JSON, max_size=4),
       payload=st.dictionaries(st.sampled_from(["v", "sto", "iat", "exp", "lim", "cards", "x"]),
                               JSON | st.integers(-(2**70), 2**70) | st.lists(
                                   st.dictionaries(st.sampled_from(["c", "id", "sub", "fc", "nm", "x"]),
                                                   JSON, max_size=6), max_size=4), max_size=7))
def test_a_validly_signed_card_list_with_any_content_is_taken_or_refused_clearly(signing, header, payload):
    """The gateway's card list, signed with the real key: every check behind the signature is reached."""
    from bingobox.domain import cards, tokens

    h = {"alg": "EdDSA", "typ": "bbx-cards", "kid": "k1", **header}
    body = f"{tokens.b64e(json.dumps(h).encode())}.{tokens.b64e(json.dumps(payload).encode())}"
    text = f"{body}.{tokens.b64e(signing[0].sign(body.encode()))}"
    try:
        got = cards.verify(text, signing[1], "s1", time.time())
    except cards.ListRejected:
        return
    assert all(isinstance(e, cards.CardEntry) for e in got.cards.values())


# the gateway's signed requests and bodies -------------------------------------------------------------------
HEADERS = st.dictionaries(st.sampled_from([b"x-store-id", b"x-timestamp", b"x-nonce", b"x-signature",
                                           b"idempotency-key"]),
                          st.binary(max_size=80) | st.just(str(int(time.time())).encode()) | st.just(b"s1"),
                          max_size=5)


@given(HEADERS)
def test_the_gateway_header_check_refuses_clearly(headers):
    from bingobox_devkit.gateway.terminal_auth import Refusal, check_headers

    try:
        check_headers(headers, time.time(), {"s1": "x" * 32}.get)
    except Refusal as e:
        assert 400 <= e.status < 500


@pytest.fixture(scope="module")
def gateway_app(tmp_path_factory):
    from fastapi.testclient import TestClient

    from bingobox_devkit.gateway.app import create_app
    from bingobox_devkit.gateway.db import GatewayDB

    db = GatewayDB(tmp_path_factory.mktemp("gw") / "gw.db")
    db.upsert_store("s1", "s" * 32)
    with TestClient(create_app(db, "admin"), raise_server_exceptions=False) as c:
        yield c
    db.close()


ROUTES = [("POST", "/v1/charges"), ("POST", "/v1/refunds"), ("PUT", "/v1/visits/v1"), ("PUT", "/v1/visits/v1/basket"),
          ("POST", "/v1/disputes/dp_1/resolution"), ("POST", "/v1/data-requests/dr_1/answer"),
          ("POST", "/v1/charges/ch_1/cancel"), ("POST", "/v1/cards/pair")]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(route=st.sampled_from(ROUTES), body=st.binary(max_size=400) | JSON.map(lambda j: json.dumps(j).encode()),
       key=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40))
def test_a_signed_request_with_any_body_gets_a_clear_4xx_never_a_5xx(gateway_app, route, body, key):
    """Signed with the store's real secret: the body reaches every route's parsing and checks."""
    from bingobox.wallet.signing import sign_headers

    method, path = route
    h = {**sign_headers("s1", "s" * 32, method, path, body, idempotency_key=key), "Content-Type": "application/json"}
    r = gateway_app.request(method, path, content=body, headers=h)
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert set(r.json()["error"]) >= {"code", "message"}


# MQTT payloads: at the fleet, at the store ---------------------------------------------------------------
SUBTOPICS = st.sampled_from(["status", "state", "metrics", "event/alarm", "event/alarm_cleared", "event/charge",
                             "cmd/lock_down/result", "cmd/x", "ha/lockdown/set", "../state", "event/"]) | \
    st.text(max_size=30)
PAYLOADS = st.binary(max_size=300) | JSON.map(lambda j: json.dumps(j).encode()) | st.fixed_dictionaries(
    {"t": st.floats() | st.integers(-(2**70), 2**70) | st.text(max_size=5), "id": JSON, "data": JSON,
     "open_alarms": JSON, "reviews_open": JSON, "review_causes": JSON,
     "store_id": st.sampled_from(["s1", "s2", ""])}).map(lambda d: json.dumps(d).encode())


@given(store=st.sampled_from(["s1", "", "a" * 65, "../x", "s 1"]) | st.text(max_size=10), sub=SUBTOPICS,
       payload=PAYLOADS)
def test_the_fleet_parses_any_message_or_refuses_it(store, sub, payload):
    from bingobox.fleet.schema import Message, Refused, parse

    try:
        msg = parse(store, sub, payload, 1_800_000_000.0)
    except Refused:
        return
    assert isinstance(msg, Message) and msg.t <= 1_800_000_000.0 + 5


@pytest.fixture(scope="module")
def fleet_db(tmp_path_factory):
    from bingobox.fleet.db import FleetDB

    db = FleetDB(tmp_path_factory.mktemp("fleet") / "f.db")
    db.apply([("good", "status", b"online", 1.0)])
    yield db
    db.close()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["good", "evil", "ghost"]), SUBTOPICS, PAYLOADS), max_size=20))
def test_no_batch_can_cost_a_good_alarm(fleet_db, junk):
    from bingobox.mqtt import messages as m

    now = time.time()
    n = fleet_db.one("SELECT count(*) AS n FROM alarms")["n"]
    eid = f"good:0:{n + 1}"
    alarm = ("good", "event/alarm", m.dumps({"id": eid, "t": now, "data": {"alarm_id": n + 1}}), now)
    got = fleet_db.apply([*[(s, t, p, now) for s, t, p in junk], alarm])
    assert fleet_db.one("SELECT 1 FROM alarms WHERE store_id='good' AND event_id=?", (eid,)) is not None, got


@given(name=st.sampled_from(["lock_down", "release", "unlock", "clear_alarm", "restock", "x"]), payload=PAYLOADS)
def test_the_store_takes_a_signed_command_or_refuses_it_clearly(name, payload):
    from bingobox.mqtt import messages as m

    try:
        m.check_command("k" * 32, "s1", name, payload, time.time(), set())
    except m.CommandRefused:
        pass


@given(name=st.sampled_from(["lock_down", "unlock", "clear_alarm"]), args=JSON, tx=JSON, op=JSON, ts=JSON)
def test_a_validly_signed_command_with_any_fields_is_taken_or_refused(name, args, tx, op, ts):
    from bingobox.mqtt import messages as m

    assume(not (isinstance(args, dict) and isinstance(tx, str) and isinstance(op, str) and isinstance(ts, int)))
    body = {"tx": tx, "operator": op, "ts": ts, "args": args}
    try:
        sig = m.sign_command("k" * 32, "s1", name, tx, op, args, ts if isinstance(ts, int) else 0)["sig"]
    except (TypeError, ValueError):
        sig = "0" * 64
    with pytest.raises(m.CommandRefused):
        m.check_command("k" * 32, "s1", name, m.dumps({**body, "sig": sig}), time.time(), set())


# config files ---------------------------------------------------------------------------------------------
GOOD = """[store]
id = "s1"
[[doors]]
name = "entrance"
port = "loop://"
energize_to_unlock = true
"""


def _toml_value():
    return st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False),
                     st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20).map(json.dumps),
                     st.lists(st.integers(-5, 300), max_size=4).map(str))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300) | st.lists(st.tuples(st.sampled_from(
    ["id", "name", "port", "energize_to_unlock", "unit", "lock_coil", "rex_input", "fire_input", "poll_hz",
     "unlock_s", "bus", "comm_watchdog_s", "comm_watchdog_register", "egress_waiver", "baudrate", "x"]),
    _toml_value()), max_size=6).map(lambda kv: GOOD + "".join(f"{k} = {v}\n" for k, v in kv)))
def test_any_config_file_loads_or_says_what_is_wrong(tmp_path, text):
    from bingobox.config import ConfigError, load_store_config

    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_store_config(p)
    except ConfigError as e:
        assert e.problems and all(isinstance(x, str) and str(p) in x for x in e.problems)
