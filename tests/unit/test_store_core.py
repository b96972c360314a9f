"""The store's rules in process, with fakes around the real core (a real journal file, the real outbox and entry
gate, fake doors, exit reader, face side and wallet client, a fake clock): admission, attribution, checkout,
recovery, restart reconciliation and the exit that always opens — each rule in milliseconds, no subprocess."""

import json
import queue

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bingobox.actions import RetryCharge
from bingobox.config import StoreConfig
from bingobox.core.events import ChargeUpdate, CodeSeen, DiskChecked, Enrolled, FaceDecided, OperatorCommand, Started
from bingobox.core.store import StoreCore
from bingobox.devices.events import DeviceEvent
from bingobox.domain import exit_window, tokens
from bingobox.domain.catalog import Catalog, Product
from bingobox.domain.entry import EntryGate
from bingobox.domain.faces import FaceDecision as Decision
from bingobox.journal import Journal
from bingobox.wallet.client import Outcome, Result
from bingobox.wallet.outbox import Outbox, Policy

KEY = Ed25519PrivateKey.generate()
COLA, CHIPS = "E2806894000050240001", "E2806894000050240002"
CATALOG = Catalog({COLA: Product("cola", "Cola", 350), CHIPS: Product("chips", "Chips", 650)})
T0 = 1_800_000_000.0


class Clock:
    def __init__(self):
        self.t = T0

    def __call__(self):
        return self.t


class Door:
    def __init__(self, name, journal=None):
        self.name, self.journal, self.grants = name, journal, []
        self.answer = ("unlocked", f"{name} unlocked")  # what the board says to a grant with a ``done``
        self.post = None  # set: a tagged grant's answer comes back as the board's event (``unlock_written``…)
        self.lit = (False, False)  # (green, red) lamps

    def lamps(self, green, red):
        self.lit = (green, red)

    def grant(self, seconds=None, tag=None, done=None):
        if done is not None:
            done(*self.answer)
        if self.post is not None and tag is not None and self.answer[0] != "unknown":
            kind = "unlock_written" if self.answer[0] == "unlocked" else "grant_refused"
            self.post(DeviceEvent(self.name, kind, {"tag": tag, "written": 0.0, "acked": 0.0}, 0.0))
        # what the journal held when the door was told to open (an effect only after its commit)
        held = self.journal.all("SELECT id, state FROM visits") if self.journal else []
        intents = self.journal.all("SELECT visit_id FROM charge_intents") if self.journal else []
        self.grants.append({"tag": tag, "visits": {r["id"]: r["state"] for r in held},
                            "intents": {r["visit_id"] for r in intents}})

    def status(self):
        return {}


class Reader:
    """Rounds as (end time, EPCs read); online unless unplugged; ``broken`` raises like a failing driver."""

    def __init__(self):
        self.rounds: list[tuple[float, set]] = []
        self.up, self.broken, self.waiting = True, False, []

    def online(self):
        return self.up

    def window(self, t0, t_after, min_rounds=1):
        if self.broken:
            raise RuntimeError("reader driver bug")
        return exit_window.window(self.rounds, t0, t_after, min_rounds)  # the production rule

    def when_ready(self, t0, t_after, min_rounds, callback, timeout):
        self.waiting.append(callback)

    def read(self, t, *epcs, n=6, dt=0.03):
        for i in range(n):
            self.rounds.append((t + i * dt, set(epcs)))


class Faces:
    def __init__(self):
        self.enrolled, self.forgotten, self.candidates, self.others = [], [], [], 0

    def enrol(self, vid):
        self.enrolled.append(vid)

    def forget(self, vid):
        self.forgotten.append(vid)

    def set_candidates(self, ids, others=0):
        self.candidates, self.others = list(ids), others


class Client:
    def __init__(self):
        self.answer = Result(Outcome.SUCCEEDED, {"id": "ch_1", "status": "succeeded"}, 200)
        self.charges = []

    def create_charge(self, key, payload):
        self.charges.append(payload)
        return self.answer

    def find_by_key(self, key):
        return Result(Outcome.NOT_FOUND, None, 200)

    def get_charge(self, cid):
        return self.answer

    def cancel(self, cid):
        return self.answer


class Rig:
    """One store core; ``run()`` hands it what it posted; ``restart()`` is a crash: memory gone, journal kept."""

    def __init__(self, path, reader=True, acks=False):
        self.path, self.clock, self.posted, self.acks = path, Clock(), [], acks
        self.cfg = StoreConfig.model_validate({
            "store": {"id": "s1"}, "catalog": "unused.csv",
            "doors": [{"name": n, "port": f"x://{n}", "energize_to_unlock": True} for n in ("entrance", "exit")],
            "readers": [{"name": n, "port": f"x://{n}"} for n in ("shelf-1", "exit-area")],
            "cameras": [{"name": n, "source": f"x://{n}"} for n in ("door-cam", "exit-cam")],
            "layout": {"entry_door": "entrance", "exit_door": "exit", "entry_camera": "door-cam",
                       "exit_camera": "exit-cam", "exit_reader": "exit-area"},
            "visits": {"exit_charge_wait_s": 3, "enter_within_s": 15, "max_inside_s": 600}})
        self.client = Client()
        self.reader = Reader() if reader else None
        self.faces = Faces()
        self.start()

    def start(self):
        self.journal = Journal(self.path, clock=self.clock)
        self.outbox = Outbox(self.journal, self.client, policy=Policy(max_rejections=2), clock=self.clock,
                             on_event=lambda k, d: self.posted.append(ChargeUpdate(k, d)))
        self.doors = {n: Door(n, self.journal) for n in ("entrance", "exit", *getattr(self, "extra_doors", ()))}
        for d in self.doors.values():
            d.post = self.posted.append if self.acks else None
        gate = EntryGate({"k1": KEY.public_key()}, "s1", self.journal, self.outbox, clock=self.clock)
        catalog = getattr(self, "catalog", CATALOG)  # (a subclass may sell other goods)
        self.core = StoreCore(self.cfg, self.journal, catalog, self.outbox, gate, self.doors, self.reader,
                              self.faces, post=self.posted.append, clock=self.clock)
        self.core.restore()
        self.core.handle(Started())

    def restart(self):
        self.journal.close()
        self.posted.clear()
        self.start()

    def run(self):
        while self.posted:
            self.core.handle(self.posted.pop(0))

    def send(self):
        while self.outbox.step():
            pass
        self.run()

    def at(self, dt):
        self.clock.t += dt
        self.core.tick()
        self.run()

    def code(self, account="acc_1", door="*", consent=False, group=1):
        return tokens.issue(KEY, "k1", account, "s1", door, int(self.clock.t), 60, consent, group=group)

    def show(self, role, text):
        self.core.handle(CodeSeen(role, text, self.clock.t, {"decoded": self.clock.t}))
        self.run()

    def door(self, name, kind):
        self.core.handle(DeviceEvent(name, kind, {}, self.clock.t))
        self.run()

    def shelf(self, kind, epc):
        self.core.handle(DeviceEvent("shelf-1", kind, {"epc": epc}, self.clock.t))
        self.run()

    def enter(self, account="acc_1", consent=False):
        self.show("entry", self.code(account, "entrance", consent))
        self.at(0.5)
        self.door("entrance", "door_opened")
        self.at(1.0)
        self.door("entrance", "door_closed")
        return self.visit_of(account)

    def visit_of(self, account):
        r = self.journal.one("SELECT * FROM visits WHERE account_id=? ORDER BY created_at DESC", (account,))
        return dict(r) if r else None

    def events(self, vid):
        return [(r["kind"], json.loads(r["data"])) for r in self.journal.all(
            "SELECT kind, data FROM visit_events WHERE visit_id=? ORDER BY id", (vid,))]

    def alarms(self):
        return [r["kind"] for r in self.journal.all("SELECT kind FROM alarms")]


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path / "store.db")
    yield r
    r.journal.close()


def epc(prefix, n):
    return f"{prefix}{n:04X}"


def test_entry_commits_the_visit_and_the_used_code_before_the_door_opens(rig):
    c = rig.code("acc_1", "entrance")
    rig.show("entry", c)
    (grant,) = rig.doors["entrance"].grants
    v = rig.visit_of("acc_1")
    assert grant["visits"] == {v["id"]: "door_unlocked"} and grant["tag"] == v["id"]
    jti = json.loads(tokens.b64d(c.split(".")[1]))["jti"]
    assert rig.journal.jti_used(jti)
    rig.at(2.0)
    rig.show("entry", c)  # the same code again (after the debounce): replayed, the door stays shut
    assert len(rig.doors["entrance"].grants) == 1
    assert rig.journal.one("SELECT data FROM visit_events WHERE kind='code_refused'")["data"].count("replayed")


def test_the_door_cycle_is_durable_at_once_and_a_restart_never_abandons_someone_inside(rig):
    rig.show("entry", rig.code("acc_1", "entrance"))
    rig.at(0.5)
    rig.door("entrance", "door_opened")
    assert rig.visit_of("acc_1")["state"] == "entered"  # on disk, not only in memory (the seed-7 bug)
    rig.restart()  # killed before the door closed
    rig.at(60)  # long past enter_within_s
    v = rig.visit_of("acc_1")
    assert v["state"] == "inside"
    rig.show("entry", rig.code("acc_2", "entrance"))  # and one whose entry was never seen: presumed inside
    rig.restart()
    rig.at(60)
    assert rig.visit_of("acc_2")["state"] == "inside" and "entry_not_seen" in json.loads(rig.visit_of("acc_2")[
        "flags"])


def test_alone_the_shelf_attributes_and_the_exit_charges_once_after_the_intent(rig):
    v = rig.enter("acc_1")
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.shelf("tag_gone", epc(CHIPS, 1))
    rig.shelf("tag_seen", epc(CHIPS, 1))  # put back
    assert json.loads(rig.visit_of("acc_1")["basket"]) == {epc(COLA, 1): "shelf:shelf-1"}
    rig.at(5)
    rig.reader.read(rig.clock.t - 0.3, epc(COLA, 1), n=20)
    rig.core.handle(FaceDecided(Decision(v["id"], 0.4, 0.2, "matched", v["id"]), rig.clock.t - 0.1, {}))
    rig.run()
    assert not rig.doors["exit"].grants  # the exit opens on the gateway's answer, not before
    rig.send()
    (grant,) = rig.doors["exit"].grants
    assert v["id"] in grant["intents"] and grant["visits"][v["id"]] == "charging"
    rig.door("exit", "door_opened")
    assert rig.visit_of("acc_1")["state"] == "left" and [c["amount_fen"] for c in rig.client.charges] == [350]
    kinds = [k for k, _ in rig.events(v["id"])]
    assert kinds.index("identified") < kinds.index("basket") < kinds.index("charge_succeeded") < kinds.index("receipt")
    assert "undecided_looks" not in dict(rig.events(v["id"]))["identified"]  # (decided at the first look)


def test_the_looks_that_decided_nothing_before_a_face_match_are_in_its_record(rig):
    v = rig.enter("acc_1")
    rig.at(5)
    rig.core.handle(FaceDecided(Decision(v["id"], 0.4, 0.2, "matched", v["id"]), rig.clock.t - 0.1, {},
                                {"unsure_open": 3}, rig.clock.t - 1.4))
    rig.run()
    how = dict(rig.events(v["id"]))["identified"]
    assert how["by"] == "face" and how["undecided_looks"] == {"unsure_open": 3}
    assert how["first_look"] == rig.clock.t - 1.4


def test_several_inside_the_exit_reader_decides_within_the_window_of_the_identification(rig):
    a, b = rig.enter("acc_a"), rig.enter("acc_b")
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.shelf("tag_gone", epc(CHIPS, 1))
    assert rig.core.attribution.pool and not json.loads(rig.visit_of("acc_a")["basket"])
    rig.at(5)
    t_face = rig.clock.t
    rig.reader.read(t_face - 0.5, epc(COLA, 1), n=20)  # a carries the cola to the exit
    rig.reader.read(t_face + 5, epc(CHIPS, 1), n=20)  # later, b is there with the chips
    rig.at(6)  # the decision about a arrives late: what the reader sees *now* is not a's
    rig.core.handle(FaceDecided(Decision(a["id"], 0.4, 0.2, "matched", a["id"]), t_face, {}))
    rig.run()
    rig.send()
    assert json.loads(rig.visit_of("acc_a")["basket"]) == {epc(COLA, 1): "exit_reader"}
    assert b["id"] != a["id"]


def test_an_exit_code_without_an_open_visit_opens_a_recovery_visit_for_what_the_reader_saw(rig, caplog):
    rig.reader.read(rig.clock.t - 0.5, epc(CHIPS, 2), n=30)
    rig.show("exit", rig.code("acc_9"))
    rig.send()
    v = rig.visit_of("acc_9")
    assert "recovery visit" in caplog.text and "acc_9" not in caplog.text  # logs name visits, never accounts
    assert {"recovery", "review"} <= set(json.loads(v["flags"])) and v["amount_fen"] == 650
    assert rig.doors["exit"].grants and [c["amount_fen"] for c in rig.client.charges] == [650]
    listing = rig.journal.list_visits()
    assert "review" in listing[0]["flags"]


def test_every_failure_after_identification_still_opens_the_exit(rig, monkeypatch):
    v = rig.enter("acc_1")
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.at(5)

    def full_disk(*a, **k):
        raise OSError("database or disk is full")
    monkeypatch.setattr(rig.outbox, "add_intent_in", full_disk)
    rig.reader.read(rig.clock.t - 0.3, epc(COLA, 1), n=20)
    rig.show("exit", rig.code("acc_1"))
    assert rig.doors["exit"].grants, "kept inside by an exception"
    assert "checkout_failed" in rig.alarms() and "checkout_failed" in json.loads(rig.visit_of("acc_1")["flags"])
    rig.door("exit", "door_opened")
    assert rig.visit_of("acc_1")["state"] == "left"
    assert v


def test_a_broken_or_silent_exit_reader_never_keeps_anyone_in(rig):
    rig.enter("acc_1")
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.at(5)
    rig.reader.broken = True  # the driver raises: charged for the basket, flagged
    rig.show("exit", rig.code("acc_1"))
    rig.send()
    assert rig.doors["exit"].grants and rig.client.charges[-1]["amount_fen"] == 350
    rig.door("exit", "door_opened")
    rig.reader.broken = False
    rig.enter("acc_2")
    rig.at(5)
    rig.show("exit", rig.code("acc_2"))  # no round ever comes: the tick stops waiting
    assert rig.visit_of("acc_2")["state"] == "at_exit" and rig.reader.waiting
    rig.at(1.5)
    rig.at(1.5)  # exit_inventory_timeout_s (1.5) and a second's grace
    assert rig.visit_of("acc_2")["state"] == "charging"
    assert len(rig.doors["exit"].grants) == 2  # nothing to pay: open at once


def test_a_refused_charge_fails_after_bounded_tries_opens_the_exit_and_can_be_charged_again(rig):
    v = rig.enter("acc_1")
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.at(5)
    rig.client.answer = Result(Outcome.REJECTED, None, 400, "HTTP 400 bad_request: name too long")
    rig.reader.read(rig.clock.t - 0.3, epc(COLA, 1), n=20)
    rig.show("exit", rig.code("acc_1"))
    for _ in range(10):
        rig.send()
        rig.clock.t += 5
    assert rig.outbox.visit_state(v["id"])["state"] == "failed" and "charge_failed" in rig.alarms()
    assert rig.outbox.exposure()["pending_count"] == 0 and rig.doors["exit"].grants
    rig.client.answer = Result(Outcome.SUCCEEDED, {"id": "ch_2", "status": "succeeded"}, 200)
    reply = queue.Queue()
    rig.core.handle(OperatorCommand("alice", "retry_charge", RetryCharge(visit_id=v["id"]), reply))
    assert reply.get_nowait()["ok"]
    rig.send()
    assert rig.outbox.visit_state(v["id"])["state"] == "succeeded"


def test_an_operator_unlock_reports_what_the_door_did(rig):
    from bingobox.actions import Unlock

    def unlock(answer):
        rig.doors["entrance"].answer = answer
        reply = queue.Queue()
        rig.core.handle(OperatorCommand("alice", "unlock", Unlock(door="entrance", seconds=3), reply))
        return reply.get_nowait()

    done = unlock(("unlocked", "entrance unlocked"))
    assert done["ok"] is True and done["detail"] == "entrance unlocked for 3 s"
    refused = unlock(("refused", "entrance refused: the door is fault"))
    assert refused["ok"] is False and refused["error"] == "door_refused"  # never "success" for a refused grant
    unknown = unlock(("unknown", "entrance: the unlock was sent and not acknowledged"))
    assert unknown["ok"] is None and unknown["error"] == "outcome_unknown"
    said = [json.loads(r["data"]) for r in rig.journal.all("SELECT data FROM visit_events WHERE kind='operator'")]
    assert [e["ok"] for e in said] == [True, False, None]  # each outcome is evidence, as it was


def test_an_operator_command_the_screen_gave_up_on_never_runs_later(rig):
    from bingobox.actions import Unlock

    reply = queue.Queue()
    cmd = OperatorCommand("alice", "unlock", Unlock(door="entrance"), reply)
    assert cmd.ticket.cancel()  # the screen stopped waiting and told the operator "nothing was done"
    rig.core.handle(cmd)
    assert reply.empty() and not rig.doors["entrance"].grants
    assert not cmd.ticket.start()  # and a started command cannot be canceled
    late = OperatorCommand("alice", "unlock", Unlock(door="entrance"), queue.Queue())
    rig.core.handle(late)
    assert not late.ticket.cancel() and len(rig.doors["entrance"].grants) == 1


def test_a_decision_older_than_an_unidentified_exit_charges_but_opens_nothing(rig):
    v = rig.enter("acc_1")
    rig.at(5)
    t_face = rig.clock.t
    rig.reader.read(t_face - 0.5, epc(COLA, 3), n=20)
    rig.at(1)
    rig.door("exit", "door_opened")  # they pressed the exit button before we decided
    rig.at(1)
    rig.core.handle(FaceDecided(Decision(v["id"], 0.4, 0.2, "matched", v["id"]), t_face, {}))
    rig.run()
    assert not rig.doors["exit"].grants
    row = rig.visit_of("acc_1")
    assert row["state"] == "left" and "left_before_decision" in json.loads(row["flags"])
    assert "exit_unidentified" in rig.alarms()


def test_a_stranger_inside_makes_nobody_alone(rig):
    v = rig.enter("acc_1", consent=True)
    rig.core.handle(Enrolled(v["id"], {"ok": False, "reason": "several_faces"}))
    rig.run()
    assert "tailgating" in rig.alarms()
    rig.enter("acc_2")  # came in after the stranger: alone, but not with certainty
    rig.shelf("tag_gone", epc(COLA, 4))
    assert not json.loads(rig.visit_of("acc_2")["basket"]) and rig.core.attribution.pool


def test_the_exit_reader_offline_stops_entry_while_someone_is_inside(rig):
    rig.enter("acc_1")
    rig.reader.up = False
    rig.show("entry", rig.code("acc_2", "entrance"))
    assert rig.visit_of("acc_2") is None
    refused = rig.journal.one("SELECT data FROM visit_events WHERE kind='code_refused'")["data"]
    assert "exit_reader_down" in refused


def test_a_restart_mid_checkout_asks_again_and_never_reopens_a_granted_exit(rig):
    v = rig.enter("acc_1")
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.at(5)
    rig.show("exit", rig.code("acc_1"))  # the reader has not looked yet: at_exit, waiting
    assert rig.visit_of("acc_1")["state"] == "at_exit"
    rig.restart()
    assert rig.visit_of("acc_1")["state"] == "inside"  # checkout interrupted: they identify again
    rig.at(1)
    rig.reader.read(rig.clock.t, epc(COLA, 1), n=30)
    rig.at(0.5)
    rig.show("exit", rig.code("acc_1"))
    rig.send()
    assert len(rig.doors["exit"].grants) == 1
    rig.restart()  # after the grant: not opened again by the restart…
    rig.at(5)
    assert rig.doors["exit"].grants == [] and rig.visit_of("acc_1")["state"] == "charging"
    rig.show("exit", rig.code("acc_1"))  # …but their fresh code opens it, and nothing new is charged
    assert len(rig.doors["exit"].grants) == 1 and len(rig.client.charges) == 1
    rig.at(61)
    assert rig.visit_of("acc_1")["state"] == "left" and v


def test_a_flood_of_bad_codes_is_counted_not_written_row_by_row(rig):
    for i in range(200):  # distinct garbage held to the door camera
        rig.show("entry", f"bbx-garbage-{i}")
    rows = rig.journal.all("SELECT data FROM visit_events WHERE kind='code_refused'")
    assert len(rows) == 30 and rig.core.telemetry.counts["refused"] == 200
    rig.clock.t += 61
    rig.show("entry", "bbx-garbage-late")
    (summary,) = rig.journal.all("SELECT data FROM visit_events WHERE kind='code_refused_suppressed'")
    assert json.loads(summary["data"])["count"] == 170
    assert len(rig.journal.all("SELECT 1 FROM visit_events WHERE kind='code_refused'")) == 31


def test_a_disk_running_low_stops_entry_and_keeps_the_exit(rig):
    v = rig.enter("acc_1")
    rig.core.handle(DiskChecked(free_mb=100, min_free_mb=256))  # (the app looks at the disk every half minute)
    rig.show("entry", rig.code("acc_2", "entrance"))
    refused = json.loads(rig.journal.all("SELECT data FROM visit_events WHERE kind='code_refused'")[-1]["data"])
    assert refused["reason"] == "disk_low" and len(rig.doors["entrance"].grants) == 1
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.at(5)
    rig.reader.read(rig.clock.t - 0.3, epc(COLA, 1), n=20)
    rig.show("exit", rig.code("acc_1"))
    rig.send()
    assert rig.doors["exit"].grants and rig.outbox.visit_state(v["id"])["state"] == "succeeded"


def test_a_shelf_that_could_not_see_makes_nobodys_basket_certain(rig):
    # campaign seed 22079: a shelf reader unplugged while a lone shopper took things, and the exit reader down at
    # the exit: charged only what was seen, with no review (before). Now: flagged for review with an alarm.
    v = rig.enter("acc_1")
    rig.shelf("tag_gone", epc(COLA, 1))  # seen: theirs
    rig.core.handle(DeviceEvent("shelf-1", "disconnected", {}, rig.clock.t))
    rig.at(3)
    rig.core.handle(DeviceEvent("shelf-1", "connected", {}, rig.clock.t))
    rig.at(0.7)
    rig.shelf("tag_gone", epc(COLA, 2))  # reported after the replug: it left at some unknown time, by anyone
    assert set(json.loads(rig.visit_of("acc_1")["basket"])) == {epc(COLA, 1)}
    assert epc(COLA, 2) in rig.core.attribution.pool
    rig.reader.up = False
    rig.show("exit", rig.code("acc_1"))
    rig.send()
    flags = json.loads(rig.visit_of("acc_1")["flags"])
    assert "review" in flags and "exit_unverified" in rig.alarms()
    assert rig.doors["exit"].grants and rig.outbox.visit_state(v["id"])["state"] == "succeeded"


def test_a_withdrawn_face_consent_drops_the_templates_of_the_visit_in_progress(rig):
    from bingobox.core.events import ConsentWithdrawn

    v = rig.enter("acc_1", consent=True)
    rig.core.handle(Enrolled(v["id"], {"ok": True, "templates": 3}))
    assert rig.core.book.get(v["id"]).enrolled and rig.faces.candidates == [v["id"]]
    rig.core.handle(ConsentWithdrawn("acc_1"))
    assert rig.faces.forgotten == [v["id"]] and rig.faces.candidates == []
    assert rig.visit_of("acc_1")["face_consent"] == 0
    assert ("face_consent_withdrawn", {"templates_dropped": True}) in rig.events(v["id"])
    # an enrolment that finishes after the withdrawal is forgotten at once
    w = rig.enter("acc_2", consent=True)
    rig.core.handle(ConsentWithdrawn("acc_2"))
    rig.core.handle(Enrolled(w["id"], {"ok": True, "templates": 2}))
    assert w["id"] in rig.faces.forgotten and w["id"] not in rig.faces.candidates


def test_an_identified_shopper_stays_a_face_candidate_until_they_are_out(rig):
    """Their face is still in front of the exit camera: compared only with the others it could pass the rule for a
    look-alike among them (a crowd demo did that: the look-alike's visit was closed as if they had left)."""
    a, b = rig.enter("acc_a", consent=True), rig.enter("acc_b", consent=True)
    for v in (a, b):
        rig.core.handle(Enrolled(v["id"], {"ok": True, "templates": 3}))
    assert sorted(rig.faces.candidates) == sorted([a["id"], b["id"]])
    rig.at(5)
    rig.reader.read(rig.clock.t - 0.3, n=20)
    rig.core.handle(FaceDecided(Decision(a["id"], 0.4, 0.2, "matched", a["id"]), rig.clock.t - 0.1, {}))
    rig.run()
    rig.send()
    assert rig.visit_of("acc_a")["state"] != "inside" and sorted(rig.faces.candidates) == sorted([a["id"], b["id"]])
    # the same face matched again (it is still a's) changes nothing; b stays inside
    rig.core.handle(FaceDecided(Decision(a["id"], 0.4, 0.2, "matched", a["id"]), rig.clock.t, {}))
    rig.run()
    assert len(rig.doors["exit"].grants) == 1 and rig.visit_of("acc_b")["state"] == "inside"
    rig.door("exit", "door_opened")
    assert rig.visit_of("acc_a")["state"] == "left" and rig.faces.candidates == [b["id"]]
    assert a["id"] in rig.faces.forgotten


def test_the_matcher_is_told_how_many_inside_are_not_candidates(rig):
    """Someone inside who is not a candidate (no consent, a failed enrolment, a companion, a stranger) may be the face
    at the exit: the matcher must know, to be stricter (the open set)."""
    a = rig.enter("acc_a", consent=True)
    rig.core.handle(Enrolled(a["id"], {"ok": True, "templates": 3}))
    assert (rig.faces.candidates, rig.faces.others) == ([a["id"]], 0)  # everyone inside is a candidate
    rig.enter("acc_b", consent=False)
    rig.core.tick()
    assert (rig.faces.candidates, rig.faces.others) == ([a["id"]], 1)
    c = rig.enter("acc_c", consent=True)
    rig.core.handle(Enrolled(c["id"], {"ok": False, "reason": "no_face"}))
    assert (rig.faces.candidates, rig.faces.others) == ([a["id"]], 2)
    rig.core.attribution.stranger_inside(rig.clock.t, "tailgating")
    rig.core.tick()
    assert rig.faces.others == 3
    # b leaves by their code: still in front of the exit camera until they are out
    rig.at(5)
    rig.reader.read(rig.clock.t - 0.3, n=20)
    rig.show("exit", rig.code("acc_b"))
    rig.send()
    rig.run()
    assert rig.visit_of("acc_b")["state"] != "inside"
    rig.core.tick()
    assert rig.faces.others == 3
    rig.door("exit", "door_opened")
    rig.core.tick()
    assert rig.visit_of("acc_b")["state"] == "left" and rig.faces.others == 2


def test_a_tailgater_is_flagged_in_the_same_commit_as_the_enrolment(rig, monkeypatch):
    """The flag and "not alone" are durable with the enrolment record itself, whatever happens after it."""
    v = rig.enter("acc_1", consent=True)

    def crash(*_a, **_k):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(rig.core, "alarm", crash)
    with pytest.raises(RuntimeError):
        rig.core.handle(Enrolled(v["id"], {"ok": False, "reason": "several_faces"}))
    row = rig.visit_of("acc_1")
    assert "tailgating" in json.loads(row["flags"]) and row["alone"] == 0


def test_a_people_counter_says_when_two_came_in_on_one_grant(rig):
    rig.show("entry", rig.code("acc_1", "entrance"))
    rig.at(0.5)
    rig.door("entrance", "door_opened")
    rig.door("entrance", "passage")  # the shopper
    rig.at(1.0)
    rig.door("entrance", "door_closed")
    v = rig.visit_of("acc_1")
    assert "tailgating" not in json.loads(v["flags"]) and "tailgating" not in rig.alarms()
    rig.shelf("tag_gone", epc(COLA, 1))
    assert json.loads(rig.visit_of("acc_1")["basket"])  # alone: the take is theirs
    rig.show("entry", rig.code("acc_2", "entrance"))
    rig.at(0.5)
    rig.door("entrance", "door_opened")
    rig.door("entrance", "passage")
    rig.door("entrance", "passage")  # someone else right behind them
    rig.at(0.5)
    rig.door("entrance", "door_closed")
    rig.door("entrance", "passage")  # a third as the door shut: still this opening's
    rig.at(2.0)
    rig.door("entrance", "passage")  # (long after the close: not this opening's)
    w = rig.visit_of("acc_2")
    assert "tailgating" in json.loads(w["flags"]) and rig.alarms().count("tailgating") == 1
    counted = [d["through"] for k, d in rig.events(w["id"]) if k == "people_counted"]
    assert counted == [2, 3] and len(rig.core.attribution.strangers) == 2
    # a forced opening nobody was granted: the door's own alarm, not a tailgater of the last shopper
    rig.door("entrance", "door_opened")
    rig.door("entrance", "passage")
    rig.door("entrance", "passage")
    assert rig.alarms().count("tailgating") == 1


@pytest.mark.parametrize("settle", [0.0, 0.3])
def test_identified_on_approach_the_window_waits_for_the_goods_to_be_read(tmp_path, settle):
    """The camera sees the shopper as they step into the exit area; their goods reach the reader's field with them.
    Without ``exit_settle_s`` the window ends at the first round after the frame and misses the cola (not charged,
    flagged ``attributed_not_seen``; the next shopper's window could read it); with it the cola is charged."""
    rig = Rig(tmp_path / "store.db")
    rig.cfg.visits = rig.cfg.visits.model_copy(update={"exit_settle_s": settle})
    rig.restart()
    a = rig.enter("acc_a")
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.at(5)
    t_face = rig.clock.t
    rig.reader.read(t_face - 1.0, n=34)  # the empty exit area, rounds of 30 ms up to the frame
    rig.reader.read(t_face + 0.01, n=1)  # the round in progress at the frame: the goods not yet in the field
    rig.core.handle(FaceDecided(Decision(a["id"], 0.4, 0.2, "matched", a["id"]), t_face, {}))
    rig.run()
    rig.reader.read(t_face + 0.05, epc(COLA, 1), n=12)  # read from the next round on
    for ready in rig.reader.waiting:
        ready()
    rig.run()
    rig.send()
    v = rig.visit_of("acc_a")
    if settle:
        assert json.loads(v["basket"]) == {epc(COLA, 1): "shelf:shelf-1"} and v["amount_fen"] == 350
    else:
        assert json.loads(v["basket"]) == {} and "attributed_not_seen" in json.loads(v["flags"])
    rig.journal.close()


def test_a_settle_time_the_inventory_timeout_cannot_cover_is_refused():
    from bingobox.config import VisitsConfig
    with pytest.raises(ValueError, match="exit_settle_s"):
        VisitsConfig.model_validate({"exit_settle_s": 1.2, "exit_inventory_timeout_s": 1.5})
    assert VisitsConfig.model_validate({"exit_settle_s": 0.3}).exit_settle_s == 0.3
