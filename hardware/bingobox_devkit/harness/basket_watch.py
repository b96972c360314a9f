"""Following the shoppers' live baskets as their wallet apps do (the app asks once a second while its shopper is
inside; here ``GET /admin/accounts/{id}/visit``, which answers what the app's own request answers) and timing each
take from the moment the shelf lost the tag (the simulator's ``tags.remove`` returned) to the first answer whose
basket holds it — what ``bingobox demo`` reports as ``basket_ms``. A take the store could not attribute (others
inside, a blind shelf) never shows as a line: it is counted, with whether the app said "not certain yet"."""

from __future__ import annotations

import threading
import time

import requests

from bingobox.metrics import percentiles

APP_POLL_S = 1.0  # the wallet app's period (wallet.js ``checkCode``)
GIVE_UP_S = 10.0


class BasketWatch:
    def __init__(self, gateway: str, admin_token: str) -> None:
        self.gateway, self.headers = gateway, {"X-Admin-Token": admin_token}
        self.ms: list[float] = []
        # takes never shown as a line (the shopper left first, or 10 s passed): did the app say "not certain yet"
        # meanwhile (it must have: a take the store attributes shows; one it cannot is uncertain)?
        self.not_shown = {"said_uncertain": 0, "said_certain": 0}
        self.withdrawn = 0  # put back before it showed
        # account → [items it should hold, taken at, the app said "not certain" since]
        self._pending: dict[str, list[list]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="basket-watch")

    def start(self) -> BasketWatch:
        self._thread.start()
        return self

    def took(self, account: str, holding: int) -> None:
        """The shelf lost a tag just now; the shopper should then hold ``holding`` items."""
        with self._lock:
            self._pending.setdefault(account, []).append([holding, time.time(), False])

    def put_back(self, account: str) -> None:
        with self._lock:
            self.withdrawn += len(self._pending.pop(account, []))

    def _run(self) -> None:
        http = requests.Session()
        while not self._stop.wait(APP_POLL_S):
            with self._lock:
                accounts = list(self._pending)
            for account in accounts:
                try:
                    r = http.get(f"{self.gateway}/admin/accounts/{account}/visit", headers=self.headers, timeout=5)
                    basket = (r.json().get("visit") or {}).get("basket") if r.status_code == 200 else None
                except (requests.RequestException, ValueError):
                    continue
                now = time.time()
                held = sum(li["qty"] for li in basket["lines"]) if basket else 0
                gone = r.status_code == 200 and r.json().get("visit") is None  # left (or not yet reported)
                with self._lock:
                    left = []
                    for take in self._pending.get(account, []):
                        holding, t, _ = take
                        take[2] = take[2] or (basket is not None and not basket["certain"])
                        if held >= holding:
                            self.ms.append((now - t) * 1000)
                        elif (gone and now - t > 2 * APP_POLL_S) or now - t > GIVE_UP_S:
                            self.not_shown["said_uncertain" if take[2] else "said_certain"] += 1
                        else:
                            left.append(take)
                    if left:
                        self._pending[account] = left
                    else:
                        self._pending.pop(account, None)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=10)
        v = sorted(self.ms)
        p95 = round(v[min(len(v) - 1, round(0.95 * (len(v) - 1)))], 1) if v else None
        return {**percentiles(self.ms), "p95": p95, "not_shown": dict(self.not_shown), "withdrawn": self.withdrawn,
                "app_poll_s": APP_POLL_S}
