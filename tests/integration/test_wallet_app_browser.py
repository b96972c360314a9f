"""The shopper's side in a real browser (Debian's chromium, phone-sized, driven by Playwright by the page's labels)
against the whole store as processes started by `bingobox demo --shoppers 0 --keep`: sign up, top up, consent to
face billing, the entry code's QR *image taken from the page* shown to the simulated door camera (`bingobox sim-ctl
camera.show image=…`) → the entrance unlocks; goods taken; out by face; the receipt with how the store decided; a
disputed item accepted by the operator on the status screen; the refund in the app; the stores' records asked for,
downloaded, and the account deleted."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bingobox_devkit.harness.demo import _identities
from tests.helpers import ROOT, wait_until
from tests.integration.accessibility import keyboard_reaches_every_control, no_violations
from tests.integration.test_screen_browser import chromium

pytestmark = pytest.mark.integration
PHONE = {"width": 390, "height": 844}
PASSWORD = "operator-pass-123"


class RunningStore:
    """`bingobox demo --shoppers 0 --keep` as a process; its endpoints from RUN_DIR/endpoints.json."""

    def __init__(self, run_dir) -> None:
        self.dir = run_dir
        self.log = open(run_dir.parent / "demo.log", "w")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bingobox", "demo", "--shoppers", "0", "--keep", "--seed", "7", "--run-dir",
             str(run_dir)], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "BINGOBOX_OPERATOR_PASSWORD": PASSWORD}, start_new_session=True)
        deadline = time.monotonic() + 180
        while "the store keeps running" not in (run_dir.parent / "demo.log").read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the demo store did not start:\n" + (run_dir.parent / "demo.log").read_text())
            time.sleep(0.2)
        self.ep = json.loads((run_dir / "endpoints.json").read_text())

    def sim_ctl(self, action: str, **params) -> None:
        subprocess.run([sys.executable, "-m", "bingobox", "sim-ctl", "--run-dir", str(self.dir / "sim"), action,
                        *[f"{k}={v}" for k, v in params.items()]], check=True, cwd=ROOT, capture_output=True)

    def act(self, action: str, **params) -> None:
        """The same as sim-ctl, without starting a Python process (for steps that race a door's unlock window)."""
        token = json.loads((self.dir / "sim" / "sim.json").read_text())["token"]
        r = requests.post(self.ep["sim_control"] + "/action", json={"action": action, **params},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code == 200, r.text

    def device(self, name: str) -> dict:
        token = json.loads((self.dir / "sim" / "sim.json").read_text())["token"]
        return requests.get(self.ep["sim_control"] + "/status", headers={"Authorization": f"Bearer {token}"},
                            timeout=5).json()["devices"][name]

    def unlocked(self, door: str) -> bool:
        return not self.device(door)["lock_engaged"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@pytest.fixture
def store(tmp_path):
    s = RunningStore(tmp_path / "store")
    yield s
    s.stop()


@pytest.fixture
def browser():
    with chromium() as b:
        yield b


def test_a_shopper_signs_up_shops_disputes_and_deletes_their_data(store, browser, tmp_path):
    from playwright.sync_api import expect

    ep = store.ep
    assert set(ep) >= {"gateway", "wallet_app", "screen", "sim_control"}
    face = _identities(ROOT / "tests/data")[0]
    phone = browser.new_context(viewport=PHONE, accept_downloads=True)
    app = phone.new_page()
    app.set_default_timeout(20_000)
    app.goto(ep["wallet_app"])
    no_violations(app, "the wallet app's sign-up")
    keyboard_reaches_every_control(app, "the wallet app's sign-up")

    # sign up, top up, consent to face billing (off by default)
    signup = app.locator("#signup-form")  # (the log-in form, hidden, has the same labels)
    signup.get_by_label("Name", exact=True).fill("Wang Fang")
    signup.get_by_label("ID number").fill("110105199003074512")
    signup.get_by_label("Password").fill("a long passphrase")
    app.get_by_role("button", name="Sign up").click()
    expect(app.get_by_role("heading", name=re.compile("Balance"))).to_contain_text("0.00 CNY")
    app.get_by_label("Amount (CNY)").fill("200")
    app.get_by_role("button", name="Top up").click()
    expect(app.get_by_role("heading", name=re.compile("Balance"))).to_contain_text("200.00 CNY")
    consent = app.get_by_role("checkbox", name=re.compile("Face billing"))
    expect(consent).not_to_be_checked()
    expect(app.locator("#face-text")).to_contain_text("memory")  # what is kept, where, for how long
    consent.check()
    expect(app.get_by_role("status")).to_contain_text("Face billing is on")
    app.get_by_label("First name on the door's screen").fill("Fang")  # greeted by name (off by default)
    app.get_by_role("button", name="Save").click()
    expect(app.get_by_role("status")).to_contain_text("greet you as Fang")
    no_violations(app, "the wallet app with the entry code")
    keyboard_reaches_every_control(app, "the wallet app with the entry code")

    # the entry code's image, as the page shows it, to the door camera
    code = app.get_by_role("img", name=re.compile("entry code"))
    expect(code).to_have_attribute("data-face-billing", "on")  # the code issued after the consent is on screen
    expect(app.locator("#countdown")).to_contain_text("renews in")
    shot = os.path.join(ep["images_dir"], "entry-code.png")
    code.screenshot(path=shot)
    store.sim_ctl("camera.show", camera="door-cam", image=shot)
    wait_until(lambda: store.unlocked("entrance"), 10, "the entrance unlocked for the code on the phone")
    panel = ep["panels"]["entrance"] + "/state"
    wait_until(lambda: (requests.get(panel, timeout=5).json()["message"] or {}).get("text", {}).get("en", {})
               .get("title") == "Welcome, Fang!", 5, "the entrance panel greeting the shopper by the name she chose")
    for photo in face[0]:  # walking in, the camera sees their face (the templates of a consenting shopper)
        store.act("camera.show", camera="door-cam", image=str(photo), scale=0.8)
        time.sleep(0.4)
    store.act("door.open", door="entrance")  # (within the door's 4 s unlock window, however busy the box)
    time.sleep(0.8)
    store.act("door.close", door="entrance")
    store.act("camera.clear", camera="door-cam")
    expect(app.locator("#visit-now")).to_contain_text("You are in")
    expect(app.get_by_role("status")).to_contain_text("Code used")  # ... and a fresh code replaced it
    expect(app.get_by_role("img", name=re.compile("entry code"))).to_be_visible()

    # two cans off shelf-1, out through the exit area, recognised by face
    tags = [t for t in json.loads(subprocess.run(
        [sys.executable, "-m", "bingobox", "sim-ctl", "--run-dir", str(store.dir / "sim"), "status"],
        capture_output=True, check=True, cwd=ROOT).stdout)["devices"]["shelf-1"]["tags"] if t.startswith("E2")]
    taken = tags[:2]
    store.sim_ctl("tags.remove", reader="shelf-1", epcs=json.dumps(taken))
    basket = app.locator("#basket")  # the live basket: what the store attributes to her now
    expect(basket.locator("li")).to_have_text([re.compile(r"^2 × .+ — \d+\.\d\d CNY$")])
    expect(basket).to_have_attribute("data-certain", "yes")  # alone inside, every shelf seeing
    expect(basket).to_contain_text("So far:")
    no_violations(app, "the wallet app with a live basket")
    store.sim_ctl("tags.add", reader="exit-area", epcs=json.dumps(taken))
    time.sleep(0.5)
    store.sim_ctl("camera.show", camera="exit-cam", image=face[1], scale=0.8)
    wait_until(lambda: store.unlocked("exit"), 15, "the exit opened for the recognised face")
    store.act("door.open", door="exit")
    time.sleep(0.8)
    store.act("door.close", door="exit")
    store.sim_ctl("camera.clear", camera="exit-cam")
    store.sim_ctl("tags.remove", reader="exit-area", epcs=json.dumps(taken))

    # the receipt, within seconds, with how the store decided
    receipt = app.locator("article.receipt").first
    expect(receipt.locator("h3")).to_contain_text("left", timeout=15_000)
    expect(receipt.locator("p.charge")).to_contain_text("succeeded")
    expect(receipt).to_contain_text("recognised by face (distance")
    expect(receipt).to_contain_text("shelf-1 ×")  # which reader saw the items taken
    expect(receipt).to_contain_text("The exit reader read 2 tag(s)")
    line_amount = receipt.locator("tr").nth(1).locator("td").nth(2).inner_text()  # the disputed line's amount
    expect(receipt.locator("p.total")).to_have_text(f"Total {line_amount}")  # (two cans of one product: one line)

    # dispute one line
    receipt.get_by_label(re.compile(r"^\s*Dispute ")).first.check()
    receipt.get_by_label("What is wrong").fill("I put one back before leaving")
    receipt.get_by_role("button", name="Send dispute").click()
    expect(receipt.locator("p.dispute")).to_contain_text(re.compile(r"Dispute dp_\w+: open"))
    no_violations(app, "the wallet app with a receipt and a dispute")

    # the operator sees it on the status screen, with the evidence, and accepts it
    desk = browser.new_context(viewport={"width": 1400, "height": 1000})
    screen = desk.new_page()
    screen.set_default_timeout(20_000)
    screen.goto(ep["screen"])
    screen.fill("#login-name", "operator")
    screen.fill("#login-password", PASSWORD)
    screen.get_by_role("button", name="Log in").click()
    disputes = screen.get_by_test_id("disputes")
    expect(disputes).to_contain_text("I put one back", timeout=15_000)
    disputes.locator("button.link-button").first.click()  # the visit's evidence record beside it
    expect(screen.locator("#visit-events")).to_contain_text("identified")
    screen.once("dialog", lambda d: d.accept("the exit reader saw both, but the video shows one put back"))
    disputes.get_by_role("button", name=re.compile("^Accept dispute")).click()
    expect(screen.get_by_test_id("message")).to_contain_text("accepted: refunded")
    expect(screen.locator("#audit")).to_contain_text("resolve_dispute")

    # the shopper sees the outcome and the refund
    expect(receipt.locator("p.dispute")).to_contain_text("accepted by the store", timeout=15_000)
    expect(receipt.locator("p.charge")).to_contain_text(f"refunded {line_amount}")  # the line, once

    # my data: the stores' records, and a download
    app.get_by_role("button", name="Ask the stores for their records").click()
    expect(app.locator("#requests")).to_contain_text("export at demo-store: answered", timeout=20_000)
    with app.expect_download() as dl:
        app.get_by_role("link", name="Download my data (JSON)").click()
    data = json.loads(Path(dl.value.path()).read_text())
    assert data["account"]["real_name"] == "Wang Fang"
    assert "110105199003074512" not in json.dumps(data)  # never kept in clear
    assert data["visits"] and data["disputes"][0]["state"] == "accepted"
    store_answer = next(q for q in data["store_requests"] if q["kind"] == "export")["answer"]
    assert store_answer["visits"][0]["events"], "the store's evidence record is in the export"
    assert "face_templates" in store_answer

    # deletion: personal data gone, amounts kept, the store asked to erase its evidence
    delete = app.locator("#delete-form")
    delete.get_by_label("Password").fill("a long passphrase")
    delete.get_by_label('Type "delete my account"').fill("delete my account")
    app.get_by_role("button", name="Delete my account").click()
    expect(app.get_by_role("status")).to_contain_text("Your account is deleted")
    expect(app.get_by_role("button", name="Sign up")).to_be_visible()
    app.get_by_role("button", name="I have an account").click()
    login = app.locator("#login-form")
    login.get_by_label("ID number").fill("110105199003074512")
    login.get_by_label("Password").fill("a long passphrase")
    app.get_by_role("button", name="Log in").click()
    expect(app.get_by_role("status")).to_contain_text("unknown ID number or wrong password")
    phone.close()
    desk.close()
