"""The door panels: what each decision makes a door say (the real core with the store-core test rig), the words in
both shipped languages (the catalogs checked against the message ids Babel extracts), and the hub that hands the
messages to the pages."""

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bingobox import i18n
from bingobox.config import PanelsConfig
from bingobox.core.events import FaceDecided
from bingobox.domain import panel, tokens
from bingobox.domain.faces import FaceDecision
from bingobox.domain.hours import Hours, parse_span
from bingobox.i18n.messages import CHROME, MESSAGES
from bingobox.panel_hub import PanelHub
from tests.unit.test_store_core import CHIPS, COLA, KEY, Rig, epc

ADMISSION_REASONS = {"store_not_admitting", "store_closed", "disk_low", "exit_reader_down", "already_inside",
                     "replayed", "unpaid_charges", "store_offline_limit", "clock_behind"}


class Said:
    def __init__(self):
        self.messages = []

    def __call__(self, door, role, msg, at):
        self.messages.append((door, msg))

    def last(self, door):
        return next(m for d, m in reversed(self.messages) if d == door)


@pytest.fixture
def rig(tmp_path, monkeypatch):
    said = Said()
    import bingobox.core.store as store_mod

    real = store_mod.StoreCore.__init__

    def with_panel(self, *a, **kw):
        real(self, *a, **{**kw, "panel_out": said})

    monkeypatch.setattr(store_mod.StoreCore, "__init__", with_panel)
    r = Rig(tmp_path / "store.db", acks=True)
    r.said = said
    r.at(0.1)
    yield r
    r.journal.close()


# the words -----------------------------------------------------------------------------------------------------
def test_every_refusal_the_store_can_give_has_words_for_the_shopper():
    for reason in {r.value for r in tokens.Reject} | ADMISSION_REASONS:
        assert reason in panel.REFUSALS, reason
    keys = set(panel.REFUSALS.values()) | {panel.REFUSED_FALLBACK, "refused.closed_today", "entrance.closed_today"}
    keys |= {panel.goodbye(w, 100).key for w in ("charge_succeeded", "charge_declined", "exit_without_answer",
                                                  "nothing to pay", "fail_open")}
    keys |= {panel.idle(role, st, o, None).key for role in ("entrance", "exit") for o in (True, False)
             for st in ("starting", "ready", "degraded", "lockdown", "emergency", "maintenance")}
    assert keys <= set(MESSAGES), keys - set(MESSAGES)


def test_the_chinese_catalog_translates_every_message_id_babel_extracts_with_the_same_placeholders():
    path = i18n.__file__.replace("__init__.py", "messages.py")
    ids = {m[1] for m in extract_from_file("python", path, keywords={"N_": None})}
    assert ids == {t for pair in MESSAGES.values() for t in pair} | set(CHROME.values())
    with open(path.replace("messages.py", "locale/zh_Hans/LC_MESSAGES/bingobox.po"), "rb") as f:
        po = read_po(f)
    translated = {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}
    assert ids <= set(translated), ids - set(translated)
    for msgid, text in translated.items():
        assert sorted(_placeholders(msgid)) == sorted(_placeholders(text)), msgid


def _placeholders(text):
    import re

    return re.findall(r"%\((\w+)\)s", text)


def test_a_missing_or_broken_translation_shows_the_english_never_a_key(monkeypatch):
    zh = dict(i18n.catalog("zh_Hans"))
    del zh["This code has expired"]
    zh["Opening hours today: %(hours)s."] = "今日营业时间：%(hourz)s。"
    monkeypatch.setattr(i18n, "catalog", lambda lang: zh if lang == "zh_Hans" else {})
    assert i18n.render(panel.refusal("expired"), "zh_Hans")["title"] == "This code has expired"
    assert i18n.render(panel.refusal("store_closed", "07:00-23:00"), "zh_Hans")["detail"] == \
        "Opening hours today: 07:00-23:00."


def test_words_in_both_languages_and_money_from_integer_fen():
    assert i18n.render(panel.refusal("expired"), "en") == {
        "title": "This code has expired", "detail": "Refresh the code in the app and show the new one."}
    assert i18n.render(panel.refusal("expired"), "zh_Hans")["title"] == "入店码已过期"
    bye = i18n.render(panel.goodbye("charge_succeeded", 1230), "zh_Hans")
    assert bye["detail"] == "已扣款 ¥12.30，小票已发送至应用。"
    assert i18n.render(panel.goodbye("exit_without_answer", 5), "en")["detail"].startswith("¥0.05 will be charged")
    assert i18n.money(100_000) == "¥1000.00" and i18n.money(-350) == "-¥3.50"
    with pytest.raises(ValueError, match="no catalog"):
        i18n.catalog("fr")


def test_today_s_hours_as_a_shopper_reads_them():
    h = Hours(ZoneInfo("Asia/Shanghai"), {"mon": parse_span("07:00-23:00"), "tue": None,
                                          "wed": parse_span("22:00-24:00")})
    mon = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a Monday
    assert h.today(mon) == "07:00-23:00"
    assert h.today(datetime(2026, 12, 8, 2, 0, tzinfo=UTC)) is None  # closed all Tuesday
    assert h.today(datetime(2026, 12, 9, 2, 0, tzinfo=UTC)) == "22:00-24:00"
    assert h.today(datetime(2026, 12, 10, 2, 0, tzinfo=UTC)) == "00:00-24:00"  # no span: all day


# the decisions --------------------------------------------------------------------------------------------------
def test_the_entrance_says_welcome_after_the_grant_and_why_a_code_is_refused(rig):
    assert rig.said.last("entrance").key == "entrance.ready" and rig.said.last("exit").key == "exit.ready"
    c = rig.code("acc_1", "entrance")
    rig.show("entry", c)
    assert rig.doors["entrance"].grants and rig.said.last("entrance") == panel.welcome()
    rig.at(2.0)
    rig.show("entry", c)  # the same code again
    assert rig.said.last("entrance").key == "refused.used" and rig.said.last("entrance").cue == panel.Cue.REFUSED
    rig.show("entry", tokens.issue(Ed25519PrivateKey.generate(), "k1", "acc_2", "s1", "entrance", int(rig.clock.t), 60))
    assert rig.said.last("entrance").key == "refused.invalid"  # signed by nobody the store knows
    rig.show("entry", rig.code("acc_3", "exit"))
    assert rig.said.last("entrance").key == "refused.wrong_door"
    old = tokens.issue(KEY, "k1", "acc_4", "s1", "entrance", int(rig.clock.t) - 120, 60)
    rig.show("entry", old)
    assert rig.said.last("entrance").key == "refused.expired"
    rig.at(8.1)  # the refusal's time is up: the door's idle message again
    assert rig.said.last("entrance").key == "entrance.ready"


def test_the_welcome_waits_for_the_board_and_greets_by_the_chosen_first_name(rig):
    rig.show("entry", tokens.issue(KEY, "k1", "acc_1", "s1", "entrance", int(rig.clock.t), 60, name="Zoë"))
    said = rig.said.last("entrance")
    assert said == panel.welcome("Zoë") and said.key == "entrance.welcome_name"
    assert i18n.render(said, "en")["title"] == "Welcome, Zoë!" and i18n.render(said, "zh_Hans")["title"] == \
        "Zoë，欢迎光临！"
    rig.at(6)
    rig.doors["entrance"].answer = ("refused", "entrance refused: the door is fault")  # the board refuses
    rig.show("entry", rig.code("acc_2", "entrance"))
    assert rig.doors["entrance"].grants and rig.said.last("entrance").key == "entrance.door_stuck"
    assert not [m for d, m in rig.said.messages if m.key.startswith("entrance.welcome") and m != said]
    rig.at(9)
    rig.doors["entrance"].answer = ("unknown", "no answer")  # the board never answers: the door may be shut
    n = len(rig.said.messages)
    rig.show("entry", rig.code("acc_3", "entrance"))
    rig.at(2)
    assert rig.said.messages[n:] == [] and rig.core.panels.waiting
    rig.at(4)
    assert not rig.core.panels.waiting and rig.said.messages[n:] == []  # nothing said of that grant, ever


def test_the_idle_message_follows_the_store_and_an_emergency_overrides_everything(rig):
    rig.core.store.lock_down()
    rig.at(0.2)
    assert rig.said.last("entrance").key == "entrance.lockdown" and rig.said.last("exit").key == "exit.ready"
    rig.show("entry", rig.code("acc_1", "entrance"))
    assert rig.said.last("entrance").key == "refused.not_admitting" and not rig.doors["entrance"].grants
    rig.core.store.release()
    rig.at(0.2)
    rig.door("entrance", "fire_alarm")
    rig.at(0.2)
    assert rig.said.last("entrance").key == "emergency" and rig.said.last("exit").key == "emergency"
    assert rig.said.last("exit").cue == panel.Cue.ALERT
    rig.show("entry", rig.code("acc_2", "entrance"))  # nothing replaces the emergency
    assert rig.said.last("entrance").key == "emergency"


def test_the_exit_asks_for_the_code_when_unsure_and_says_goodbye_with_the_amount(rig):
    v = rig.enter("acc_1", consent=True)
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.shelf("tag_gone", epc(CHIPS, 1))
    rig.at(5)
    rig.core.handle(FaceDecided(FaceDecision(None, 0.7, None, "unsure_distance", v["id"]), rig.clock.t, {}))
    assert rig.said.last("exit").key == "exit.show_code" and rig.said.last("exit").cue == panel.Cue.SHOW_CODE
    rig.reader.read(rig.clock.t - 0.3, epc(COLA, 1), epc(CHIPS, 1), n=20)
    rig.core.handle(FaceDecided(FaceDecision(v["id"], 0.4, 0.2, "matched", v["id"]), rig.clock.t - 0.1, {}))
    rig.run()
    assert rig.said.last("exit").key == "exit.checking"
    rig.core.handle(FaceDecided(FaceDecision(None, 0.7, None, "unsure_distance", None), rig.clock.t, {}))
    assert rig.said.last("exit").key == "exit.checking"  # a prompt never covers a checkout in progress
    rig.send()
    assert rig.doors["exit"].grants
    bye = rig.said.last("exit")
    assert bye.key == "exit.goodbye_charged" and bye.params == {"amount_fen": 1000}
    rig.core.handle(FaceDecided(FaceDecision(None, 0.7, None, "nobody_inside", None), rig.clock.t, {}))
    assert rig.said.last("exit") == bye  # nor a goodbye


def test_a_slow_wallet_says_charged_later_and_a_zero_basket_nothing_to_pay(rig):
    rig.client.answer = None
    a = rig.enter("acc_1")
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.at(5)
    rig.reader.read(rig.clock.t - 0.3, epc(COLA, 1), n=20)
    rig.core.handle(FaceDecided(FaceDecision(a["id"], 0.4, 0.2, "matched", a["id"]), rig.clock.t - 0.1, {}))
    rig.run()  # no answer from the wallet (the outbox not stepped)
    rig.at(3.5)
    assert rig.said.last("exit").key == "exit.goodbye_later" and rig.said.last("exit").params == {"amount_fen": 350}
    rig.door("exit", "door_opened")
    rig.at(9)
    b = rig.enter("acc_2")
    rig.at(2)
    rig.reader.read(rig.clock.t - 0.3, n=20)
    rig.core.handle(FaceDecided(FaceDecision(b["id"], 0.4, 0.2, "matched", b["id"]), rig.clock.t - 0.1, {}))
    rig.run()
    assert rig.said.last("exit").key == "exit.goodbye_free"


# the hub ----------------------------------------------------------------------------------------------------------
def test_the_hub_renders_per_door_language_and_never_lets_a_slow_page_hold_the_latest_back():
    hub = PanelHub(PanelsConfig(language="en", languages={"entrance": "zh_Hans"}, max_streams_per_door=2),
                   {"entrance": "entrance", "exit": "exit"})
    hub.publish("exit", "exit", panel.goodbye("charge_succeeded", 350), 0.0)
    st = hub.state("exit")
    assert st["labels"]["en"]["exit"] == "Exit" and st["labels"]["zh_Hans"]["exit"] == "出口"
    assert st["message"]["detail"].startswith("¥3.50 charged")
    assert "account" not in str(st)

    async def scenario():
        q1, q2 = hub.open_stream("entrance"), hub.open_stream("entrance")
        assert q1 is not None and q2 is not None and hub.open_stream("entrance") is None  # a cap per door
        for i in range(20):
            hub.publish("entrance", "entrance", panel.refusal("expired" if i % 2 else "replayed"), 0.0)
        await asyncio.sleep(0.01)
        got = [q1.get_nowait() for _ in range(q1.qsize())]
        hub.close_stream("entrance", q1)
        assert hub.open_stream("entrance") is not None
        return got

    got = asyncio.run(scenario())
    assert len(got) == 8 and got[-1]["seq"] == hub.state("entrance")["message"]["seq"]
    assert got[-1]["title"] == "入店码已过期" and got[-1]["lang"] == "zh_Hans" and got[-1]["cue"] == "refused"
    assert got[-1]["text"]["en"]["title"] == "This code has expired"


def test_the_panel_pages_need_no_login_and_show_only_their_own_door():
    from fastapi.testclient import TestClient

    from bingobox.screen.app import make_app
    from bingobox.screen.auth import Auth

    class Store:
        view: dict = {}
        journal = None

    hub = PanelHub(PanelsConfig(language="en"), {"entrance": "entrance", "exit": "exit"})
    hub.publish("entrance", "entrance", panel.welcome(), 0.0)

    class J:
        def audit(self, *a, **k):
            return 1

    Store.journal = J()
    app = make_app(Store(), Auth({}, 600, 10), view_requires_login=True, panels=hub)
    with TestClient(app) as c:
        page = c.get("/panel/entrance")
        assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
        assert c.get("/api/state").status_code == 401  # the screen wants a login; the panel does not
        st = c.get("/panel/entrance/state").json()
        assert st["role"] == "entrance" and st["message"]["key"] == "entrance.welcome"
        assert c.get("/panel/exit/state").json()["message"] is None
        assert c.get("/panel/nope").status_code == 404 and c.get("/panel/nope/events").status_code == 404
        assert c.get("/panel-assets/panel.js").headers["content-type"].startswith("text/javascript")


def test_one_door_for_entry_and_exit_has_one_panel_that_rests_as_an_entrance(rig):
    rig.cfg.layout.exit_door = "entrance"
    rig.restart()
    rig.at(0.2)
    assert rig.said.last("entrance").key == "entrance.ready"
    rig.core.handle(FaceDecided(FaceDecision(None, 0.7, None, "unsure_distance", None), rig.clock.t, {}))
    assert rig.said.last("entrance").key == "exit.show_code"
    rig.at(6.1)
    assert rig.said.last("entrance").key == "entrance.ready"


def test_the_lamps_mirror_the_panel_green_for_yes_red_for_no_and_for_no_entry_now(rig):
    lit = lambda: rig.doors["entrance"].lit  # noqa: E731
    assert lit() == (False, False) and rig.doors["exit"].lit == (False, False)  # ready: dark
    rig.show("entry", rig.code("acc_1", "entrance"))
    assert lit() == (True, False)
    rig.at(6)
    assert lit() == (False, False)  # the welcome's time is up
    rig.show("entry", rig.code("acc_2", "exit"))  # a code for another door
    assert lit() == (False, True)
    rig.at(9)
    rig.core.store.lock_down()
    rig.at(0.2)
    assert lit() == (False, True) and rig.doors["exit"].lit == (False, False)  # no entry now; leaving is fine
    assert panel.lamps(panel.face_prompt("unsure_distance")) == (False, True)
    assert panel.lamps(panel.goodbye("charge_succeeded", 100)) == (True, False)
    assert panel.lamps(panel.PanelMessage("exit.checking")) == (False, False)
