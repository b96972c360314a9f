"""Entry codes: every way a code can be wrong is refused with its reason; replay is remembered across restarts."""

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bingobox.domain import tokens
from bingobox.domain.entry import EntryGate, load_pinned_keys
from bingobox.domain.tokens import Reject, b64e
from bingobox.journal import Journal

KEY = Ed25519PrivateKey.generate()
KEYS = {"k1": KEY.public_key()}
NOW = 1_800_000_000


def code(**kw):
    args = {"key": KEY, "kid": "k1", "account": "acc_1234", "store": "s1", "door": "entrance", "now": NOW,
            "lifetime_s": 60, "face_consent": True}
    args.update(kw)
    return tokens.issue(**args)


def reason(c, now=NOW, store="s1", door="entrance"):
    with pytest.raises(tokens.CodeRejected) as e:
        tokens.verify(c, KEYS, store, door, now)
    return e.value.reason


def resign(header: dict, payload: dict, key=KEY) -> str:
    h = b64e(json.dumps(header).encode())
    p = b64e(json.dumps(payload).encode())
    return f"{h}.{p}.{b64e(key.sign(f'{h}.{p}'.encode()))}"


def parts(c):
    h, p, _ = c.split(".")
    return json.loads(tokens.b64d(h)), json.loads(tokens.b64d(p))


def test_valid_code_and_its_claims():
    c = code()
    assert len(c) < 400  # fits a QR code comfortably
    cl = tokens.verify(c, KEYS, "s1", "entrance", NOW + 10)
    assert (cl.account, cl.store, cl.door, cl.face_consent, cl.kid) == ("acc_1234", "s1", "entrance", True, "k1")
    assert tokens.verify(code(door="*"), KEYS, "s1", "exit", NOW).door == "*"


@pytest.mark.parametrize(("now", "why"), [(NOW + 60 + 31, Reject.EXPIRED), (NOW - 31, Reject.NOT_YET_VALID)])
def test_time_window_with_30s_skew(now, why):
    assert reason(code(), now=now) == why
    tokens.verify(code(), KEYS, "s1", "entrance", now + (-2 if why == Reject.EXPIRED else 2))


def test_binding_and_lifetime():
    assert reason(code(), store="s2") == Reject.WRONG_STORE
    assert reason(code(), door="exit") == Reject.WRONG_DOOR
    assert reason(code(lifetime_s=61)) == Reject.LIFETIME_TOO_LONG


def test_tampering_is_caught():
    c = code()
    h, p, s = c.split(".")
    raw = bytearray(tokens.b64d(p))
    raw[5] ^= 0x01  # one bit
    assert reason(f"{h}.{b64e(bytes(raw))}.{s}") in (Reject.BAD_SIGNATURE, Reject.MALFORMED)
    header, payload = parts(c)
    payload["sub"] = "acc_someone_else"
    forged = f"{h}.{b64e(json.dumps(payload).encode())}.{s}"
    assert reason(forged) == Reject.BAD_SIGNATURE
    assert reason(resign(header, payload, Ed25519PrivateKey.generate())) == Reject.BAD_SIGNATURE


def test_alg_confusion_is_refused():
    header, payload = parts(code())
    none = f"{b64e(json.dumps({**header, 'alg': 'none'}).encode())}.{b64e(json.dumps(payload).encode())}."
    assert reason(none) in (Reject.BAD_ALG, Reject.MALFORMED)
    # HS256 "signed" with the public key as the HMAC secret: the classic key-confusion forgery
    pub = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    h = b64e(json.dumps({**header, "alg": "HS256"}).encode())
    p = b64e(json.dumps(payload).encode())
    mac = hmac.new(pub, f"{h}.{p}".encode(), hashlib.sha256).digest()
    assert reason(f"{h}.{p}.{b64e(mac)}") == Reject.BAD_ALG
    assert reason(resign({**header, "kid": "k9"}, payload)) == Reject.UNKNOWN_KEY
    assert reason(resign(header, {**payload, "v": 2})) == Reject.UNSUPPORTED_VERSION
    assert reason(resign(header, {**payload, "exp": "soon"})) == Reject.MALFORMED


@pytest.mark.parametrize("bad", ["", "a.b", "a.b.c.d", "x" * 10_000, "eyJ.eyJ.!!!", "é.é.é", "a\x00.b.c",
                                 code() + "=", code() + ".extra",
                                 base64.urlsafe_b64encode(b"[1]").decode().rstrip("=") + ".e30.AA"])
def test_garbage_never_raises_anything_but_a_rejection(bad):
    assert reason(bad) in set(Reject)


def test_oversized_code():
    assert reason("a" * (tokens.MAX_CODE_LEN + 1)) == Reject.TOO_LARGE


def test_replay_survives_a_restart(tmp_path):
    db = tmp_path / "store.db"
    journal = Journal(db)
    gate = EntryGate(KEYS, "s1", journal, clock=lambda: NOW + 1)
    c = code()
    d = gate.check(c, "entrance")
    assert d.ok and gate.check(c, "entrance").ok  # checking reads only: whoever acts on it uses it up
    assert journal.remember_jti(d.claims.jti, d.claims.exp, NOW + 1)
    second = gate.check(c, "entrance")
    assert (second.ok, second.reason) == (False, "replayed")
    journal.close()
    gate2 = EntryGate(KEYS, "s1", Journal(db), clock=lambda: NOW + 2)  # "reboot"
    assert gate2.check(c, "entrance").reason == "replayed"
    assert gate2.check(code(), "entrance").ok  # a new code (new jti) is fine


def test_a_clock_stepped_forward_then_back_lets_no_used_code_in_again(tmp_path):
    journal = Journal(tmp_path / "store.db")
    clock = {"t": NOW + 1}
    gate = EntryGate(KEYS, "s1", journal, clock=lambda: clock["t"])
    used = code()
    d = gate.check(used, "entrance")
    assert d.ok and journal.remember_jti(d.claims.jti, d.claims.exp, clock["t"])
    clock["t"] = NOW + 3600  # stepped an hour forward: a code used then purges the old rows…
    late = code(now=NOW + 3600)
    assert journal.remember_jti(gate.check(late, "entrance").claims.jti, NOW + 3660, clock["t"])
    assert not journal.jti_used(d.claims.jti)
    clock["t"] = NOW + 2  # …and set back: the first code is within its lifetime and forgotten by the cache
    refused = gate.check(used, "entrance")
    assert (refused.ok, refused.reason) == (False, "clock_behind")  # before: it entered a second time
    assert gate.check(code(now=NOW + 2), "entrance").reason == "clock_behind"  # nobody, until the clock is right
    clock["t"] = NOW + 3600 - 4  # within the slack of an NTP step: fine
    assert gate.check(code(now=clock["t"]), "entrance").ok
    journal.reset_clock_mark(NOW + 100)  # the operator accepts the corrected clock
    clock["t"] = NOW + 100
    assert gate.check(code(now=NOW + 100), "entrance").ok


def test_a_retired_key_is_trusted_until_its_not_after_and_never_again(tmp_path):
    journal = Journal(tmp_path / "store.db")
    clock = {"t": NOW + 1}
    gate = EntryGate(KEYS, "s1", journal, clock=lambda: clock["t"], not_after={"k1": NOW + 120})
    assert gate.check(code(), "entrance").ok  # within its grace period
    clock["t"] = NOW + 121
    late = gate.check(code(now=NOW + 100), "entrance")  # a valid code, signed by a key now past its not_after
    assert (late.ok, late.reason) == (False, "unknown_key")  # before: every pinned key was trusted forever


def test_pinned_keys_carry_their_not_after(tmp_path):
    from bingobox.domain.entry import load_pinned

    x = tokens.b64e(KEY.public_key().public_bytes_raw())
    p = tmp_path / "keys.json"
    p.write_text(json.dumps({"keys": [{"kid": "k1", "alg": "EdDSA", "crv": "Ed25519", "x": x, "not_after": NOW},
                                      {"kid": "k2", "alg": "EdDSA", "crv": "Ed25519", "x": x, "not_after": None}]}))
    keys, not_after = load_pinned(p)
    assert set(keys) == {"k1", "k2"} and not_after == {"k1": float(NOW)}


def test_gate_refuses_debtors_and_offline_limit(tmp_path):
    class Charges:
        def __init__(self, ok=True, debtors=()):
            self.ok, self.d = ok, set(debtors)

        def admission(self):
            return (self.ok, None if self.ok else "too_many_pending_charges")

        def debtors(self):
            return self.d

    j = Journal(tmp_path / "s.db")
    assert EntryGate(KEYS, "s1", j, Charges(debtors={"acc_1234"}), clock=lambda: NOW).check(
        code(), "entrance").reason == "unpaid_charges"
    d = EntryGate(KEYS, "s1", j, Charges(ok=False), clock=lambda: NOW).check(code(), "entrance")
    assert (d.reason, d.detail) == ("store_offline_limit", "too_many_pending_charges")


def test_pinned_key_file(tmp_path):
    x = b64e(KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    f = tmp_path / "keys.json"
    f.write_text(json.dumps({"keys": [{"kid": "k1", "alg": "EdDSA", "crv": "Ed25519", "x": x}]}))
    keys = load_pinned_keys(f)
    tokens.verify(code(), keys, "s1", "entrance", NOW)
    f.write_text("{}")
    with pytest.raises(ValueError, match="not a pinned key file"):
        load_pinned_keys(f)


def test_a_code_may_carry_a_first_name_to_greet_and_nothing_else_in_its_place():
    assert tokens.verify(code(name="Zoë"), KEYS, "s1", "entrance", NOW).name == "Zoë"
    assert tokens.verify(code(), KEYS, "s1", "entrance", NOW).name is None
    longest = code(name="欧阳" * 6)  # 12 CJK letters, each escaped \uXXXX: the code stays scannable
    assert len(longest) <= tokens.MAX_CODE_LEN and tokens.verify(longest, KEYS, "s1", "entrance", NOW).name
    for bad in ("<b>hi</b>", "Bob1", " Ann", "a  b", "x" * 13, "", "Ann\n", "\u202eevil", 7):
        assert not tokens.door_name_ok(bad), bad
        with pytest.raises(ValueError):
            code(name=bad)
        payload = json.loads(base64.urlsafe_b64decode(code().split(".")[1] + "=="))
        assert reason(resign({"alg": "EdDSA", "typ": "bbx-entry", "kid": "k1"}, {**payload, "nm": bad})) == \
            Reject.MALFORMED
    for good in ("Zoë", "李雷", "O'Neil", "Jean-Luc", "Mary Ann", "アン・リー"):
        assert tokens.door_name_ok(good), good


def test_a_code_may_carry_a_group_of_two_to_nine_people_signed():
    assert tokens.verify(code(group=3), KEYS, "s1", "entrance", NOW).group == 3
    assert tokens.verify(code(), KEYS, "s1", "entrance", NOW).group == 1
    payload = json.loads(base64.urlsafe_b64decode(code().split(".")[1] + "=="))
    for bad in (1, 0, 10, -2, True, "3", 2.5):
        assert reason(resign({"alg": "EdDSA", "typ": "bbx-entry", "kid": "k1"}, {**payload, "gs": bad})) == \
            Reject.MALFORMED, bad
    with pytest.raises(ValueError):
        code(group=10)
