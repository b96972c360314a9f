"""The store's health: devices coming and going (a store problem each, and the shelves' sight for attribution),
device alarms, the fire panel (every door released, anyone may walk in), the journal's disk and the charge queue's
offline limits (events the app posts; the simulation can post them too), the wallet gateway's reachability."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..devices.events import DeviceEvent
from .events import ChargeQueueChanged, DiskChecked

if TYPE_CHECKING:
    from .store import StoreCore


class Health:
    def __init__(self, core: StoreCore) -> None:
        self.core = core
        self.disk_low = False
        self.free_mb: int | None = None  # the journal's disk (None: not looked at yet)
        core.on_device(self.device)
        core.on(DiskChecked, self.disk)
        core.on(ChargeQueueChanged, self.charge_queue)
        core.every_tick(self.tick)

    def device(self, ev: DeviceEvent) -> None:
        core = self.core
        if ev.kind in ("connected", "disconnected", "fault"):
            core.store.set_problem(f"device:{ev.device}", ev.kind != "connected")
            core.attribution.shelf_link(ev.device, ev.kind == "connected", ev.t)
        if ev.kind in ("alarm", "fault"):
            core.alarm(ev.data.get("alarm") or ev.data.get("fault") or ev.kind, ev.device, ev.data, ev.t)
        if ev.kind == "fire_alarm" and core.store.may("fire"):
            core.store.fire()
            core.attribution.stranger_inside(ev.t, "fire", uncounted=True)  # every door is free: anyone may walk in
        elif ev.kind == "fire_cleared" and core.store.may("fire_cleared"):
            core.store.fire_cleared()

    def disk(self, ev: DiskChecked) -> None:
        """Entry stops before the disk fills (the exit's charges keep the reserve); an alarm when it happens."""
        self.free_mb = ev.free_mb
        low = ev.free_mb < ev.min_free_mb
        if low and not self.disk_low:
            self.core.alarm("disk_low", None, {"free_mb": ev.free_mb, "min_free_mb": ev.min_free_mb})
        self.disk_low = low
        self.core.store.set_problem("disk_low", low)

    def charge_queue(self, ev: ChargeQueueChanged) -> None:
        self.core.store.set_problem("charges_pending_limit", not ev.admitting)

    def tick(self, _now: float) -> None:
        self.core.store.set_problem("gateway", self.core.outbox.gateway_ok is False)
