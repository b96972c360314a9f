"""``bingobox simulate-outage``: a long wallet outage in the deterministic simulation, and the drain it leaves.

Shoppers arrive all day at a steady rate (a Poisson process, ``--every-s``); the wallet gateway goes down at
``--start-h`` for ``--outage-h`` hours. The real store core, outbox and journal run on the simulated clock (hours
cost seconds) with the *production* sender timing (``Policy()``: back-off up to 30 s, polls every 3 s) and the
offline limits given (``--limits``: the store's defaults, or larger ones sized for the whole outage). Reported:

- who came in before, during and after the outage, and who was refused, by the reason the store gave;
- the exposure while offline (charges pending, their sum) and when entry stopped;
- after the wallet returns: how long until every queued charge landed, whether they landed in the order of the
  visits, and the money (the simulation's oracle: every shopper charged once, the right amount, the right person).

``--real-drain N`` then measures the drain against the real mock gateway (a process on loopback): N charges queued
in a journal while it is down, then it comes back; the time until all landed and the charges per second."""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
import time
from pathlib import Path

from bingobox.metrics import percentiles
from bingobox.wallet.outbox import Limits, Policy

from . import run as sim

LIMITS = {
    "default": Limits(),  # the store's defaults: 50 charges, 5 000 CNY pending, 500 CNY a visit, 24 h
    "six-hours": Limits(max_visit_fen=50_000, max_pending_count=500, max_pending_fen=5_000_000,
                        max_pending_age_s=24 * 3600),
}


def draw(seed: int, hours: float, every_s: float, start_h: float, outage_h: float) -> sim.Plan:
    rng = random.Random(f"{seed}:outage-plan")
    shoppers, t, i = [], 0.0, 0
    while True:
        t += rng.expovariate(1 / every_s)
        if t > hours * 3600:
            break
        shoppers.append({"n": i, "arrive": round(t, 3), "face": rng.random() < 0.7,
                         "balance_fen": 50 if rng.random() < 0.05 else 1_000_000, "takes": rng.randint(0, 4),
                         "put_back": rng.random() < 0.2, "tailgated": False})
        i += 1
    faults = [(start_h * 3600, "outage", {"for": outage_h * 3600})]
    return sim.Plan(seed, shoppers, [], faults, 0.0, 0.05, None)


class OutagePlay(sim.Play):
    def __init__(self, plan: sim.Plan, workdir: Path, limits: Limits, start_s: float, end_s: float,
                 hours: float) -> None:
        super().__init__(plan, None, workdir)
        self.limits, self.policy = limits, Policy()  # the production sender
        self.until_s = hours * 3600 + 1800
        self.start_s, self.end_s = start_s, end_s
        self.samples: list[dict] = []

    def run(self) -> sim.Played:
        w = self.world
        w.sched.every(lambda: 60.0, self._sample)
        w.sched.every(lambda: 120.0, self._restock)
        return super().run()

    def _sample(self) -> None:
        if self.ctl is None:
            return
        e = self.ctl.outbox.exposure()
        ok, why = self.ctl.outbox.admission(e)
        self.samples.append({"t": self.world.clock() - self.world.start, **e, "admitting": ok, "why": why})

    def _restock(self) -> None:
        w = self.world
        if not any(s.entered and s.left_how is None for s in w.shoppers):  # (nobody inside: staff come in)
            w.restock()


def report(play: OutagePlay, played: sim.Played, args) -> dict:
    w = play.world
    start, end = play.start_s, play.end_s
    phase = {"before": (0, start), "during": (start, end), "after": (end, float("inf"))}
    people: dict = {}
    for name, (a, b) in phase.items():
        arrived = [s for s in w.shoppers if a <= s.arrive < b]
        people[name] = {"arrived": len(arrived), "came_in": sum(s.entered for s in arrived),
                        "refused": sum(s.left_how == "never_entered" for s in arrived)}
    with sqlite3.connect(f"file:{play.journal_path}?mode=ro", uri=True) as c:
        refused = dict(c.execute("SELECT json_extract(data, '$.reason'), count(*) FROM visit_events WHERE "
                                 "kind='code_refused' GROUP BY 1").fetchall())
        for reason, n in c.execute("SELECT json_extract(data, '$.reason'), sum(json_extract(data, '$.count')) "
                                   "FROM visit_events WHERE kind='code_refused_suppressed' GROUP BY 1"):
            refused[reason] = refused.get(reason, 0) + n
        intents = {r[0]: (r[1], r[2]) for r in c.execute("SELECT visit_id, min(id), min(created_at) FROM "
                                                            "charge_intents GROUP BY visit_id")}
    during = [x for x in play.samples if start <= x["t"] < end]
    stopped = next((x["t"] - start for x in during if not x["admitting"]), None)
    # the drain: once the wallet is back, until nothing is pending
    after = [x for x in play.samples if x["t"] >= end]
    drained = next((x["t"] - end for x in after if x["pending_count"] == 0), None)  # (to the minute)
    charges = sorted(w.gateway.succeeded(), key=lambda ch: ch.created)
    back = w.start + end  # (the world's clock)
    queued = [ch for ch in charges if ch.created >= back and ch.visit in intents and intents[ch.visit][1] < back]
    order = [intents[ch.visit][0] for ch in queued]
    inversions = sum(1 for a, b in itertools.pairwise(order) if b < a)
    times = [ch.created - back for ch in queued]  # (charges that waited out the outage: when each landed)
    return {
        "seed": args.seed, "hours": args.hours, "every_s": args.every_s, "outage": {"from_h": args.start_h,
                                                                                     "hours": args.outage_h},
        "limits": args.limits, "limit_values": LIMITS[args.limits].__dict__,
        "shoppers": people, "refused_by_reason": refused,
        "offline": {"entry_stopped_after_s": stopped,
                    "max_pending_count": max((x["pending_count"] for x in during), default=0),
                    "max_pending_fen": max((x["pending_fen"] for x in during), default=0),
                    "oldest_pending_s": max((x["oldest_pending_age_s"] for x in during), default=0)},
        "after_return": {"charges_landed": len(queued), "nothing_pending_within_s": drained,
                         "landed_after_s": percentiles(times), "out_of_visit_order": inversions},
        "violations": played.violations, "unbilled_for_review": len(played.stats["excused"]),
        "gateway": played.stats["gateway"],
    }


def real_drain(n: int) -> dict:
    """N charges queued in a journal while the real mock gateway is down, then it comes back: how long until
    every one landed (the sender's back-off decides when each is next tried), and the charges per second."""
    import tempfile

    from bingobox.journal import Journal
    from bingobox.secretfiles import write_secret
    from bingobox.wallet.client import WalletClient
    from bingobox.wallet.outbox import Outbox
    from bingobox_devkit.harness.process import Proc, free_port

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        secret = "drain-secret-0123456789abcdef"
        write_secret(d / "secret", secret)
        port = free_port()
        gw = Proc("gateway", ["gateway", "--db", str(d / "gw.db"), "--port", str(port), "--store",
                              f"s1=@{d / 'secret'}"], d / "gw.log", env={"BINGOBOX_GATEWAY_ADMIN_TOKEN": "t" * 20})
        try:
            gw.wait_line("ready")
            import requests

            url, h = f"http://127.0.0.1:{port}", {"X-Admin-Token": "t" * 20}
            accounts = [requests.post(url + "/admin/accounts", json={"real_name": f"A {i}", "id_number": f"id{i:06d}",
                                                                   "balance_fen": 10**8}, headers=h,
                                      timeout=10).json()["id"] for i in range(20)]
            codes = [requests.post(url + "/v1/entry-codes", json={"account_id": accounts[i % 20], "store_id": "s1"},
                                   headers=h, timeout=10).json()["jti"] for i in range(n)]
            requests.post(url + "/admin/faults", json={"outage": True}, headers=h, timeout=10)
            journal = Journal(d / "store.db")
            landed: list[float] = []
            box = Outbox(journal, WalletClient(url, "s1", secret), Limits(max_pending_count=n + 1,
                                                                           max_pending_fen=10**10),
                         Policy(), on_event=lambda kind, _d: landed.append(time.time())
                         if kind == "charge_succeeded" else None)
            for i in range(n):
                box.submit(f"v{i:05d}", accounts[i % 20], 100 + i, [], entry_jti=codes[i])
            box.start()
            time.sleep(45)  # down long enough for every intent's back-off to reach its ceiling (30 s)
            back = time.time()
            requests.post(url + "/admin/faults", json={"outage": False}, headers=h, timeout=10)
            deadline = time.monotonic() + 300
            while len(landed) < n and time.monotonic() < deadline:
                time.sleep(0.2)
            box.stop()
            order = [r[0] for r in journal.all("SELECT id FROM charge_intents WHERE state='succeeded' ORDER BY "
                                               "updated_at")]
            journal.close()
            ledger = requests.get(url + "/admin/charges", headers=h, timeout=10).json()["data"]
        finally:
            gw.stop()
    ok = [c for c in ledger if c["status"] == "succeeded"]
    first, last = (min(landed) - back, max(landed) - back) if landed else (None, None)
    return {"charges": n, "landed": len(landed), "gateway_succeeded": len(ok),
            "doubled": len(ok) - len({c["visit_id"] for c in ok}),
            "first_landed_after_s": round(first, 2) if first is not None else None,
            "all_landed_after_s": round(last, 2) if last is not None else None,
            "charges_per_s_once_flowing": round((n - 1) / (last - first), 1)
            if first is not None and last is not None and last > first else None,
            "out_of_order": sum(1 for a, b in itertools.pairwise(order) if b < a)}


def main(args) -> int:
    import logging

    logging.disable(logging.CRITICAL)
    plan = draw(args.seed, args.hours, args.every_s, args.start_h, args.outage_h)
    wd = sim.workdir()
    t0 = time.perf_counter()
    try:
        play = OutagePlay(plan, wd, LIMITS[args.limits], args.start_h * 3600, (args.start_h + args.outage_h) * 3600,
                          args.hours)
        played = play.run()
        out = report(play, played, args)
    finally:
        import shutil

        shutil.rmtree(wd, ignore_errors=True)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    if args.real_drain:
        out["real_drain"] = real_drain(args.real_drain)
    print(json.dumps(out, indent=None if args.json else 1, default=str), flush=True)
    return 1 if out["violations"] else 0


def add_parser(sub) -> None:
    p = sub.add_parser("simulate-outage", help="a long wallet outage in the deterministic simulation: who gets in, "
                       "what is refused and why, and the drain when the wallet returns")
    p.add_argument("--hours", type=float, default=8.0, help="the day simulated")
    p.add_argument("--every-s", type=float, default=60.0, help="a shopper this often on average")
    p.add_argument("--start-h", type=float, default=1.0, help="the wallet goes down after this many hours …")
    p.add_argument("--outage-h", type=float, default=6.0, help="… for this many")
    p.add_argument("--limits", choices=sorted(LIMITS), default="default", help="the store's offline limits")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--real-drain", type=int, default=0, metavar="N", help="then N charges drained against the real "
                   "mock gateway process")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=main)
