"""The shopper's side of the wallet, kept in step from one thread of the store box (it only calls out):

- every visit's record goes to the wallet when it changes (``PUT /v1/visits/{id}``), so the shopper's app shows
  "you are in" at once and the receipt, with how the store decided, seconds after they leave. Durable: what was sent
  is marked in the journal, so a restart or a gateway outage only delays reports, in order;
- the live basket of each shopper inside (``PUT /v1/visits/{id}/basket``) as it changes, latest first and not
  durable (a view, not a record: the receipt is the record). A change wakes the thread at once;
- the signed list of bound NFC cards (``GET /v1/cards``) every ``cards_every_s``: verified against the pinned keys,
  kept in a file beside the journal (a restart with the gateway down still admits cards until the list expires), and
  handed to the store (``on_card_list``); a card to bind (``pair``: a pairing code shown, a card tapped) goes out at
  once (``POST /v1/cards/pair``) and its answer comes back through ``on_paired``;
- the inbox (``GET /v1/inbox``) every few seconds: open disputes (kept in the journal for the status screen), the
  shoppers' data requests (answered from the journal: an export, or an erasure once nothing of theirs is open), and
  face consents withdrawn (their visit in progress forgets their face now).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..domain import cards
from ..domain.catalog import Catalog
from ..journal import Journal
from ..worker import Worker, backoff_s
from . import records
from .client import WalletClient

log = logging.getLogger(__name__)
SINCE_MARGIN_S = 60.0
REFUSED_FOR_GOOD = (400, 403, 404, 409, 410, 413, 422)  # (403/409: codes not of its visit)
MAX_BASKETS_WAITING = 500
BASKET_TRIES = 20  # rounds a live basket waits for its visit's first report to reach the gateway


class ShopperSync:
    def __init__(self, journal: Journal, client: WalletClient, catalog: Catalog,
                 on_consent_withdrawn: Callable[[str], None], interval_s: float = 0.5,
                 inbox_every_s: float = 3.0, keys: Callable[[], dict[str, Ed25519PublicKey]] | None = None,
                 on_card_list: Callable[[cards.CardList], None] | None = None,
                 on_paired: Callable[[bool, str | None], None] | None = None, cards_file: Path | None = None,
                 cards_every_s: float = 60.0) -> None:
        self.journal, self.client, self.catalog = journal, client, catalog
        self.on_consent_withdrawn = on_consent_withdrawn
        self.keys, self.on_card_list, self.on_paired = keys, on_card_list, on_paired
        self.cards_file, self.cards_every_s = cards_file, cards_every_s
        self._next_cards = 0.0
        self._pairings: list[tuple[str, str]] = []  # (code, card hash) to send
        self.interval_s, self.inbox_every_s = interval_s, inbox_every_s
        self.since = 0.0  # reports: nothing changed before this is unsent (the first pass looks at every visit)
        self.counts = {"reports": 0, "report_errors": 0, "inbox_polls": 0, "inbox_errors": 0, "exports": 0,
                       "erasures": 0, "consent_withdrawals": 0, "baskets": 0, "basket_errors": 0, "card_lists": 0,
                       "card_list_errors": 0, "pairings": 0}
        self.last_ok: float | None = None
        self._withdrawn_seen: set[str] = set()
        self._next_inbox = 0.0
        self._failures = 0
        self._reader: sqlite3.Connection | None = None
        self._worker = Worker("shopper-sync", self._run, join_s=5)
        self._stop = self._worker.stopping
        self._wake = threading.Event()  # a live basket changed (or stop): send now
        self._lock = threading.Lock()
        self._baskets: dict[str, tuple[str, dict[str, Any], int]] = {}  # visit → (account, basket, tries) to send

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._worker.stop()

    def live(self, visit_id: str, account: str, basket: dict[str, Any]) -> None:
        """A shopper's live basket changed (``ports.BasketOut``: the loop's thread; never blocks): sent next,
        replacing any not yet sent for that visit."""
        with self._lock:
            self._baskets[visit_id] = (account, basket, 0)
            while len(self._baskets) > MAX_BASKETS_WAITING:  # (the gateway down for long: the oldest give way)
                del self._baskets[next(iter(self._baskets))]
        self._wake.set()

    def pair(self, code: str, card: str) -> None:
        """Bind ``card`` to the account that asked for ``code`` (``ports.CardOut``: the loop's thread; never
        blocks): sent next; the answer comes back through ``on_paired``."""
        with self._lock:
            self._pairings = [*self._pairings[-3:], (code, card)]
        self._wake.set()

    def load_cards(self) -> cards.CardList | None:
        """The card list kept beside the journal, if it is still current (at start: before the gateway answers)."""
        if self.cards_file is None or self.keys is None or not self.cards_file.exists():
            return None
        try:
            return cards.verify(self.cards_file.read_text(), self.keys(), self.client.store_id, time.time())
        except (OSError, UnicodeDecodeError, cards.ListRejected) as e:
            log.info("the card list kept in %s is not used: %s", self.cards_file, e)
            return None

    def status(self) -> dict[str, Any]:
        """Counts only (read on the control loop's thread: no SQL here; the screen reads the disputes itself)."""
        return {**self.counts, "last_ok": self.last_ok}

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    ok = self.step(time.monotonic())
                except Exception as e:  # a disk fault: next time (never a tight loop)
                    log.error("shopper sync: %s", e)
                    ok = False
                self._failures = 0 if ok else min(self._failures + 1, 6)
                self._wake.wait(self.interval_s if ok else backoff_s(self._failures + 1, self.interval_s,
                                                                      self.interval_s * 64))  # down: 0.5 s → 32 s
                self._wake.clear()
        finally:
            if self._reader is not None:
                self._reader.close()

    def step(self, now: float) -> bool:
        """One round: due reports, the live baskets, then the inbox if its time has come. False when the gateway
        did not answer."""
        ok = self.push_reports() and self.push_baskets() and self.push_pairings()
        if ok and self.on_card_list is not None and now >= self._next_cards:
            ok = self.fetch_cards()
            if ok:
                self._next_cards = now + self.cards_every_s
        if ok and now >= self._next_inbox:
            self._next_inbox = now + self.inbox_every_s
            ok = self.poll_inbox()
        if ok:
            self.last_ok = time.time()
        return ok

    # reports ------------------------------------------------------------------------------------
    def push_reports(self) -> bool:
        due = records.due_reports(self.journal, self.since)
        for visit_id, updated_at in due:
            body = records.report(self.journal, self.catalog, visit_id)
            if body is None:
                continue
            status, answer, _ = self.client.call("PUT", f"/v1/visits/{visit_id}", body)
            if status == 200:
                records.mark_reported(self.journal, visit_id, body["updated_at"])
                self.counts["reports"] += 1
            elif status in REFUSED_FOR_GOOD:
                # an erased account (410) or a record the gateway will never take: not sent again (a 401 — a wrong
                # clock, a rotated secret — or a 5xx is retried: the record waits, in order)
                log.warning("visit report %s refused: HTTP %s %s", visit_id, status, (answer or {}).get("error"))
                records.mark_reported(self.journal, visit_id, body["updated_at"], gone=True)
                self.counts["report_errors"] += 1
            else:
                self.since = updated_at  # in order: this one first, next time
                self.counts["report_errors"] += 1
                return False
        if due:  # sent: later rounds look from there on (less a margin for a clock set back a little)
            self.since = max(self.since, due[-1][1] - SINCE_MARGIN_S)
        return True

    # live baskets -------------------------------------------------------------------------------
    def push_baskets(self) -> bool:
        """Send each waiting live basket (after the reports: the gateway knows a visit from its report). A visit the
        gateway does not know yet waits for the next round (at most ``BASKET_TRIES``); a refusal drops it."""
        with self._lock:
            waiting = list(self._baskets.items())
        for visit_id, (account, basket, tries) in waiting:
            status, answer, _ = self.client.call("PUT", f"/v1/visits/{visit_id}/basket",
                                                 {"account_id": account, **basket})
            if status is None or status >= 500 or status in (401, 429):
                self.counts["basket_errors"] += 1
                return False
            with self._lock:
                if self._baskets.get(visit_id, (None, None))[1] is basket:  # (not replaced meanwhile)
                    if status == 404 and tries + 1 < BASKET_TRIES:
                        self._baskets[visit_id] = (account, basket, tries + 1)
                    else:
                        del self._baskets[visit_id]
            if status == 200:
                self.counts["baskets"] += 1
            elif status != 404:
                log.warning("live basket %s refused: HTTP %s %s", visit_id, status, (answer or {}).get("error"))
                self.counts["basket_errors"] += 1
        return True

    # cards --------------------------------------------------------------------------------------
    def push_pairings(self) -> bool:
        with self._lock:
            waiting, self._pairings = self._pairings, []
        for code, card in waiting:
            status, answer, _ = self.client.call("POST", "/v1/cards/pair", {"code": code, "card": card})
            self.counts["pairings"] += 1
            if status == 200:
                self._next_cards = 0.0  # the new card is in the next list: fetch it now
                self._paired(True, None)
            elif status is None or status >= 500:
                self._paired(False, "unavailable")  # (not retried: the shopper is at the door, and told)
                return False
            else:
                self._paired(False, str((answer or {}).get("error") or status))
        return True

    def _paired(self, ok: bool, reason: str | None) -> None:
        if self.on_paired is not None:
            self.on_paired(ok, reason)

    def fetch_cards(self) -> bool:
        """The gateway's current card list: verified, kept, handed to the store. False when the gateway did not
        answer (a list it answered with that does not verify is logged and counted, and the store keeps its own)."""
        status, body, _ = self.client.call("GET", "/v1/cards")
        if status is None or status >= 500:
            self.counts["card_list_errors"] += 1
            return False
        text = (body or {}).get("list")
        try:
            if status != 200 or not isinstance(text, str) or self.keys is None:
                raise cards.ListRejected(f"HTTP {status}: {(body or {}).get('error') or 'no list'}")
            got = cards.verify(text, self.keys(), self.client.store_id, time.time())
        except cards.ListRejected as e:
            log.warning("card list refused: %s", e)
            self.counts["card_list_errors"] += 1
            return True
        if self.cards_file is not None:
            tmp = self.cards_file.with_suffix(".tmp")
            try:
                tmp.write_text(text)
                os.replace(tmp, self.cards_file)
            except OSError as e:  # (kept in memory: only a restart while the gateway is down loses it)
                log.warning("card list not kept: %s", e)
        self.counts["card_lists"] += 1
        assert self.on_card_list is not None
        self.on_card_list(got)
        return True

    # the inbox ----------------------------------------------------------------------------------
    def poll_inbox(self) -> bool:
        status, box, err = self.client.call("GET", "/v1/inbox")
        self.counts["inbox_polls"] += 1
        if status != 200 or box is None:
            self.counts["inbox_errors"] += 1
            log.debug("inbox: %s", err or status)
            return False
        disputes = box.get("disputes") or []
        records.sync_disputes(self.journal, disputes, complete=len(disputes) >= box.get("disputes_open", 0))
        for req in box.get("data_requests") or []:
            self._answer(req)
        withdrawn = set(box.get("consent_withdrawn") or [])
        for account in withdrawn - self._withdrawn_seen:
            self.counts["consent_withdrawals"] += 1
            self.on_consent_withdrawn(account)
        self._withdrawn_seen = withdrawn
        return True

    def _answer(self, req: dict[str, Any]) -> None:
        account = req["account_id"]
        if req["kind"] == "export":
            if self._reader is None:  # (opened in this thread, used only by it)
                self._reader = self.journal.reader()
            answer = {"store_id": self.client.store_id, "answered_at": time.time(),
                      **records.fitted(records.account_data(self.journal, account, self._reader))}
            self.counts["exports"] += 1
        else:
            got = records.erase_account(self.journal, account)
            if isinstance(got, str):  # asked again at the next poll, once it is settled
                log.info("erasure request %s waits: %s", req["id"], got)
                return
            answer = {"store_id": self.client.store_id, "answered_at": time.time(), **got}
            self.counts["erasures"] += 1
        status, _, err = self.client.call("POST", f"/v1/data-requests/{req['id']}/answer", {"answer": answer})
        if status != 200:
            log.warning("data request %s: answer not taken (%s)", req["id"], err or status)
