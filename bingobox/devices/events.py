"""The event every driver emits: which device, what happened, when, and details."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    device: str
    kind: str  # e.g. tag_seen, tag_gone, door_opened, alarm, connected, disconnected, fault
    data: dict[str, Any] = field(default_factory=dict[str, Any])
    t: float = field(default_factory=time.time)


Listener = Callable[[DeviceEvent], None]

