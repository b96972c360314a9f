"""Entry by card: the signed list (what the store accepts as the gateway's), and the core's rules for a tap — in,
out, refused, bounded, paired — on the store core's rig (real journal and outbox, fake doors and clock)."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bingobox.core.events import CardListIn, CardPaired, FaceDecided
from bingobox.devices.events import DeviceEvent
from bingobox.domain import cards, tokens
from bingobox.domain.faces import FaceDecision
from tests.unit.test_store_core import COLA, KEY, Rig, epc

CARD = cards.card_hash(bytes.fromhex("04416D412B0289"))
OTHER = cards.card_hash(bytes.fromhex("9EB36E66"))


def signed(now, entries=None, key=KEY, kid="k1", store="s1", lifetime=3600, limit=20_000, typ=cards.TYP):
    entries = [{"c": CARD, "id": "crd_00112233445566ff", "sub": "acc_1", "fc": 0}] if entries is None else entries
    text = cards.issue(key, kid, store, int(now), lifetime, limit, entries)
    if typ != cards.TYP:  # the same payload under another typ (as if an entry code's header)
        import jwt

        text = jwt.encode(json.loads(tokens.b64d(text.split(".")[1])), key, algorithm="EdDSA",
                          headers={"kid": kid, "typ": typ})
    return text


KEYS = {"k1": KEY.public_key()}


def test_a_list_is_taken_only_as_the_gateway_signed_it_for_this_store_and_only_while_current():
    now = 1_800_000_000
    lst = cards.verify(signed(now), KEYS, "s1", now + 10)
    assert lst.lookup(CARD) == cards.CardEntry("crd_00112233445566ff", "acc_1", False) and lst.lookup(OTHER) is None
    bad = {
        "another key": signed(now, key=Ed25519PrivateKey.generate()),
        "another store": signed(now, store="s2"),
        "an entry code's typ": signed(now, typ=tokens.TYP),
        "too long a life": signed(now, lifetime=cards.MAX_LIST_LIFETIME_S + 1),
        "expired": signed(now - 7200),
        "a bad hash": signed(now, [{"c": "zz", "id": "crd_00112233445566ff", "sub": "a", "fc": 0}]),
        "an extra field": signed(now, [{"c": CARD, "id": "crd_00112233445566ff", "sub": "a", "fc": 0, "x": 1}]),
        "a name that is not a name": signed(now, [{"c": CARD, "id": "crd_00112233445566ff", "sub": "a", "fc": 0,
                                                   "nm": "<b>x</b>"}]),
        "the same card twice": signed(now, [{"c": CARD, "id": "crd_00112233445566ff", "sub": "a", "fc": 0}] * 2),
        "not a JWS": "not.a.list",
    }
    for what, text in bad.items():
        with pytest.raises(cards.ListRejected):
            cards.verify(text, KEYS, "s1", now + 10)
            pytest.fail(what)
    # an entry code is not a card list, and a card list is not an entry code
    with pytest.raises(tokens.CodeRejected):
        tokens.verify(signed(now), KEYS, "s1", "entrance", now)


def test_pairing_codes_and_card_hashes():
    assert cards.pair_code_of("BBXPAIR:ABCDEFGH23") == "ABCDEFGH23"
    assert cards.pair_code_of("BBXPAIR:abc") is None and cards.pair_code_of("eyJ...") is None
    assert len(CARD) == 32 and CARD != OTHER
    with pytest.raises(ValueError):
        cards.card_hash(b"\x01\x02")


class CardRig(Rig):
    def __init__(self, path, **visits):
        self.paired, self.visits = [], visits
        super().__init__(path, acks=True)  # (the boards answer grants: panels speak once a door has unlocked)

    def start(self):
        self.cfg.visits = self.cfg.visits.model_copy(update=self.visits)
        super().start()
        self.core.cards.out = lambda code, card: self.paired.append((code, card))
        self.core.handle(CardListIn(cards.verify(signed(self.clock.t), KEYS, "s1", self.clock.t)))

    def tap(self, door, card=CARD):
        self.core.handle(DeviceEvent(f"{door}-nfc", "card_tapped", {"card": card, "door": door}, self.clock.t))
        self.run()

    def shown(self, door):
        return self.core.panels.shown[door][0].key


@pytest.fixture
def rig(tmp_path):
    r = CardRig(tmp_path / "store.db")
    yield r
    r.journal.close()


def test_a_card_opens_a_bounded_visit_of_its_account_and_identifies_it_at_the_exit(rig):
    rig.tap("entrance")
    (grant,) = rig.doors["entrance"].grants
    v = rig.visit_of("acc_1")
    assert v["entry_jti"] == "card.crd_00112233445566ff" and "card_entry" in json.loads(v["flags"])
    assert grant["visits"] == {v["id"]: "door_unlocked"}
    rig.at(0.5)
    rig.door("entrance", "door_opened")
    rig.at(1.0)
    rig.door("entrance", "door_closed")
    rig.tap("entrance")  # tapped again once inside: one visit per account
    assert len(rig.doors["entrance"].grants) == 1 and rig.shown("entrance") == "refused.inside"
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.at(5)
    rig.reader.read(rig.clock.t - 0.3, epc(COLA, 1), n=20)
    rig.tap("exit")
    rig.send()
    assert len(rig.doors["exit"].grants) == 1
    rig.door("exit", "door_opened")
    v = rig.visit_of("acc_1")
    assert v["state"] == "left" and [c["amount_fen"] for c in rig.client.charges] == [350]
    assert rig.client.charges[0]["entry_jti"] == "card.crd_00112233445566ff"
    assert ("identified", "card") in [(k, d.get("by")) for k, d in rig.events(v["id"])]
    # a second visit by the same card: a card is not used up like a code
    rig.at(5)
    rig.tap("entrance")
    assert len(rig.doors["entrance"].grants) == 2


def test_unknown_cards_and_a_missing_or_expired_list_are_refused_with_what_to_do(rig):
    rig.tap("entrance", OTHER)
    assert not rig.doors["entrance"].grants and rig.shown("entrance") == "refused.card_unknown"
    rig.at(3601)  # the list has expired: no card is trusted any more
    rig.tap("entrance")
    assert not rig.doors["entrance"].grants and rig.shown("entrance") == "refused.card_unavailable"
    rig.tap("exit")
    assert rig.shown("exit") == "refused.card_unavailable"
    # a newer list comes; an older one fetched late never replaces it
    rig.core.handle(CardListIn(cards.verify(signed(rig.clock.t, []), KEYS, "s1", rig.clock.t)))
    rig.core.handle(CardListIn(cards.verify(signed(rig.clock.t - 60), KEYS, "s1", rig.clock.t)))
    rig.tap("entrance")
    assert not rig.doors["entrance"].grants and rig.shown("entrance") == "refused.card_unknown"


def test_a_card_of_an_account_with_an_unpaid_charge_is_refused_like_its_code(rig, monkeypatch):
    monkeypatch.setattr(rig.outbox, "debtors", lambda: {"acc_1"})
    rig.tap("entrance")
    assert not rig.doors["entrance"].grants and rig.shown("entrance") == "refused.unpaid"


def test_a_card_visit_above_the_limit_opens_the_exit_uncharged_and_enters_the_review_queue(tmp_path):
    rig = CardRig(tmp_path / "store.db", card_visit_limit_fen=300)
    try:
        rig.tap("entrance")
        v = rig.visit_of("acc_1")
        rig.at(0.5)
        rig.door("entrance", "door_opened")
        rig.at(1.0)
        rig.door("entrance", "door_closed")
        rig.shelf("tag_gone", epc(COLA, 1))  # 350 fen: above 300
        rig.at(5)
        rig.reader.read(rig.clock.t - 0.3, epc(COLA, 1), n=20)
        rig.core.handle(FaceDecided(FaceDecision(v["id"], 0.4, 0.2, "matched", v["id"]), rig.clock.t - 0.1, {}))
        rig.send()
        assert len(rig.doors["exit"].grants) == 1 and not rig.client.charges  # out, and nothing charged
        rig.door("exit", "door_opened")
        v = rig.visit_of("acc_1")
        assert "card_limit" in json.loads(v["flags"]) and v["amount_fen"] == 350
        assert rig.journal.review_of(v["id"])["causes"] == ["card_limit"]
        assert rig.core.panels.shown["exit"][0].key == "exit.goodbye_card_limit"
    finally:
        rig.journal.close()


def test_pairing_binds_the_next_card_tapped_and_says_how_it_went(rig):
    rig.show("entry", "BBXPAIR:ABCDEFGH23")
    assert rig.shown("entrance") == "cards.tap_now" and not rig.doors["entrance"].grants
    rig.tap("entrance", OTHER)
    assert rig.paired == [("ABCDEFGH23", OTHER)] and not rig.doors["entrance"].grants
    assert rig.shown("entrance") == "cards.pairing"
    rig.core.handle(CardPaired(False, "card_taken"))
    assert rig.shown("entrance") == "cards.pair_taken"
    rig.tap("entrance", OTHER)  # the window was used: a tap is a tap again
    assert rig.paired == [("ABCDEFGH23", OTHER)] and rig.shown("entrance") == "refused.card_unknown"
    rig.show("entry", "BBXPAIR:ABCDEFGH24")
    rig.at(cards.PAIR_WINDOW_S + 1)  # too late: the window closed
    rig.tap("entrance")
    assert len(rig.paired) == 1 and len(rig.doors["entrance"].grants) == 1  # the linked card simply comes in
