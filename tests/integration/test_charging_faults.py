"""0 lost, 0 doubled: many charges through the outbox while the gateway drops connections after committing,
answers 5xx/429, stalls past the read timeout, leaves charges pending, goes down and comes back — and the
terminal process is killed with SIGKILL at random points and restarted on the same journal."""

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from bingobox.journal import Journal
from bingobox_devkit.harness.process import free_port
from tests.drill_terminal import amount_for
from tests.helpers import ROOT, STORE_ID, STORE_SECRET, Gateway

pytestmark = pytest.mark.integration
VISITS = 150


def test_no_charge_lost_or_doubled_under_faults_and_kills(tmp_path):
    rng = random.Random(20261126)
    port = free_port()
    gw = Gateway(tmp_path, "--port", str(port), "--seed", "1")
    accounts = [gw.account(10**8)["id"] for _ in range(10)]
    visits_of = [(accounts[i % 10], gw.code(accounts[i % 10])) for i in range(VISITS)]  # each visit's own code
    journal = tmp_path / "terminal.db"
    cmd = [sys.executable, "-m", "tests.drill_terminal", "--journal", str(journal), "--gateway", gw.url,
           "--store", STORE_ID, "--secret", STORE_SECRET, "--visits-of", json.dumps(visits_of),
           "--visits", str(VISITS), "--rate", "12"]
    fault_plan = [
        {"drop_rate": 0.4}, {"drop_rate": 0.0, "error_rate": 0.4}, {"error_rate": 0.0, "latency_ms": 1500},
        {"latency_ms": 0, "pending_s": 1.0}, {"pending_s": 3.0}, {"pending_s": 0, "outage": True},
        {"outage": False, "drop_rate": 0.3, "error_rate": 0.2}, "restart-gateway", {"drop_rate": 0.5}, {},
    ]
    kills, log = 0, []
    injected = Counter()
    term = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for step in fault_plan:
            if step == "restart-gateway":
                injected.update(gw.admin("GET", "/admin/faults").json()["injected"])
                gw.stop(signal.SIGKILL)
                time.sleep(1.0)  # the gateway is down: connection refused
                gw = Gateway(tmp_path, "--port", str(port), "--seed", "2", db=gw.db)
                gw.faults(drop_rate=0.3)
            else:
                gw.faults(**step)
            time.sleep(rng.uniform(0.8, 2.0))
            term.kill()  # SIGKILL, wherever it is
            term.wait()
            kills += 1
            term = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            log.append(f"killed #{kills} during {step}")
        gw.faults(drop_rate=0, error_rate=0, latency_ms=0, pending_s=0, outage=False)
        out, _ = term.communicate(timeout=180)
        injected.update(gw.admin("GET", "/admin/faults").json()["injected"])
        assert term.returncode == 0 and "done" in out, out[-2000:]

        ledger = gw.ledger()
        ok = [c for c in ledger if c["status"] == "succeeded"]
        per_visit = Counter(c["visit_id"] for c in ok)
        expected = {f"visit-{i:04d}": amount_for(i) for i in range(VISITS)}
        lost = [v for v in expected if per_visit[v] == 0]
        doubled = [v for v, n in per_visit.items() if n > 1]
        wrong_amount = [c["id"] for c in ok if expected.get(c["visit_id"]) != c["amount_fen"]]
        strangers = [v for v in per_visit if v not in expected]
        states = Counter(c["status"] for c in ledger)
        intents = Journal(journal).all("SELECT state, COUNT(*) n FROM charge_intents GROUP BY state")
        print(f"\ncharging under faults: visits={VISITS} kills={kills} gateway_charges={dict(states)} "
              f"terminal_intents={ {r['state']: r['n'] for r in intents} } "
              f"injected={dict(injected)} lost={len(lost)} doubled={len(doubled)} wrong_amount={len(wrong_amount)}")
        assert (lost, doubled, wrong_amount, strangers) == ([], [], [], [])
        debited = sum(10**8 - gw.admin("GET", f"/admin/accounts/{a}").json()["balance_fen"] for a in accounts)
        assert debited == sum(expected.values())
        assert kills >= 8 and states["succeeded"] == VISITS
        # the faults really happened while charges were flowing (otherwise this test proves nothing)
        assert all(injected[k] > 0 for k in ("drops", "errors", "delayed", "pending", "outage")), injected
        assert states["canceled"] > 0  # charges left pending past the window were closed, then re-charged
    finally:
        if term.poll() is None:
            term.kill()
        gw.stop()
