"""The timing of each entry and exit: when the door's board acknowledged an unlock the core asked for with a tag,
the path's stage times are complete — recorded in ``Telemetry`` and, as evidence, in the visit's record (``stages``:
what the benches and the soak read)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..devices.events import DeviceEvent

if TYPE_CHECKING:
    from .store import StoreCore

log = logging.getLogger(__name__)


class Timing:
    def __init__(self, core: StoreCore) -> None:
        self.core = core
        core.on_device(self.device)

    def device(self, ev: DeviceEvent) -> None:
        if ev.kind != "unlock_written":
            return
        tag = ev.data.get("tag")
        got = self.core.telemetry.acked(tag, ev.data.get("written"), ev.data.get("acked"))
        if got is None:
            return
        path, stages, total_ms = got
        try:
            self.core.journal.evidence(tag, "stages", {"path": path, "latency_ms": round(total_ms, 2),
                                                       **{k: round(t, 4) for k, t in stages.items() if t is not None}})
        except Exception as e:
            log.warning("stage times of %s not recorded: %s", tag, e)
