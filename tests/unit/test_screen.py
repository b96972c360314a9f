"""The status screen's HTTP layer against a stand-in store (a real journal, a recorded ``act``): logins, sessions,
CSRF, validation of action bodies, the audit log, refunds and the Prometheus exposition."""

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bingobox.journal import Journal
from bingobox.screen.app import COOKIE, make_app
from bingobox.screen.auth import Auth, check_password, hash_password

PASSWORD = "correct horse 42"


class FakeStore:
    def __init__(self, journal):
        self.journal = journal
        self.acted = []
        self.view = {"store": "s1", "state": "ready", "what_works": "everything", "problems": [], "inside": 1,
                     "counts": {"entries": 3, "left": 2}, "t": 1_700_000_000.0,
                     "latency": {"entry_ms": {"count": 3, "p50": 10.5, "p90": 12.0, "p99": 14.0, "max": 14.0}},
                     "charges": {"intents": {"succeeded": 2}, "gateway_ok": True},
                     "devices": {"entrance": {"kind": "door", "online": True}, "shelf-1": {"kind": "rfid",
                                                                                        "online": False}},
                     "stock": {"shelf-1": {"Cola 330ml": 4}}, "visits": [],
                     "rfid_health": {"shelf-1": {"weak": ["E2801"], "unknown": ["E2802", "E2803"],
                                                 "lowest_read_rate": 0.3}},
                     "cross_read": {"E2809": ["shelf-1", "shelf-2"]}}

    def act(self, operator, action, args, timeout=5.0):
        self.acted.append((operator, action, args))
        return {"ok": True, "detail": f"{action} done", "state": "lockdown"}


@pytest.fixture
def setup(tmp_path):
    journal = Journal(tmp_path / "store.db")
    store = FakeStore(journal)
    refunds = []

    def refund(key, args):
        refunds.append((key, args))
        return True, f"refunded {args.amount_fen}"

    auth = Auth({"alice": hash_password(PASSWORD)}, ttl_s=60, failures_per_minute=3)
    client = TestClient(make_app(store, auth, refund))
    yield client, store, journal, refunds
    client.close()
    journal.close()


def login(client):
    r = client.post("/api/login", json={"name": "alice", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["csrf"]


def test_passwords_are_scrypt_hashed_and_checked():
    h = hash_password(PASSWORD)
    assert h.startswith("scrypt$") and PASSWORD not in h
    assert check_password(PASSWORD, h) and not check_password("wrong password", h)
    assert not check_password(PASSWORD, "garbage")
    with pytest.raises(ValueError):
        hash_password("short")


def test_sessions_expire_and_logins_are_throttled():
    now = [0.0]
    auth = Auth({"alice": hash_password(PASSWORD)}, ttl_s=60, failures_per_minute=2, clock=lambda: now[0])
    token, _ = auth.login("alice", PASSWORD)
    assert auth.session(token).operator == "alice"
    now[0] = 61
    assert auth.session(token) is None
    assert auth.login("alice", "nope") == "bad_credentials" and auth.login("alice", "nope") == "bad_credentials"
    assert auth.login("alice", PASSWORD) == "throttled"  # even the right password, for a minute
    now[0] = 122
    assert isinstance(auth.login("alice", PASSWORD), tuple)
    assert auth.login("mallory", PASSWORD) == "bad_credentials"


def test_page_state_and_metrics_need_no_login(setup):
    client, *_ = setup
    page = client.get("/")
    assert page.status_code == 200 and "bingobox" in page.text and "/app.js" in page.text
    assert client.get("/app.js").headers["content-type"].startswith("text/javascript")
    state = client.get("/api/state").json()
    assert state["state"] == "ready" and state["alarms"] == [] and state["history"][0]["entries"] == 3
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


def test_the_view_can_require_a_login(tmp_path):
    journal = Journal(tmp_path / "store.db")
    client = TestClient(make_app(FakeStore(journal), Auth({"alice": hash_password(PASSWORD)}),
                                 view_requires_login=True))
    try:
        assert client.get("/").status_code == 200  # the page itself, with its login form
        assert client.get("/api/state").status_code == 401
        assert client.get("/api/stream").status_code == 401
        assert client.get("/metrics").status_code == 200  # counts only, no accounts
        login(client)
        assert client.get("/api/state").json()["state"] == "ready"
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
    assert client.post("/api/login", json={"name": "alice", "password": PASSWORD}).status_code == 429
    assert [a["outcome"] for a in journal.recent_audit()] == ["throttled"] + ["bad_credentials"] * 3


def test_refunds_go_to_the_gateway_with_a_key_per_audit_entry(setup):
    client, store, journal, refunds = setup
    h = {"X-CSRF-Token": login(client)}
    r = client.post("/api/actions/refund", json={"charge_id": "ch_1", "amount_fen": 250, "reason": "broken"},
                    headers=h)
    assert r.status_code == 200 and r.json()["detail"] == "refunded 250"
    (key, args), = refunds
    entry = journal.recent_audit()[0]
    assert key == f"refund-{entry['id']}" and args.amount_fen == 250 and entry["outcome"] == "ok"
    r = client.post("/api/actions/refund", json={"charge_id": "ch_1", "amount_fen": 2.5, "reason": "x"}, headers=h)
    assert r.status_code == 422  # money is integer fen
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
