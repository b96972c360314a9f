"""The outbox's decisions, one layer alone: a scripted wallet client and a fake clock drive every path."""

import pytest

from bingobox.journal import Journal
from bingobox.wallet.client import Outcome, Result
from bingobox.wallet.outbox import Limits, Outbox, Policy


class Clock:
    def __init__(self):
        self.t = 1_800_000_000.0

    def __call__(self):
        return self.t


class FakeClient:
    """Answers from scripts: a list of Results per method, the last one repeating."""

    def __init__(self, **scripts):
        self.scripts = {k: list(v) for k, v in scripts.items()}
        self.calls = []

    def _next(self, name, *args):
        self.calls.append((name, *args))
        s = self.scripts.get(name) or [Result(Outcome.UNKNOWN, error="no script")]
        return s.pop(0) if len(s) > 1 else s[0]

    def create_charge(self, key, payload):
        return self._next("create", key, payload["amount_fen"])

    def find_by_key(self, key):
        return self._next("find", key)

    def get_charge(self, cid):
        return self._next("get", cid)

    def cancel(self, cid):
        return self._next("cancel", cid)


def ch(status, cid="ch_1"):
    return {"id": cid, "status": status}


OK = Result(Outcome.SUCCEEDED, ch("succeeded"), 200)
UNKNOWN = Result(Outcome.UNKNOWN, error="timeout")


@pytest.fixture
def env(tmp_path):
    clock = Clock()

    def make(client, **policy):
        return Outbox(Journal(tmp_path / "store.db"), client, Limits(max_visit_fen=1000, max_pending_count=3,
                      max_pending_fen=5000, max_pending_age_s=600),
                      Policy(**{"retry_base_s": 1, "poll_interval_s": 3, "paying_window_s": 60,
                                "debt_retry_s": 3600, **policy}), clock=clock)
    return make, clock


def drain(ob, clock, seconds=0, step=0.5):
    end = clock.t + seconds
    while True:
        while ob.step():
            pass
        if clock.t >= end:
            return
        clock.t += step


def test_success_first_time(env):
    make, clock = env
    c = FakeClient(create=[OK])
    ob = make(c)
    vid = ob.submit("v1", "acc", 250, [{"sku": "a"}])
    assert ob.intent(vid)["state"] == "pending"  # committed before any attempt
    drain(ob, clock)
    assert ob.visit_state("v1")["state"] == "succeeded" and [x[0] for x in c.calls] == ["create"]


def test_unknown_result_is_queried_before_charging_again(env):
    make, clock = env
    c = FakeClient(create=[UNKNOWN], find=[OK])
    ob = make(c)
    ob.submit("v1", "acc", 250, [])
    drain(ob, clock, 5)
    assert [x[0] for x in c.calls] == ["create", "find"]
    assert ob.visit_state("v1")["state"] == "succeeded"
    c2 = FakeClient(create=[UNKNOWN, UNKNOWN, OK], find=[Result(Outcome.NOT_FOUND)])
    ob2 = make(c2)
    ob2.submit("v2", "acc", 300, [])
    drain(ob2, clock, 10)
    keys = {x[1] for x in c2.calls}
    assert len(keys) == 1  # every attempt used the same idempotency key
    assert ob2.visit_state("v2")["state"] == "succeeded"


def test_pending_is_polled_then_canceled_then_charged_under_a_new_key(env):
    make, clock = env
    pending = Result(Outcome.PENDING, ch("pending", "ch_p"), 202)
    c = FakeClient(create=[pending, OK], get=[pending], cancel=[Result(Outcome.CANCELED, ch("canceled", "ch_p"))],
                   find=[Result(Outcome.NOT_FOUND)])
    ob = make(c)
    ob.submit("v1", "acc", 400, [])
    drain(ob, clock, 59)
    assert ob.visit_state("v1")["state"] == "paying" and "cancel" not in [x[0] for x in c.calls]
    drain(ob, clock, 10)
    rows = ob.j.all("SELECT state, idem_key, supersedes FROM charge_intents WHERE visit_id='v1' ORDER BY id")
    assert [r["state"] for r in rows] == ["canceled", "succeeded"]
    assert rows[0]["idem_key"] != rows[1]["idem_key"] and rows[1]["supersedes"] == 1


def test_a_crash_right_after_the_cancel_still_leaves_the_visit_a_charge(env):
    """(Found by the simulation: the cancel was committed, the new intent was not, and the visit was never charged.)"""
    make, clock = env
    pending = Result(Outcome.PENDING, ch("pending", "ch_p"), 202)
    c = FakeClient(create=[pending], get=[pending], cancel=[Result(Outcome.CANCELED, ch("canceled", "ch_p"))])
    ob = make(c, paying_window_s=5)
    ob.submit("v1", "acc", 400, [])

    class Crash(BaseException):
        pass

    def crash_on_cancel(_n):
        if ob.j.one("SELECT 1 FROM charge_intents WHERE state='canceled'"):
            raise Crash
    ob.j.after_commit = crash_on_cancel
    with pytest.raises(Crash):
        drain(ob, clock, 20)
    ob.j.after_commit = None
    rows = ob.j.all("SELECT state, supersedes FROM charge_intents WHERE visit_id='v1' ORDER BY id")
    assert [(r["state"], r["supersedes"]) for r in rows] == [("canceled", None), ("pending", 1)]


def test_cancel_that_finds_the_charge_paid_adopts_success(env):
    make, clock = env
    pending = Result(Outcome.PENDING, ch("pending"), 202)
    c = FakeClient(create=[pending], get=[pending, pending, OK],
                   cancel=[Result(Outcome.ALREADY_SUCCEEDED, status=409)])
    ob = make(c, paying_window_s=5)
    ob.submit("v1", "acc", 400, [])
    drain(ob, clock, 20)
    assert ob.visit_state("v1")["state"] == "succeeded"
    assert ob.j.one("SELECT COUNT(*) n FROM charge_intents")["n"] == 1


def test_declined_is_debt_retried_with_a_new_key_later(env):
    make, clock = env
    declined = Result(Outcome.DECLINED, ch("failed"), 402, "insufficient_balance")
    c = FakeClient(create=[declined, OK])
    ob = make(c)
    ob.submit("v1", "acc_poor", 900, [])
    drain(ob, clock, 10)
    st = ob.visit_state("v1")
    assert (st["state"], st["reason"]) == ("declined", "insufficient_balance")
    assert ob.debtors() == {"acc_poor"}
    drain(ob, clock, 3600, step=60)
    assert ob.visit_state("v1")["state"] == "succeeded" and ob.debtors() == set()
    assert len({x[1] for x in c.calls}) == 2


def test_crash_after_the_attempt_left_resumes_by_querying(env):
    make, clock = env
    ob = make(FakeClient())
    ob.submit("v1", "acc", 500, [])
    ob._update(ob.visit_state("v1"), attempts=1)  # what the journal holds if the process died mid-request
    ob.j.close()
    c = FakeClient(find=[OK])
    ob2 = make(c)  # restart on the same file
    drain(ob2, clock)
    assert [x[0] for x in c.calls] == ["find"] and ob2.visit_state("v1")["state"] == "succeeded"


def test_limits_stop_admission_not_exits(env):
    make, clock = env
    ob = make(FakeClient(create=[UNKNOWN]))
    assert ob.admission() == (True, None)
    for i in range(3):
        ob.submit(f"v{i}", "acc", 100, [])
    assert ob.admission() == (False, "too_many_pending_charges")
    ob2 = make(FakeClient(create=[UNKNOWN]))
    ob2.j.conn.execute("DELETE FROM charge_intents")
    ob2.submit("big", "acc", 4500, [])
    assert ob2.admission() == (False, "pending_charges_sum")
    ob2.j.conn.execute("UPDATE charge_intents SET amount_fen=10")
    clock.t += 601
    assert ob2.admission() == (False, "pending_charge_too_old")
    # the exposure never refuses a submit: a shopper leaving is always charged later
    ob2.submit("after-limit", "acc", 999, [])


def test_submit_refuses_bad_amounts_and_duplicates(env):
    make, _ = env
    ob = make(FakeClient())
    for bad in (0, -1, 1.5, "100", True):
        with pytest.raises(ValueError):
            ob.submit("x", "acc", bad, [])
    ob.submit("v1", "acc", 1, [])
    with pytest.raises(ValueError, match="already has"):
        ob.submit("v1", "acc", 1, [])


def test_a_step_that_keeps_failing_backs_off_instead_of_spinning(tmp_path, caplog):
    """The sender thread itself: every step raises (a disk that refuses writes, a bug); it must not spin. Without
    the back-off it retried the due intent thousands of times a second."""
    import time as _time

    client = FakeClient()
    ob = Outbox(Journal(tmp_path / "store.db"), client, Limits(max_visit_fen=1000, max_pending_count=3,
                max_pending_fen=5000, max_pending_age_s=600), Policy(retry_base_s=1, poll_interval_s=3,
                paying_window_s=60, debt_retry_s=3600))
    ob.submit("v1", "acc", 250, [{"sku": "a"}])

    def failing_send(it, now):
        client.calls.append(("send", it["id"]))
        raise OSError("disk I/O error")
    ob._send = failing_send
    ob.start()
    _time.sleep(1.0)
    ob.stop()
    assert 1 <= len(client.calls) <= 8  # 0 s, 0.1, 0.3, 0.7 (, 1.5): a handful, never thousands
    assert ob.stats["step_failures"] == len(client.calls)
    assert len([r for r in caplog.records if "outbox step failed" in r.getMessage()]) == 1  # one streak, one log
    waits = [ob.step_failed() for _ in range(60)]
    assert max(waits) == 5.0 and waits[-1] == 5.0


def test_a_charge_names_the_code_of_its_visit_and_every_successor_keeps_it(env, tmp_path):
    """Protocol 2: the gateway binds a charge to the entry code that opened the visit; a retried debt (new key)
    names the same code; an intent written before intents carried it takes the code from the visit's evidence."""
    make, clock = env
    payloads = []

    class Capture(FakeClient):
        def create_charge(self, key, payload):
            payloads.append(payload)
            return super().create_charge(key, payload)

    declined = Result(Outcome.DECLINED, ch("failed"), 402, "insufficient_balance")
    ob = make(Capture(create=[declined, OK]), debt_retry_s=10)
    ob.submit("v1", "acc", 250, [], entry_jti="jti-of-v1")
    drain(ob, clock, 30)
    assert [p["entry_jti"] for p in payloads] == ["jti-of-v1", "jti-of-v1"] and ob.visit_state("v1")["state"] == \
        "succeeded"
    ob.j.evidence("v2", "code_accepted", {"jti": "jti-of-v2"})
    ob.submit("v2", "acc", 100, [])
    drain(ob, clock, 5)
    assert payloads[-1]["entry_jti"] == "jti-of-v2"


def test_when_the_gateway_answers_again_every_waiting_charge_is_due_at_once_in_order(env):
    """After an outage the charges waiting out their back-off (up to retry_max_s) go at once, oldest first, as
    soon as one of them finds the gateway back."""
    make, clock = env
    c = FakeClient(create=[UNKNOWN], find=[UNKNOWN])
    ob = make(c, retry_max_s=30)
    for i in range(4):
        ob.submit(f"v{i}", "acc", 100 + i, [])
    drain(ob, clock, 20)  # the gateway down: back-offs grow apart
    c.scripts.update(create=[OK], find=[Result(Outcome.NOT_FOUND, None, 200)])
    c.calls.clear()
    t0 = clock.t
    drain(ob, clock, 60, step=0.1)
    sent = [call[2] for call in c.calls if call[0] == "create"]
    # the one whose back-off ended first finds the gateway back; the others follow in the order of the visits
    assert sorted(sent) == [100, 101, 102, 103] and sent[1:] == sorted(sent[1:])
    assert all(ob.visit_state(f"v{i}")["state"] == "succeeded" for i in range(4))
    assert max(ob.intent(i + 1)["updated_at"] for i in range(4)) - t0 < 31  # none waited a second round
