"""The door panels in a real browser (Debian's chromium through Playwright) against the whole store as processes:
the simulator shows codes to the entry camera and faces to the exit camera; each refusal's words (in Chinese, the
doors' language, and in English) and sound cue; the door stays shut; the welcome; the exit's "show your code" and
its goodbye with the amount; an emergency on every panel."""


import pytest

from bingobox_devkit.harness.demo import Demo, _identities
from tests.helpers import ROOT, wait_until
from tests.integration.accessibility import no_violations
from tests.integration.test_screen_browser import chromium
from tests.integration.test_store import visit_of

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path):
    # (no cabinets: their camera and boards are load these timed panel checks do not need)
    d = Demo(0, seed=6, faults=set(), run_dir=tmp_path / "store", testdata=ROOT / "tests/data", verbose=False,
             overrides={"panels": {"language": "zh_Hans", "languages": {"exit": "en"}}}, cabinets=False)
    d.setup()
    yield d
    d.close()


@pytest.fixture
def browser():
    with chromium("--autoplay-policy=no-user-gesture-required") as b:  # (the cues play without a first touch)
        yield b


def open_panel(browser, url):
    p = browser.new_context(viewport={"width": 800, "height": 480}).new_page()  # a small screen by the door
    p.set_default_timeout(15_000)
    p.goto(url)
    from playwright.sync_api import expect

    expect(p.locator("body")).to_have_attribute("data-connected", "true")
    return p


def phone(browser, store, locale):
    """A phone's browser on the wallet app (its language: ``locale``)."""
    p = browser.new_context(viewport={"width": 390, "height": 844}, locale=locale).new_page()
    p.set_default_timeout(15_000)
    p.goto(store.endpoints["wallet_app"])
    return p


def sign_up_in_chinese(page, name, id_number):
    from playwright.sync_api import expect

    form = page.locator("#signup-form")
    form.get_by_label("姓名", exact=True).fill(name)
    form.get_by_label("身份证号").fill(id_number)
    form.get_by_label("密码").fill("a long passphrase")
    page.get_by_role("button", name="注册").click()
    expect(page.get_by_role("status")).to_have_text("欢迎：您的账户已开通。")


def cues(page):
    return page.evaluate("window.bingoboxPanel.played.slice()")


def shown(page):
    return page.evaluate("window.bingoboxPanel.shown.slice()")


def test_each_refusal_is_told_in_words_and_sound_and_the_exit_asks_and_says_goodbye(store, browser):
    from playwright.sync_api import expect

    zh = open_panel(browser, store.panels["entrance"])
    en = open_panel(browser, store.panels["entrance"] + "?lang=en")
    out = open_panel(browser, store.panels["exit"])
    assert zh.evaluate("document.documentElement.lang") == "zh-Hans"
    expect(zh.get_by_test_id("panel-title")).to_have_text("请出示入店码")
    expect(en.get_by_test_id("panel-title")).to_have_text("Show your entry code")
    expect(out.get_by_test_id("panel-title")).to_have_text("Look at the camera to leave")
    no_violations(zh, "the entrance panel at rest")
    faces = _identities(ROOT / "tests/data")
    s = store.new_shopper(1, face=faces[0])

    def refused(qr, zh_title, en_title):
        before = len(cues(zh))
        store.act("camera.show", camera="door-cam", qr=qr)
        expect(zh.get_by_test_id("panel-title")).to_have_text(zh_title)
        expect(en.get_by_test_id("panel-title")).to_have_text(en_title)
        expect(zh.locator("body")).to_have_attribute("data-cue", "refused")
        wait_until(lambda: len(cues(zh)) > before, 5, "a sound cue")
        assert cues(zh)[-1] == "refused"
        assert store.sim_status("entrance")["lock_engaged"] is True  # the door stays shut
        wait_until(lambda: store.sim_status("entrance")["lamps"] == {"green": False, "red": True}, 3,
                   "the red lamp (for a door without a screen)")
        store.act("camera.clear", camera="door-cam")

    refused("not an entry code", "该码无法使用", "This code cannot be used")
    no_violations(en, "the entrance panel refusing a code")
    refused(store.code(s, "entrance", issued_ago_s=600), "入店码已过期", "This code has expired")
    refused(store.code(s, "exit"), "非本门入店码", "Code for another door")
    other = store.admin_post("/v1/entry-codes", {"account_id": s.account, "store_id": "another-store"})["code"]
    refused(other, "非本店入店码", "Code for another store")

    code = store.code(s, "entrance")
    store.enter(s, code=code)  # walks in (showing their face: enrolled)
    assert {"key": "entrance.welcome", "cue": "accepted", "title": "欢迎光临！",
            "detail": "请进。随意选购，离店时自动结算。"} in shown(zh)
    assert "accepted" in cues(zh)
    refused(code, "入店码已使用", "This code was already used")  # the same code again
    refused(store.code(s, "entrance"), "您已在店内", "You are already inside")

    # at the exit: a face it does not know → "please show your code"; the code → goodbye, with the amount
    store.take(s, 2)
    store.act("camera.show", camera="exit-cam", image=str(faces[1][1]), scale=0.8)
    expect(out.get_by_test_id("panel-title")).to_have_text("Please show your code")
    wait_until(lambda: "show_code" in cues(out), 5, "the show-code cue")
    assert store.sim_status("exit")["lock_engaged"] is True
    store.act("camera.clear", camera="exit-cam")
    store.leave(s, face=False)
    amount = visit_of(store, s.account)["amount_fen"]
    assert amount > 0
    bye = [m for m in shown(out) if m["key"] == "exit.goodbye_charged"]
    assert bye and bye[-1]["detail"] == f"¥{amount // 100}.{amount % 100:02d} charged. The receipt is in your app."
    assert s.account not in str(shown(out)) and s.account not in str(shown(zh))  # nothing personal on a panel
    # a shopper who chose to be greeted by a first name (in the wallet app): the panel says it, once the door opened
    named = store.admin_post("/admin/accounts", {"real_name": "Li Fang", "id_number": "named0001",
                                                 "balance_fen": 10_000, "door_name": "芳"})
    store.act("camera.show", camera="door-cam", qr=store.admin_post(
        "/v1/entry-codes", {"account_id": named["id"], "store_id": store.store_id, "door": "entrance"})["code"])
    expect(zh.get_by_test_id("panel-title")).to_have_text("芳，欢迎光临！")
    expect(en.get_by_test_id("panel-title")).to_have_text("Welcome, 芳!")
    assert store.wait_unlocked("entrance", 5)
    wait_until(lambda: store.sim_status("entrance")["lamps"] == {"green": True, "red": False}, 3, "the green lamp")
    store.act("camera.clear", camera="door-cam")

    # a fire: every panel gives the one instruction, with the alert sound
    store.act("fire", active=True)
    expect(zh.get_by_test_id("panel-title")).to_have_text("紧急情况：请离开门店")
    expect(out.get_by_test_id("panel-title")).to_have_text("Emergency: leave the store")
    wait_until(lambda: "alert" in cues(out), 5, "the alert cue")
    no_violations(out, "the exit panel in an emergency")
    store.act("fire", active=False)
    expect(zh.get_by_test_id("panel-title")).to_have_text("请出示入店码")


def test_the_wallet_app_speaks_the_phone_s_language(store, browser):
    """A phone set to Chinese: the app's words from its catalog (the page's lang follows), the code's accessible
    name too; the English phone sees the message ids; axe finds nothing in either."""
    import re

    from playwright.sync_api import expect

    zh = phone(browser, store, "zh-CN")
    expect(zh.get_by_role("heading", name="注册")).to_be_visible()
    assert zh.evaluate("document.documentElement.lang") == "zh-Hans"
    sign_up_in_chinese(zh, "李芳", "110105199003074599")
    expect(zh.get_by_role("img", name=re.compile("的入店码，有效期至"))).to_be_visible()
    expect(zh.locator("#code-purpose")).to_have_text("请在入口出示")
    assert "%(" not in zh.locator("body").inner_text()
    no_violations(zh, "the wallet app in Chinese")
    en = phone(browser, store, "en-GB")
    expect(en.get_by_role("heading", name="Sign up")).to_be_visible()
    assert en.evaluate("document.documentElement.lang") == "en"


def test_a_card_linked_on_the_phone_at_the_panel_then_tapped_to_come_in(store, browser):
    """Entry without a phone: the wallet app (a Chinese phone) shows a link code; the simulator shows it to the
    entrance camera and taps the card; the panel asks for the card and says it is linked, in both languages, with
    its cues; an unknown card is refused and the door stays shut; the linked card, tapped, opens it."""
    import re

    from playwright.sync_api import expect

    zh = open_panel(browser, store.panels["entrance"])
    en = open_panel(browser, store.panels["entrance"] + "?lang=en")
    app = phone(browser, store, "zh-CN")
    sign_up_in_chinese(app, "王伟", "110105199003074600")
    expect(app.get_by_text("尚未绑定卡片。")).to_be_visible()

    def tap(uid):
        store.act("card.tap", reader="entrance-nfc", uid=uid, hold_s=0.5)

    before = len(cues(zh))
    tap("9EB36E66")  # a card nobody linked
    expect(zh.get_by_test_id("panel-title")).to_have_text("此卡尚未绑定")
    expect(en.get_by_test_id("panel-title")).to_have_text("This card is not linked")
    wait_until(lambda: len(cues(zh)) > before and cues(zh)[-1] == "refused", 5, "the refused cue")
    assert store.sim_status("entrance")["lock_engaged"] is True

    app.get_by_role("button", name="添加卡片").click()
    qr = app.get_by_role("img", name=re.compile("卡片绑定码，有效期至"))
    expect(qr).to_be_visible()
    no_violations(app, "the wallet app's cards, a link code shown")
    store.act("camera.show", camera="door-cam", qr=qr.get_attribute("data-text"))
    expect(zh.get_by_test_id("panel-title")).to_have_text("请刷卡")
    expect(en.get_by_test_id("panel-title")).to_have_text("Now tap your card")
    wait_until(lambda: cues(zh)[-1] == "show_code", 5, "the show-code cue")
    tap("04416D412B0289")
    expect(zh.get_by_test_id("panel-title")).to_have_text("卡片已绑定")
    wait_until(lambda: cues(zh)[-1] == "accepted", 5, "the accepted cue")
    store.act("camera.clear", camera="door-cam")
    assert store.sim_status("entrance")["lock_engaged"] is True  # linking opens nothing
    expect(app.get_by_text(re.compile("绑定的卡片"))).to_be_visible(timeout=20_000)
    wait_until(lambda: store.status()["cards"]["cards"] == 1, 15, "the card in the store's list")
    tap("04416D412B0289")
    expect(en.get_by_test_id("panel-title")).to_have_text("Welcome!")
    assert store.wait_unlocked("entrance", 5)
