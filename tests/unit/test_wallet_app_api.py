"""The gateway's shopper side in process (its FastAPI app on a real SQLite file; requests signed as a store would):
accounts, sessions and CSRF, the login throttle, codes as QR images a decoder reads, visit records marking codes used,
disputes and their resolution, the store inbox, erasure and retention."""

from __future__ import annotations

import base64
import json
import time

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pyzbar import pyzbar

from bingobox.domain import tokens
from bingobox.wallet.signing import sign_headers
from bingobox_devkit.gateway import shopper_db as sdb
from bingobox_devkit.gateway.app import create_app
from bingobox_devkit.gateway.db import GatewayDB

STORE, SECRET = "s1", "s" * 32
ID_NUMBER, PASSWORD = "110105199003074512", "a long passphrase"


class Gw:
    def __init__(self, tmp_path) -> None:
        self.db = GatewayDB(tmp_path / "gw.db")
        self.db.upsert_store(STORE, SECRET)
        self.c = TestClient(create_app(self.db, "admin"))
        self.csrf = ""
        self.codes: dict[tuple, str] = {}

    def signup(self, id_number=ID_NUMBER, name="Wang Fang", password=PASSWORD):
        r = self.c.post("/app/api/signup", json={"real_name": name, "id_number": id_number, "password": password})
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf"]
        return r.json()["account"]

    def app(self, method, path, body=None, csrf=True):
        return self.c.request(method, "/app/api/" + path, json=body,
                              headers={"X-CSRF-Token": self.csrf} if csrf else {})

    def signed(self, method, path, body=None, key=None):
        data = json.dumps(body).encode() if body is not None else b""
        h = sign_headers(STORE, SECRET, method, path, data, idempotency_key=key)
        if body is not None:
            h["Content-Type"] = "application/json"
        if key:
            h["Idempotency-Key"] = key
        return self.c.request(method, path, content=data or None, headers=h)

    def code(self, account, vid="v1", store=STORE):
        """The entry code that opened a visit (issued to the account for the store, as the wallet app does)."""
        if (account, vid, store) not in self.codes:
            self.codes[account, vid, store] = sdb.issue_code(self.db, account, store, "*", 60, False)["jti"]
        return self.codes[account, vid, store]

    def visit(self, account, vid="v1", state="left", final=True, jtis=None, t=None):
        jtis = [self.code(account, vid)] if jtis is None else list(jtis)
        return self.signed("PUT", f"/v1/visits/{vid}", {"account_id": account, "state": state, "final": final,
                                                       "updated_at": t or time.time(), "jtis": jtis,
                                                       "record": {"summary": {"lines": []}, "events": []}})

    def charge(self, account, vid="v1", lines=(("cola", 350, 2), ("chips", 650, 1))):
        items = [{"sku": s, "name": s.title(), "qty": q, "unit_fen": p, "amount_fen": p * q} for s, p, q in lines]
        total = sum(i["amount_fen"] for i in items)
        r = self.signed("POST", "/v1/charges", {"account_id": account, "amount_fen": total, "currency": "CNY",
                                                "visit_id": vid, "entry_jti": self.code(account, vid),
                                                "items": items}, key=f"k-{vid}")
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def gw(tmp_path):
    g = Gw(tmp_path)
    yield g
    g.db.close()


def test_sign_up_log_in_out_with_a_session_cookie_and_csrf(gw):
    acc = gw.signup()
    assert acc["balance_fen"] == 0 and acc["face_consent"] is False  # face billing is off by default
    cookie = gw.c.cookies.jar
    assert any(c.name == "bbx_wallet" and c.path == "/app" and c.has_nonstandard_attr("HttpOnly") for c in cookie)
    row = gw.db.one("SELECT real_name, id_hash FROM accounts WHERE id=?", (acc["id"],))
    assert ID_NUMBER not in json.dumps(dict(row)) and PASSWORD not in json.dumps(
        [dict(r) for r in gw.db.all("SELECT * FROM shopper_logins")])
    assert gw.app("POST", "topup", {"amount_fen": 100}, csrf=False).status_code == 403  # no CSRF token: refused
    assert gw.app("POST", "topup", {"amount_fen": 5000}).json()["account"]["balance_fen"] == 5000
    assert gw.c.post("/app/api/signup", json={"real_name": "X", "id_number": ID_NUMBER.lower(),
                                              "password": "another one"}).status_code == 409
    assert gw.app("POST", "logout").status_code == 200
    assert gw.app("GET", "me").status_code == 401
    r = gw.c.post("/app/api/login", json={"id_number": ID_NUMBER, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["account"]["id"] == acc["id"]


def test_failed_logins_are_throttled_before_the_hash_runs(gw):
    gw.signup()
    codes = [gw.c.post("/app/api/login", json={"id_number": ID_NUMBER, "password": f"wrong {i}"}).status_code
             for i in range(6)]
    assert codes == [401] * 5 + [429]
    # the right password from the same source is throttled too (a guesser cannot tell)
    assert gw.c.post("/app/api/login", json={"id_number": ID_NUMBER, "password": PASSWORD}).status_code == 429


def test_the_code_image_decodes_to_a_valid_code_and_a_reported_visit_marks_it_used(gw):
    acc = gw.signup()
    got = gw.app("POST", "codes", {"purpose": "entry"}).json()
    png = base64.b64decode(got["qr_png"].split(",", 1)[1])
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    text = pyzbar.decode(img)[0].data.decode()
    assert text == got["code"]
    keys = {k["kid"]: tokens.public_key_from_b64(k["x"]) for k in gw.db.public_keys()}
    claims = tokens.verify(text, keys, STORE, "entrance", time.time())
    assert claims.account == acc["id"] and claims.exp - claims.iat == 60 and not claims.face_consent
    assert gw.app("GET", f"codes/{got['jti']}").json()["used"] is False
    assert gw.visit(acc["id"], state="entered", final=False, jtis=[got["jti"]]).status_code == 200
    st = gw.app("GET", f"codes/{got['jti']}").json()
    assert st["used"] is True and st["visit"]["visit_id"] == "v1"
    # consent given: the next code carries it
    gw.app("POST", "consent", {"face_consent": True})
    assert gw.app("POST", "codes", {}).json()["face_consent"] is True


def test_the_first_name_the_door_greets_is_the_shopper_s_choice_carried_in_the_code(gw):
    acc = gw.signup()
    keys = {k["kid"]: tokens.public_key_from_b64(k["x"]) for k in gw.db.public_keys()}

    def greeted():
        return tokens.verify(gw.app("POST", "codes", {}).json()["code"], keys, STORE, "entrance", time.time()).name

    assert greeted() is None  # nobody is named at the door unless they choose it (not even their real name)
    assert gw.app("POST", "door-name", {"door_name": "<script>"}).status_code == 422
    assert gw.app("POST", "door-name", {"door_name": "Fang"}, csrf=False).status_code == 403
    assert gw.app("POST", "door-name", {"door_name": " Fang "}).json()["account"]["door_name"] == "Fang"
    assert greeted() == "Fang"
    assert [e["kind"] for e in sdb.export(gw.db, acc["id"])["history"]][-1] == "door_name_set"
    assert gw.app("POST", "door-name", {"door_name": None}).json()["account"]["door_name"] is None
    assert greeted() is None
    gw.app("POST", "door-name", {"door_name": "芳"})
    assert greeted() == "芳"
    gw.app("POST", "delete-account", {"password": PASSWORD, "confirm": "delete my account"})
    assert gw.db.one("SELECT door_name FROM accounts WHERE id=?", (acc["id"],))["door_name"] is None


def test_a_dispute_claims_the_lines_and_the_store_resolves_it_once(gw):
    acc = gw.signup()
    gw.app("POST", "topup", {"amount_fen": 10_000})
    gw.visit(acc["id"])
    assert gw.app("POST", "disputes", {"store_id": STORE, "visit_id": "v1", "note": "x"}).json()["error"]["code"] \
        == "nothing_charged"
    ch = gw.charge(acc["id"])
    assert gw.app("POST", "disputes", {"store_id": STORE, "visit_id": "v1", "skus": ["nope"], "note": "x"}) \
        .status_code == 400
    d = gw.app("POST", "disputes", {"store_id": STORE, "visit_id": "v1", "skus": ["cola"], "note": "one can"}).json()
    assert d["claimed_fen"] == 700 and d["state"] == "open"
    assert gw.app("POST", "disputes", {"store_id": STORE, "visit_id": "v1", "note": "again"}).status_code == 409
    box = gw.signed("GET", "/v1/inbox").json()
    assert [x["id"] for x in box["disputes"]] == [d["id"]] and box["disputes_open"] == 1
    path = f"/v1/disputes/{d['id']}/resolution"
    # accepting needs the dispute's own refund (L1, second audit: any refund of the charge was taken)
    assert gw.signed("POST", path, {"decision": "accepted", "reason": "ok", "operator": "op"}).status_code == 422
    other = gw.signed("POST", "/v1/refunds", {"charge_id": ch["id"], "amount_fen": 1, "reason": "goodwill"},
                      key="goodwill-1").json()
    assert gw.signed("POST", path, {"decision": "accepted", "reason": "ok", "operator": "op",
                                    "refund_id": other["id"]}).status_code == 422
    rf = gw.signed("POST", "/v1/refunds", {"charge_id": ch["id"], "amount_fen": 700, "reason": "dispute"},
                   key=f"dispute-{d['id']}").json()
    body = {"decision": "accepted", "reason": "video shows one", "operator": "op", "refund_id": rf["id"]}
    first = gw.signed("POST", path, body)
    assert first.status_code == 200 and first.json()["replayed"] is False
    assert gw.signed("POST", path, body).json()["replayed"] is True  # the same decision again: answered as before
    assert gw.signed("POST", path, {**body, "decision": "rejected"}).status_code == 409
    rc = gw.app("GET", "receipts").json()["data"][0]
    assert rc["disputes"][0]["state"] == "accepted" and rc["disputes"][0]["refund_fen"] == 700
    assert [r["amount_fen"] for r in rc["charges"][0]["refunds"]] == [1, 700]
    # a refund of what is left, then another of 0 fen: refused, not a 200 (L1)
    rest = gw.signed("POST", "/v1/refunds", {"charge_id": ch["id"], "reason": "all"}, key="rest").json()
    assert rest["amount_fen"] == 1350 - 701
    again = gw.signed("POST", "/v1/refunds", {"charge_id": ch["id"], "reason": "more"}, key="more")
    assert again.status_code == 409 and again.json()["error"]["code"] == "refunded_already"
    assert gw.signed("GET", "/v1/inbox").json()["disputes"] == []
    events = sdb.export(gw.db, acc["id"])["dispute_events"]
    assert [(e["actor"], e["kind"]) for e in events] == [("shopper", "opened"), ("store s1: op", "accepted")]


def test_withdrawn_consent_reaches_the_store_the_shopper_is_in_and_no_other(gw):
    acc = gw.signup()
    gw.app("POST", "consent", {"face_consent": True})
    assert gw.signed("GET", "/v1/inbox").json()["consent_withdrawn"] == []
    gw.app("POST", "consent", {"face_consent": False})
    assert gw.signed("GET", "/v1/inbox").json()["consent_withdrawn"] == []  # not in this store: none of its business
    gw.visit(acc["id"], state="entered", final=False)
    assert gw.signed("GET", "/v1/inbox").json()["consent_withdrawn"] == [acc["id"]]


def test_erasure_waits_for_an_open_visit_then_keeps_only_the_ledger(gw):
    acc = gw.signup()
    gw.app("POST", "topup", {"amount_fen": 10_000})
    gw.visit(acc["id"], state="entered", final=False)
    bye = {"password": PASSWORD, "confirm": "delete my account"}
    assert gw.app("POST", "delete-account", {**bye, "password": "wrong password"}).status_code == 401
    assert gw.app("POST", "delete-account", bye).json()["error"]["code"] == "visit_open"
    gw.visit(acc["id"], state="left", final=True)
    ch = gw.charge(acc["id"])
    r = gw.app("POST", "delete-account", bye)
    assert r.status_code == 200, r.text
    assert r.json()["stores_asked"] == [STORE] and r.json()["balance_paid_out_fen"] == 10_000 - ch["amount_fen"]
    row = dict(gw.db.one("SELECT * FROM accounts WHERE id=?", (acc["id"],)))
    assert row["real_name"] == "(erased)" and row["frozen"] == 1 and row["erased_at"]
    assert gw.db.one("SELECT 1 FROM visit_reports WHERE account_id=?", (acc["id"],)) is None
    assert gw.db.one("SELECT amount_fen FROM charges WHERE id=?", (ch["id"],))["amount_fen"] == 1350  # the ledger
    assert gw.app("GET", "me").status_code == 401
    assert gw.c.post("/app/api/login", json={"id_number": ID_NUMBER, "password": PASSWORD}).status_code == 401
    assert gw.visit(acc["id"], vid="v2").status_code == 410  # a store's late report of them is not kept
    box = gw.signed("GET", "/v1/inbox").json()
    assert [(q["account_id"], q["kind"]) for q in box["data_requests"]] == [(acc["id"], "erase")]
    q = box["data_requests"][0]
    assert gw.signed("POST", f"/v1/data-requests/{q['id']}/answer", {"answer": {"erased": {}}}).json() == \
        {"ok": True, "replayed": False}
    assert gw.signed("GET", "/v1/inbox").json()["data_requests"] == []
    # the same ID number can sign up again (a new account: nothing of the old one)
    assert gw.signup()["id"] != acc["id"]


def test_retention_prunes_records_codes_and_answers_but_never_the_ledger(gw):
    acc = gw.signup()
    gw.app("POST", "topup", {"amount_fen": 10_000})
    old = time.time() - 100 * 86_400
    gw.visit(acc["id"], vid="old", t=old)
    gw.visit(acc["id"], vid="new")
    gw.visit(acc["id"], vid="open", final=False, state="entered", t=old)
    gw.charge(acc["id"], vid="old")
    gw.app("POST", "codes", {})
    with gw.db.tx() as c:  # codes of visits are kept as long as the visits' records (charges are bound to them)
        c.execute("UPDATE entry_codes SET exp=? WHERE visit_id IS NULL", (old,))
        c.execute("UPDATE entry_codes SET exp=? WHERE visit_id='new'", (time.time() - 20 * 86_400,))
        c.execute("UPDATE entry_codes SET exp=? WHERE visit_id IN ('old', 'open')", (old,))
    got = sdb.prune(gw.db, sdb.Retention(visits_days=90, codes_days=7))
    assert got["visit_records"] == 1 and got["entry_codes"] == 3
    assert [r["visit_id"] for r in gw.db.all("SELECT visit_id FROM entry_codes")] == ["new"]
    left = {r["visit_id"] for r in gw.db.all("SELECT visit_id FROM visit_reports")}
    assert left == {"new", "open"}  # an open visit is never pruned
    assert gw.db.one("SELECT count(*) FROM charges")[0] == 1
    assert gw.app("GET", "privacy").json()["retention"]["visit_records_days"] == 90


def test_a_visit_a_store_never_closed_does_not_block_deletion_for_ever(gw):
    acc = gw.signup()
    gw.code(acc["id"], "stale")
    with gw.db.tx() as c:  # its code was issued 13 h ago; the store says it was updated a week from now
        c.execute("UPDATE entry_codes SET iat=iat - 13 * 3600")
    gw.visit(acc["id"], vid="stale", state="entered", final=False, t=time.time() + 7 * 86_400)
    assert gw.app("GET", "me").json()["visit"] is None  # not "you are in" half a day later
    r = gw.app("POST", "delete-account", {"password": PASSWORD, "confirm": "delete my account"})
    assert r.status_code == 200, r.text


def test_a_store_can_say_nothing_about_an_account_without_its_code(gw):
    """M1 (second audit), its four forgeries by a store signing with its own secret: a receipt and "you are in s2"
    for a shopper who never visited; a record dated far ahead to block her deletion for ever; reading her consent
    withdrawal; charging her with no code and no visit. Each needs a code issued to her for that store."""
    s2 = "s2"
    gw.db.upsert_store(s2, "t" * 32)

    def as_s2(method, path, body=None, key=None):
        data = json.dumps(body).encode() if body is not None else b""
        h = {**sign_headers(s2, "t" * 32, method, path, data, idempotency_key=key),
             "Content-Type": "application/json"}
        return gw.c.request(method, path, content=data or None, headers=h)

    acc = gw.signup()
    gw.app("POST", "topup", {"amount_fen": 10_000})
    her_s1_code = gw.code(acc["id"], "v1")
    record = {"account_id": acc["id"], "state": "entered", "final": False, "updated_at": time.time(),
              "record": {"summary": {"lines": [{"sku": "x", "amount_fen": 99_99}]}, "events": []}}
    # 1. a receipt and "you are in s2": no code, her code for another store, a code of someone else
    other = gw.signup(id_number="110105199003074598", name="Li Lei")
    for jtis in ([], [her_s1_code], [gw.code(other["id"], "vx", store=s2)]):
        r = as_s2("PUT", "/v1/visits/fake", {**record, "jtis": jtis})
        assert r.status_code in (400, 403, 422), (jtis, r.text)
    assert gw.db.one("SELECT count(*) FROM visit_reports")[0] == 0
    gw.csrf = gw.c.post("/app/api/login", json={"id_number": ID_NUMBER, "password": PASSWORD}).json()["csrf"]
    assert gw.app("GET", "me").json()["visit"] is None and gw.app("GET", "receipts").json()["data"] == []
    # 2. a record dated a million seconds ahead, with her real code of a real visit: taken as now, and open only
    # for the 12 h after her code was issued — then her deletion goes through
    assert gw.visit(acc["id"], "v1", state="entered", final=False, t=time.time() + 10**6).status_code == 200
    assert gw.db.one("SELECT updated_at FROM visit_reports")[0] <= time.time()
    bye = {"password": PASSWORD, "confirm": "delete my account"}
    assert gw.app("POST", "delete-account", bye).json()["error"]["code"] == "visit_open"
    with gw.db.tx() as c:
        c.execute("UPDATE visit_reports SET opened_at = opened_at - 13 * 3600")
    # 3. her consent withdrawal is told only to the store she has a visit open in (s1), never to s2
    gw.app("POST", "consent", {"face_consent": True})
    gw.app("POST", "consent", {"face_consent": False})
    assert as_s2("GET", "/v1/inbox").json()["consent_withdrawn"] == []
    # 4. charging her: no code (protocol 1), someone else's code, her code for another store, a code bound to
    # another visit — and the one charge that may go: her code of s1's visit v1
    base = {"account_id": acc["id"], "amount_fen": 500, "currency": "CNY", "visit_id": "v1"}
    assert as_s2("POST", "/v1/charges", base, key="f1").status_code == 400
    assert as_s2("POST", "/v1/charges", {**base, "entry_jti": gw.code(other["id"], "vx", s2)},
                 key="f2").json()["error"]["code"] == "not_your_code"
    assert as_s2("POST", "/v1/charges", {**base, "entry_jti": her_s1_code}, key="f3").status_code == 403
    r = gw.signed("POST", "/v1/charges", {**base, "visit_id": "v9", "entry_jti": her_s1_code}, key="f4")
    assert r.status_code == 409 and r.json()["error"]["code"] == "code_bound_elsewhere"
    assert gw.signed("POST", "/v1/charges", {**base, "entry_jti": her_s1_code}, key="f5").status_code == 200
    assert gw.db.one("SELECT count(*) FROM charges WHERE status='succeeded'")[0] == 1
    r = gw.app("POST", "delete-account", bye)
    assert r.status_code == 200, r.text


def test_erasure_scrubs_the_notes_asks_only_the_stores_that_know_her_and_is_one_transaction(gw, monkeypatch):
    """M2 (second audit): a phone number in a dispute's note survived in its history; erasure and the stores' erase
    requests were two transactions; every store was asked about every requesting account."""
    gw.db.upsert_store("s2", "t" * 32)
    acc = gw.signup()
    gw.app("POST", "topup", {"amount_fen": 10_000})
    gw.visit(acc["id"])
    gw.charge(acc["id"])
    d = gw.app("POST", "disputes", {"store_id": STORE, "visit_id": "v1", "skus": ["cola"],
                                    "note": "call me on 13800138000"}).json()
    box = gw.signed("GET", "/v1/inbox").json()
    assert [x["id"] for x in box["disputes"]] == [d["id"]]
    assert gw.signed("POST", f"/v1/disputes/{d['id']}/resolution",
                     {"decision": "rejected", "reason": "seen on camera", "operator": "op"}).status_code == 200
    # an export asks only s1 (she never had a code for s2)
    assert [r["store_id"] for r in gw.app("POST", "data-requests", {"kind": "export"}).json()["data"]] == [STORE]
    bye = {"password": PASSWORD, "confirm": "delete my account"}

    def crash(*a, **k):
        raise RuntimeError("power cut between the erasure and its requests")

    monkeypatch.setattr(sdb, "request_in", crash)
    with pytest.raises(RuntimeError):
        gw.app("POST", "delete-account", bye)
    assert gw.db.one("SELECT erased_at FROM accounts WHERE id=?", (acc["id"],))[0] is None  # nothing half-done
    monkeypatch.undo()
    r = gw.app("POST", "delete-account", bye)
    assert r.status_code == 200 and r.json()["stores_asked"] == [STORE], r.text
    dump = "\n".join(str(tuple(row)) for t in ("dispute_events", "disputes", "account_events", "data_requests")
                     for row in gw.db.all(f"SELECT * FROM {t}"))
    assert "13800138000" not in dump
    assert gw.signed("GET", "/v1/inbox").json()["data_requests"][-1]["kind"] == "erase"


def test_codes_data_requests_and_the_deletion_password_are_throttled(gw):
    """L2 and M8 (second audit): 38 codes a second from one session, each a row kept 7 days; data requests asked
    again as soon as answered; 20 wrong deletion passwords in 8 s, each a scrypt hash in the one slot logins use."""
    gw.signup()
    got = [gw.app("POST", "codes", {}).status_code for _ in range(8)]
    assert got == [200] * 6 + [429] * 2
    assert gw.app("POST", "data-requests", {"kind": "export"}).status_code == 200
    again = gw.app("POST", "data-requests", {"kind": "export"})
    assert again.status_code == 429 and again.json()["error"]["code"] == "asked_recently"
    bye = {"password": "not my password", "confirm": "delete my account"}
    t0 = time.monotonic()
    got = [gw.app("POST", "delete-account", bye).status_code for _ in range(8)]
    assert got == [401] * 5 + [429] * 3 and time.monotonic() - t0 < 5  # refused before the hash
    assert gw.c.post("/app/api/login", json={"id_number": ID_NUMBER, "password": PASSWORD}).status_code == 200


def _wallet_ids():
    """Every text of the wallet app: its page's data-i18n elements and the script's t() / N_() calls (Babel's
    JavaScript extractor)."""
    import html
    import re
    from pathlib import Path

    from babel.messages.extract import extract_from_file

    static = Path(__file__).parents[2] / "hardware/bingobox_devkit/gateway/static"
    ids = {m[1] for m in extract_from_file("javascript", str(static / "wallet.js"), keywords={"t": None, "N_": None})}
    ids |= {html.unescape(m.group(1).strip())
            for m in re.finditer(r"data-i18n>([^<]+)<", (static / "wallet.html").read_text())}
    return ids


def test_the_wallet_app_follows_the_phone_s_language_with_every_text_in_its_catalog(gw):
    import re

    from bingobox_devkit.gateway.wallet_app import wallet_catalog

    ids = _wallet_ids()
    assert len(ids) > 80
    zh = wallet_catalog("zh_Hans")
    assert ids <= set(zh), sorted(ids - set(zh))
    for msgid, text in zh.items():
        assert sorted(re.findall(r"%\((\w+)\)s", msgid)) == sorted(re.findall(r"%\((\w+)\)s", text)), msgid
    r = gw.c.get("/app/i18n/zh_Hans.json")
    assert r.status_code == 200 and r.json()["messages"]["Your code"] == "您的码"
    assert gw.c.get("/app/i18n/fr.json").status_code == 404


def test_cards_are_paired_listed_signed_removed_and_bound_to_their_account_s_visits(gw):
    from bingobox.domain import cards

    acc = gw.signup()
    gw.app("POST", "topup", {"amount_fen": 100_000})
    p = gw.app("POST", "cards/pairing").json()
    assert p["text"] == "BBXPAIR:" + p["code"] and cards.pair_code_of(p["text"]) == p["code"]
    card = cards.card_hash(bytes.fromhex("04416D412B0289"))
    assert gw.signed("POST", "/v1/cards/pair", {"code": "AAAAAAAAAA", "card": card}).status_code == 404
    assert gw.c.post("/v1/cards/pair", json={"code": p["code"], "card": card}).status_code == 401  # unsigned
    r = gw.signed("POST", "/v1/cards/pair", {"code": p["code"], "card": card})
    assert r.status_code == 200, r.text
    card_id = r.json()["card_id"]
    assert gw.signed("POST", "/v1/cards/pair", {"code": p["code"], "card": card}).json()["error"]["code"] == \
        "pairing_expired"  # a pairing code is used once
    (mine,) = gw.app("GET", "cards").json()["cards"]
    assert mine["id"] == card_id and card not in json.dumps(mine)
    # the signed list the store fetches: this store's, every bound card of an account not frozen or erased
    got = gw.signed("GET", "/v1/cards").json()
    keys = {k["kid"]: tokens.public_key_from_b64(k["x"]) for k in gw.c.get("/v1/public-keys").json()["keys"]}
    lst = cards.verify(got["list"], keys, STORE, time.time())
    assert lst.lookup(card) == cards.CardEntry(card_id, acc["id"], False) and lst.limit_fen == 20_000
    # another account cannot take that card
    other = Gw.__new__(Gw)
    other.c, other.db, other.csrf = TestClient(gw.c.app), gw.db, ""
    other.signup(id_number="110105199003079999")
    p2 = other.app("POST", "cards/pairing").json()
    assert gw.signed("POST", "/v1/cards/pair", {"code": p2["code"], "card": card}).json()["error"]["code"] == \
        "card_taken"
    # a card visit: its charges name the card; another account's card is refused; the card limit holds in all
    jti = cards.card_jti(card_id)
    item = [{"sku": "tv", "name": "TV", "qty": 1, "unit_fen": 15_000, "amount_fen": 15_000}]

    def charge(account, amount, key, vid="cv1", entry=jti):
        return gw.signed("POST", "/v1/charges", {"account_id": account, "amount_fen": amount, "currency": "CNY",
                                                 "visit_id": vid, "entry_jti": entry,
                                                 "items": [{**item[0], "unit_fen": amount, "amount_fen": amount}]},
                         key=key)

    assert charge(acc["id"], 15_000, "c1").status_code == 200
    refused = charge(acc["id"], 6_000, "c2")  # 21 000 in all: over the 20 000 limit
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "card_limit"
    assert charge(acc["id"], 5_000, "c3").status_code == 200
    other_id = other.app("GET", "me").json()["account"]["id"]
    assert charge(other_id, 100, "c4", vid="cv2").json()["error"]["code"] == "not_your_card"
    # removed in the app: out of the next list; its past visits still stand
    assert gw.app("DELETE", f"cards/{card_id}").status_code == 200
    assert cards.verify(gw.signed("GET", "/v1/cards").json()["list"], keys, STORE, time.time()).cards == {}
    assert gw.signed("PUT", "/v1/visits/cv1", {"account_id": acc["id"], "state": "left", "final": True,
                                               "updated_at": time.time(), "jtis": [jti],
                                               "record": {"summary": {"lines": []}, "events": []}}).status_code == 200
    assert "cards" in gw.app("GET", "my-data").json()
