"""The status screen's HTTP layer against a stand-in store (a real journal, a recorded ``act``): logins, sessions,
the login throttle, CSRF, what anonymous viewers see, trusted hosts, stream limits, validation of action bodies,
honest action outcomes, the audit log, refunds and the Prometheus exposition."""

import threading
import time

import pytest
import requests
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bingobox.journal import Journal
from bingobox.screen import auth as auth_mod
from bingobox.screen.app import COOKIE, make_app
from bingobox.screen.auth import Auth, check_password, hash_password, same_token

PASSWORD = "correct horse 42"
FAST = 2**14  # the tests' hashes: cheaper than the real cost (2^17, checked once below)


class FakeStore:
    def __init__(self, journal):
        self.journal = journal
        self.acted = []
        self.view = {"store": "s1", "state": "ready", "what_works": "everything", "problems": [], "inside": 1,
                     "counts": {"entries": 3, "left": 2}, "t": 1_700_000_000.0,
                     "latency": {"entry_ms": {"count": 3, "p50": 10.5, "p90": 12.0, "p99": 14.0, "max": 14.0}},
                     "charges": {"intents": {"succeeded": 2}, "gateway_ok": True},
                     "devices": {"entrance": {"kind": "door", "online": True,
                                              "link": {"url": "rfc2217://10.1.2.3:4001"}},
                                 "shelf-1": {"kind": "rfid", "online": False, "last_error": "EIO on 10.1.2.4"}},
                     "stock": {"shelf-1": {"Cola 330ml": 4}}, "visits": [],
                     "rfid_health": {"shelf-1": {"weak": ["E2801"], "unknown": ["E2802", "E2803"],
                                                 "lowest_read_rate": 0.3}},
                     "cross_read": {"E2809": ["shelf-1", "shelf-2"]}}

    def act(self, operator, action, args, timeout=5.0):
        self.acted.append((operator, action, args))
        if action == "unlock":  # the door's board never answered the relay write
            return {"ok": None, "outcome": "unknown", "error": "outcome_unknown", "detail": "not acknowledged"}
        return {"ok": True, "detail": f"{action} done", "state": "lockdown"}


@pytest.fixture
def setup(tmp_path):
    journal = Journal(tmp_path / "store.db")
    store = FakeStore(journal)
    refunds = []

    def refund(key, args):
        refunds.append((key, args))
        if args.reason == "gateway times out":
            return None, "outcome unknown (ReadTimeout)"
        return True, f"refunded {args.amount_fen}"

    auth = Auth({"alice": hash_password(PASSWORD, FAST), "bob": hash_password(PASSWORD, FAST)}, ttl_s=60,
                failures_per_minute=3, refunders={"bob"})
    client = TestClient(make_app(store, auth, refund))
    yield client, store, journal, refunds
    client.close()
    journal.close()


def login(client, name="alice"):
    r = client.post("/api/login", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["csrf"]


def test_passwords_are_scrypt_hashed_and_checked():
    h = hash_password(PASSWORD)
    assert h.startswith("scrypt$131072$8$1$") and PASSWORD not in h  # OWASP's scrypt cost: N=2^17, r=8, p=1
    assert check_password(PASSWORD, h) and not check_password("wrong password", h)
    assert check_password(PASSWORD, hash_password(PASSWORD, 2**14))  # older, cheaper hashes still verify
    assert not check_password(PASSWORD, "garbage")
    with pytest.raises(ValueError):
        hash_password("short")
    assert same_token("abc", "abc") and not same_token("abd", "abc") and not same_token(None, "abc")


def test_sessions_expire_and_logins_are_throttled_per_name_and_source():
    now = [0.0]
    auth = Auth({"alice": hash_password(PASSWORD, FAST)}, ttl_s=60, failures_per_minute=2, clock=lambda: now[0])
    token, _ = auth.login("alice", PASSWORD, "10.0.0.5")
    assert auth.session(token).operator == "alice"
    now[0] = 61
    assert auth.session(token) is None
    bad = [auth.login("alice", "nope", "10.0.0.9") for _ in range(2)]
    assert bad == ["bad_credentials"] * 2
    assert auth.login("alice", PASSWORD, "10.0.0.9") == "throttled"  # even the right password, for a minute
    assert isinstance(auth.login("alice", PASSWORD, "127.0.0.1"), tuple)  # but not the operator at the box
    assert isinstance(auth.login("alice", PASSWORD, "10.0.0.5"), tuple)  # nor at another address
    now[0] = 122
    assert isinstance(auth.login("alice", PASSWORD, "10.0.0.9"), tuple)
    assert auth.login("mallory", PASSWORD, "10.0.0.9") == "bad_credentials"


def test_sources_and_names_are_throttled_nobody_can_lock_out_everyone_and_the_table_stays_bounded(monkeypatch):
    now = [0.0]
    auth = Auth({"alice": hash_password(PASSWORD, FAST), "bob": hash_password(PASSWORD, FAST)},
                failures_per_minute=5, per_source_per_minute=4, per_name_per_minute=10, clock=lambda: now[0])
    monkeypatch.setattr(auth_mod, "check_password", lambda p, h: False)  # (the throttle's logic, not scrypt's)
    # one source trying many names: stopped by its own count
    assert [auth.login(f"n{i}", "x", "10.0.0.9") for i in range(5)] == ["bad_credentials"] * 4 + ["throttled"]
    # many sources guessing one name: stopped together — except the box itself
    got = [auth.login("alice", "x", f"10.1.0.{i}") for i in range(12)]
    assert got[:10] == ["bad_credentials"] * 10 and set(got[10:]) == {"throttled"}
    assert auth.login("alice", "x", "10.2.0.1") == "throttled"
    assert auth.login("alice", "x", "127.0.0.1") == "bad_credentials"
    # … and only that name (L5, second audit: 30 failures a minute from anywhere locked out every operator)
    assert auth.login("bob", "x", "10.3.0.1") == "bad_credentials"
    # random names from random addresses, for hours: the tables are pruned and bounded
    monkeypatch.setattr(auth_mod, "MAX_TRACKED", 500)
    auth2 = Auth({}, per_source_per_minute=1000, per_name_per_minute=10**6, clock=lambda: now[0])
    for i in range(20_000):
        now[0] = i * 0.01
        auth2.login(f"name{i}", "x", f"10.{i % 250}.{i // 250 % 250}.1")
    assert auth2.tracked() <= 2 * 550


def test_parallel_guesses_are_counted_before_they_are_hashed(monkeypatch):
    checked = []
    gate = threading.Event()

    def slow_check(password, stored):
        checked.append(password)
        gate.wait(2)
        return False

    auth = Auth({"alice": hash_password(PASSWORD, FAST)}, failures_per_minute=5, hash_wait_s=5)
    monkeypatch.setattr(auth_mod, "check_password", slow_check)
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(auth.login("alice", f"g{i}", "10.0.0.9")))
               for i in range(40)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(checked) == 5 and results.count("throttled") == 35  # 40 guesses: 5 checked, one at a time
    auth_busy = Auth({"alice": hash_password(PASSWORD, FAST)}, hash_wait_s=0.05)
    gate.clear()
    out = []
    first = threading.Thread(target=lambda: out.append(auth_busy.login("alice", "g", "10.0.0.1")))
    first.start()
    while not checked[5:]:
        pass
    assert auth_busy.login("alice", "h", "10.0.0.2") == "busy"  # one 128 MiB hash at a time
    gate.set()
    first.join()


def test_page_state_and_metrics_need_no_login(setup):
    client, *_ = setup
    page = client.get("/")
    assert page.status_code == 200 and "bingobox" in page.text and "/app.js" in page.text
    assert client.get("/app.js").headers["content-type"].startswith("text/javascript")
    state = client.get("/api/state").json()
    assert state["state"] == "ready" and state["alarms"] == [] and state["history"][0]["entries"] == 3
    assert state["public"] is True
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    states = {s.labels["state"]: s.value for s in families["bingobox_store_state"].samples}
    assert states["ready"] == 1 and states["lockdown"] == 0
    online = {s.labels["device"]: s.value for s in families["bingobox_device_online"].samples}
    assert online == {"entrance": 1.0, "shelf-1": 0.0}
    lat = {(s.labels["path"], s.labels["quantile"]): s.value for s in families["bingobox_latency_ms"].samples}
    assert lat[("entry", "p99")] == 14.0
    stock = families["bingobox_shelf_items"].samples[0]
    assert stock.labels == {"shelf": "shelf-1", "product": "Cola 330ml"} and stock.value == 4
    assert families["bingobox_rfid_weak_tags"].samples[0].value == 1
    assert families["bingobox_rfid_unknown_tags"].samples[0].value == 2
    assert families["bingobox_rfid_cross_read_tags"].samples[0].value == 1


def test_actions_need_a_session_and_the_csrf_header(setup):
    client, store, journal, _ = setup
    assert client.post("/api/actions/lock_down", json={}).status_code == 401
    csrf = login(client)
    assert client.post("/api/actions/lock_down", json={}).status_code == 403
    assert client.post("/api/actions/lock_down", json={}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    r = client.post("/api/actions/lock_down", json={}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["state"] == "lockdown"
    assert [(o, a) for o, a, _ in store.acted] == [("alice", "lock_down")]
    audit = journal.recent_audit()
    assert [(a["operator"], a["action"], a["outcome"]) for a in audit] == [("alice", "lock_down", "ok"),
                                                                           ("alice", "login", "ok")]
    client.post("/api/logout")
    assert client.cookies.get(COOKIE) is None
    assert client.post("/api/actions/release", json={}, headers={"X-CSRF-Token": csrf}).status_code == 401


def test_bad_action_bodies_are_refused_with_a_reason_and_audited(setup):
    client, store, journal, _ = setup
    h = {"X-CSRF-Token": login(client)}
    r = client.post("/api/actions/unlock", json={"door": "entrance", "seconds": 600}, headers=h)
    assert r.status_code == 422 and "seconds" in r.json()["error"]["message"]
    r = client.post("/api/actions/clear_alarm", json={"alarm_id": "1; DROP TABLE"}, headers=h)
    assert r.status_code == 422
    r = client.post("/api/actions/lock_down", json={"please": True}, headers=h)
    assert r.status_code == 422 and "please" in r.json()["error"]["message"]
    r = client.post("/api/actions/lock_down", content=b"{not json", headers=h)
    assert r.status_code == 422 and "not JSON" in r.json()["error"]["message"]
    assert client.post("/api/actions/self_destruct", json={}, headers=h).status_code == 404
    assert store.acted == []
    assert [a["outcome"] for a in journal.recent_audit()][:4] == ["rejected"] * 4
    r = client.post("/api/login", json={"name": "alice"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_request"


def test_anonymous_viewers_see_state_and_counts_only(setup):
    client, _, journal, _ = setup
    account = "acct_7f3a9c2e51d84b06"
    journal.audit("(unknown name)", "login", {}, "bad_credentials", source="10.9.8.7")
    with journal.tx() as c:
        c.execute("INSERT INTO charge_intents (visit_id, account_id, amount_fen, items, state, idem_key, "
                  "next_attempt_at, created_at, updated_at) VALUES ('v1', ?, 350, '[]', 'succeeded', 'k1', 1, 1, 1)",
                  (account,))
    anon = client.get("/api/state")
    text = anon.text
    assert account not in text and "10.9.8.7" not in text and "10.1.2.3" not in text and "10.1.2.4" not in text
    body = anon.json()
    assert "audit" not in body and "review" not in body and body["recent_charges"][0]["account_id"] == "acct…4b06"
    assert body["devices"]["entrance"] == {"kind": "door", "online": True}
    login(client)
    full = client.get("/api/state").json()
    assert full["recent_charges"][0]["account_id"] == account and full["audit"][0]["source"] == "10.9.8.7"
    assert "public" not in full and full["devices"]["entrance"]["link"]["url"].startswith("rfc2217://")


def test_only_the_configured_host_names_are_answered(tmp_path):
    journal = Journal(tmp_path / "store.db")
    app = make_app(FakeStore(journal), Auth({}), allowed_hosts=["127.0.0.1", "localhost"])
    try:
        ok = TestClient(app, base_url="http://127.0.0.1:8080")
        assert ok.get("/api/state").status_code == 200
        rebound = TestClient(app, base_url="http://attacker.example:8080")  # a DNS name rebound to the box
        assert rebound.get("/api/state").status_code == 400 and rebound.get("/").status_code == 400
    finally:
        journal.close()


def test_the_session_cookie_is_secure_over_tls(tmp_path):
    journal = Journal(tmp_path / "store.db")
    app = make_app(FakeStore(journal), Auth({"alice": hash_password(PASSWORD, FAST)}))
    try:
        r = TestClient(app, base_url="https://testserver").post("/api/login", json={"name": "alice",
                                                                                   "password": PASSWORD})
        assert "secure" in r.headers["set-cookie"].lower()
        r = TestClient(app).post("/api/login", json={"name": "alice", "password": PASSWORD})
        assert "secure" not in r.headers["set-cookie"].lower() and "httponly" in r.headers["set-cookie"].lower()
    finally:
        journal.close()


def test_live_views_are_limited_with_a_clear_refusal(tmp_path):
    from bingobox.config import ScreenConfig, StoreConfig
    from bingobox.screen.server import ScreenServer

    journal = Journal(tmp_path / "store.db")
    screen = ScreenServer(FakeStore(journal), StoreConfig(store={"id": "s1"},
                                                          screen=ScreenConfig(port=0, max_streams=2)))
    url = screen.start()
    opened, sessions = [], []
    try:
        for _ in range(2):  # (a session each, kept: a collected session closes its connection, ending the stream)
            sessions.append(requests.Session())
            r = sessions[-1].get(url + "api/stream", stream=True, timeout=5)
            lines = r.iter_lines()  # (kept too: a collected line iterator closes the response)
            assert r.status_code == 200 and next(lines) == b"retry: 2000"
            opened.append((r, lines))
        refused = requests.get(url + "api/stream", timeout=5)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "too_many_streams"
        assert refused.headers["retry-after"] == "10"
        assert requests.get(url + "api/state", timeout=5).status_code == 200  # the snapshot is still served
        assert requests.get(url + "api/state", headers={"Host": "evil.example"}, timeout=5).status_code == 400
        opened.pop()[0].close()
        sessions.pop().close()
        deadline = time.monotonic() + 10
        while True:  # the closed stream's slot comes back once the server notices the disconnect
            r = requests.Session().get(url + "api/stream", stream=True, timeout=5)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert r.status_code == 200
        r.close()
    finally:
        for r, _ in opened:
            r.close()
        for session in sessions:
            session.close()
        screen.stop()
        journal.close()


def test_the_view_can_require_a_login(tmp_path):
    journal = Journal(tmp_path / "store.db")
    client = TestClient(make_app(FakeStore(journal), Auth({"alice": hash_password(PASSWORD, FAST)}),
                                 view_requires_login=True, metrics_token="scraper-token-0123"))
    try:
        assert client.get("/").status_code == 200  # the page itself, with its login form
        assert client.get("/api/state").status_code == 401
        assert client.get("/api/stream").status_code == 401
        # /metrics too (L5, second audit: it stayed open): the scraper's token, or an operator's session
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer scraper-token-0123"}).status_code == 200
        login(client)
        assert client.get("/api/state").json()["state"] == "ready"
        assert client.get("/metrics").status_code == 200
    finally:
        client.close()
        journal.close()


def test_evidence_records_are_for_operators(setup):
    client, *_ = setup
    assert client.get("/api/visits/v_123").status_code == 401
    login(client)
    r = client.get("/api/visits/v_123")
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_such_visit"


def test_wrong_passwords_are_audited_and_throttled(setup):
    client, _, journal, _ = setup
    for _ in range(3):
        assert client.post("/api/login", json={"name": "alice", "password": "guess"}).status_code == 401
    for _ in range(5):
        assert client.post("/api/login", json={"name": "alice", "password": PASSWORD}).status_code == 429
    # a throttled source is written down once a minute, not once per try
    assert [a["outcome"] for a in journal.recent_audit()] == ["throttled"] + ["bad_credentials"] * 3
    client.post("/api/login", json={"name": "my secret password", "password": "x"})
    assert journal.recent_audit()[0]["operator"] == "(unknown name)"  # a password typed as the name stays out


def test_unknown_outcomes_are_reported_as_unknown(setup):
    client, _, journal, _ = setup
    h = {"X-CSRF-Token": login(client)}
    r = client.post("/api/actions/unlock", json={"door": "entrance"}, headers=h)
    assert r.status_code == 202 and r.json()["ok"] is None and r.json()["outcome"] == "unknown"
    assert journal.recent_audit()[0]["outcome"] == "unknown"


def test_refunds_need_the_permission_and_one_key_per_refund_asked_for(setup):
    client, store, journal, refunds = setup
    body = {"request_id": "5f0c2a9e-1b7d", "charge_id": "ch_1", "amount_fen": 250, "reason": "broken"}
    r = client.post("/api/actions/refund", json=body, headers={"X-CSRF-Token": login(client)})
    assert r.status_code == 403 and r.json()["error"]["code"] == "no_refund_permission" and refunds == []
    h = {"X-CSRF-Token": login(client, "bob")}
    r = client.post("/api/actions/refund", json=body, headers=h)
    assert r.status_code == 200 and r.json()["detail"] == "refunded 250"
    r = client.post("/api/actions/refund", json=body, headers=h)  # the operator's retry of the same refund
    assert [k for k, _ in refunds] == ["refund-5f0c2a9e-1b7d"] * 2 and refunds[0][1].amount_fen == 250
    r = client.post("/api/actions/refund", json={**body, "request_id": "0a1b2c3d-new", "reason": "gateway times out"},
                    headers=h)
    assert r.status_code == 202 and r.json()["outcome"] == "unknown"
    assert journal.recent_audit()[0]["outcome"] == "unknown"
    r = client.post("/api/actions/refund", json={**body, "amount_fen": 2.5}, headers=h)
    assert r.status_code == 422  # money is integer fen
    r = client.post("/api/actions/refund", json={k: v for k, v in body.items() if k != "request_id"}, headers=h)
    assert r.status_code == 422 and "request_id" in r.json()["error"]["message"]
    assert store.acted == []


def test_a_taken_port_is_a_clear_error(tmp_path):
    import socket

    from bingobox.config import ScreenConfig, StoreConfig
    from bingobox.screen.server import ScreenServer

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    journal = Journal(tmp_path / "store.db")
    cfg = StoreConfig(store={"id": "s1"}, screen=ScreenConfig(port=port))
    try:
        with pytest.raises(OSError, match=f"could not listen on 127.0.0.1:{port}"):
            ScreenServer(FakeStore(journal), cfg).start(timeout=5)
        free = ScreenServer(FakeStore(journal), StoreConfig(store={"id": "s1"}, screen=ScreenConfig(port=0)))
        url = free.start()
        assert url.startswith("http://127.0.0.1:") and free.port != port
        free.stop()
    finally:
        busy.close()
        journal.close()


def test_bus_units_round_trips_timeouts_and_breakers_are_metrics_but_not_public():
    from bingobox.screen.app import public_view
    from bingobox.screen.metrics import exposition

    unit = {"unit": 2, "doors": ["staff"], "online": False, "breaker": "open", "no_reply": 7,
            "rtt_ms": {"n": 40, "p50": 4.1, "p99": 5.2, "max": 6.0}}
    view = {"state": "degraded", "t": 100.0,
            "buses": {"rs485": {"name": "rs485", "port": "/dev/ttyUSB0", "units": [unit]}}}
    families = {f.name: f for f in text_string_to_metric_families(exposition(view, 100.0).decode())}
    rtt = {(s.labels["bus"], s.labels["unit"], s.labels["quantile"]): s.value
           for s in families["bingobox_bus_unit_rtt_ms"].samples}
    assert rtt[("rs485", "2", "p99")] == 5.2 and rtt[("rs485", "2", "p50")] == 4.1
    assert families["bingobox_bus_unit_timeouts"].samples[0].value == 7
    assert families["bingobox_bus_unit_breaker_open"].samples[0].value == 1
    assert "buses" not in public_view(view)  # (its ports are the box's business)
