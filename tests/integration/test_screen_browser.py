"""The operator status screen in a real browser (Debian's chromium driven by Playwright) against the whole store
as processes: live updates without reloading, login, lockdown refusing entry, restock, clearing an alarm, a refund
reaching the gateway, a visit in the review queue closed with a reason, and the audit log."""

import contextlib
import os
import re
import shutil

import pytest
import requests

from bingobox_devkit.harness.demo import Demo
from tests.helpers import ROOT, wait_until
from tests.integration.accessibility import no_violations
from tests.integration.test_store import ledger, rows, visit_of

pytestmark = pytest.mark.integration
CHROMIUM = os.environ.get("BINGOBOX_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def chromium(*extra_args: str):
    """Debian's chromium through Playwright (``executablePath``: nothing downloaded), closed afterwards."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no chromium at {CHROMIUM}: `make setup` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra_args], headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def store(tmp_path):
    d = Demo(0, seed=5, faults=set(), run_dir=tmp_path / "store", testdata=ROOT / "tests/data", verbose=False)
    d.setup()
    yield d
    d.close()


@pytest.fixture
def page(store, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no chromium at {CHROMIUM}: `make setup` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        p = ctx.new_page()
        p.set_default_timeout(15_000)
        p.goto(store.screen_url)
        yield p
        p.screenshot(path=str(tmp_path / "screen.png"), full_page=True)
        ctx.close()
        browser.close()


def visit_id(store, account: str) -> str:
    return visit_of(store, account)["id"]


def test_the_screen_follows_the_store_live_and_operators_act_on_it(store, page):
    from playwright.sync_api import expect

    expect(page.get_by_test_id("link")).to_have_text("live")
    expect(page.get_by_test_id("store-state")).to_have_text("ready")
    expect(page.locator("button.op").first).to_be_disabled()  # nobody logged in: view only
    expect(page.get_by_test_id("public-note")).to_be_visible()  # and a public view: no audit, ids shortened
    expect(page.locator("#doors tr")).to_have_count(4)  # (the shopper doors and the two cabinets')
    expect(page.locator("#stock")).to_contain_text("shelf-1:")
    no_violations(page, "the status screen, public view")
    stray = "E2FFFFFFFFFFFFFFFFFF0001"  # a tag the catalog does not know, left on a shelf
    store.act("tags.add", reader="shelf-2", epcs=[stray])
    expect(page.get_by_test_id("health-shelf-2")).to_contain_text(f"tags not in the catalog: {stray}")

    # a shopper walks in: the page shows them without a reload
    s = store.new_shopper(1)
    store.enter(s)
    expect(page.get_by_test_id("inside-count")).to_have_text("(1)")
    expect(page.locator("#visits")).to_contain_text(s.account[:4])
    store.take(s, 2)
    store.leave(s)
    expect(page.get_by_test_id("inside-count")).to_have_text("(0)")
    expect(page.locator("#charges tr").first).to_contain_text("succeeded")
    expect(page.get_by_test_id("payments")).to_have_text("wallet gateway up; no charges pending")
    expect(page.get_by_test_id("stages")).to_contain_text("exit: answered→granted")  # where the time went
    expect(page.get_by_test_id("stages")).to_contain_text("entry: captured→decoded")
    page.locator("#charges tr").first.locator("button.link-button").click()
    expect(page.get_by_test_id("message")).to_contain_text("log in to see")  # evidence is for operators

    # a wrong password is refused and audited; the right one enables the actions
    page.fill("#login-name", "operator")
    page.fill("#login-password", "not the password")
    page.click("#login button")
    expect(page.get_by_test_id("message")).to_contain_text("wrong password")
    page.fill("#login-password", store.operator[1])
    page.click("#login button")
    expect(page.locator("#me-name")).to_have_text("operator")
    no_violations(page, "the status screen, an operator logged in")
    expect(page.locator("button.op").first).to_be_enabled()
    expect(page.get_by_test_id("public-note")).to_be_hidden()  # the stream reconnected as the operator
    expect(page.locator("#charges tr").first).to_contain_text(s.account)  # full ids, for operators

    # the visit's evidence record: code → door cycle → items → charge → receipt
    page.locator("#charges tr").first.locator("button.link-button").click()
    expect(page.locator("#visit-id")).to_have_text(s.visit or visit_id(store, s.account))
    steps = page.locator("#visit-events tr td:nth-child(2)").all_inner_texts()
    for step in ("code_accepted", "door_cycle", "tag_taken", "basket", "receipt"):
        assert step in steps, steps
    page.click("#visit-close")

    # lockdown: the next code does not open the door
    page.click("button[data-action=lock_down]")
    expect(page.get_by_test_id("store-state")).to_have_text("lockdown")
    late = store.new_shopper(2)
    store.act("camera.show", camera="door-cam", qr=store.code(late, "entrance"))
    wait_until(lambda: any(r["data"].find("store_not_admitting") >= 0 for r in
                           rows(store, "SELECT data FROM visit_events WHERE kind='code_refused'")), 10, "refused")
    assert store.sim_status("entrance")["lock_engaged"] is True
    store.act("camera.clear", camera="door-cam")
    page.click("button[data-action=release]")
    expect(page.get_by_test_id("store-state")).to_have_text("ready")

    # restock: tags moved during maintenance are nobody's basket
    page.click("button[data-action=restock]")
    expect(page.get_by_test_id("store-state")).to_have_text("maintenance")
    store.act("tags.remove", reader="shelf-2", epcs=[store.shelves["shelf-2"].pop()])
    wait_until(lambda: rows(store, "SELECT 1 FROM visit_events WHERE kind='restock'"), 10, "restock recorded")
    page.click("button[data-action=release]")
    expect(page.get_by_test_id("store-state")).to_have_text("ready")

    # a forced door raises an alarm; the operator clears it
    store.act("door.force", door="exit")
    expect(page.locator("#alarms tr")).to_have_count(1)
    expect(page.locator("#alarms")).to_contain_text("door forced open")  # (words; the identifier its title)
    expect(page.locator("#alarms td[title=door_forced]")).to_have_count(1)
    store.act("door.close", door="exit")
    page.locator("#alarms button").click()
    expect(page.locator("#alarms tr")).to_have_count(0)

    # a refund of part of the charge reaches the gateway
    (charge,) = [c for c in ledger(store, s.account) if c["status"] == "succeeded"]
    answers = ["100", "damaged item"]
    page.on("dialog", lambda d: d.accept(answers.pop(0)))
    page.locator("#charges tr").first.locator("button.row").click()
    expect(page.get_by_test_id("message")).to_contain_text("refunded 100 fen")
    (after,) = [c for c in ledger(store, s.account) if c["id"] == charge["id"]]
    assert after["refunded_fen"] == 100

    # someone with no open visit leaves by code with goods: a recovery visit, charged and listed for review
    r = store.new_shopper(3)
    store.take(r, 1)
    store.leave(r, face=False)
    expect(page.get_by_test_id("review")).to_contain_text("exits with no open visit (recovered)")
    expect(page.get_by_test_id("review")).to_contain_text(r.account[:4])  # (shortened: the full id is evidence)
    expect(page.get_by_test_id("review-rate")).to_contain_text("needed a person")
    expect(page.locator("#review-count")).to_have_text("(1 waiting)")
    # the operator looks at the evidence and closes it with a reason the shopper reads on their receipt
    answers.append("the exit reader saw what was charged: nothing more")
    page.get_by_role("button", name=re.compile("^Close visit")).click()
    expect(page.get_by_test_id("message")).to_contain_text("closed without a charge")
    expect(page.locator("#review-count")).to_have_text("(0 waiting)")
    (decided,) = rows(store, "SELECT decision, operator, causes FROM reviews")
    assert (decided["decision"], decided["operator"]) == ("close", "operator") and "recovery" in decided["causes"]

    # every attempt is in the audit log, with who did it
    audit = rows(store, "SELECT operator, action, outcome FROM audit ORDER BY id")
    assert ("operator", "login", "bad_credentials") in [tuple(a.values()) for a in audit]
    done = [(a["action"], a["outcome"]) for a in audit if a["operator"] == "operator" and a["action"] != "login"]
    assert done == [("lock_down", "ok"), ("release", "ok"), ("restock", "ok"), ("release", "ok"),
                    ("clear_alarm", "ok"), ("refund", "ok"), ("decide_review", "ok")]
    expect(page.locator("#audit")).to_contain_text("refund")
    expect(page.locator("#counts")).to_contain_text("shoppers let in")  # counters in words, not identifiers

    # the same screen in Chinese: the counters' words from the shared catalog, the identifiers kept in /metrics
    page.goto(store.screen_url + "?lang=zh_Hans")
    expect(page.locator("#counts")).to_contain_text("已放行进店人数")
    assert page.evaluate("document.documentElement.lang") == "zh-Hans"
    metrics = requests.get(store.screen_url + "metrics", timeout=5).text
    assert 'bingobox_events_total{event="entries"}' in metrics and "已放行" not in metrics


def test_actions_the_store_cannot_take_are_refused_with_the_reason(store):
    import requests

    http = requests.Session()
    url = store.screen_url.rstrip("/")
    me = http.post(f"{url}/api/login", json={"name": "operator", "password": store.operator[1]}, timeout=10)
    h = {"X-CSRF-Token": me.json()["csrf"]}

    def act(name, body=None):
        r = http.post(f"{url}/api/actions/{name}", json=body or {}, headers=h, timeout=10)
        return r.status_code, r.json()

    doors = "entrance, exit, fridge-door, bar-door"  # (the shopper doors and the cabinets')
    assert act("unlock", {"door": "back-door"}) == (409, {"ok": False, "error": "no_such_door", "state": "ready",
                                                          "outcome": "failed",
                                                          "detail": f"no door 'back-door' (doors: {doors})"})
    assert act("release")[1]["error"] == "not_now"  # nothing to release from
    assert act("clear_alarm", {"alarm_id": 999})[1]["error"] == "no_such_alarm"
    code, body = act("refund", {"charge_id": "ch_nope", "amount_fen": 5, "reason": "test"})
    assert code == 422 and "request_id" in body["error"]["message"]  # a refund says which request it is
    code, body = act("refund", {"charge_id": "ch_nope", "amount_fen": 5, "reason": "test", "request_id": "r-0001-abcd"})
    assert code == 409 and "charge_not_found" in body["detail"]
    s = store.new_shopper(3)
    store.enter(s)
    assert act("restock")[1]["error"] == "shoppers_inside"  # their shelf changes would go unbilled
    store.leave(s)
    assert act("unlock", {"door": "entrance", "seconds": 2}) == (200, {"ok": True, "state": "ready", "outcome": "ok",
                                                                     "detail": "entrance unlocked for 2 s"})
    wait_until(lambda: store.sim_status("entrance")["lock_engaged"] is False, 5, "entrance unlocked")
    wait_until(lambda: store.sim_status("entrance")["lock_engaged"] is True, 8, "entrance relocked")
    store.act("fire", active=True)
    wait_until(lambda: http.get(f"{url}/api/state", timeout=10).json()["state"] == "emergency", 10, "emergency")
    assert act("lock_down")[1] == {"ok": False, "error": "not_now", "state": "emergency", "outcome": "failed",
                                   "detail": "cannot lock down while the store is emergency"}
    store.act("fire", active=False)
    outcomes = [(r["action"], r["outcome"]) for r in rows(store, "SELECT action, outcome FROM audit ORDER BY id")]
    assert outcomes == [("login", "ok"), ("unlock", "failed"), ("release", "failed"), ("clear_alarm", "failed"),
                        ("refund", "rejected"), ("refund", "failed"), ("restock", "failed"), ("unlock", "ok"),
                        ("lock_down", "failed")]


def test_a_screen_that_requires_a_login_shows_nothing_before_it(store, page):
    from playwright.sync_api import expect

    cfg = store.dir / "store.toml"
    cfg.write_text(cfg.read_text().replace("[screen]\n", "[screen]\nview_requires_login = true\n"))
    store.procs["controller"].stop()
    store.start_controller()
    page.reload()
    expect(page.get_by_test_id("link")).to_have_text("log in to see the store")
    expect(page.get_by_test_id("store-state")).to_have_text("…")
    page.fill("#login-name", "operator")
    page.fill("#login-password", store.operator[1])
    page.click("#login button")
    expect(page.get_by_test_id("link")).to_have_text("live")
    expect(page.get_by_test_id("store-state")).to_have_text("ready")
