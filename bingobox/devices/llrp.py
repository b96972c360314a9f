"""LLRP reader driver: a fixed UHF reader on the network (Impinj, Zebra) through sllurp, the Python LLRP client,
with antenna id and peak RSSI in its tag reports; each antenna a zone (a shelf, or the exit area) that the store
sees as a reader of its own (a ``TagField``: the same seen/gone hysteresis, rounds and exit windows as the M100
readers).

- Placement: a tag read at two antennas (their fields overlap) belongs to one zone. It moves to another only when
  read there ``place_reads`` times in a row and each time ``place_margin_db`` stronger than at its zone, or while
  its zone no longer reads it. Never on one read.
- Rounds: every ``round_s`` each zone closes a round; it counts as answered while the reader is inventorying and
  was heard (a report or a keepalive) within a keepalive and two rounds. A reader that reads nothing says nothing,
  so its keepalives are what tells "empty" from "gone"; a tag is gone only when the reader kept talking without
  reading it for ``gone_after_s``.
- Liveness: sllurp waits on its socket without a timeout; here a connection silent for ``silence_timeout_s`` is
  dropped and made again, with back-off up to ``reconnect_max_s``. While the reader is away nothing is declared gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import LlrpReaderConfig, LlrpZoneConfig
from ..worker import Backoff, Worker
from .events import DeviceEvent, Listener
from .tag_field import TagField

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZoneRules:
    """What a zone's TagField needs of a config (mode, gone thresholds)."""

    name: str
    role: str
    gone_after_s: float
    silence_timeout_s: float
    mode: str = "multi"
    gone_after_rounds: int = 3


class AntennaZone(TagField):
    """One antenna's zone: reads come from its ``LlrpReader`` (placed), rounds are closed by it."""

    def __init__(self, zone: LlrpZoneConfig, reader: LlrpReader, on_event: Listener) -> None:
        c = reader.cfg  # fresh: heard within a keepalive and two rounds (a silent reader declares nothing gone)
        super().__init__(ZoneRules(zone.name, zone.role, c.gone_after_s, c.keepalive_s + 2 * c.round_s), on_event)
        self.antenna = zone.antenna
        self.reader = reader

    def start(self) -> None:
        """(The reader's connection runs the zone.)"""

    def stop(self) -> None:
        """(The reader's connection runs the zone.)"""

    def online(self) -> bool:
        return self.reader.inventorying()

    def read(self, epc: str, rssi: int, now: float) -> None:
        events: list[DeviceEvent] = []
        with self._lock:
            self._last_frame = now
            self._read(epc, rssi, now, events)
        for e in events:
            self._emit(e)

    def round_tick(self, now: float, inventorying: bool, heard: float) -> None:
        """Close a round: answered if the reader is inventorying and was heard lately; a tag is gone only after
        the reader was heard, not read it, for ``gone_after_s``."""
        with self._lock:
            if inventorying and now - heard < self.cfg.silence_timeout_s:
                self._round.answered = True
            self._last_frame = heard
        self._close_round(now)

    def link(self, up: bool) -> None:
        self._link_changed(up, self.reader.url)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"kind": "rfid", "name": self.name, "role": self.cfg.role, "mode": "llrp", **self.field_status(),
                    "reader": self.reader.name, "antenna": self.antenna, "link": self.reader.link_status(),
                    **self.stats}


@dataclass
class _Place:
    zone: int | None = None  # the antenna the tag belongs to
    rssi: dict[int, tuple[float, float]] = field(default_factory=dict)  # antenna → (smoothed RSSI, last read)
    challenger: int | None = None
    streak: int = 0


class Placement:
    """Which antenna's zone a tag belongs to, from its reads at every antenna (strongest, with hysteresis)."""

    def __init__(self, margin_db: float, reads: int, stale_s: float) -> None:
        self.margin, self.reads, self.stale_s = margin_db, reads, stale_s
        self.tags: dict[str, _Place] = {}
        self.moves = 0

    def place(self, epc: str, antenna: int, rssi: float, now: float) -> int | None:
        """The antenna this read counts for (its tag's zone), or None (a weaker antenna's read: not counted)."""
        p = self.tags.setdefault(epc, _Place())
        old = p.rssi.get(antenna)
        p.rssi[antenna] = (rssi if old is None else 0.7 * old[0] + 0.3 * rssi, now)
        if p.zone == antenna:
            p.challenger, p.streak = None, 0
            return antenna
        home = p.rssi.get(p.zone) if p.zone is not None else None
        fresh_home = home is not None and now - home[1] <= self.stale_s
        stronger = home is None or not fresh_home or p.rssi[antenna][0] >= home[0] + self.margin
        if not stronger:
            p.challenger, p.streak = None, 0
            return None
        p.streak = p.streak + 1 if p.challenger == antenna else 1
        p.challenger = antenna
        if p.streak < self.reads:
            return None
        if p.zone is not None:
            self.moves += 1
        p.zone, p.challenger, p.streak = antenna, None, 0
        return antenna

    def forget_older_than(self, t: float) -> None:
        for epc in [e for e, p in self.tags.items() if max(x[1] for x in p.rssi.values()) < t]:
            del self.tags[epc]


ClientFactory = Callable[..., object]


class LlrpReader:
    """One LLRP reader: a sllurp connection kept alive, its reports placed into antenna zones."""

    def __init__(self, cfg: LlrpReaderConfig, on_event: Listener, client_factory: ClientFactory | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.url = f"llrp://{cfg.host}:{cfg.port}"
        self._emit = on_event
        self._clock = clock
        self.zones = {z.antenna: AntennaZone(z, self, on_event) for z in cfg.zones}
        self.placement = Placement(cfg.place_margin_db, cfg.place_reads, max(0.5, 3 * cfg.round_s))
        self._factory = client_factory
        self._client = None
        self._lock = threading.Lock()
        self._worker = Worker(f"llrp-{cfg.name}", self._run, join_s=3)
        self._stop = self._worker.stopping
        self._inventorying = False
        self._last_heard = 0.0  # the last report or keepalive
        self._connect_at = 0.0
        self._connected_since: float | None = None
        self._next_try = 0.0
        self._backoff = Backoff(0.5, cfg.reconnect_max_s)
        self.last_error: str | None = None
        self.stats = {"connects": 0, "connect_failures": 0, "silences": 0, "reports": 0, "reads": 0,
                      "reads_elsewhere": 0, "unknown_antenna": 0, "keepalives": 0}

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()
        self._drop("stopped", politely=True)

    def inventorying(self) -> bool:
        return self._inventorying and self._clock() - self._last_heard < self.cfg.silence_timeout_s

    def link_status(self) -> dict[str, Any]:
        return {"url": self.url, "connected": self._client is not None, "inventorying": self.inventorying(),
                "connected_since": self._connected_since, "last_error": self.last_error,
                "heard_s_ago": round(self._clock() - self._last_heard, 3) if self._last_heard else None,
                "placement_moves": self.placement.moves, **self.stats}

    # the connection --------------------------------------------------------------------------------
    def _new_client(self) -> Any:
        if self._factory is not None:
            return self._factory(self.cfg.host, self.cfg.port, self._sllurp_config())
        from sllurp.llrp import LLRPReaderClient

        return LLRPReaderClient(self.cfg.host, self.cfg.port, self._sllurp_config(), timeout=3.0)

    def _sllurp_config(self) -> Any:
        from sllurp.llrp import LLRPReaderConfig

        c = self.cfg
        conf: dict[str, Any] = {"antennas": sorted(self.zones), "start_inventory": True, "reset_on_connect": True,
                "reconnect": False, "report_every_n_tags": 1, "keepalive_interval": int(c.keepalive_s * 1000),
                "tag_content_selector": {"EnableROSpecID": False, "EnableSpecIndex": False,
                                         "EnableInventoryParameterSpecID": False, "EnableAntennaID": True,
                                         "EnableChannelIndex": False, "EnablePeakRSSI": True,
                                         "EnableFirstSeenTimestamp": False, "EnableLastSeenTimestamp": True,
                                         "EnableTagSeenCount": True, "EnableAccessSpecID": False}}
        if c.tx_power_dbm is not None:
            conf["tx_power_dbm"] = float(c.tx_power_dbm)
        return LLRPReaderConfig(conf)

    def _connect(self, now: float) -> None:
        try:
            from sllurp.llrp import LLRPReaderState

            client = self._new_client()
            client.add_tag_report_callback(self._on_report)
            client.add_message_callback("KEEPALIVE", self._on_keepalive)
            client.add_state_callback(LLRPReaderState.STATE_INVENTORYING, self._on_inventorying)
            client.add_disconnected_callback(self._on_disconnected)
            client.connect()
        except Exception as e:  # refused, unreachable, a reader that is not one
            self.stats["connect_failures"] += 1
            self.last_error = f"{type(e).__name__}: {e}"
            self._next_try = now + self._backoff.failed()
            log.warning("%s: cannot connect to %s (%s): next try in %.1fs", self.name, self.url, self.last_error,
                        self._next_try - now)
            return
        with self._lock:
            self._client = client
            self._connect_at = now
        self.stats["connects"] += 1
        log.info("%s: connected to %s", self.name, self.url)

    def _drop(self, why: str, politely: bool = False) -> None:
        with self._lock:
            client, self._client = self._client, None
            was = self._inventorying
            self._inventorying = False
            self._connected_since = None
        if client is None:
            return
        try:
            if politely:
                client.disconnect(timeout=1.0)
            client.hard_disconnect()
        except Exception:
            log.debug("%s: disconnecting", self.name, exc_info=True)
        self.last_error = why
        if was:
            for z in self.zones.values():
                z.link(False)

    def _on_inventorying(self, client: Any, _state: Any) -> None:
        if client is not self._client:
            return
        self._inventorying = True
        self._connected_since = time.time()
        self._last_heard = self._clock()
        self._backoff.succeeded()
        for z in self.zones.values():
            z.link(True)

    def _on_disconnected(self, client: Any) -> None:
        if client is self._client:
            self._drop("the reader closed the connection")

    def _on_keepalive(self, client: Any, _msg: Any) -> None:
        if client is self._client:
            self.stats["keepalives"] += 1
            self._last_heard = self._clock()

    def _on_report(self, client: Any, tags: list[dict[str, Any]]) -> None:
        if client is not self._client:
            return
        now = self._clock()
        self._last_heard = now
        self.stats["reports"] += 1
        for t in tags:
            epc = t.get("EPC") or t.get("EPC-96")
            ant, rssi = t.get("AntennaID"), t.get("PeakRSSI")
            if epc is None or ant is None:
                continue  # (antenna ids are asked for: a report without one is not ours to place)
            epc = (epc.decode() if isinstance(epc, bytes) else str(epc)).upper()
            if ant not in self.zones:
                self.stats["unknown_antenna"] += 1
                continue
            self.stats["reads"] += 1
            zone = self.placement.place(epc, ant, float(rssi if rssi is not None else -70), now)
            if zone is None:
                self.stats["reads_elsewhere"] += 1
                continue
            self.zones[zone].read(epc, int(rssi if rssi is not None else -70), now)

    # the thread ------------------------------------------------------------------------------------
    def _run(self) -> None:
        period = self.cfg.round_s
        next_round = self._clock()
        last_forget = next_round
        while not self._stop.wait(max(0.0, next_round - self._clock())):
            now = self._clock()
            next_round = max(next_round + period, now)
            if self._client is None and now >= self._next_try:
                self._connect(now)
            elif self._client is not None and now - max(self._last_heard, self._connect_at) > \
                    self.cfg.silence_timeout_s:
                self.stats["silences"] += 1
                log.warning("%s: nothing heard for %.1fs: connecting again", self.name, self.cfg.silence_timeout_s)
                self._drop(f"silent for {self.cfg.silence_timeout_s}s")
                self._next_try = now + self._backoff.next_s
            inventorying = self.inventorying()
            for z in self.zones.values():
                try:
                    z.round_tick(now, inventorying, self._last_heard)
                except Exception:
                    log.exception("%s: zone %s", self.name, z.name)
            if now - last_forget > 60:
                last_forget = now
                self.placement.forget_older_than(now - 600)
