"""What a UHF reader (or one antenna's zone of it) has in its field: per-tag bookkeeping, seen/gone hysteresis,
the history of inventory rounds, and windows over it (the exit area's "what was carried through").

Readers never report a tag's loss; "gone" is decided here. In ``multi`` mode (a continuous stream of reads) a tag
is gone after ``gone_after_s`` without a read — or longer on a crowded field: a reader needs a while to read every
tag in its field once, and a tag is declared gone only after three such cycles without it (``cycle_s``, measured
from the read rate). In ``poll`` mode (one inventory round per interval) it is gone after ``gone_after_rounds``
answered rounds without it. While the reader is away nothing is declared gone (an unplugged reader must not empty
the shelf); after it comes back, tags get a fresh grace period. The protocol drivers (M100 in ``rfid.py``, LLRP in
``llrp.py``) feed reads in and close rounds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..domain import exit_window
from .events import DeviceEvent, Listener

log = logging.getLogger(__name__)


@dataclass
class TagState:
    epc: str
    first_seen: float
    last_seen: float
    rssi: int
    count: int = 1
    misses: int = 0
    present: bool = True
    since_round: int = 0  # the reader's round count when it was (last) first seen


@dataclass
class _Round:
    """Reads collected between two round boundaries."""

    seen: set[str] = field(default_factory=set)
    answered: bool = False


class TagField:
    """The field of one reader or zone."""

    def __init__(self, cfg: Any, on_event: Listener, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg  # (name, mode, gone_after_s, gone_after_rounds, silence_timeout_s)
        self.name = cfg.name
        self._emit = on_event
        self._clock = clock
        self._lock = threading.Condition()
        self.tags: dict[str, TagState] = {}
        self._round = _Round()
        self.rounds = 0  # closed rounds that got an answer
        self._round_log: dict[int, set[str]] = {}
        self._round_end: dict[int, float] = {}
        self._last_frame = 0.0
        self._connected = False
        self._grace_from = 0.0
        self._waiters: list[tuple[tuple[Any, ...], float, Callable[[], None]]] = []  # (window args, deadline, callback)
        self._notices_at_close = 0
        self._closed_at: float | None = None
        self.notice_rate = 0.0  # notices per second (smoothed): how fast the reader goes through its field
        self.cycle_s = 0.0  # time to read every present tag once, at that rate
        self.stats = {"notices": 0, "empty_rounds": 0, "bad_tag_crc": 0, "errors": 0, "restarts": 0,
                      "tag_seen": 0, "tag_gone": 0}

    # queries ---------------------------------------------------------------------------------------
    def present(self) -> dict[str, TagState]:
        """Tags currently considered on the shelf / in the field."""
        with self._lock:
            return {e: TagState(**vars(t)) for e, t in self.tags.items() if t.present}

    def read_rates(self, window: int = 50, min_rounds: int = 10) -> dict[str, float]:
        """For each present tag, the share of the last ``window`` answered rounds (since it appeared) that read it
        (a round: one answered poll, or one poll interval of the multi-poll stream).
        A tag far below 1.0 is loose, shielded or badly placed: it risks being declared gone while on the shelf.
        Tags present for fewer than ``min_rounds`` rounds are left out (not enough evidence yet)."""
        with self._lock:
            last = self.rounds
            out = {}
            for epc, t in self.tags.items():
                first = max(t.since_round + 1, last - window + 1, last - 199)
                rounds = [r for r in range(first, last + 1) if r in self._round_log]
                if t.present and len(rounds) >= min_rounds:
                    out[epc] = round(sum(epc in self._round_log[r] for r in rounds) / len(rounds), 3)
            return out

    def bounded_inventory(self, rounds: int = 20, stable_rounds: int = 4, timeout: float = 5.0) -> set[str]:
        """Union of EPCs over answered rounds, ending when ``stable_rounds`` rounds in a row brought nothing new
        (or after ``rounds`` rounds). Raises TimeoutError if the reader does not answer enough rounds."""
        found: set[str] = set()
        quiet = 0
        deadline = self._clock() + timeout
        with self._lock:
            start = self.rounds
            seen_round = start
            while self.rounds - start < rounds:
                left = deadline - self._clock()
                if left <= 0:
                    raise TimeoutError(f"{self.name}: only {self.rounds - start} rounds answered in {timeout}s")
                self._lock.wait(min(left, 0.1))
                while seen_round < self.rounds:
                    seen_round += 1
                    new = self._round_log.get(seen_round, set()) - found
                    found |= self._round_log.get(seen_round, set())
                    quiet = 0 if new else quiet + 1
                if quiet >= stable_rounds:
                    break
        return found

    def _link_changed(self, up: bool, url: str) -> None:
        """The reader came (back) or went: while it is away nothing is declared gone; back, tags get a fresh grace
        period. Emits ``connected``/``disconnected``."""
        with self._lock:
            self._connected = up
            now = self._clock()
            if up:
                self._grace_from = now
                self._last_frame = now
                for t in self.tags.values():
                    t.misses = 0
        self._emit(DeviceEvent(self.name, "connected" if up else "disconnected", {"url": url}))

    def online(self) -> bool:
        raise NotImplementedError  # (each reader knows how it tells)

    def field_status(self) -> dict[str, Any]:
        """What every reader or zone reports of its field (under the caller's lock)."""
        return {"online": self.online(), "tags_present": sum(t.present for t in self.tags.values()),
                "rounds": self.rounds, "cycle_s": round(self.cycle_s, 3), "notice_rate": round(self.notice_rate, 1),
                "last_frame_age_s": round(self._clock() - self._last_frame, 3) if self._last_frame else None}

    def _read(self, epc: str, rssi: int, now: float, events: list[DeviceEvent]) -> None:
        """One read of ``epc`` in the current round (under the lock); a ``tag_seen`` event if it is new here."""
        self.stats["notices"] += 1
        self._round.answered = True
        self._round.seen.add(epc)
        t = self.tags.get(epc)
        if t is None:
            self.tags[epc] = TagState(epc, now, now, rssi, since_round=self.rounds)
            events.append(DeviceEvent(self.name, "tag_seen", {"epc": epc, "rssi": rssi}))
            self.stats["tag_seen"] += 1
        else:
            t.last_seen, t.rssi, t.misses = now, rssi, 0
            t.count += 1
            if not t.present:
                t.present = True
                t.first_seen, t.since_round = now, self.rounds
                events.append(DeviceEvent(self.name, "tag_seen", {"epc": epc, "rssi": rssi}))
                self.stats["tag_seen"] += 1

    # the inventory thread --------------------------------------------------------------------------
    def rounds_since(self, t: float) -> int:
        """Answered rounds that ended after wall-clock time ``t``."""
        with self._lock:
            return sum(1 for end in self._round_end.values() if end > t)

    def window(self, t0: float, t_after: float, min_rounds: int = 1) -> set[str] | None:
        """EPCs read in the rounds that ended after ``t0`` (wall clock), up to and including the first round that
        ended after ``t_after`` — or later, until the window holds ``min_rounds`` rounds (one round misses a tag
        now and then; several do not); None while the window is not complete (the history holds 200 rounds)."""
        with self._lock:
            return self._window(t0, t_after, min_rounds)

    def _window(self, t0: float, t_after: float, min_rounds: int) -> set[str] | None:
        return exit_window.window(((end, self._round_log.get(r, set())) for r, end in sorted(self._round_end.items())),
                                  t0, t_after, min_rounds)

    def when_ready(self, t0: float, t_after: float, min_rounds: int, callback: Callable[[], None],
                   timeout: float) -> None:
        """Call ``callback`` once ``window(t0, t_after, min_rounds)`` is complete, or after ``timeout``: from the
        reader's own thread, which must only post an event."""
        with self._lock:
            ready = self._window(t0, t_after, min_rounds) is not None
            if not ready:
                self._waiters.append(((t0, t_after, min_rounds), time.monotonic() + timeout, callback))
        if ready:
            callback()

    def _wake_waiters(self, last_end: float | None) -> None:
        now = time.monotonic()
        with self._lock:
            due = [w for w in self._waiters if now >= w[1] or (last_end is not None and
                                                                 self._window(*w[0]) is not None)]
            self._waiters = [w for w in self._waiters if w not in due]
        for _, _, cb in due:
            try:
                cb()
            except Exception:
                log.exception("%s: a round waiter failed", self.name)

    def wait_rounds_since(self, t: float, n: int, timeout: float) -> bool:
        """Wait until ``n`` answered rounds have ended after ``t`` (the field was looked at since then)."""
        deadline = self._clock() + timeout
        with self._lock:
            while sum(1 for end in self._round_end.values() if end > t) < n:
                left = deadline - self._clock()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))
        return True

    def _close_round(self, now: float) -> None:
        """End the current round: count misses (poll mode) or age out (multi mode), emit tag_gone."""
        gone: list[str] = []
        ended: float | None = None
        with self._lock:
            rnd, self._round = self._round, _Round()
            if rnd.answered:
                self.rounds += 1
                self._round_log[self.rounds] = rnd.seen
                self._round_log.pop(self.rounds - 200, None)
                ended = self._round_end[self.rounds] = time.time()
                self._round_end.pop(self.rounds - 200, None)
                self._lock.notify_all()
            fresh = now - self._last_frame < self.cfg.silence_timeout_s
            if self._closed_at is not None and now > self._closed_at and fresh:
                rate = (self.stats["notices"] - self._notices_at_close) / (now - self._closed_at)
                self.notice_rate = rate if not self.notice_rate else 0.9 * self.notice_rate + 0.1 * rate
            self._notices_at_close, self._closed_at = self.stats["notices"], now
            present = sum(t.present for t in self.tags.values())
            self.cycle_s = present / self.notice_rate if self.notice_rate > 1 else 0.0
            gone_after = max(self.cfg.gone_after_s, 3 * self.cycle_s)
            for epc, t in self.tags.items():
                if not t.present:
                    continue
                if self.cfg.mode == "poll":
                    if rnd.answered and epc not in rnd.seen:
                        t.misses += 1
                    if t.misses >= self.cfg.gone_after_rounds:
                        t.present = False
                        gone.append(epc)
                elif fresh and now - max(t.last_seen, self._grace_from) >= gone_after:
                    t.present = False
                    gone.append(epc)
            self.stats["tag_gone"] += len(gone)
        if ended is not None and self._waiters:
            self._wake_waiters(ended)
        for epc in gone:
            self._emit(DeviceEvent(self.name, "tag_gone", {"epc": epc}))
