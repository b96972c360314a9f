"""The mock wallet gateway as a real process over HTTP: signatures, idempotency, amounts, declines, cancel,
refunds, entry codes, persistence, and the bad-input list of the payments reference."""

import json
import threading
import time
import uuid

import pytest

from bingobox.domain import tokens
from bingobox.domain.entry import load_pinned_keys
from tests.helpers import STORE_ID, Gateway

pytestmark = pytest.mark.integration


def charge_body(acc, amount=300, **kw):
    """A charge of the account's visit, bound to the code it was issued (``Gateway.account``)."""
    return {"account_id": acc["id"], "amount_fen": amount, "currency": "CNY", "visit_id": acc.get("visit", "v"),
            "entry_jti": acc.get("jti", "none"), **kw}


def post_charge(gw, body, key=None, **kw):
    return gw.signed("POST", "/v1/charges", body, {"Idempotency-Key": key or str(uuid.uuid4())}, **kw)


def balance(gw, acc):
    return gw.admin("GET", f"/admin/accounts/{acc['id']}").json()["balance_fen"]


def test_charge_and_idempotent_replay(gateway):
    acc = gateway.account(1000)
    key = str(uuid.uuid4())
    items = [{"sku": "cola", "name": "Cola 330ml", "qty": 2, "unit_fen": 150, "amount_fen": 300}]
    r1 = post_charge(gateway, charge_body(acc, items=items, visit_id="v-1"), key)
    assert r1.status_code == 200 and r1.json()["status"] == "succeeded"
    r2 = post_charge(gateway, charge_body(acc, items=items, visit_id="v-1"), key)
    assert r2.status_code == 200 and r2.json() == r1.json() and r2.headers["Idempotent-Replayed"] == "true"
    assert balance(gateway, acc) == 700
    r3 = post_charge(gateway, charge_body(acc, amount=301), key)
    assert r3.status_code == 422 and r3.json()["error"]["code"] == "idempotency_key_reused"
    # the key is per endpoint too
    r4 = gateway.signed("POST", "/v1/refunds", {"charge_id": r1.json()["id"]}, {"Idempotency-Key": key})
    assert r4.status_code == 422
    found = gateway.signed("GET", f"/v1/charges?idempotency_key={key}").json()["data"]
    assert [c["id"] for c in found] == [r1.json()["id"]] and found[0]["items"] == items
    assert gateway.signed("GET", f"/v1/charges/{r1.json()['id']}").json()["amount_fen"] == 300
    receipts = gateway.admin("GET", f"/admin/accounts/{acc['id']}/receipts").json()["data"]
    assert receipts[0]["items"][0]["name"] == "Cola 330ml"


def test_declines_are_replayed_too(gateway):
    acc = gateway.account(100)
    key = str(uuid.uuid4())
    r = post_charge(gateway, charge_body(acc, 500), key)
    assert r.status_code == 402 and r.json()["error"]["reason"] == "insufficient_balance"
    gateway.admin("POST", f"/admin/accounts/{acc['id']}/topup", {"amount_fen": 1000})
    again = post_charge(gateway, charge_body(acc, 500), key)
    assert again.status_code == 402 and again.json() == r.json()  # same key: the stored decline, no new attempt
    assert balance(gateway, acc) == 1100
    frozen = gateway.account(10_000)
    gateway.admin("POST", f"/admin/accounts/{frozen['id']}/freeze", {"frozen": True})
    r = post_charge(gateway, charge_body(frozen, 100))
    assert r.status_code == 402 and r.json()["error"]["reason"] == "account_frozen"


@pytest.mark.parametrize("amount", [0, -1, 1.5, "12.345", 0.1 + 0.2, 2**63, True, None, 10_000_001, "100"])
def test_bad_amounts(gateway, amount):
    acc = gateway.account(10**7)
    r = post_charge(gateway, charge_body(acc, amount))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    assert balance(gateway, acc) == 10**7


def test_bad_bodies(gateway):
    acc = gateway.account(1000)
    for body in [charge_body(acc, currency="USD"), {**charge_body(acc), "extra": 1},
                 charge_body(acc, items=[{"sku": "a", "name": "A", "qty": 1, "unit_fen": 100, "amount_fen": 100}])]:
        r = post_charge(gateway, body)
        assert r.status_code == 400, body
    r = post_charge(gateway, b"{not json")
    assert r.status_code == 400
    r = post_charge(gateway, {"account_id": "acc_nobody", "amount_fen": 1, "currency": "CNY", "visit_id": "v",
                              "entry_jti": acc["jti"]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "account_not_found"


@pytest.mark.parametrize(("key", "code"), [(None, "idempotency_key_missing"), ("", "idempotency_key_missing"),
                                           ("k" * 256, "idempotency_key_invalid"),
                                           ("ключ", "idempotency_key_invalid"), ("a b", "idempotency_key_invalid")])
def test_bad_idempotency_keys(gateway, key, code):
    acc = gateway.account(1000)
    headers = {} if key is None else {"Idempotency-Key": key}
    if key == "ключ":
        r = gateway.signed("POST", "/v1/charges", charge_body(acc), {"Idempotency-Key": key.encode().decode("latin-1")})
    else:
        r = gateway.signed("POST", "/v1/charges", charge_body(acc), headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == code
    assert post_charge(gateway, charge_body(acc), (str(uuid.uuid4()) + "k" * 255)[:255]).status_code == 200


def test_concurrent_same_key_gets_409(tmp_path):
    gw = Gateway(tmp_path, "--latency-ms", "800")
    try:
        acc = gw.account(1000)
        key = str(uuid.uuid4())
        first = {}
        t = threading.Thread(target=lambda: first.setdefault("r", post_charge(gw, charge_body(acc), key)))
        t.start()
        time.sleep(0.3)
        second = post_charge(gw, charge_body(acc), key)
        t.join()
        assert second.status_code == 409 and second.json()["error"]["code"] == "idempotency_key_in_use"
        assert first["r"].status_code == 200
        assert post_charge(gw, charge_body(acc), key).headers["Idempotent-Replayed"] == "true"
        assert balance(gw, acc) == 700
    finally:
        gw.stop()


def test_signature_rules(gateway):
    acc = gateway.account(1000)
    body = charge_body(acc)
    r = gateway.http.post(gateway.url + "/v1/charges", json=body, headers={"Idempotency-Key": "x1"}, timeout=5)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unsigned"
    assert post_charge(gateway, body, secret="wrong-secret-wrong-secret").json()["error"]["code"] == "bad_signature"
    assert post_charge(gateway, body, now=time.time() - 301).json()["error"]["code"] == "clock_skew"
    assert post_charge(gateway, body, now=time.time() + 301).json()["error"]["code"] == "clock_skew"
    assert post_charge(gateway, body, now=time.time() - 200).status_code == 200  # within 300 s
    from bingobox.wallet.signing import sign_headers

    data = json.dumps(body).encode()
    h = {**sign_headers(STORE_ID, "test-secret-0123456789abcdef", "POST", "/v1/charges", data,
                        idempotency_key=str(uuid.uuid4())), "Content-Type": "application/json"}
    assert gateway.http.post(gateway.url + "/v1/charges", data=data, headers=h).status_code == 200
    replay = gateway.http.post(gateway.url + "/v1/charges", data=data, headers=h)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "nonce_reused"
    # a body changed after signing
    h2 = {**sign_headers(STORE_ID, "test-secret-0123456789abcdef", "POST", "/v1/charges", data,
                         idempotency_key=str(uuid.uuid4())), "Content-Type": "application/json"}
    tampered = data.replace(b'"amount_fen": 300', b'"amount_fen": 3')
    assert gateway.http.post(gateway.url + "/v1/charges", data=tampered, headers=h2).status_code == 401


def test_cancel_and_refund(tmp_path):
    gw = Gateway(tmp_path, "--pending-s", "30")
    try:
        acc = gw.account(1000)
        r = post_charge(gw, charge_body(acc, 400))
        assert r.status_code == 202 and r.json()["status"] == "pending"
        cid = r.json()["id"]
        c = gw.signed("POST", f"/v1/charges/{cid}/cancel", {})
        assert c.status_code == 200 and c.json()["status"] == "canceled"
        assert gw.signed("POST", f"/v1/charges/{cid}/cancel", {}).json()["status"] == "canceled"
        assert balance(gw, acc) == 1000
        gw.faults(pending_s=0)
        ok = post_charge(gw, charge_body(acc, 400)).json()
        c = gw.signed("POST", f"/v1/charges/{ok['id']}/cancel", {})
        assert c.status_code == 409 and c.json()["error"]["code"] == "charge_already_succeeded"
        key = str(uuid.uuid4())
        ref = gw.signed("POST", "/v1/refunds", {"charge_id": ok["id"], "amount_fen": 150}, {"Idempotency-Key": key})
        assert ref.status_code == 200 and ref.json()["amount_fen"] == 150
        assert gw.signed("POST", "/v1/refunds", {"charge_id": ok["id"], "amount_fen": 150},
                         {"Idempotency-Key": key}).json()["id"] == ref.json()["id"]
        too_much = gw.signed("POST", "/v1/refunds", {"charge_id": ok["id"], "amount_fen": 300},
                             {"Idempotency-Key": str(uuid.uuid4())})
        assert too_much.status_code == 409
        assert balance(gw, acc) == 1000 - 400 + 150
        # a pending charge whose time has come succeeds
        gw.faults(pending_s=0.5)
        p = post_charge(gw, charge_body(acc, 100)).json()
        time.sleep(0.7)
        assert gw.signed("GET", f"/v1/charges/{p['id']}").json()["status"] == "succeeded"
    finally:
        gw.stop()


def test_entry_codes_verify_offline_with_pinned_keys(gateway, tmp_path):
    acc = gateway.account(1000, face_consent=True)
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(gateway.http.get(gateway.url + "/v1/public-keys").text)
    keys = load_pinned_keys(keys_file)
    r = gateway.admin("POST", "/v1/entry-codes", {"account_id": acc["id"], "store_id": STORE_ID, "door": "entrance"})
    assert r.status_code == 200
    code = r.json()["code"]
    claims = tokens.verify(code, keys, STORE_ID, "entrance", time.time())
    assert claims.account == acc["id"] and claims.face_consent and claims.exp - claims.iat == 60
    assert gateway.admin("POST", "/v1/entry-codes", {"account_id": acc["id"], "store_id": STORE_ID,
                                                     "lifetime_s": 61}).status_code == 400
    # after a key rotation the old codes still verify (old key kept), new codes use the new kid
    gateway.admin("POST", "/admin/keys/rotate")
    code2 = gateway.admin("POST", "/v1/entry-codes", {"account_id": acc["id"], "store_id": STORE_ID}).json()["code"]
    with pytest.raises(tokens.CodeRejected) as e:
        tokens.verify(code2, keys, STORE_ID, "entrance", time.time())
    assert e.value.reason == tokens.Reject.UNKNOWN_KEY  # until the terminal pins the new key
    keys_file.write_text(gateway.http.get(gateway.url + "/v1/public-keys").text)
    tokens.verify(code2, load_pinned_keys(keys_file), STORE_ID, "entrance", time.time())


def test_admin_needs_the_token(gateway):
    assert gateway.http.post(gateway.url + "/admin/accounts", json={}).status_code == 401
    assert gateway.http.get(gateway.url + "/admin/charges", headers={"X-Admin-Token": "nope"}).status_code == 401


def test_state_survives_a_restart_and_a_kill(tmp_path):
    import signal

    gw = Gateway(tmp_path)
    acc = gw.account(1000)
    key = str(uuid.uuid4())
    first = post_charge(gw, charge_body(acc, 250), key).json()
    gw.stop(signal.SIGKILL)
    gw2 = Gateway(tmp_path, db=gw.db)
    try:
        assert balance(gw2, acc) == 750
        again = post_charge(gw2, charge_body(acc, 250), key)
        assert again.json()["id"] == first["id"] and again.headers["Idempotent-Replayed"] == "true"
        assert balance(gw2, acc) == 750
        rows = gw2.admin("GET", "/admin/charges").json()["data"]
        assert len(rows) == 1
        import sqlite3

        raw = sqlite3.connect(gw.db).execute("SELECT * FROM accounts").fetchall()
        assert all("110101" not in str(r) for r in raw)  # only a keyed hash of the ID number is stored
    finally:
        gw2.stop()


def test_openapi_is_served(gateway):
    spec = gateway.http.get(gateway.url + "/openapi.json").json()
    assert {"/v1/charges", "/v1/charges/{charge_id}", "/v1/charges/{charge_id}/cancel", "/v1/refunds",
            "/v1/public-keys", "/v1/entry-codes"} <= set(spec["paths"])


def test_signature_covers_the_raw_percent_encoded_target(gateway):
    """Clients sign the request target as sent; the gateway must not verify against a decoded path."""
    r = gateway.signed("GET", "/v1/charges/ch%20nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "charge_not_found"
    r = gateway.signed("GET", "/v1/charges?idempotency_key=a%2Fb%20c")
    assert r.status_code == 200 and r.json() == {"data": []}


def test_malformed_headers_and_bodies_get_4xx_never_5xx(gateway):
    acc = gateway.account(1000)
    data = json.dumps(charge_body(acc)).encode()
    from bingobox.wallet.signing import sign_headers

    good = {**sign_headers(STORE_ID, "test-secret-0123456789abcdef", "POST", "/v1/charges", data,
                           idempotency_key=str(uuid.uuid4())), "Content-Type": "application/json"}
    for name, value in [("X-Timestamp", "9" * 4000), ("X-Timestamp", "-5"), ("X-Timestamp", "1e9"),
                        ("X-Store-Id", "s" * 5000), ("X-Store-Id", "a b"), ("X-Nonce", "short"),
                        ("X-Nonce", "n" * 65), ("X-Signature", "zz" * 32), ("X-Signature", "0" * 4000),
                        ("Idempotency-Key", "k" * 256)]:
        r = gateway.http.post(gateway.url + "/v1/charges", data=data, headers={**good, name: value}, timeout=10)
        assert 400 <= r.status_code < 500, (name, value[:20], r.status_code, r.text[:200])
    big = b'{"pad": "' + b"x" * (70 * 1024) + b'"}'
    r = gateway.http.post(gateway.url + "/v1/charges", data=big, headers={"Content-Type": "application/json"},
                          timeout=10)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    chunked = gateway.http.post(gateway.url + "/v1/charges", data=iter([b"{", b"}"]), timeout=10)
    assert chunked.status_code == 411
    assert balance(gateway, acc) == 1000


def test_a_rewritten_idempotency_key_or_store_id_breaks_the_signature(gateway):
    from bingobox.wallet.signing import sign_headers

    acc = gateway.account(1000)
    data = json.dumps(charge_body(acc)).encode()
    h = {**sign_headers(STORE_ID, "test-secret-0123456789abcdef", "POST", "/v1/charges", data,
                        idempotency_key="visit-1-key"), "Content-Type": "application/json"}
    for name, value in [("Idempotency-Key", "visit-1-key-rewritten"), ("X-Store-Id", "other-store")]:
        r = gateway.http.post(gateway.url + "/v1/charges", data=data, headers={**h, name: value}, timeout=10)
        assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature", name
    assert gateway.http.post(gateway.url + "/v1/charges", data=data, headers=h, timeout=10).status_code == 200
    assert balance(gateway, acc) == 700  # one charge, however the key was rewritten on the way


def test_a_slow_request_superseded_by_a_retry_commits_nothing(tmp_path):
    # the first refund is slower than the in-flight window: the retry with its key runs; the first must then not
    # also refund (before: both ran, and a refund was paid twice)
    gw = Gateway(tmp_path, "--latency-ms", "1500", "--in-flight-stale-s", "0.5")
    try:
        acc = gw.account(1000)
        ok = post_charge(gw, charge_body(acc, 400)).json()
        assert ok["status"] == "succeeded"
        key = str(uuid.uuid4())
        body = {"charge_id": ok["id"], "amount_fen": 150}
        first = {}
        t = threading.Thread(target=lambda: first.setdefault(
            "r", gw.signed("POST", "/v1/refunds", body, {"Idempotency-Key": key})))
        t.start()
        time.sleep(0.8)
        second = gw.signed("POST", "/v1/refunds", body, {"Idempotency-Key": key})
        t.join()
        assert second.status_code == 200 and second.json()["amount_fen"] == 150
        assert first["r"].status_code == 409 and first["r"].json()["error"]["code"] == "idempotency_key_in_use"
        assert balance(gw, acc) == 1000 - 400 + 150  # refunded once
        again = gw.signed("POST", "/v1/refunds", body, {"Idempotency-Key": key})
        assert again.json()["id"] == second.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    finally:
        gw.stop()
