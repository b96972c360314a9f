"""Following the door panels as their pages do (the ``/panel/DOOR/events`` stream) and timing each message from
the moment the store decided it (``decided_at``, the core's clock) to its arrival here — what ``bench store``
reports as ``panel_ms``."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import requests

from bingobox.metrics import Histogram


class PanelWatch:
    def __init__(self, panels: dict[str, str]) -> None:
        """``panels``: door → page URL (``endpoints.json``'s ``panels``)."""
        self.urls = {door: f"{url}/events" for door, url in panels.items()}
        self.ms = Histogram()
        self.keys: Counter[str] = Counter()
        self._stop = threading.Event()
        self._responses: list[requests.Response] = []
        self._threads = [threading.Thread(target=self._follow, args=(u,), daemon=True, name=f"panel-{d}")
                         for d, u in self.urls.items()]

    def start(self) -> PanelWatch:
        for t in self._threads:
            t.start()
        return self

    def _follow(self, url: str) -> None:
        while not self._stop.is_set():
            try:
                with requests.get(url, stream=True, timeout=(5, 30)) as r:
                    self._responses.append(r)
                    first = True
                    for line in r.iter_lines(decode_unicode=True):
                        if self._stop.is_set():
                            return
                        if not line or not line.startswith("data: "):
                            continue
                        item = json.loads(line[6:])
                        if first:  # the latest message, sent on connecting: decided before we listened
                            first = False
                            continue
                        self.ms.add((time.time() - item["decided_at"]) * 1000)
                        self.keys[item["key"]] += 1
            except Exception:  # (closing the response from ``stop`` ends the read with whatever urllib3 raises)
                if self._stop.wait(0.5):
                    return

    def stop(self) -> dict:
        self._stop.set()
        for r in self._responses:
            r.close()
        for t in self._threads:
            t.join(timeout=2)
        return {**self.ms.summary(), "messages": dict(sorted(self.keys.items()))}
