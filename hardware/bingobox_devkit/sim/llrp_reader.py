"""A virtual fixed UHF reader (Impinj Speedway / Zebra FX class) that speaks LLRP over TCP: the connection
attempt event, capabilities, reader config (keepalives), ROSpecs (add, enable, start, stop, delete; an immediate
start trigger starts on enable), RO_ACCESS_REPORTs with EPC, antenna id, peak RSSI, seen count and timestamps, and
periodic KEEPALIVEs. Any LLRP client can inventory it (sllurp's is tested against it).

Each antenna has its own field of tags. A round (``round_s``) reads every tag on the ROSpec's antennas, each
missed with ``drop_reads``; with ``bleed`` a neighbouring antenna also reads a tag, ``bleed_db`` weaker (a real
shelf's antennas overlap). Faults: unplug (the reader leaves the network), silent (connected, says nothing),
delay (each message late), garbage / corrupt (bytes that are not LLRP on the stream).
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time

from bingobox_devkit.sim import llrp_codec as L

from ..ports import bind_listener
from .config import SimLlrpReader, check_epc
from .serial_device import SerialFaults

log = logging.getLogger(__name__)


class VirtualLlrpReader:
    kind = "llrp"

    def __init__(self, cfg: SimLlrpReader, seed: int = 0) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.rng = random.Random(seed)
        self.faults = SerialFaults()
        self.fields: dict[int, dict[str, int]] = {a: {} for a in range(1, cfg.antennas + 1)}
        for ant, epcs in cfg.tags.items():
            self.fields[int(ant)] = {e: cfg.rssi for e in epcs}
        self.plugged = False
        self.port = cfg.tcp_port
        self._server: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.rospecs: dict[int, L.ROSpec] = {}
        self.enabled: set[int] = set()
        self.running: int | None = None
        self.keepalive_ms: int | None = None
        self._seen_first: dict[tuple[str, int], int] = {}
        self.stats = {"connections": 0, "refused": 0, "messages_in": 0, "reports": 0, "tag_reads": 0,
                      "keepalives": 0, "keepalive_acks": 0, "errors": 0}

    # lifecycle -------------------------------------------------------------------------------------
    def plug(self) -> None:
        if self.plugged:
            return
        srv = bind_listener(self.port)
        self.port = srv.getsockname()[1]  # (the same port again after a replug)
        srv.listen(4)
        self._server, self.plugged = srv, True
        self._stop.clear()
        threading.Thread(target=self._accept, args=(srv,), name=f"llrp-{self.name}", daemon=True).start()
        threading.Thread(target=self._rounds, name=f"llrp-{self.name}-rounds", daemon=True).start()

    def unplug(self) -> None:
        if not self.plugged:
            return
        self.plugged = False
        self._stop.set()
        for s in (self._server, self._conn):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        self._server = self._conn = None
        self._reset_specs()

    def endpoints(self) -> dict:
        return {"tcp": self.port, "url": f"llrp://127.0.0.1:{self.port}", "antennas": self.cfg.antennas}

    def status(self) -> dict:
        with self._lock:
            tags = {a: len(f) for a, f in self.fields.items()}
        return {"kind": self.kind, "name": self.name, "plugged": self.plugged, "faults": vars(self.faults).copy(),
                **self.endpoints(), "connected": self._conn is not None, "rospecs": sorted(self.rospecs),
                "running": self.running, "keepalive_ms": self.keepalive_ms, "tags": tags, **self.stats}

    # the field (from the control API) --------------------------------------------------------------
    def _antenna(self, antenna) -> dict[str, int]:
        a = int(antenna)
        if a not in self.fields:
            raise ValueError(f"{self.name} has antennas 1..{self.cfg.antennas}, not {a}")
        return self.fields[a]

    def add_tags(self, epcs: list[str], rssi: int | None = None, antenna=1) -> int:
        with self._lock:
            f = self._antenna(antenna)
            for e in epcs:
                f[check_epc(e)] = self.cfg.rssi if rssi is None else int(rssi)
            return len(f)

    def remove_tags(self, epcs: list[str], antenna=1) -> int:
        with self._lock:
            f = self._antenna(antenna)
            for e in epcs:
                f.pop(check_epc(e), None)
            return len(f)

    def set_tags(self, epcs: list[str], antenna=1) -> int:
        with self._lock:
            f = self._antenna(antenna)
            f.clear()
            for e in epcs:
                f[check_epc(e)] = self.cfg.rssi
            return len(f)

    # the connection --------------------------------------------------------------------------------
    def _accept(self, srv: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._conn is not None:  # one client at a time, as real readers do
                self.stats["refused"] += 1
                conn.sendall(L.encode(L.READER_EVENT_NOTIFICATION, 0,
                                      L.connection_event(_us(), L.CONNECTION_CLIENT_ALREADY)))
                conn.close()
                continue
            self._conn = conn
            self.stats["connections"] += 1
            self._reset_specs()
            self._send(L.READER_EVENT_NOTIFICATION, 0, L.connection_event(_us()))
            threading.Thread(target=self._serve, args=(conn,), name=f"llrp-{self.name}-conn", daemon=True).start()

    def _reset_specs(self) -> None:
        self.rospecs.clear()
        self.enabled.clear()
        self.running = None
        self.keepalive_ms = None

    def _serve(self, conn: socket.socket) -> None:
        framer = L.Framer()
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                if self.faults.silent:
                    continue
                for msg in framer.feed(data):
                    self.stats["messages_in"] += 1
                    if self._handle(msg) == "close":
                        return
        except (OSError, L.LlrpError) as e:
            log.info("%s: connection ended: %s", self.name, e)
        finally:
            if self._conn is conn:
                self._conn = None
                self._reset_specs()
            conn.close()

    def _send(self, msg_type: int, msg_id: int, body: bytes = b"") -> None:
        conn, f = self._conn, self.faults
        if conn is None or f.silent:  # (a hung reader: the connection stays, nothing comes)
            return
        data = L.encode(msg_type, msg_id, body)
        if f.delay_s:
            time.sleep(f.delay_s)
        if f.corrupt_frames > 0:  # a wrong version in the header: the client must give up on this stream
            f.corrupt_frames -= 1
            data = bytes([data[0] ^ 0x1C]) + data[1:]
        if f.garbage_bytes > 0:
            data = self.rng.randbytes(f.garbage_bytes) + data
            f.garbage_bytes = 0
        with self._send_lock:
            try:
                conn.sendall(data)
            except OSError:
                pass

    def _handle(self, msg: L.Message) -> str | None:
        t, body = msg.type, msg.body
        try:
            if t == L.GET_READER_CAPABILITIES:
                caps = L.capabilities(L.Capabilities(self.cfg.antennas))
                self._send(L.GET_READER_CAPABILITIES_RESPONSE, msg.id, caps)
            elif t == L.SET_READER_CONFIG:
                ka = L.keepalive_ms(body)
                if ka is not None:
                    self.keepalive_ms = ka or None
                self._send(L.SET_READER_CONFIG_RESPONSE, msg.id, L.status())
            elif t == L.ADD_ROSPEC:
                spec = L.rospec_of(body)
                bad = [a for a in spec.antennas if a and a not in self.fields]
                if spec.id == 0 or spec.id in self.rospecs or bad:
                    why = f"antennas {bad} do not exist" if bad else f"ROSpecID {spec.id} is taken or 0"
                    self._send(L.ADD_ROSPEC_RESPONSE, msg.id, L.status(L.M_FIELD_ERROR, why))
                    return None
                self.rospecs[spec.id] = spec
                self._send(L.ADD_ROSPEC_RESPONSE, msg.id, L.status())
            elif t in (L.ENABLE_ROSPEC, L.START_ROSPEC, L.STOP_ROSPEC, L.DISABLE_ROSPEC, L.DELETE_ROSPEC):
                self._rospec_command(msg)
            elif t in L.RESPONSE_TO:  # GET_READER_CONFIG, access specs: accepted, nothing to do here
                self._send(L.RESPONSE_TO[t], msg.id, L.status())
                if t == L.CLOSE_CONNECTION:
                    return "close"
            elif t == L.KEEPALIVE_ACK:
                self.stats["keepalive_acks"] += 1
            elif t != L.ENABLE_EVENTS_AND_REPORTS:
                self._send(L.ERROR_MESSAGE, msg.id, L.status(L.M_UNSUPPORTED_MESSAGE, f"message type {t}"))
        except L.LlrpError as e:
            self.stats["errors"] += 1
            self._send(L.RESPONSE_TO.get(t, L.ERROR_MESSAGE), msg.id, L.status(L.M_PARAMETER_ERROR, str(e)))
        return None

    def _rospec_command(self, msg: L.Message) -> None:
        t, rid = msg.type, L.rospec_id_of(msg.body)
        ids = list(self.rospecs) if rid == 0 else [rid]
        if any(i not in self.rospecs for i in ids):
            self._send(L.RESPONSE_TO[t], msg.id, L.status(L.M_FIELD_ERROR, f"no ROSpec {rid}"))
            return
        for i in ids:
            if t == L.ENABLE_ROSPEC:
                self.enabled.add(i)
                if self.rospecs[i].start_trigger == L.START_TRIGGER_IMMEDIATE:
                    self.running = i
            elif t == L.START_ROSPEC and i in self.enabled:
                self.running = i
            elif t in (L.STOP_ROSPEC, L.DISABLE_ROSPEC, L.DELETE_ROSPEC):
                if self.running == i:
                    self.running = None
                if t != L.STOP_ROSPEC:
                    self.enabled.discard(i)
                if t == L.DELETE_ROSPEC:
                    del self.rospecs[i]
        self._send(L.RESPONSE_TO[t], msg.id, L.status())

    # inventory rounds ------------------------------------------------------------------------------
    def _rounds(self) -> None:
        last_keepalive = time.monotonic()
        while not self._stop.wait(self.cfg.round_s):
            if self._conn is None or self.faults.silent:
                continue
            now = time.monotonic()
            if self.keepalive_ms and now - last_keepalive >= self.keepalive_ms / 1000:
                last_keepalive = now
                self.stats["keepalives"] += 1
                self._send(L.KEEPALIVE, 0)
            rid = self.running
            if rid is None or rid not in self.rospecs:
                continue
            reads = self.round(self.rospecs[rid])
            if reads:
                self.stats["reports"] += 1
                self.stats["tag_reads"] += len(reads)
                self._send(L.RO_ACCESS_REPORT, 0, b"".join(L.tag_report(r) for r in reads))

    def round(self, spec: L.ROSpec) -> list[L.TagRead]:
        """One inventory round over the ROSpec's antennas: each tag read (or missed) at its antenna, and maybe
        at a neighbour, weaker."""
        cfg, now = self.cfg, _us()
        antennas = [a for a in spec.antennas if a in self.fields] or list(self.fields)
        out = []
        with self._lock:
            for a, f in self.fields.items():
                for epc, rssi in f.items():
                    for ant, level in [(a, rssi)] + [(n, rssi - cfg.bleed_db) for n in (a - 1, a + 1)
                                                     if n in self.fields and self.rng.random() < cfg.bleed]:
                        if ant not in antennas or self.rng.random() < self.faults.drop_reads:
                            continue
                        noisy = max(-100, min(0, level + self.rng.randint(-cfg.rssi_noise, cfg.rssi_noise)))
                        if len(self._seen_first) > 100_000:
                            self._seen_first.clear()
                        first = self._seen_first.setdefault((epc, ant), now)
                        out.append(L.TagRead(epc, ant, noisy, 1, first, now, spec.id))
        return out


def _us() -> int:
    return int(time.time() * 1_000_000)
