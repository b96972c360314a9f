"""The door panels: what each door is telling shoppers now (this object is its one owner). The rules say things
through ``say`` (a refusal, a welcome, a prompt, a goodbye); the tick returns a door to its idle message when a
message's time is up, and changes the idle message when the store's state changes what it is (an emergency shows at
once). Whoever shows the panels listens through ``out`` (``ports.PanelOut``): it is told on the loop's thread and
must not block — the panel is never on the unlock's critical path (every rule grants the door before it speaks)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..devices.events import DeviceEvent
from ..domain import panel
from ..domain.panel import PanelMessage
from .ports import PanelOut

if TYPE_CHECKING:
    from .store import StoreCore

log = logging.getLogger(__name__)
# messages a face decision may not replace at the exit (the shopper in front of it is being checked out)
BUSY = frozenset({"exit.checking"})
ACK_WAIT_S = 5.0  # a grant's message waits this long for the board's answer; then nothing is said of that grant


class Panels:
    def __init__(self, core: StoreCore, out: PanelOut | None = None) -> None:
        self.core = core
        self.out = out
        lay = core.lay
        self.doors = {"entrance": lay.entry_door, "exit": lay.exit_door}
        self.roles = panel.door_roles(lay.entry_door, lay.exit_door, [c.door for c in core.cfg.cabinets])
        self.shown: dict[str, tuple[PanelMessage, float]] = {}  # door → (message, since)
        # grant tag → (door, said once the board unlocked, said if it refused, asked at)
        self.waiting: dict[str, tuple[str, PanelMessage, PanelMessage | None, float]] = {}
        core.every_tick(self.tick)
        core.on_device(self.device)

    def after_unlock(self, role: str, tag: str, msg: PanelMessage, refused: PanelMessage | None = None) -> None:
        """Say ``msg`` once the door's board has acknowledged the unlock of grant ``tag`` (``refused`` if it
        refused the grant): a panel never welcomes anyone through a door that stayed shut. No answer within
        ``ACK_WAIT_S`` (the door may or may not be open): nothing is said."""
        self.after_unlock_at(self.doors[role], tag, msg, refused)

    def after_unlock_at(self, door: str, tag: str, msg: PanelMessage, refused: PanelMessage | None = None) -> None:
        """``after_unlock`` for the panel of ``door`` (a cabinet's)."""
        self.waiting[tag] = (door, msg, refused, self.core.clock())

    def device(self, ev: DeviceEvent) -> None:
        if ev.kind not in ("unlock_written", "grant_refused"):
            return
        got = self.waiting.pop(str(ev.data.get("tag")), None)
        if got is None:
            return
        door, msg, refused, _ = got
        if ev.kind == "unlock_written":
            self.say_at(door, msg)
        elif refused is not None:
            self.say_at(door, refused)

    def say(self, role: str, msg: PanelMessage) -> None:
        """Show ``msg`` on the ``role`` door's panel now (an emergency is not replaced by anything else)."""
        self.say_at(self.doors[role], msg)

    def say_at(self, door: str, msg: PanelMessage) -> None:
        """Show ``msg`` on ``door``'s panel now (the entrance's, the exit's or a cabinet's)."""
        if self.core.store.state == "emergency" and msg.key != "emergency":
            return
        now = self.core.clock()
        self.shown[door] = (msg, now)
        try:
            self.core.doors[door].lamps(*panel.lamps(msg))
        except Exception:  # a lamp that fails must never cost a decision
            log.exception("lamps of %s", door)
        if self.out is not None:
            try:
                self.out(door, self.roles[door], msg, now)
            except Exception:  # a panel that fails must never cost a decision
                log.exception("panel of %s", door)

    def prompt(self, role: str, msg: PanelMessage | None) -> None:
        """A prompt that gives way to what is happening: not shown over a checkout in progress or a goodbye."""
        if msg is None:
            return
        current = self.shown.get(self.doors[role])
        if current is not None and (current[0].key in BUSY or (current[0].cue == panel.Cue.ACCEPTED
                                                                and not current[0].idle)):
            return
        self.say(role, msg)

    def hours_today(self) -> str | None:
        core = self.core
        return core.hours.today(datetime.fromtimestamp(core.clock(), UTC)) if core.hours is not None else None

    def idle(self, role: str) -> PanelMessage:
        return panel.idle(role, self.core.store.state, self.core.open_now(), self.hours_today())

    def tick(self, now: float) -> None:
        for tag in [t for t, w in self.waiting.items() if now - w[3] > ACK_WAIT_S]:
            del self.waiting[tag]
        for door, role in self.roles.items():
            current = self.shown.get(door)
            if current is not None and not current[0].idle and now - current[1] < (current[0].hold_s or 0.0) \
                    and self.core.store.state != "emergency":
                continue
            if role == "cabinet":
                want = panel.idle(role, "emergency", True, None) if self.core.store.state == "emergency" else \
                    self.core.cabinets.idle(door)
            else:
                want = self.idle(role)
            if current is None or current[0] != want:
                self.say_at(door, want)
