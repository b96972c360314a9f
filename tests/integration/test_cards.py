"""Entry by NFC card through real processes (simulator with PN532 modules over ptys, gateway, controller): a shopper
links a card in the wallet app (a pairing code shown to the entrance camera, the card tapped), comes in and leaves
by tapping it and is charged; a card removed in the app stops working within one list fetch; an unknown card is
refused; a card visit above the card limit is not charged but waits for an operator; the gateway caps it too."""

from __future__ import annotations

import time

import pytest
import requests

from bingobox_devkit.harness.demo import Demo, Shopper
from tests.helpers import ROOT, wait_until
from tests.integration.test_store import events, ledger, rows, visit_of

pytestmark = pytest.mark.integration
UID = "04416D412B0289"


def demo(tmp_path, **visits):
    d = Demo(0, seed=9, faults=set(), run_dir=tmp_path / "store", testdata=ROOT / "tests/data", verbose=False,
             overrides={"visits": {"exit_charge_wait_s": 3, "enter_within_s": 15, "card_list_every_s": 5, **visits}})
    d.setup()
    return d


@pytest.fixture
def store(tmp_path):
    d = demo(tmp_path)
    yield d
    d.close()


class App:
    """A shopper's wallet app, over HTTP (the page's own calls)."""

    def __init__(self, d: Demo, id_number: str) -> None:
        self.http, self.base = requests.Session(), d.gw + "/app/api/"
        r = self.http.post(self.base + "signup", json={"real_name": "Zhang Wei", "id_number": id_number,
                                                        "password": "correct horse battery"}, timeout=10)
        r.raise_for_status()
        self.csrf, self.account = r.json()["csrf"], r.json()["account"]["id"]
        self.call("POST", "topup", {"amount_fen": 50_000})

    def call(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        return self.http.request(method, self.base + path, json=body, headers={"X-CSRF-Token": self.csrf},
                                 timeout=10)


def tap(d: Demo, door: str, uid: str = UID) -> None:
    d.act("card.tap", reader=f"{door}-nfc", uid=uid, hold_s=0.6)


def pair(d: Demo, app: App, uid: str = UID) -> str:
    p = app.call("POST", "cards/pairing").json()
    assert p["text"].startswith("BBXPAIR:")
    d.act("camera.show", camera="door-cam", qr=p["text"])
    time.sleep(1.0)  # the camera reads it; the panel asks for the card
    tap(d, "entrance", uid)
    wait_until(lambda: app.call("GET", "cards").json()["cards"], 10, "the card linked")
    d.act("camera.clear", camera="door-cam")
    (card,) = app.call("GET", "cards").json()["cards"]
    assert not d.wait_unlocked("entrance", 1.2)  # pairing opens nothing (and the card is lifted: a new tap next)
    return card["id"]


def walk(d: Demo, door: str) -> None:
    d.act("door.open", door=door)
    time.sleep(0.8)
    d.act("door.close", door=door)
    d.wait_unlocked(door, 3, locked=True)


def card_list_has(d: Demo, n: int) -> None:
    wait_until(lambda: d.status()["cards"]["cards"] == n, 15, f"{n} card(s) in the store's list")


def test_a_linked_card_lets_its_shopper_in_and_out_and_is_charged_and_a_removed_one_stops(store):
    d = store
    app = App(d, "110101199003071234")
    card_id = pair(d, app)
    card_list_has(d, 1)
    # an unknown card: refused, the door stays shut
    tap(d, "entrance", "9EB36E66")
    assert not d.wait_unlocked("entrance", 2)
    # the linked card: the door opens, the visit is the account's, flagged as a card visit
    tap(d, "entrance")
    assert d.wait_unlocked("entrance", 8)
    walk(d, "entrance")
    v = visit_of(d, app.account)
    assert "card_entry" in v["flags"] and v["entry_jti"] == f"card.{card_id}"
    kept = (d.dir / "controller.log").read_text() + str(rows(d, "SELECT * FROM visit_events"))
    assert UID not in kept.upper()  # the UID is nowhere: a card is its hash
    s = Shopper(1, app.account, None)
    d.take(s, 2)
    time.sleep(2.0)  # (the shelf reader declares them gone)
    d.act("tags.add", reader="exit-area", epcs=[e for _, e in s.took])
    time.sleep(0.4)
    tap(d, "exit")
    assert d.wait_unlocked("exit", 10)
    walk(d, "exit")
    wait_until(lambda: visit_of(d, app.account)["state"] == "left", 15, "the visit over")
    v = visit_of(d, app.account)
    assert v["amount_fen"] > 0 and ("identified", {"by": "card", "card": card_id}) in [
        (k, {x: y for x, y in e.items() if x in ("by", "card")}) for k, e in events(d, v["id"])]
    wait_until(lambda: [c for c in ledger(d, app.account) if c["status"] == "succeeded"], 10, "the charge")
    assert sum(c["amount_fen"] for c in ledger(d, app.account) if c["status"] == "succeeded") == v["amount_fen"]
    # removed in the app: the next list leaves it out, and a tap is refused
    assert app.call("DELETE", f"cards/{card_id}").status_code == 200
    card_list_has(d, 0)
    tap(d, "entrance")
    assert not d.wait_unlocked("entrance", 2)
    assert len(rows(d, "SELECT * FROM visits WHERE account_id=?", (app.account,))) == 1


def test_a_card_visit_above_the_card_limit_is_not_charged_but_waits_for_an_operator(tmp_path):
    d = demo(tmp_path, card_visit_limit_fen=100)  # one fen more than nothing: any basket is above it
    try:
        app = App(d, "110101199003075678")
        pair(d, app)
        card_list_has(d, 1)
        tap(d, "entrance")
        assert d.wait_unlocked("entrance", 8)
        walk(d, "entrance")
        s = Shopper(1, app.account, None)
        d.take(s, 1)
        time.sleep(2.0)
        d.act("tags.add", reader="exit-area", epcs=[e for _, e in s.took])
        time.sleep(0.4)
        tap(d, "exit")
        assert d.wait_unlocked("exit", 10)  # never kept inside
        walk(d, "exit")
        wait_until(lambda: visit_of(d, app.account)["state"] == "left", 15, "the visit over")
        v = visit_of(d, app.account)
        assert "card_limit" in v["flags"] and v["amount_fen"] > 100
        time.sleep(1.0)
        assert not ledger(d, app.account)  # nothing charged
        (review,) = rows(d, "SELECT * FROM reviews WHERE visit_id=?", (v["id"],))
        assert "card_limit" in review["causes"] and review["state"] == "open"
    finally:
        d.close()
