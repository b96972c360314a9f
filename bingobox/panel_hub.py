"""The door panels' latest messages, rendered in each door's language, handed from the control loop to the live
panel pages (the screen server's event streams). ``publish`` runs on the loop's thread and never blocks: it renders
(microseconds), stores the latest message per door and hands it to each stream's queue on that stream's event loop.
A slow page loses intermediate messages, never the latest one."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

from . import i18n
from .config import PanelsConfig
from .domain.panel import PanelMessage

QUEUE = 8  # messages a stream may fall behind by before the oldest are dropped


class PanelHub:
    def __init__(self, cfg: PanelsConfig, doors: dict[str, str]) -> None:
        """``doors``: door → role (entrance/exit): the doors that have a panel."""
        self.cfg = cfg
        self.roles = dict(doors)
        self.latest: dict[str, dict[str, Any]] = {}
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._streams: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]]] = {
            d: [] for d in doors}

    def language(self, door: str) -> str:
        return self.cfg.language_of(door)

    def publish(self, door: str, role: str, msg: PanelMessage, decided_at: float) -> None:
        """A new message for ``door`` (``ports.PanelOut``; ``decided_at``: when the store decided it)."""
        lang = self.language(door)
        text = {each: i18n.render(msg, each) for each in i18n.LANGUAGES}  # (a page may ask for another: ?lang=)
        item = {"door": door, "role": role, "key": msg.key, "cue": str(msg.cue), "hold_s": msg.hold_s,
                "lang": lang, **text[lang], "text": text, "decided_at": decided_at, "at": time.time()}
        with self._lock:
            item["seq"] = next(self._seq)
            self.latest[door] = item
            streams = list(self._streams.get(door, ()))
        for loop, q in streams:
            try:
                loop.call_soon_threadsafe(_offer, q, item)
            except RuntimeError:  # that stream's loop has closed (the server is stopping)
                pass

    def state(self, door: str) -> dict[str, Any]:
        """What a panel page needs to start: its door, role, language, its fixed words (in every shipped language),
        and the latest message."""
        lang = self.language(door)
        with self._lock:
            latest = self.latest.get(door)
        return {"door": door, "role": self.roles[door], "lang": lang,
                "labels": {each: i18n.chrome(each) for each in i18n.LANGUAGES}, "message": latest}

    def open_stream(self, door: str) -> asyncio.Queue[dict[str, Any]] | None:
        """A queue of ``door``'s messages for a stream on the running event loop (None: too many streams)."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
        with self._lock:
            streams = self._streams[door]
            if len(streams) >= self.cfg.max_streams_per_door:
                return None
            streams.append((asyncio.get_running_loop(), q))
        return q

    def close_stream(self, door: str, q: asyncio.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._streams[door] = [(lp, s) for lp, s in self._streams[door] if s is not q]

    def streams(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._streams.values())


def _offer(q: asyncio.Queue[dict[str, Any]], item: dict[str, Any]) -> None:
    while q.full():
        q.get_nowait()  # the oldest goes: the latest message is what a panel must show
    q.put_nowait(item)
